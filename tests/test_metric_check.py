"""GT boxes fed back to mmdet3d's KittiMetric as predictions must score
(close to) 100 once the devkit's 41-sample-point ceiling is lifted."""
import importlib.util
import math
import pickle
import sys
from pathlib import Path

import pytest

from pointdistiller_mm.analysis.metric_check import (ap40_cap,
                                                     check_kitti_metric,
                                                     gt_as_predictions,
                                                     moderate_gt_counts)

REPO = Path(__file__).resolve().parents[1]


def _load_cli():
    path = REPO / 'tools' / 'analysis' / 'check_kitti_metric.py'
    spec = importlib.util.spec_from_file_location('pdm_check_kitti_metric',
                                                  path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_ap40_cap():
    """(N - 1) / 40 for N <= 40 GT objects, 100 from 41 on."""
    assert ap40_cap(36) == pytest.approx(87.5)
    assert ap40_cap(26) == pytest.approx(62.5)
    assert ap40_cap(1) == 0.0
    assert ap40_cap(40) == pytest.approx(97.5)
    assert ap40_cap(41) == ap40_cap(500) == 100.0
    assert math.isnan(ap40_cap(0))


def test_gt_as_predictions_round_trip(tiny_kitti):
    """Predicted LiDAR boxes convert back to the labels' camera boxes."""
    import numpy as np
    from mmdet3d.structures import Box3DMode
    with open(tiny_kitti / 'kitti_infos_trainval.pkl', 'rb') as f:
        data = pickle.load(f)
    samples = gt_as_predictions(data, shift=0.0)
    assert len(samples) == len(data['data_list'])
    for pos, (sample, info) in enumerate(zip(samples, data['data_list'])):
        assert sample['sample_idx'] == pos
        gt = [i for i in info['instances'] if 0 <= i['bbox_label_3d'] <= 2]
        pred = sample['pred_instances_3d']
        assert pred['labels_3d'].tolist() == [i['bbox_label_3d'] for i in gt]
        if gt:
            l2c = np.array(info['images']['CAM2']['lidar2cam'])
            cam = pred['bboxes_3d'].convert_to(Box3DMode.CAM, l2c)
            np.testing.assert_allclose(cam.tensor.numpy(),
                                       [i['bbox_3d'] for i in gt],
                                       atol=1e-4)


def test_gt_as_predictions_reach_100(tiny_kitti, capsys):
    """Every class with moderate GT: AP40 equals the devkit ceiling on the
    split as is and >= 99 with the frames repeated (1 cm shift)."""
    info = tiny_kitti / 'kitti_infos_trainval.pkl'
    with open(info, 'rb') as f:
        counts = moderate_gt_counts(pickle.load(f))
    assert sum(counts.values()) > 0
    rows = check_kitti_metric(str(info), shift=0.01)
    assert [r.name for r in rows] == ['Pedestrian', 'Cyclist', 'Car']
    for r in rows:
        assert r.num_moderate_gt == counts[r.name]
        if r.num_moderate_gt == 0:
            continue
        assert r.num_moderate_gt * r.repeat >= 41
        assert r.ap40 == pytest.approx(r.ap40_cap, abs=1e-3), r
        assert r.ap40_repeated >= 99.0, r

    cli = _load_cli()
    assert cli.main(['--data-root', str(tiny_kitti), '--split', 'val']) == 0
    out = capsys.readouterr().out
    assert 'Car' in out and 'AP40 3D' in out
