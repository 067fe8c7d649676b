"""SegPointsRangeFilter: points, their masks and the evaluation labels are
filtered with the same mask."""
import numpy as np
import pytest
from mmdet3d.structures import LiDARPoints

import projects.Smaller3D.smaller3d  # noqa: F401
from mmdet3d.registry import TRANSFORMS
from mmdet3d.utils import register_all_modules

RANGE = [-1.0, -1.0, -1.0, 1.0, 1.0, 1.0]


def _input():
    xyz = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.5, -0.5, 0.5],
                    [0.0, 0.0, 3.0], [-0.9, 0.9, -0.9]], dtype=np.float32)
    points = LiDARPoints(np.concatenate([xyz, np.ones((5, 1), np.float32)],
                                        1), points_dim=4)
    sem = np.array([10, 11, 12, 13, 14])
    inst = np.array([0, 1, 2, 3, 4])
    return dict(points=points, pts_semantic_mask=sem.copy(),
                pts_instance_mask=inst.copy(),
                eval_ann_info=dict(pts_semantic_mask=sem.copy(),
                                   pts_instance_mask=inst.copy()))


def test_filters_points_masks_and_eval_labels():
    register_all_modules()
    tf = TRANSFORMS.build(
        dict(type='SegPointsRangeFilter', point_cloud_range=RANGE))
    out = tf(_input())
    keep = [0, 2, 4]  # points 1 (x = 2) and 3 (z = 3) are out of range
    assert len(out['points']) == 3
    assert out['pts_semantic_mask'].tolist() == [10, 12, 14]
    assert out['eval_ann_info']['pts_semantic_mask'].tolist() == [10, 12, 14]
    assert out['eval_ann_info']['pts_instance_mask'].tolist() == keep
    # mmdet3d's PointsRangeFilter leaves the evaluation labels whole
    stock = TRANSFORMS.build(
        dict(type='PointsRangeFilter', point_cloud_range=RANGE))(_input())
    assert len(stock['eval_ann_info']['pts_semantic_mask']) == 5


def test_without_eval_labels_and_mismatch():
    tf = TRANSFORMS.build(
        dict(type='SegPointsRangeFilter', point_cloud_range=RANGE))
    data = _input()
    del data['eval_ann_info']
    assert tf(data)['pts_semantic_mask'].tolist() == [10, 12, 14]
    data = _input()
    data['eval_ann_info']['pts_semantic_mask'] = np.arange(4)
    with pytest.raises(ValueError, match='before any transform'):
        tf(data)
