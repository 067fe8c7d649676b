"""Tests of the LiDAR simulator and the synthetic KITTI-format generator."""
import importlib.util
import math
import sys
from pathlib import Path

import mmengine
import numpy as np
import pytest

from pointdistiller_mm.datasets import (
    Box, GroundPlane, KittiCalibration, LidarConfig, LidarSimulator, Scene,
    SceneConfig, SceneObject, create_demo_kitti, label_scene,
    load_mmdet3d_kitti_converters, object_primitives, simulate_frame,
    write_frame)

REPO = Path(__file__).resolve().parents[1]
H = 1.73  # sensor height


def _exact_lidar(**kw) -> LidarConfig:
    """A sensor without noise, dropout or random phase."""
    base = dict(random_azimuth_phase=False,
                range_noise_std=0.0,
                dropout=0.0,
                detect_range_ref=1e6,
                intensity_noise_std=0.0)
    base.update(kw)
    return LidarConfig(**base)


def _load_voxel_stats():
    path = REPO / 'tools' / 'analysis' / 'voxel_stats.py'
    spec = importlib.util.spec_from_file_location('pdm_voxel_stats', path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def _files(root: Path) -> dict:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob('*')) if p.is_file()
    }


# --------------------------------------------------------------------------
# simulator geometry
# --------------------------------------------------------------------------


def test_ground_rings_match_beam_geometry():
    """Flat ground: every return lies on z = -H and each beam's ring has
    radius H / tan(-elevation)."""
    cfg = _exact_lidar(azimuth_step_deg=1.0, min_range=0.5)
    scan = LidarSimulator(cfg).scan([GroundPlane(z0=-H)],
                                    np.random.default_rng(0))
    elev = cfg.elevations()
    down = elev[elev < 0]
    slant = H / np.sin(np.radians(-down))
    reach = down[slant <= cfg.max_range]  # shallow beams die at 120 m
    assert 50 < len(reach) < 64
    assert len(scan.points) == len(reach) * 360
    np.testing.assert_allclose(scan.points[:, 2], -H, atol=1e-5)
    radius = np.hypot(scan.points[:, 0], scan.points[:, 1])
    lowest = H / math.tan(math.radians(24.8))  # 3.75 m
    assert radius.min() == pytest.approx(lowest, abs=1e-3)
    expected = sorted(H / np.tan(np.radians(-reach)))
    np.testing.assert_allclose(np.unique(radius.round(3)),
                               np.round(expected, 3),
                               atol=2e-3)


def test_box_hit_distance_and_occlusion():
    """A box face 10 m ahead is hit at 10 m; a box behind it is hidden."""
    cfg = _exact_lidar(azimuth_step_deg=0.2)
    sim = LidarSimulator(cfg)
    ground = GroundPlane(z0=-H)
    car_a = np.array([12.0, 0.0, -H, 4.0, 1.8, 1.5, 0.0])
    car_b = np.array([19.0, 0.4, -H, 4.0, 1.8, 1.5, 0.0])
    near = Box((12.0, 0.0, -H + 0.75), (4.0, 1.8, 1.5), 0.0, owner=0)
    scan = sim.scan([ground, near], np.random.default_rng(0))
    pts = scan.points_of(0)
    # rays through the front face (x = 10, below the roof at z = -0.23)
    front = (np.abs(np.arctan2(pts[:, 1], pts[:, 0]))
             < math.radians(3)) & (pts[:, 2] < -0.3)
    assert front.sum() > 50
    np.testing.assert_allclose(pts[front, 0], 10.0, atol=1e-4)
    roof = (pts[:, 0] > 10.01) & (np.abs(pts[:, 1]) < 0.89)
    assert roof.sum() > 20
    np.testing.assert_allclose(pts[roof, 2], -H + 1.5, atol=1e-4)

    def scene(objs):
        return Scene(ground, [
            SceneObject('Car', box, i,
                        object_primitives('car', box, 0.5, i, 0.0))
            for i, box in objs
        ], [])

    both = scene([(0, car_a), (1, car_b)])
    alone = scene([(1, car_b)])
    scan_both = sim.scan(both.primitives(), np.random.default_rng(0))
    scan_alone = sim.scan(alone.primitives(), np.random.default_rng(0))
    n_both = len(scan_both.points_of(1))
    n_alone = len(scan_alone.points_of(1))
    assert n_alone > 100
    assert n_both < 0.5 * n_alone
    # the occluder changes what is visible, not what would be hit
    assert scan_both.rays_unoccluded[1] == scan_alone.rays_unoccluded[1]
    assert scan_both.rays_visible[1] < scan_both.rays_unoccluded[1]
    assert scan_both.rays_visible[0] == scan_both.rays_unoccluded[0]

    calib = KittiCalibration()
    labels = {
        lab.owner: lab
        for lab in label_scene(both, scan_both, calib, SceneConfig())
    }
    assert labels[0].occluded == 0
    assert labels[1].occluded >= 1
    alone_labels = label_scene(alone, scan_alone, calib, SceneConfig())
    assert alone_labels[0].occluded == 0


# --------------------------------------------------------------------------
# labels and calibration
# --------------------------------------------------------------------------


def test_labels_consistent_with_calibration(tmp_path):
    """Parse the written frame with mmdet3d's converter code and check boxes,
    2D boxes and alpha against the calibration and the points."""
    from mmdet3d.structures import points_cam2img
    from mmdet3d.structures.ops import box_np_ops

    calib = KittiCalibration()
    scene, scan, labels = simulate_frame(np.random.default_rng(5))
    write_frame(str(tmp_path), 0, scan.points, calib, labels)
    conv = load_mmdet3d_kitti_converters()
    info = conv.kitti_converter.get_kitti_image_info(str(tmp_path),
                                                     training=True,
                                                     velodyne=True,
                                                     calib=True,
                                                     image_ids=[0],
                                                     relative_path=False)[0]
    annos, cal = info['annos'], info['calib']
    assert tuple(info['image']['image_shape']) == (375, 1242)
    names = list(annos['name'])
    assert names == [lab.name for lab in labels]
    keep = [i for i, n in enumerate(names) if n != 'DontCare']
    assert len(keep) >= 3
    cam_boxes = np.concatenate([
        annos['location'][keep], annos['dimensions'][keep],
        annos['rotation_y'][keep, None]
    ], 1)
    lidar_boxes = box_np_ops.box_camera_to_lidar(cam_boxes, cal['R0_rect'],
                                                 cal['Tr_velo_to_cam'])
    in_img = calib.in_image(scan.points[:, :3])
    inside = box_np_ops.points_in_rbbox(scan.points[:, :3], lidar_boxes)
    checked = 0
    for col, i in enumerate(keep):
        lab = labels[i]
        own = (scan.owner == lab.owner) & in_img
        assert own.sum() == lab.num_points > 0
        if lab.num_points >= 20:
            # the object's points are in its label box ...
            assert inside[own, col].mean() > 0.95
            # ... and the box holds (nearly) only them
            assert inside[:, col].sum() <= 1.1 * lab.num_points + 3
            checked += 1
        # 2D box = projection of the 8 camera-frame corners, clipped
        corners = box_np_ops.center_to_corner_box3d(cam_boxes[col:col + 1, :3],
                                                    cam_boxes[col:col + 1,
                                                              3:6],
                                                    cam_boxes[col:col + 1, 6],
                                                    origin=(0.5, 1.0, 0.5),
                                                    axis=1)[0]
        uvd = points_cam2img(corners, cal['P2'], with_depth=True)
        if (uvd[:, 2] > 0.1).all():
            lo = np.clip(uvd[:, :2].min(0), 0, [1241, 374])
            hi = np.clip(uvd[:, :2].max(0), 0, [1241, 374])
            np.testing.assert_allclose(annos['bbox'][i],
                                       np.r_[lo, hi],
                                       atol=0.02)
        x, _, z = annos['location'][i]
        alpha = annos['rotation_y'][i] - math.atan2(x, z)
        alpha = (alpha + math.pi) % (2 * math.pi) - math.pi
        assert annos['alpha'][i] == pytest.approx(alpha, abs=0.011)
    assert checked >= 2
    # difficulty levels come out of the labels as in KITTI
    assert 0 in set(annos['difficulty'][keep])


# --------------------------------------------------------------------------
# data set files
# --------------------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path):
    kw = dict(num_train=2, num_val=1, convert=False, verbose=False)
    create_demo_kitti(str(tmp_path / 'a'), seed=3, **kw)
    create_demo_kitti(str(tmp_path / 'b'), seed=3, **kw)
    create_demo_kitti(str(tmp_path / 'c'), seed=4, **kw)
    a, b, c = (_files(tmp_path / n) for n in 'abc')
    assert 'training/velodyne/000002.bin' in a
    assert 'training/image_2/000000.png' in a
    assert a == b
    assert a['training/velodyne/000000.bin'] != \
        c['training/velodyne/000000.bin']
    with pytest.raises(FileExistsError, match='overwrite'):
        create_demo_kitti(str(tmp_path / 'a'), seed=3, **kw)


def test_worker_processes_write_the_same_bytes(tmp_path):
    """Frames simulated in two worker processes equal the serial ones
    (labels counted and points averaged the same too)."""
    kw = dict(num_train=3, num_val=2, num_test=1, seed=3, convert=False,
              verbose=False, empty_frames=(1, ))
    serial = create_demo_kitti(str(tmp_path / 'a'), workers=1, **kw)
    pooled = create_demo_kitti(str(tmp_path / 'b'), workers=2, **kw)
    a, b = _files(tmp_path / 'a'), _files(tmp_path / 'b')
    # 5 labelled frames x 4 files, 1 test frame x 3, 3 ImageSets lists
    assert len(a) == 5 * 4 + 3 + 3
    assert a == b
    assert serial['labels'] == pooled['labels']
    assert serial['labels']  # some objects were labelled
    assert serial['mean_points'] == pooled['mean_points']


def test_converter_import_keeps_repo_tools(monkeypatch):
    """mmdet3d's converters load although this repo has its own `tools`."""
    monkeypatch.syspath_prepend(str(REPO))
    for k in [k for k in sys.modules if k.split('.')[0] == 'tools']:
        monkeypatch.delitem(sys.modules, k)
    import tools  # this repository's tools folder
    assert any(Path(p) == REPO / 'tools' for p in tools.__path__)
    conv = load_mmdet3d_kitti_converters(reload=True)
    assert '.mim' in conv.kitti_converter.__file__
    assert callable(conv.create_gt_database.create_groundtruth_database)
    assert sys.modules['tools'] is tools
    assert not any(
        k.startswith('tools.dataset_converters') for k in sys.modules)


@pytest.fixture(scope='module')
def demo_root(tmp_path_factory):
    root = tmp_path_factory.mktemp('demo_kitti')
    res = create_demo_kitti(str(root),
                            num_train=4,
                            num_val=2,
                            num_test=1,
                            seed=1,
                            empty_frames=(1, ),
                            verbose=False)
    return root, res


def _label_names(root: Path, idx: int) -> list:
    text = (root / 'training' / 'label_2' / f'{idx:06d}.txt').read_text()
    return [line.split()[0] for line in text.splitlines()]


def test_end_to_end_kitti_dataset(demo_root):
    from mmdet3d.registry import DATASETS
    from mmengine.registry import DefaultScope
    root, res = demo_root
    for key in ('infos_train', 'infos_val', 'infos_trainval', 'infos_test',
                'dbinfos_train'):
        assert Path(res[key]).is_file(), key
    infos = mmengine.load(res['infos_train'])
    assert infos['metainfo']['info_version'] == '1.1'
    assert len(infos['data_list']) == 4
    assert len(mmengine.load(res['infos_test'])['data_list']) == 1
    # the empty scan went through the converter
    assert (root / 'training' / 'velodyne' / '000001.bin').stat().st_size == 0
    assert (root / 'training' / 'velodyne_reduced' /
            '000001.bin').stat().st_size == 0
    assert set(_label_names(root, 1)) <= {'DontCare'}

    classes = ('Pedestrian', 'Cyclist', 'Car')
    pipeline = [
        dict(type='LoadPointsFromFile',
             coord_type='LIDAR',
             load_dim=4,
             use_dim=4),
        dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True)
    ]
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        for split, ids in (('train', range(4)), ('val', range(4, 6))):
            ds = DATASETS.build(
                dict(type='KittiDataset',
                     data_root=str(root),
                     ann_file=f'kitti_infos_{split}.pkl',
                     data_prefix=dict(pts='training/velodyne_reduced'),
                     pipeline=pipeline,
                     metainfo=dict(classes=classes),
                     modality=dict(use_lidar=True, use_camera=False),
                     test_mode=False,
                     filter_empty_gt=False))
            assert len(ds) == len(ids)
            for k, idx in enumerate(ids):
                sample = ds.pipeline(ds.get_data_info(k))
                expected = sum(n in classes for n in _label_names(root, idx))
                assert len(sample['gt_labels_3d']) == expected
                assert sample['points'].shape[1] == 4
            if split == 'train':
                assert sum(
                    len(ds.get_data_info(k)['ann_info']['gt_labels_3d'])
                    for k in range(4)) > 0
    db = mmengine.load(res['dbinfos_train'])
    n_db = sum(len(v) for v in db.values())
    n_labels = sum(n != 'DontCare' for i in range(4)
                   for n in _label_names(root, i))
    assert n_db == n_labels


def test_voxel_stats(demo_root):
    vs = _load_voxel_stats()
    pts = np.array([[1.0, 0.0, -1.0, 0.1], [1.01, 0.01, -1.5, 0.1],
                    [1.02, 0.02, 0.5, 0.1], [10.0, 5.0, -1.0, 0.1]],
                   dtype=np.float32)
    pillars = vs.voxel_stats(pts, vs.SETTINGS[0])
    assert pillars == dict(voxels=2, share_1=0.5, share_le2=0.5, mean=2.0)
    fine = vs.voxel_stats(pts, vs.SETTINGS[1])
    assert fine['voxels'] == 4 and fine['share_1'] == 1.0
    root, _ = demo_root
    stats = vs.dataset_voxel_stats(str(root), 'train')
    assert stats['frames'] == 4 and stats['empty_scans'] == 1
    assert 8000 < stats['points'] < 30000
    assert 1000 < stats['PointPillars 0.16x0.16x4']['voxels'] < 8000
    assert 'real KITTI' in vs.format_table(stats)


def test_empty_split_is_refused_before_conversion(tmp_path):
    with pytest.raises(ValueError, match='num_test >= 1'):
        create_demo_kitti(str(tmp_path),
                          num_train=1,
                          num_val=1,
                          num_test=0,
                          verbose=False)
    assert not any(tmp_path.iterdir())
