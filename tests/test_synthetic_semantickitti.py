"""Synthetic SemanticKITTI-format data: layout, labels against geometry,
determinism, mmdet3d's converter, dataset pipeline and metric."""
import hashlib
import math
from pathlib import Path

import mmengine
import numpy as np
import pytest
import torch

from pointdistiller_mm.datasets.lidar_sim import (Box, Foliage,
                                                  LidarSimulator,
                                                  VerticalCylinder)
from pointdistiller_mm.datasets.synthetic_semantickitti import (
    RAW_LABELS, SEMANTICKITTI_CLASSES, converter_splits,
    create_demo_semantickitti, simulate_semantic_frame)

CONFIG = 'configs/demo/_base_/semantickitti_demo.py'
THINGS = {10, 11, 15, 18, 20, 30, 31}
MARGIN = 0.06  # 6 sigma of the simulated range noise


def _frame(seed: int):
    return simulate_semantic_frame(np.random.default_rng(seed),
                                   simulator=LidarSimulator())


@pytest.fixture(scope='module')
def frames():
    return [_frame(s) for s in (0, 1, 2)]


def _in_box(pts: np.ndarray, center, size, yaw: float,
            margin: float = MARGIN) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    d = pts[:, :3] - np.asarray(center, float)
    local = np.stack(
        [c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)
    return (np.abs(local) <= 0.5 * np.asarray(size) + margin).all(-1)


def _inside_any(pts, prims) -> np.ndarray:
    ok = np.zeros(len(pts), bool)
    for p in prims:
        if isinstance(p, Box):
            ok |= _in_box(pts, p.center, p.size, p.yaw)
        elif isinstance(p, VerticalCylinder):
            r = np.hypot(pts[:, 0] - p.center_xy[0],
                         pts[:, 1] - p.center_xy[1])
            ok |= (r <= p.radius + MARGIN) & (pts[:, 2] >= p.z_min - MARGIN) \
                & (pts[:, 2] <= p.z_max + MARGIN)
        elif isinstance(p, Foliage):
            rel = (pts[:, :3] - np.asarray(p.center)) / (
                np.asarray(p.radii) + MARGIN)
            ok |= (rel**2).sum(-1) <= 1.0
        else:
            raise TypeError(type(p))
    return ok


def _tagged(scene, *tags):
    return [
        p for p, t in zip(scene.background, scene.background_tags)
        if t in tags
    ]


# ---------------------------------------------------------------------------
# labels against geometry
# ---------------------------------------------------------------------------


def test_prim_index_agrees_with_owner(frames):
    for f in frames:
        prims = f.scene.primitives()
        owners = np.array([p.owner for p in prims])
        assert f.scan.prim_index.dtype == np.int32
        np.testing.assert_array_equal(owners[f.scan.prim_index], f.scan.owner)


def test_object_labels_lie_in_object_boxes(frames):
    for f in frames:
        pts, sem, inst = f.scan.points, f.semantic, f.instance
        assert sem.dtype == np.uint16 and inst.dtype == np.uint16
        cars = [o for o in f.scene.objects if o.name in ('Car', 'Van')]
        assert cars
        in_car = np.zeros(len(pts), bool)
        for o in cars:
            x, y, zb, l, w, h, yaw = o.box
            in_car |= _in_box(pts, (x, y, zb + 0.5 * h), (l, w, h), yaw)
        assert (sem == RAW_LABELS['car']).sum() > 100
        assert in_car[sem == RAW_LABELS['car']].all()
        # every thing instance: one class, inside one object's box
        for i in np.unique(inst[inst > 0]):
            m = inst == i
            labs = np.unique(sem[m])
            assert len(labs) == 1 and int(labs[0]) in THINGS
            hits = [
                _in_box(pts[m], (x, y, zb + 0.5 * h), (l, w, h), yaw).all()
                for x, y, zb, l, w, h, yaw in (o.box for o in f.scene.objects)
            ]
            assert sum(hits) >= 1
        assert (inst[np.isin(sem, list(THINGS), invert=True)] == 0).all()


def test_background_labels_lie_on_their_primitives(frames):
    checks = {
        'building': ('facade', ),
        'fence': ('fence', ),
        'pole': ('pole', ),
        'trunk': ('trunk', ),
        'traffic-sign': ('sign', ),
        'vegetation': ('crown', 'bush', 'far_vegetation', 'hedge'),
        'sidewalk': ('sidewalk', ),
    }
    seen = set()
    for f in frames:
        pts, sem = f.scan.points, f.semantic
        ground_z = f.scene.ground.height(pts[:, 0], pts[:, 1])
        for name, tags in checks.items():
            m = sem == RAW_LABELS[name]
            if name == 'sidewalk':  # boxes or the ground seams under them
                m &= np.abs(pts[:, 2] - ground_z) > MARGIN
            if m.any():
                seen.add(name)
                assert _inside_any(pts[m], _tagged(f.scene, *tags)).all(), name
        # the ground classes lie on the ground plane, road on the road
        lay = f.scene.layout
        for name in ('road', 'parking', 'terrain'):
            m = sem == RAW_LABELS[name]
            assert (np.abs(pts[m, 2] - ground_z[m]) < MARGIN).all(), name
            if name != 'parking':
                assert m.sum() > 1000, name
        _, q = lay.to_sq(pts[:, 0], pts[:, 1])
        road = np.isin(sem, [RAW_LABELS['road'], RAW_LABELS['parking']])
        assert (np.abs(q[road]) <= lay.half_width + 1e-6).all()
        terrain = sem == RAW_LABELS['terrain']
        assert (np.abs(q[terrain]) > lay.half_width).all()
    assert seen == set(checks), set(checks) - seen


def test_cyclist_is_bicycle_and_bicyclist():
    for seed in range(20):
        f = _frame(seed)
        cyc = [o for o in f.scene.objects if o.name == 'Cyclist']
        if not cyc:
            continue
        o = cyc[0]
        start = 1 + len(f.scene.background) + sum(
            len(p.parts) for p in f.scene.objects[:f.scene.objects.index(o)])
        for k, lab in enumerate(('bicycle', 'bicyclist', 'bicyclist',
                                 'bicyclist')):
            m = f.scan.prim_index == start + k
            assert (f.semantic[m] == RAW_LABELS[lab]).all()
        return
    pytest.fail('no cyclist in 20 scenes')


# ---------------------------------------------------------------------------
# determinism
# ---------------------------------------------------------------------------


def test_same_seed_same_frame():
    a, b, c = _frame(7), _frame(7), _frame(8)
    np.testing.assert_array_equal(a.scan.points, b.scan.points)
    np.testing.assert_array_equal(a.label_words(), b.label_words())
    assert len(a.scan.points) != len(c.scan.points) or \
        not np.array_equal(a.scan.points, c.scan.points)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((root / 'sequences').rglob('*')):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes(tmp_path):
    for name in ('a', 'b'):
        create_demo_semantickitti(str(tmp_path / name), num_train=1,
                                  num_val=1, seed=3, convert=False,
                                  verbose=False)
    create_demo_semantickitti(str(tmp_path / 'c'), num_train=1, num_val=1,
                              seed=4, convert=False, verbose=False)
    assert _digest(tmp_path / 'a') == _digest(tmp_path / 'b')
    assert _digest(tmp_path / 'a') != _digest(tmp_path / 'c')


# ---------------------------------------------------------------------------
# layout, converter
# ---------------------------------------------------------------------------


def test_layout_and_dtypes(tiny_semantickitti):
    root = tiny_semantickitti
    splits = converter_splits()
    assert splits['val'] == [8] and 8 not in splits['train']
    valid = set(RAW_LABELS.values())
    for seq in ('00', '01', '02', '08'):
        vel = sorted((root / 'sequences' / seq / 'velodyne').glob('*.bin'))
        assert vel
        for v in vel:
            lab = v.parent.parent / 'labels' / (v.stem + '.label')
            pts = np.fromfile(v, dtype=np.float32).reshape(-1, 4)
            words = np.fromfile(lab, dtype=np.uint32)
            assert len(words) == len(pts) > 50000
            assert np.isfinite(pts).all()
            assert 0 <= pts[:, 3].min() and pts[:, 3].max() <= 1
            r = np.linalg.norm(pts[:, :2], axis=1)
            azimuth = np.arctan2(pts[:, 1], pts[:, 0])
            assert r.max() > 60
            assert np.histogram(azimuth, 8)[0].min() > 0  # 360 deg
            sem, inst = words & 0xFFFF, words >> 16
            assert set(np.unique(sem).tolist()) <= valid
            assert (inst[np.isin(sem, list(THINGS), invert=True)] == 0).all()
    assert not (root / 'sequences' / '03').exists()


def test_converter_infos_list_the_frames_on_disk(tiny_semantickitti):
    root = tiny_semantickitti
    train = mmengine.load(root / 'semantickitti_infos_train.pkl')
    val = mmengine.load(root / 'semantickitti_infos_val.pkl')
    test = mmengine.load(root / 'semantickitti_infos_test.pkl')
    assert train['metainfo'] == dict(DATASET='SemanticKITTI')
    paths = [d['lidar_points']['lidar_path'] for d in train['data_list']]
    assert paths == [f'sequences/{s}/velodyne/000000.bin'
                     for s in ('00', '01', '02')]
    assert [d['pts_semantic_mask_path'] for d in val['data_list']] == [
        'sequences/08/labels/000000.label', 'sequences/08/labels/000001.label'
    ]
    assert all(d['lidar_points']['num_pts_feats'] == 4
               for d in train['data_list'] + val['data_list'])
    assert test['data_list'] == []


def test_refuses_bad_requests(tmp_path):
    (tmp_path / 'x').mkdir()
    (tmp_path / 'x' / 'file').write_text('')
    with pytest.raises(FileExistsError, match='overwrite'):
        create_demo_semantickitti(str(tmp_path / 'x'), 1, 1, verbose=False)
    with pytest.raises(ValueError, match='num_val >= 1'):
        create_demo_semantickitti(str(tmp_path / 'y'), 1, 0, verbose=False)


# ---------------------------------------------------------------------------
# mmdet3d's dataset, pipeline and metric
# ---------------------------------------------------------------------------


def _dataset(root: Path, split: str):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    import pointdistiller_mm  # noqa: F401
    from mmdet3d.registry import DATASETS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(CONFIG)
    assert cfg.data_root == 'data/demo_semantickitti/'
    assert cfg.train_dataloader.batch_size == 2
    dcfg = cfg[f'{split}_dataloader'].dataset.copy()
    assert dcfg.data_root == cfg.data_root
    dcfg.data_root = str(root) + '/'
    return DATASETS.build(dcfg), cfg


def test_pipeline_maps_raw_labels(tiny_semantickitti):
    for split in ('train', 'val'):
        ds, cfg = _dataset(tiny_semantickitti, split)
        assert tuple(ds.metainfo['classes']) == SEMANTICKITTI_CLASSES
        infos = mmengine.load(tiny_semantickitti /
                              f'semantickitti_infos_{split}.pkl')
        assert len(ds) == len(infos['data_list'])
        present = set()
        lut = np.full(260, -1)
        for raw, idx in cfg.labels_map.items():
            lut[raw] = idx
        for i, info in enumerate(infos['data_list']):
            sample = ds[i]
            mask = np.asarray(sample['data_samples'].gt_pts_seg.
                              pts_semantic_mask)
            raw = np.fromfile(tiny_semantickitti /
                              info['pts_semantic_mask_path'],
                              dtype=np.uint32) & 0xFFFF
            n = len(raw)
            if split == 'val':  # no augmentation: same order
                assert sample['inputs']['points'].shape == (n, 4)
                np.testing.assert_array_equal(mask, lut[raw])
            else:  # flips / rotation keep the label multiset
                np.testing.assert_array_equal(np.bincount(mask, minlength=20),
                                              np.bincount(lut[raw],
                                                          minlength=20))
            assert mask.min() >= 0 and mask.max() <= 19
            present |= set(np.unique(mask).tolist())
        names = {SEMANTICKITTI_CLASSES[i] for i in present if i < 19}
        assert {'car', 'road', 'sidewalk', 'building', 'fence', 'vegetation',
                'trunck', 'terrian', 'pole'} <= names, names
        assert 19 in present  # other-object is ignored


@pytest.mark.filterwarnings('ignore::RuntimeWarning')  # nan IoU: absent
def test_segmetric_ground_truth_scores_100(tiny_semantickitti):
    from mmdet3d.registry import METRICS
    ds, cfg = _dataset(tiny_semantickitti, 'val')
    metric = METRICS.build(cfg.val_evaluator)
    metric.dataset_meta = ds.metainfo
    wrong = METRICS.build(cfg.val_evaluator)
    wrong.dataset_meta = ds.metainfo
    present = set()
    for i in range(len(ds)):
        sample = ds[i]['data_samples']
        gt = np.asarray(sample.gt_pts_seg.pts_semantic_mask)
        present |= set(np.unique(gt[gt < 19]).tolist())
        metric.process([], [
            dict(pred_pts_seg=dict(pts_semantic_mask=torch.as_tensor(gt)),
                 eval_ann_info=sample.eval_ann_info)
        ])
        bad = gt.copy()
        bad[gt == 0] = 8  # every car predicted as road
        wrong.process([], [
            dict(pred_pts_seg=dict(pts_semantic_mask=torch.as_tensor(bad)),
                 eval_ann_info=sample.eval_ann_info)
        ])
    res = metric.compute_metrics(metric.results)
    assert res['miou'] == pytest.approx(1.0)
    for i, name in enumerate(SEMANTICKITTI_CLASSES):
        if i in present:
            assert res[name] == pytest.approx(1.0), name
        else:
            assert math.isnan(res[name]), name
    res_bad = wrong.compute_metrics(wrong.results)
    assert res_bad['car'] == 0.0 and res_bad['road'] < 1.0
    assert res_bad['miou'] < 1.0


def test_class_shares_resemble_semantickitti(tiny_semantickitti):
    counts = np.zeros(1 << 16, np.int64)
    for lab in (tiny_semantickitti / 'sequences').rglob('*.label'):
        counts += np.bincount(np.fromfile(lab, np.uint32) & 0xFFFF,
                              minlength=1 << 16)
    share = counts / counts.sum()
    big = sum(share[RAW_LABELS[k]] for k in ('road', 'sidewalk', 'building',
                                             'vegetation', 'terrain'))
    assert big > 0.6
    for k in ('person', 'bicyclist', 'bicycle', 'motorcycle',
              'traffic-sign'):
        assert share[RAW_LABELS[k]] < 0.01, k


# ---------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------


def test_cli_defaults_per_dataset():
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'create_demo_data',
        Path(__file__).resolve().parents[1] / 'tools' / 'create_demo_data.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    k = mod.parse_args([])
    assert (k.dataset, k.out_dir, k.num_train, k.num_val, k.num_test,
            k.extra_tag) == ('kitti', 'data/demo_kitti', 64, 128, 4, 'kitti')
    s = mod.parse_args(['--dataset', 'semantickitti', '--num-val', '3'])
    assert (s.out_dir, s.num_train, s.num_val, s.num_test, s.extra_tag) == (
        'data/demo_semantickitti', 40, 3, 0, 'semantickitti')
    with pytest.raises(SystemExit):
        mod.parse_args(['--dataset', 'semantickitti', '--image-mode',
                        'blank'])


def test_cli_semantickitti(tmp_path):
    from tests.conftest import run_tool
    out = tmp_path / 'sk'
    proc = run_tool([
        'PYTHON', 'tools/create_demo_data.py', '--dataset', 'semantickitti',
        '--out-dir',
        str(out), '--num-train', '1', '--num-val', '1', '--seed', '5'
    ])
    assert 'synthetic SemanticKITTI data set' in proc.stdout
    assert 'points per scan' in proc.stdout and 'road' in proc.stdout
    assert (out / 'sequences' / '00' / 'labels' / '000000.label').exists()
    assert (out / 'sequences' / '08' / 'labels' / '000000.label').exists()
    assert (out / 'semantickitti_infos_val.pkl').exists()
