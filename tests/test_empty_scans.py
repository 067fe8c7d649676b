"""Scans with zero points: no crash, no NaN, for PointPillars and SECOND."""
import pytest
import torch
from mmengine.registry import init_default_scope

from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from mmdet3d.structures.det3d_data_sample import InstanceData
from pointdistiller_mm.utils import load_config

CONFIGS = ['configs/demo/pointpillars_teacher.py',
           'configs/demo/second_teacher.py']


def _sample(with_box: bool) -> Det3DDataSample:
    sample = Det3DDataSample(metainfo=dict(box_type_3d=LiDARInstance3DBoxes))
    gt = InstanceData()
    boxes = torch.tensor([[10.0, 0.0, -1.0, 3.9, 1.6, 1.56, 0.3]]) \
        if with_box else torch.zeros((0, 7))
    gt.bboxes_3d = LiDARInstance3DBoxes(boxes)
    gt.labels_3d = torch.tensor([2] if with_box else [], dtype=torch.long)
    sample.gt_instances_3d = gt
    return sample


def _points(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    xyz = torch.rand((n, 3), generator=g) * torch.tensor([30., 20., 2.]) + \
        torch.tensor([2., -10., -2.])
    return torch.cat([xyz, torch.rand((n, 1), generator=g)], 1)


@pytest.fixture(params=CONFIGS, scope='module')
def model(request):
    init_default_scope('mmdet3d')
    return MODELS.build(load_config(request.param).model)


def test_empty_scan_predicts_nothing(model):
    model.eval()
    data = model.data_preprocessor(
        dict(inputs=dict(points=[torch.zeros((0, 4))]),
             data_samples=[_sample(False)]), False)
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    scores = out[0].pred_instances_3d.scores_3d
    assert torch.isfinite(scores).all()


@pytest.mark.parametrize('points', [(0, 0), (2000, 0)])
def test_training_losses_stay_finite(model, points):
    """An all-empty batch, and a batch whose last scan is empty."""
    model.train()
    data = model.data_preprocessor(
        dict(inputs=dict(points=[_points(n) for n in points]),
             data_samples=[_sample(n > 0) for n in points]), True)
    losses = model.loss(data['inputs'], data['data_samples'])
    total = sum(v.sum() if isinstance(v, torch.Tensor) else sum(v)
                for v in losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters()
               if p.grad is not None)
