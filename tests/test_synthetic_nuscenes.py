"""Synthetic nuScenes data: devkit tables, mmdet3d's converter, dataset and
metric."""
import json

import numpy as np
import pytest

from pointdistiller_mm.datasets.synthetic_nuscenes import (
    NUS_CLASSES, check_nuscenes_metric, create_demo_nuscenes, scene_names)

CLASSES = ('car', 'truck', 'trailer', 'bus', 'construction_vehicle',
           'bicycle', 'motorcycle', 'pedestrian', 'traffic_cone', 'barrier')


def _tables(root):
    return {
        p.stem: json.loads(p.read_text())
        for p in (root / 'v1.0-mini').glob('*.json')
    }


def test_tables_resolve_and_chain(tiny_nuscenes):
    t = _tables(tiny_nuscenes)
    assert set(t) == {
        'category', 'attribute', 'visibility', 'instance', 'sensor',
        'calibrated_sensor', 'ego_pose', 'log', 'scene', 'sample',
        'sample_data', 'sample_annotation', 'map'
    }
    tok = {k: {r['token']: r for r in v} for k, v in t.items()}
    train, val = scene_names('v1.0-mini')
    assert [s['name'] for s in t['scene']] == train[:2] + val[:2]
    for sc in t['scene']:
        assert sc['log_token'] in tok['log']
        # the sample chain: first -> next ... -> last, 2 Hz timestamps
        s = tok['sample'][sc['first_sample_token']]
        assert s['prev'] == ''
        n, stamps = 1, [s['timestamp']]
        while s['next']:
            nxt = tok['sample'][s['next']]
            assert nxt['prev'] == s['token']
            assert nxt['scene_token'] == sc['token']
            s = nxt
            n += 1
            stamps.append(s['timestamp'])
        assert s['token'] == sc['last_sample_token'] and n == 4
        assert np.allclose(np.diff(stamps), 500000, atol=1)
    # LiDAR sample_data: one chain per scene, keyframes every 2nd record,
    # the ego moves between them
    lidar = [
        r for r in t['sample_data']
        if tok['sensor'][tok['calibrated_sensor'][
            r['calibrated_sensor_token']]['sensor_token']]['channel'] ==
        'LIDAR_TOP'
    ]
    for r in lidar:
        assert r['sample_token'] in tok['sample']
        assert r['ego_pose_token'] in tok['ego_pose']
        assert (tiny_nuscenes / r['filename']).is_file()
        assert r['filename'].startswith(
            'samples/' if r['is_key_frame'] else 'sweeps/')
        if r['next']:
            assert tok['sample_data'][r['next']]['prev'] == r['token']
    assert sum(r['is_key_frame'] for r in lidar) == 16
    assert sum(not r['is_key_frame'] for r in lidar) == 16
    for a in t['sample_annotation']:
        assert a['sample_token'] in tok['sample']
        assert a['instance_token'] in tok['instance']
        assert a['visibility_token'] in tok['visibility']
        assert all(x in tok['attribute'] for x in a['attribute_tokens'])
        if a['next']:
            nxt = tok['sample_annotation'][a['next']]
            assert nxt['prev'] == a['token']
            assert nxt['instance_token'] == a['instance_token']
    for inst in t['instance']:
        assert tok['category'][inst['category_token']]['name'] in {
            c.category for c in NUS_CLASSES}
        a = tok['sample_annotation'][inst['first_annotation_token']]
        k = 1
        while a['next']:
            a = tok['sample_annotation'][a['next']]
            k += 1
        assert a['token'] == inst['last_annotation_token']
        assert k == inst['nbr_annotations']
    assert {m['filename'] for m in t['map']}
    assert all((tiny_nuscenes / m['filename']).is_file() for m in t['map'])


def test_annotations_global_frame_match_points(tiny_nuscenes):
    """The devkit's own transforms (global -> ego -> sensor) put every
    annotation box over ``num_lidar_pts`` points of its scan (up to points
    on the box faces, where the 6-decimal table values round)."""
    from nuscenes.nuscenes import NuScenes
    from nuscenes.utils.geometry_utils import points_in_box
    nusc = NuScenes('v1.0-mini', str(tiny_nuscenes), verbose=False)
    checked = moving = exact = 0
    for sample in nusc.sample:
        sd = sample['data']['LIDAR_TOP']
        path, boxes, _ = nusc.get_sample_data(sd)
        pts = np.fromfile(path, np.float32).reshape(-1, 5)
        assert len(pts) > 10000
        assert set(np.unique(pts[:, 4])) <= set(range(32))
        assert pts[:, 3].max() <= 255 and pts[:, 3].min() >= 0
        for box, tok in zip(boxes, sample['anns']):
            ann = nusc.get('sample_annotation', tok)
            n = int(points_in_box(box, pts[:, :3].T).sum())
            assert abs(n - ann['num_lidar_pts']) <= max(
                2, 0.002 * n), (n, ann['num_lidar_pts'])
            exact += n == ann['num_lidar_pts']
            checked += n > 0
            v = nusc.box_velocity(tok)
            moving += bool(np.linalg.norm(v[:2]) > 0.5)
    assert checked > 100 and moving > 10
    assert exact >= 0.95 * len(nusc.sample_annotation)
    # ego moves between samples in at least one scene
    poses = [nusc.get('ego_pose', nusc.get('sample_data', s['data'][
        'LIDAR_TOP'])['ego_pose_token'])['translation'] for s in nusc.sample]
    assert np.ptp(np.array(poses)[:, :2], axis=0).max() > 1.0


def test_converter_output_loads_in_dataset(tiny_nuscenes):
    from mmdet3d.datasets import NuScenesDataset
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    ds = NuScenesDataset(
        data_root=str(tiny_nuscenes),
        ann_file='nuscenes_infos_train.pkl',
        data_prefix=dict(pts='samples/LIDAR_TOP', img='',
                         sweeps='sweeps/LIDAR_TOP'),
        pipeline=[
            dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5,
                 use_dim=5),
            dict(type='LoadPointsFromMultiSweeps', sweeps_num=10,
                 test_mode=True),
            dict(type='LoadAnnotations3D', with_bbox_3d=True,
                 with_label_3d=True),
            dict(type='Pack3DDetInputs',
                 keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
        ],
        metainfo=dict(classes=CLASSES, version='v1.0-mini'))
    assert len(ds) == 8
    item = ds[3]
    pts = item['inputs']['points']
    # keyframe + 7 sweeps before it (1 per sample gap + the one before
    # sample 0, chained back): time lags in the last column (use_dim
    # [0, 1, 2, 4] keeps x, y, z and the lag)
    lags = np.unique(pts[:, 3].numpy().round(3))  # x, y, z, i, lag -> 0,1,2,4
    assert len(lags) >= 4 and lags.min() == 0.0
    labels = set(item['data_samples'].gt_instances_3d.labels_3d.tolist())
    assert len(labels) >= 5
    info = ds.get_data_info(3)
    assert len(info['lidar_sweeps']) == 7


def test_metric_with_ground_truth_as_predictions(tiny_nuscenes):
    m = check_nuscenes_metric(str(tiny_nuscenes))
    p = 'pred_instances_3d_NuScenes/'
    aps = {c: m[f'{p}{c}_AP_dist_0.5'] for c in CLASSES}
    present = [c for c in CLASSES if m[f'{p}{c}_trans_err'] < 1.0]
    assert len(present) >= 8, aps
    for c in present:
        for d in ('0.5', '1.0', '2.0', '4.0'):
            assert m[f'{p}{c}_AP_dist_{d}'] == 1.0, (c, d)
        assert m[f'{p}{c}_trans_err'] < 1e-3
        assert m[f'{p}{c}_scale_err'] < 1e-3
    # absent classes score AP 0 and TP errors 1 in the devkit
    assert m[f'{p}mAP'] == pytest.approx(len(present) / 10)
    assert m[f'{p}NDS'] > 0.8


def test_same_seed_same_bytes(tmp_path):
    kw = dict(num_train_scenes=1, num_val_scenes=1, samples_per_scene=2,
              sweeps_per_sample=1, seed=3, images=False, convert=False,
              verbose=False)
    a = create_demo_nuscenes(str(tmp_path / 'a'), **kw)
    create_demo_nuscenes(str(tmp_path / 'b'), **kw)
    files_a = sorted(p.relative_to(tmp_path / 'a')
                     for p in (tmp_path / 'a').rglob('*') if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / 'b')
                     for p in (tmp_path / 'b').rglob('*') if p.is_file())
    assert files_a == files_b and len(files_a) > 15
    for f in files_a:
        assert (tmp_path / 'a' / f).read_bytes() == (tmp_path / 'b' /
                                                     f).read_bytes(), f
    c = create_demo_nuscenes(str(tmp_path / 'c'), **dict(kw, seed=4))
    assert c['points_key'] != a['points_key']


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match='v1.0-trainval'):
        create_demo_nuscenes(str(tmp_path / 'x'), num_val_scenes=3,
                             convert=False, verbose=False)
    with pytest.raises(ValueError, match='version'):
        create_demo_nuscenes(str(tmp_path / 'x'), version='v1.0-test',
                             convert=False, verbose=False)
    (tmp_path / 'y').mkdir()
    (tmp_path / 'y' / 'f').write_text('x')
    with pytest.raises(FileExistsError, match='overwrite'):
        create_demo_nuscenes(str(tmp_path / 'y'), convert=False,
                             verbose=False)
