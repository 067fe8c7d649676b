"""The demo's pieces: log / metric parsers, table builder, schedule
overrides, stage runner, plots and the importance picture."""
import json
import math
import sys

import numpy as np
import pytest
from mmengine.config import Config

from pointdistiller_mm.demo import stages as stages_mod
from pointdistiller_mm.demo.importance_view import (bev_cell_importance,
                                                    box_corners_bev,
                                                    loss_sampling_settings,
                                                    pillar_importance,
                                                    pointdistiller_term,
                                                    recorded_map_shape,
                                                    render_importance_bev)
from pointdistiller_mm.demo.logs import (kitti_key, kitti_summary,
                                         last_checkpoint, parse_train_line,
                                         parse_val_line, read_scalars)
from pointdistiller_mm.demo.pipeline import (config_fingerprint,
                                             dataset_ready, seed_options)
from pointdistiller_mm.demo.plots import (map_series, plot_loss_curves,
                                          plot_map_curves)
from pointdistiller_mm.demo.settings import (DISTILL_CONFIG, FULL, QUICK,
                                             Schedule, schedule_overrides)
from pointdistiller_mm.demo.stages import (StageError, format_seconds,
                                           progress_line, run_stage)
from pointdistiller_mm.demo.table import (ModelRow, distill_gain,
                                          markdown_table, text_table)

TEACHER = 'configs/demo/pointpillars_teacher.py'
DISTILL = 'configs/demo/pointpillars_4x_pointdistiller.py'
DEMO_DISTILL = DISTILL_CONFIG
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

TRAIN_LINE = (
    '11/21 20:34:16 - mmengine - INFO - Epoch(train) [3][ 4/16]  lr: '
    '1.0000e-03  eta: 0:02:51  time: 3.4245  data_time: 0.5573  '
    'distill_weight: 1.0000  grad_norm: 63.2934  loss: 9.7694  '
    'student.loss_cls: 1.1454  student.loss_bbox: 2.1262  '
    'student.loss_dir: 0.1434  distill.loss_pillars: 6.3544')
PREFIX = 'Kitti metric/pred_instances_3d'


def _metrics(car3d, ped3d, cyc3d, car_bev, ped_bev, cyc_bev):
    m = {}
    for cls, v3, vb in (('Car', car3d, car_bev), ('Pedestrian', ped3d,
                                                  ped_bev),
                        ('Cyclist', cyc3d, cyc_bev)):
        m[kitti_key(cls, '3D')] = v3
        m[kitti_key(cls, 'BEV')] = vb
        m[kitti_key(cls, '3D', 'easy')] = 99.0  # other difficulty: ignored
        m[f'{PREFIX}/KITTI/{cls}_3D_AP11_moderate_strict'] = 77.0
        m[f'{PREFIX}/KITTI/{cls}_3D_AP40_moderate_loose'] = 88.0
    return m


# ------------------------------------------------------------------ parsers
def test_parse_train_line_of_a_distillation_run():
    tl = parse_train_line(TRAIN_LINE)
    assert (tl.epoch, tl.iter, tl.iters, tl.eta) == (3, 4, 16, '0:02:51')
    assert tl.loss == pytest.approx(9.7694)
    assert tl.values['lr'] == pytest.approx(1e-3)
    assert tl.values['student.loss_dir'] == pytest.approx(0.1434)
    assert tl.distill_loss == pytest.approx(6.3544)
    assert parse_train_line('Epoch(val) [1][1/3] eta: 0:00:03') is None
    assert parse_train_line('some other line') is None


def test_parse_iteration_based_line_and_plain_loss():
    tl = parse_train_line('- INFO - Iter(train) [  50/1000]  lr: 1e-02  '
                          'eta: 1 day, 2:03:04  time: 0.5  loss: 1.25')
    assert (tl.epoch, tl.iter, tl.iters) == (0, 50, 1000)
    assert tl.eta == '1 day, 2:03:04'
    assert tl.loss == 1.25 and tl.distill_loss is None


def test_parse_val_line_with_metrics():
    line = ('- INFO - Epoch(val) [12][32/32]    ' + '  '.join(
        f'{k}: {v:.4f}' for k, v in _metrics(50, 20, 10, 60, 30, 15).items())
        + '  data_time: 0.0123  time: 0.4567')
    vl = parse_val_line(line)
    assert (vl.epoch, vl.iter, vl.iters) == (12, 32, 32)
    assert vl.values[kitti_key('Car', 'BEV')] == 60.0
    assert vl.values['time'] == pytest.approx(0.4567)


def test_kitti_summary_takes_moderate_strict_ap40_and_class_mean():
    s = kitti_summary(_metrics(50, 20, 11, 60, 30, 15))
    assert s['Car_3D'] == 50 and s['Cyclist_BEV'] == 15
    assert s['mAP_3D'] == pytest.approx(27.0)
    assert s['mAP_BEV'] == pytest.approx(35.0)
    partial = kitti_summary({kitti_key('Car', '3D'): 1.0})
    assert partial['Car_3D'] == 1.0 and partial['mAP_3D'] is None


def test_kitti_key_format():
    assert kitti_key('Car') == (
        'Kitti metric/pred_instances_3d/KITTI/Car_3D_AP40_moderate_strict')
    assert kitti_key('Overall', 'BEV', 'hard') == (
        'Kitti metric/pred_instances_3d/KITTI/Overall_BEV_AP40_hard')


def test_read_scalars_splits_train_and_val(tmp_path):
    path = tmp_path / 'scalars.json'
    recs = [dict(lr=1e-3, loss=3.0, loss_cls=1.0, epoch=1, iter=4, step=4),
            dict(lr=1e-3, loss=2.5, loss_cls=0.9, epoch=1, iter=8, step=8),
            dict(_metrics(1, 2, 3, 4, 5, 6), data_time=0.1, time=0.2,
                 step=1),
            dict(lr=1e-3, loss=2.0, epoch=2, iter=12, step=12)]
    path.write_text('\n'.join(json.dumps(r) for r in recs) + '\n\n')
    train, val = read_scalars(str(path))
    assert [r['iter'] for r in train] == [4, 8, 12]
    assert len(val) == 1 and val[0]['step'] == 1
    assert map_series(val) == [(1, pytest.approx(2.0))]
    assert map_series(val, 'BEV') == [(1, pytest.approx(5.0))]


def test_last_checkpoint(tmp_path):
    assert last_checkpoint(str(tmp_path)) is None
    ckpt = tmp_path / 'epoch_2.pth'
    ckpt.write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(ckpt))
    assert last_checkpoint(str(tmp_path)) == str(ckpt)
    # a work dir moved elsewhere: the file name is looked up beside it
    (tmp_path / 'last_checkpoint').write_text('/elsewhere/epoch_2.pth')
    assert last_checkpoint(str(tmp_path)) == str(ckpt)


# -------------------------------------------------------------------- table
def _rows():
    ap_t = kitti_summary(_metrics(60, 30, 20, 70, 40, 30))
    ap_s = kitti_summary(_metrics(50, 20, 11, 60, 30, 15))
    ap_d = kitti_summary(_metrics(52, 19, 14, 61, 33, 15))
    return [ModelRow('teacher', 't.py', ap_t, 4.835, 13.37),
            ModelRow('student', 's.py', ap_s, 1.217, 3.5249),
            ModelRow('student + KD', 'd.py', ap_d, 1.217, 3.5249)]


def test_markdown_table_and_kd_gain():
    md = markdown_table(_rows()).splitlines()
    assert md[0] == ('| model | Car 3D | Pedestrian 3D | Cyclist 3D | '
                     'Car BEV | Pedestrian BEV | Cyclist BEV | mAP 3D | '
                     'mAP BEV | params (M) | GFLOPs |')
    assert md[1] == '|---|' + '---:|' * 10
    assert md[2] == ('| teacher | 60.00 | 30.00 | 20.00 | 70.00 | 40.00 | '
                     '30.00 | 36.67 | 46.67 | 4.835 | 13.37 |')
    assert md[4] == ('| student + KD | 52.00 | 19.00 | 14.00 | 61.00 | '
                     '33.00 | 15.00 | 28.33 | 36.33 | 1.217 | 3.52 |')
    assert md[5] == ('| KD gain | +2.00 | -1.00 | +3.00 | +1.00 | +3.00 | '
                     '+0.00 | +1.33 | +1.33 |  |  |')
    gain = distill_gain(_rows())
    assert gain['mAP_3D'] == pytest.approx(28.3333 - 27.0, abs=1e-3)


def test_table_without_students_has_no_gain_row_and_dashes():
    rows = [ModelRow('teacher', 't.py', kitti_summary({}))]
    md = markdown_table(rows).splitlines()
    assert len(md) == 3 and md[2].count('| - ') == 10
    text = text_table(_rows()).splitlines()
    assert text[0].startswith('model') and text[-1].startswith('KD gain')
    assert len({len(line) for line in text}) == 1  # aligned columns


# ----------------------------------------------------------------- schedule
def test_schedule_overrides_skip_unchanged_and_scale_the_lr_cycle():
    cfg = Config.fromfile(TEACHER)
    assert schedule_overrides(cfg, Schedule()) == []
    same = Schedule(epochs=cfg.train_cfg.max_epochs,
                    batch_size=cfg.train_dataloader.batch_size)
    assert schedule_overrides(cfg, same) == []
    opts = schedule_overrides(cfg, Schedule(epochs=6, batch_size=1,
                                            num_workers=0))
    assert 'train_cfg.max_epochs=6' in opts
    # the config's cycle: 0.4 of the epochs up, 0.6 down
    assert 'param_scheduler.0.end=2.4' in opts
    assert 'param_scheduler.1.begin=2.4' in opts
    assert 'param_scheduler.1.T_max=3.6' in opts
    assert 'param_scheduler.3.end=6' in opts
    assert 'train_dataloader.batch_size=1' in opts
    assert 'train_dataloader.persistent_workers=False' in opts
    assert 'val_dataloader.num_workers=0' in opts


def test_demo_overrides_name_existing_keys():
    from pointdistiller_mm.utils import check_cfg_options
    for config in (TEACHER, DISTILL, DEMO_DISTILL):
        cfg = Config.fromfile(config)
        for sched in (FULL, QUICK):
            opts = schedule_overrides(cfg, sched)
            check_cfg_options(cfg, {o.split('=')[0]: None for o in opts})


def test_seed_option_and_fingerprint(tmp_path):
    cfg = Config.fromfile(TEACHER)
    opts, allow_new = seed_options(TEACHER, 7)
    assert opts == ['randomness.seed=7']
    assert allow_new == ('randomness' not in cfg)
    a = config_fingerprint(TEACHER, str(tmp_path), ['train_cfg.max_epochs=2'])
    b = config_fingerprint(TEACHER, str(tmp_path), ['train_cfg.max_epochs=2'])
    c = config_fingerprint(TEACHER, str(tmp_path), ['train_cfg.max_epochs=3'])
    d = config_fingerprint(TEACHER, str(tmp_path / 'other'),
                           ['train_cfg.max_epochs=2'])
    assert a == b and len({a, c, d}) == 3
    assert not dataset_ready(str(tmp_path))


# ------------------------------------------------------------ stage runner
def test_progress_line_rendering():
    assert progress_line('distill', TRAIN_LINE, max_epochs=12) == (
        '[distill] epoch 3/12 iter 4/16  loss 9.7694  distill 6.3544  '
        '3.42s/it  eta 0:02:51')
    val = ('Epoch(val) [3][32/32]  ' + '  '.join(
        f'{k}: {v}' for k, v in _metrics(50, 20, 11, 60, 30, 15).items()))
    assert progress_line('teacher', val) == (
        '[teacher] val epoch 3: moderate AP40 mAP 3D 27.00  BEV 35.00  '
        '(Car 3D 50.00)')
    assert progress_line('x', 'Epoch(val) [3][10/32]  eta: 0:00:03') is None
    assert format_seconds(42) == '42.0s'
    assert format_seconds(75.3) == '1m15s'
    assert format_seconds(3725) == '1h02m05s'


def test_run_stage_streams_progress_and_logs(tmp_path):
    script = ('import time\n'
              f'print({TRAIN_LINE!r}, flush=True)\n'
              'print("noise line", flush=True)\n'
              'time.sleep(1.6)\n'
              'print("Epoch(val) [3][32/32]  ' + '  '.join(
                  f'{k}: {v}' for k, v in
                  _metrics(50, 20, 11, 60, 30, 15).items()) + '")\n')
    lines = []
    res = run_stage('toy', [sys.executable, '-c', script],
                    str(tmp_path / 'logs' / 'toy.log'), heartbeat_s=0.5,
                    max_epochs=12, echo=lines.append)
    assert res.returncode == 0 and res.seconds > 1.5
    assert lines[0].startswith('[toy] $ python -c ')
    assert lines[1].startswith('[toy] epoch 3/12 iter 4/16  loss 9.7694')
    assert any(line.startswith('[toy] ... ') and 'noise line' in line
               for line in lines)  # heartbeat while quiet
    assert lines[-2].startswith('[toy] val epoch 3: moderate AP40 mAP 3D '
                                '27.00')
    assert lines[-1].startswith('[toy] done in ')
    log = (tmp_path / 'logs' / 'toy.log').read_text()
    assert 'noise line' in log and 'Epoch(train)' in log
    assert res.val[3][kitti_key('Car')] == 50.0


def test_run_stage_failure_raises_with_tail(tmp_path):
    with pytest.raises(StageError) as err:
        run_stage('bad', [sys.executable, '-c',
                          'print("about to fail"); raise SystemExit(3)'],
                  str(tmp_path / 'bad.log'), echo=lambda s: None)
    assert 'exit 3' in str(err.value) and 'about to fail' in str(err.value)
    res = run_stage('bad', [sys.executable, '-c', 'raise SystemExit(2)'],
                    str(tmp_path / 'bad2.log'), echo=lambda s: None,
                    check=False)
    assert res.returncode == 2


def test_subprocess_env_puts_repo_first(monkeypatch):
    monkeypatch.setenv('PYTHONPATH', '/somewhere')
    env = stages_mod.subprocess_env('/repo')
    assert env['PYTHONPATH'].split(':') == ['/repo', '/somewhere']


# -------------------------------------------------------------------- plots
def test_curves_render_pngs(tmp_path):
    plain = [dict(iter=i, loss=3.0 - 0.1 * i) for i in range(1, 6)]
    kd = [{'iter': i, 'loss': 5.0 - 0.2 * i, 'student.loss_cls': 1.0,
           'student.loss_bbox': 1.5 - 0.1 * i, 'distill.loss_pillars':
           2.5 - 0.1 * i} for i in range(1, 6)]
    plot_loss_curves({'student': plain, 'student + KD': kd},
                     str(tmp_path / 'loss.png'))
    val = [dict(_metrics(e, e, e, 2 * e, 2 * e, 2 * e), step=e)
           for e in (3, 6)]
    pts = plot_map_curves({'student': val}, str(tmp_path / 'map.png'))
    assert pts == {'student': [(3, 3.0, 6.0), (6, 6.0, 12.0)]}
    for name in ('loss.png', 'map.png'):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


# --------------------------------------------------------------- importance
VOXEL_LAYER = dict(max_num_points=4, voxel_size=[1.0, 1.0, 4.0],
                   point_cloud_range=[0, -2, -3, 4, 2, 1],
                   max_voxels=(16, 16))


def _tiny_scan():
    return np.array([
        [0.5, 0.5, 0.0, 0.1],   # pillar (y=2, x=0): 3 points
        [0.2, 0.7, -1.0, 0.1],
        [0.9, 0.1, 0.5, 0.1],
        [2.5, -1.5, 0.0, 0.1],  # pillar (y=0, x=2): 1 point
        [3.5, 1.5, 0.0, 0.1],   # pillar (y=3, x=3): 5 points, capped at 4
        [3.6, 1.4, 0.1, 0.1],
        [3.7, 1.3, 0.2, 0.1],
        [3.8, 1.2, 0.3, 0.1],
        [3.9, 1.1, 0.4, 0.1],
        [9.0, 0.0, 0.0, 0.1],   # outside the range
    ], dtype=np.float32)


def test_pillar_importance_counts_with_the_model_voxelizer():
    imp = pillar_importance(_tiny_scan(), VOXEL_LAYER)
    counts = {(int(y), int(x)): int(n)
              for (_, y, x), n in zip(imp.coors, imp.num_points)}
    assert counts == {(2, 0): 3, (0, 2): 1, (3, 3): 4}
    assert imp.point_score.tolist() == [3, 3, 3, 1, 4, 4, 4, 4, 4, 0]
    assert imp.point_cell[3].tolist() == [0, 2]
    assert imp.point_cell[-1].tolist() == [-1, -1]


def test_importance_picture_renders(tmp_path):
    scan = _tiny_scan()
    imp = pillar_importance(scan, VOXEL_LAYER)
    boxes = np.array([[3.5, 1.5, 0.0, 1.0, 0.6, 1.5, 0.3]])
    out = tmp_path / 'imp.png'
    stats = render_importance_bev(scan, imp, str(out), top_n=2, tau=1.0,
                                  gt_boxes=boxes, gt_labels=['Car'],
                                  title='tiny')
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert stats['num_cells'] == 3 and stats['num_sampled'] == 2
    assert stats['unit'] == 'pillar'
    # phi over the sampled counts (4, 3): e^4 / (e^4 + e^3) = 0.73
    assert (stats['phi50'], stats['phi90']) == (1, 2)
    assert stats['single_point_share'] == pytest.approx(1 / 3)


def test_box_corners_bev():
    c = box_corners_bev(np.array([[1.0, 2.0, 0, 4.0, 2.0, 1.5, 0.0],
                                  [0.0, 0.0, 0, 4.0, 2.0, 1.5,
                                   math.pi / 2]]))
    assert c.shape == (2, 4, 2)
    np.testing.assert_allclose(c[0], [[3, 3], [3, 1], [-1, 1], [-1, 3]])
    np.testing.assert_allclose(c[1], [[-1, 2], [1, 2], [1, -2], [-1, -2]],
                               atol=1e-9)


def test_bev_cell_importance_sums_pillars_at_the_map_stride():
    # 4 x 4 pillar grid, 2 x 2 map (stride 2): pillar (y 2, x 0) -> cell
    # (1, 0), (0, 2) -> (0, 1), (3, 3) -> (1, 1)
    imp = bev_cell_importance(_tiny_scan(), VOXEL_LAYER, (2, 2))
    counts = {(int(y), int(x)): int(n)
              for (_, y, x), n in zip(imp.coors, imp.num_points)}
    assert counts == {(1, 0): 3, (0, 1): 1, (1, 1): 4}
    assert imp.point_score.tolist() == [3, 3, 3, 1, 4, 4, 4, 4, 4, 0]
    assert imp.point_cell[0].tolist() == [1, 0]
    assert imp.point_cell[3].tolist() == [0, 1]
    assert imp.point_cell[-1].tolist() == [-1, -1]
    assert imp.voxel_size[:2] == (2.0, 2.0) and imp.unit == 'BEV cell'
    # two pillars in one cell add up: move the single point next to the
    # 3-point pillar (pillar (y 3, x 1), same cell (1, 0))
    scan = _tiny_scan()
    scan[3, :2] = [1.5, 1.5]
    imp = bev_cell_importance(scan, VOXEL_LAYER, (2, 2))
    counts = {(int(y), int(x)): int(n)
              for (_, y, x), n in zip(imp.coors, imp.num_points)}
    assert counts == {(1, 0): 4, (1, 1): 4}
    assert imp.point_score[:4].tolist() == [4, 4, 4, 4]


def test_demo_recipe_picture_uses_its_bev_map():
    cfg = Config.fromfile(DEMO_DISTILL)
    name, term = pointdistiller_term(cfg.model)
    assert term['rows']['type'] == 'BEVRows'
    recorder = cfg.model.student_recorders[term['student']]
    scan = _tiny_scan() * np.array([8, 8, 1, 1], dtype=np.float32)
    # backbone stage 1 of the 128 x 128 pillar grid: stride 2
    assert recorded_map_shape(cfg.model, recorder, scan) == (64, 64)


def test_recorded_map_shape_of_an_mvx_detector():
    # nuScenes PointPillars (MVXFasterRCNN): FPN level 0 of a 128 x 128 grid
    cfg = Config.fromfile('configs/demo/pointpillars_nus_2x_pointdistiller.py')
    recorder = cfg.model.student_recorders.fpn0
    scan = _tiny_scan() * np.array([8, 8, 1, 1], dtype=np.float32)
    assert recorded_map_shape(cfg.model, recorder, scan) == (64, 64)


def test_loss_sampling_settings_of_the_demo_recipe():
    cfg = Config.fromfile(DISTILL)
    loss = cfg.model.distill_terms.pillars.loss
    assert loss_sampling_settings(cfg.model) == (loss.num_samples, loss.tau)
    bev = Config.fromfile(DEMO_DISTILL).model
    assert loss_sampling_settings(bev) == (512, 40.0)
    assert loss_sampling_settings(Config.fromfile(TEACHER).model) == (None,
                                                                      None)


# --------------------------------------------------------------- data check
def _write_infos(path, labels_per_frame, categories):
    import pickle
    infos = dict(metainfo=dict(categories=dict(categories)),
                 data_list=[dict(instances=[dict(bbox_label=lbl)
                                            for lbl in labels])
                            for labels in labels_per_frame])
    path.write_bytes(pickle.dumps(infos))


def test_repair_adds_the_missing_dontcare_category(tmp_path):
    import pickle

    from pointdistiller_mm.demo.data_check import repair_ignored_categories
    cats = {'Pedestrian': 0, 'Cyclist': 1, 'Car': 2}
    # val: a DontCare (-1) in frame 0 but not in the last frame
    _write_infos(tmp_path / 'kitti_infos_val.pkl', [[2, -1], [0]], cats)
    # train: no -1 labels; test: -1 already mapped
    _write_infos(tmp_path / 'kitti_infos_train.pkl', [[2], [1]], cats)
    _write_infos(tmp_path / 'kitti_infos_test.pkl', [[-1]],
                 dict(cats, DontCare=-1))
    changed = repair_ignored_categories(str(tmp_path))
    assert changed == [str(tmp_path / 'kitti_infos_val.pkl')]
    val = pickle.loads((tmp_path / 'kitti_infos_val.pkl').read_bytes())
    assert val['metainfo']['categories'] == dict(cats, DontCare=-1)
    assert repair_ignored_categories(str(tmp_path)) == []  # idempotent


# ----------------------------------------------- teacher and student stages
def test_stage_threads_split_the_cores():
    from pointdistiller_mm.demo.pipeline import stage_threads
    from pointdistiller_mm.demo.settings import demo_settings
    on = demo_settings()
    assert on.parallel
    assert stage_threads(on, cpus=2) == (1, 1)
    # the distillation run (the slower one) gets the larger half
    assert stage_threads(on, cpus=3) == (2, 1)
    assert stage_threads(on, cpus=8) == (4, 4)
    assert stage_threads(on, cpus=1) is None
    assert stage_threads(demo_settings(parallel=False), cpus=8) is None


def _fake_demo(tmp_path, monkeypatch, parallel=True):
    import threading
    import time

    from pointdistiller_mm.demo.pipeline import Demo
    from pointdistiller_mm.demo.settings import demo_settings
    calls, lock = [], threading.Lock()

    def train(self, name, config, extra=None, reuse=False, threads=None):
        start = time.monotonic()
        time.sleep(0.5)
        with lock:
            calls.append((name, threads, extra, start, time.monotonic()))
        return name

    monkeypatch.setattr(Demo, 'train', train)
    monkeypatch.setattr('os.cpu_count', lambda: 2)
    settings = demo_settings(work_dir=str(tmp_path), parallel=parallel)
    return Demo(settings, echo=lambda line: None), settings, calls


class _Teacher:
    checkpoint = 'work_dirs/t/epoch_8.pth'


def test_the_two_students_train_side_by_side(tmp_path, monkeypatch):
    from pointdistiller_mm.demo.pipeline import train_students
    demo, settings, calls = _fake_demo(tmp_path, monkeypatch)
    assert train_students(demo, settings, _Teacher()) == ('student',
                                                          'distill')
    runs = {c[0]: c for c in calls}
    assert runs['distill'][1] == 1 and runs['student'][1] == 1
    # one thread each: the distillation run's teacher gets its own thread
    assert runs['distill'][2] == [
        f'model.teacher.checkpoint={demo._arg(_Teacher.checkpoint)}',
        'model.concurrent_teacher=True']
    # the two runs overlap in time
    assert runs['distill'][3] < runs['student'][4]
    assert runs['student'][3] < runs['distill'][4]


def test_sequential_students_use_all_cores(tmp_path, monkeypatch):
    from pointdistiller_mm.demo.pipeline import train_students
    demo, settings, calls = _fake_demo(tmp_path, monkeypatch,
                                       parallel=False)
    train_students(demo, settings, _Teacher())
    assert [(c[0], c[1]) for c in calls] == [('student', None),
                                             ('distill', None)]
    assert calls[0][4] <= calls[1][3]
    # all cores for one run: its teacher stays in the run's thread
    assert calls[1][2] == [
        f'model.teacher.checkpoint={demo._arg(_Teacher.checkpoint)}']
