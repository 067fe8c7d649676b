"""tools/compare_seg.py: the report from hand-made ``scalars.json`` files
(parsing, mean / std over seeds, Δ mIoU), then the tool end to end on the
tiny SemanticKITTI fixture (no KD and PVD, one iteration each, quick
schedule) and a rerun that reuses both runs."""
import csv
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from pointdistiller_mm.demo.compare import RunRecord
from pointdistiller_mm.demo.compare_seg import (SEG_METHOD_KEYS, SEG_METHODS,
                                                SEG_QUICK)
from pointdistiller_mm.demo.compare_seg_report import (
    aggregate_seg, class_names, seg_csv_text, seg_summary, seg_val_records,
    set_deltas, write_seg_comparison)
from tests.conftest import run_tool


def _scalars(work: Path, stamp: str, lines) -> None:
    path = work / stamp / 'vis_data' / 'scalars.json'
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(''.join(json.dumps(x) + '\n' for x in lines))


def _val(car, road, miou, acc, step):
    # the layout mmengine writes for a SegMetric validation
    return {'car': car, 'road': road, 'miou': miou, 'acc': acc,
            'acc_cls': 0.5, 'data_time': 0.01, 'time': 1.8, 'step': step}


def _train(it, t):
    return {'lr': 1e-3, 'data_time': 0.1, 'loss': 2.0, 'time': t,
            'epoch': 1, 'iter': it, 'memory': 10, 'step': it}


def _fake_runs(root: Path):
    """nokd: seeds 0, 1 (mIoU 40, 50 %); pvd: seeds 0, 1 (55, 65 %); the
    nokd seed-0 run was resumed (two timestamp folders, the last
    validation counts)."""
    specs = {('nokd', 0): [(0.30, 0.60, 0.40, 0.80)],
             ('nokd', 1): [(0.50, 0.70, 0.50, 0.90)],
             ('pvd', 0): [(0.60, 0.80, 0.55, 0.85)],
             ('pvd', 1): [(0.70, 0.90, 0.65, 0.95)]}
    runs, summaries = [], {}
    for (key, seed), vals in specs.items():
        work = root / key / f'seed{seed}'
        if (key, seed) == ('nokd', 0):
            _scalars(work, '20260101_000000',
                     [_train(1, 3.0), _val(0.0, 0.1, 0.05, 0.1, 1)])
            _scalars(work, '20260101_000100',
                     [_train(2, 1.0), _train(3, 2.0),
                      _val(*vals[0], step=2)])
        else:
            _scalars(work, '20260101_000000',
                     [_train(1, 9.0), _train(2, 1.0), _train(3, 2.0),
                      _val(*vals[0], step=2)])
        from pointdistiller_mm.demo.compare import run_records
        rec = RunRecord(f'{key}/seed{seed}', key, seed, 'cfg.py', str(work),
                        seconds=10.0 * (seed + 1))
        rec.train_records, _ = run_records(str(work))
        val = seg_val_records(str(work))
        summaries[rec.name] = seg_summary(val[-1])
        runs.append(rec)
    return runs, summaries


def test_seg_val_records_and_summary(tmp_path):
    runs, summaries = _fake_runs(tmp_path)
    val = seg_val_records(str(tmp_path / 'nokd' / 'seed0'))
    assert [v['step'] for v in val] == [1, 2]  # training records left out
    s = summaries['nokd/seed0']
    assert s == pytest.approx({'miou': 40.0, 'acc': 80.0, 'acc_cls': 50.0,
                               'car': 30.0, 'road': 60.0})
    assert list(s)[3:] == ['car', 'road']  # class order of the record
    assert class_names(summaries.values()) == ['car', 'road']
    # the median of the logged times without the first window
    assert runs[0].seconds_per_iter == pytest.approx(1.5)


def test_seg_aggregate_mean_std_delta(tmp_path):
    runs, summaries = _fake_runs(tmp_path)
    classes = ['car', 'road']
    rows = [aggregate_seg(k, k, [r for r in runs if r.method == k],
                          summaries, classes) for k in ('nokd', 'pvd')]
    set_deltas(rows)
    nokd, pvd = rows
    assert nokd.seeds == [0, 1] and pvd.seeds == [0, 1]
    assert nokd.mean['miou'] == pytest.approx(45.0)
    assert nokd.std['miou'] == pytest.approx(math.sqrt(50.0))  # sample std
    assert pvd.mean['miou'] == pytest.approx(60.0)
    assert pvd.mean['car'] == pytest.approx(65.0)
    assert pvd.std['road'] == pytest.approx(math.sqrt(50.0))
    assert nokd.delta_miou is None and pvd.delta_miou == pytest.approx(15.0)
    assert nokd.train_s == pytest.approx(15.0)
    # a failed run and a single seed: no spread
    failed = RunRecord('pvd/seed1', 'pvd', 1, 'c', '', status='failed')
    one = aggregate_seg('pvd', 'pvd', [runs[2], failed], summaries, classes)
    assert one.seeds == [0] and one.std['miou'] is None
    text = seg_csv_text(rows, classes)
    lines = list(csv.DictReader(text.splitlines()))
    assert lines[1]['miou_mean'] == '60.0000'
    assert lines[1]['delta_miou'] == '15.0000'
    assert lines[0]['delta_miou'] == ''
    assert lines[1]['iou_car_mean'] == '65.0000'


def test_seg_report_files(tmp_path):
    runs, summaries = _fake_runs(tmp_path / 'runs')
    methods = [m for m in SEG_METHODS if m.key in ('nokd', 'pvd')]
    settings = SimpleNamespace(
        work_dir=str(tmp_path), data_root='d', seeds=(0, 1),
        methods=('nokd', 'pvd'), schedule=SEG_QUICK, cfg_options=('a=1', ),
        command='python tools/compare_seg.py', quick=True)
    res = write_seg_comparison(settings, methods, runs, summaries, 't.pth',
                               {}, 1.0, echo=lambda s: None)
    md = (tmp_path / 'compare_seg.md').read_text()
    assert '| Cylinder3D_0.5× | 45.00 ± 7.07 | - |' in md
    assert '| Cylinder3D_0.5× + PVD | 60.00 ± 7.07 | +15.00 |' in md
    assert '| car | road |' in md
    saved = json.loads((tmp_path / 'compare_seg.json').read_text())
    assert saved == json.loads(json.dumps(res))
    assert saved['classes'] == ['car', 'road']
    assert [r['key'] for r in saved['rows']] == ['nokd', 'pvd']


def test_seg_methods_table1_order():
    assert SEG_METHOD_KEYS == ('nokd', 'kd', 'cd', 'ifv', 'skd', 'ka', 'pvd')
    for m in SEG_METHODS:
        assert Path(m.config).is_file(), m.config


def test_compare_seg_quick_end_to_end(tiny_semantickitti, tmp_path):
    from tests.test_pvd_e2e import _teacher_checkpoint
    teacher = tmp_path / 'teacher'
    teacher.mkdir()
    _teacher_checkpoint(teacher)
    work = tmp_path / 'compare'
    # 3 training scans at batch 3 = one iteration; 4k points per scan
    args = ['PYTHON', 'tools/compare_seg.py', '--quick', '--methods', 'nokd',
            'pvd', '--seeds', '0', '--work-dir', str(work), '--data-root',
            str(tiny_semantickitti), '--teacher-checkpoint', str(teacher),
            '--cfg-options', 'train_dataloader.batch_size=3',
            'train_dataloader.dataset.pipeline.3.num_points=4000']
    first = run_tool(args, timeout=900)
    for ext in ('md', 'csv', 'json'):
        assert (work / f'compare_seg.{ext}').is_file(), ext
    with open(work / 'compare_seg.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['nokd', 'pvd']
    for row in rows:
        assert row['num_seeds'] == '1'
        assert 0.0 <= float(row['miou_mean']) <= 100.0
        assert float(row['s_per_iter_mean']) > 0
        assert row['miou_std'] == ''
        assert row['iou_car_mean'] != ''
    assert rows[0]['delta_miou'] == ''
    assert float(rows[1]['delta_miou']) == pytest.approx(
        float(rows[1]['miou_mean']) - float(rows[0]['miou_mean']), abs=1e-3)
    md = (work / 'compare_seg.md').read_text()
    assert '| Cylinder3D_0.5× |' in md and '| Cylinder3D_0.5× + PVD |' in md
    commands = [line for line in first.stdout.splitlines()
                if '$ python tools/train.py' in line]
    assert len(commands) == 2
    assert 'model.teacher.checkpoint=' not in commands[0]
    assert 'model.teacher.checkpoint=' in commands[1]
    assert all('pipeline.3.num_points=4000' in c for c in commands)
    assert 'reusing' not in first.stdout

    again = run_tool(args, timeout=300)
    assert '[nokd/seed0] finished before' in again.stdout
    assert '[pvd/seed0] finished before' in again.stdout
    assert '$ python tools/train.py' not in again.stdout
    with open(work / 'compare_seg.csv') as f:
        assert list(csv.DictReader(f)) == rows
