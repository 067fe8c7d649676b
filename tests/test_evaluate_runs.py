"""tools/analysis/evaluate_runs.py: a finished run tested again, tabulated,
and reused on a second call."""
import json
from pathlib import Path

import pytest

from pointdistiller_mm.analysis.evaluate_runs import (latest_test_metrics,
                                                      parse_run_spec,
                                                      run_config)

from .conftest import run_tool


def test_run_specs_and_bad_work_dirs(tmp_path):
    assert parse_run_spec('a b=x/y').name == 'a b'
    assert parse_run_spec('x/teacher').name == 'teacher'
    with pytest.raises(ValueError, match='NAME=WORK_DIR'):
        parse_run_spec('=x')
    with pytest.raises(FileNotFoundError, match='training work dir'):
        run_config(tmp_path)


def test_latest_test_metrics_picks_the_newest_kitti_log(tmp_path):
    for stamp, value in (('20260101_000000', 1.0), ('20260102_000000', 2.0)):
        d = tmp_path / stamp
        d.mkdir()
        (d / f'{stamp}.json').write_text(json.dumps(
            {'Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_'
             'strict': value}))
    other = tmp_path / '20260103_000000'
    other.mkdir()
    (other / '20260103_000000.json').write_text(json.dumps({'loss': 1.0}))
    got = latest_test_metrics(tmp_path)
    assert list(got.values()) == [2.0]


def test_evaluate_a_trained_run_and_reuse_it(trained_teacher, tiny_kitti,
                                             tmp_path):
    teacher_dir, _ = trained_teacher
    out = tmp_path / 'eval'
    args = ['PYTHON', 'tools/analysis/evaluate_runs.py', '--data-root',
            str(tiny_kitti), '--out', str(out), f'teacher={teacher_dir}']
    first = run_tool(args)
    assert 'tools/test.py' in first.stdout
    table = (out / 'evaluated.md').read_text()
    assert '| teacher |' in table and 'mAP 3D' in table
    result = json.loads((out / 'evaluated.json').read_text())
    ap = result['runs'][0]['ap']
    assert set(ap) >= {'Car_3D', 'mAP_3D', 'mAP_BEV'}
    assert all(v is None or 0.0 <= v <= 100.0 for v in ap.values())
    # The same checkpoint on the same data: no second test run.
    second = run_tool(args)
    assert 'tools/test.py' not in second.stdout
    assert json.loads((out / 'evaluated.json').read_text()) == result
    assert Path(out / 'teacher' / 'evaluated.json').is_file()
