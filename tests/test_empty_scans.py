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


# mmdet3d's PointSample (every PointRCNN pipeline) on an empty scan
# (pointdistiller_mm.compat.empty_point_sample).

def _scan(n: int):
    """``n`` points (x, y, z, intensity), about half beyond 40 m."""
    import numpy as np
    rng = np.random.default_rng(1)
    return rng.uniform(-50, 50, (n, 4)).astype(np.float32)


def _point_sample(n: int, seed: int, **kwargs) -> dict:
    """PointSample on ``_scan(n)`` with per-point masks (instance mask =
    point index), numpy seed ``seed``."""
    import numpy as np
    from mmdet3d.datasets.transforms import PointSample
    from mmdet3d.structures import LiDARPoints
    results = dict(points=LiDARPoints(_scan(n), points_dim=4),
                   pts_instance_mask=np.arange(n, dtype=np.int64),
                   pts_semantic_mask=np.arange(n, dtype=np.int64) % 3)
    np.random.seed(seed)
    return PointSample(**kwargs)(results)


@pytest.mark.parametrize('kwargs', [dict(num_points=64, sample_range=40.0),
                                    dict(num_points=64)])
def test_point_sample_keeps_an_empty_scan_empty(kwargs):
    import numpy as np
    import pointdistiller_mm  # noqa: F401  (applies the patch)
    from mmdet3d.structures import LiDARPoints
    from pointdistiller_mm.compat import empty_point_sample
    assert empty_point_sample.is_applied()
    out = _point_sample(0, 0, **kwargs)
    assert isinstance(out['points'], LiDARPoints)
    assert tuple(out['points'].tensor.shape) == (0, 4)
    for key in ('pts_instance_mask', 'pts_semantic_mask'):
        assert out[key].shape == (0, ) and out[key].dtype == np.int64
    empty_point_sample.remove()
    try:
        assert not empty_point_sample.is_applied()
        with pytest.raises(ValueError, match='cannot be empty'):
            _point_sample(0, 0, **kwargs)
    finally:
        empty_point_sample.apply()
    assert empty_point_sample.apply() == ['empty_scan_point_sample']


@pytest.mark.parametrize('n, kwargs', [
    (500, dict(num_points=64, sample_range=40.0)),  # near + far points
    (500, dict(num_points=64)),
    (40, dict(num_points=64, sample_range=40.0)),  # fewer: with replacement
])
def test_point_sample_non_empty_scan_unchanged(n, kwargs):
    import numpy as np
    import pointdistiller_mm  # noqa: F401
    from pointdistiller_mm.compat import empty_point_sample
    patched = _point_sample(n, 7, **kwargs)
    empty_point_sample.remove()
    try:
        stock = _point_sample(n, 7, **kwargs)
    finally:
        empty_point_sample.apply()
    assert len(patched['points']) == 64
    for key in ('pts_instance_mask', 'pts_semantic_mask'):
        np.testing.assert_array_equal(patched[key], stock[key])
    np.testing.assert_array_equal(patched['points'].tensor.numpy(),
                                  stock['points'].tensor.numpy())
    # every sampled point is the input row its instance index names
    np.testing.assert_array_equal(patched['points'].tensor.numpy(),
                                  _scan(n)[patched['pts_instance_mask']])


# PointRCNN on batches with empty scans
# (pointdistiller_mm.compat.empty_scans_pointrcnn).

@pytest.fixture(scope='module')
def pointrcnn():
    """The demo PointRCNN teacher with fewer SA points, RoIs and pooled
    points (widths and depth unchanged)."""
    init_default_scope('mmdet3d')
    cfg = load_config('configs/demo/pointrcnn_teacher.py').model
    cfg.backbone.num_points = [256, 64, 16, 8]
    cfg.roi_head.bbox_roi_extractor.roi_layer.num_sampled_points = 32
    cfg.train_cfg.rcnn.sampler.num = 16
    cfg.train_cfg.rpn.rpn_proposal.update(nms_pre=128, nms_post=32)
    cfg.test_cfg.rpn.nms_cfg.update(nms_pre=128, nms_post=16)
    return MODELS.build(cfg)


def _pointrcnn_batch(model, counts, training: bool) -> dict:
    return model.data_preprocessor(
        dict(inputs=dict(points=[_points(n) for n in counts]),
             data_samples=[_sample(n > 0) for n in counts]), training)


def test_pointrcnn_predicts_nothing_on_an_empty_scan(pointrcnn):
    pointrcnn.eval()
    with torch.no_grad():
        alone = _pointrcnn_batch(pointrcnn, (512, ), False)
        alone = pointrcnn.predict(alone['inputs'], alone['data_samples'])
        mixed = _pointrcnn_batch(pointrcnn, (512, 0), False)
        mixed = pointrcnn.predict(mixed['inputs'], mixed['data_samples'])
        empty = _pointrcnn_batch(pointrcnn, (0, ), False)
        empty = pointrcnn.predict(empty['inputs'], empty['data_samples'])
    for pred in (mixed[1].pred_instances_3d, empty[0].pred_instances_3d):
        assert isinstance(pred.bboxes_3d, LiDARInstance3DBoxes)
        assert tuple(pred.bboxes_3d.tensor.shape) == (0, 7)
        assert len(pred.scores_3d) == 0 and len(pred.labels_3d) == 0
    # the non-empty scan of the mixed batch: the stock model's answer alone
    a, b = alone[0].pred_instances_3d, mixed[0].pred_instances_3d
    assert len(a.scores_3d) > 0
    torch.testing.assert_close(b.bboxes_3d.tensor, a.bboxes_3d.tensor)
    torch.testing.assert_close(b.scores_3d, a.scores_3d)
    assert torch.equal(b.labels_3d, a.labels_3d)


def test_pointrcnn_losses_leave_empty_scans_out(pointrcnn):
    from pointdistiller_mm.compat import empty_scans_pointrcnn
    pointrcnn.train()
    losses = []
    for counts in ((512, ), (512, 0)):
        data = _pointrcnn_batch(pointrcnn, counts, True)
        torch.manual_seed(0)
        losses.append(pointrcnn.loss(data['inputs'], data['data_samples']))
    assert losses[0].keys() == losses[1].keys()
    for key in losses[0]:
        torch.testing.assert_close(losses[1][key], losses[0][key])
    total = sum(v.sum() for k, v in losses[1].items() if 'loss' in k)
    assert torch.isfinite(total)
    # a batch of empty scans only: one zero loss reaching every parameter
    pointrcnn.zero_grad()
    data = _pointrcnn_batch(pointrcnn, (0, 0), True)
    out = pointrcnn.loss(data['inputs'], data['data_samples'])
    assert list(out) == ['loss_empty_batch'] and out['loss_empty_batch'] == 0
    out['loss_empty_batch'].backward()
    assert all(p.grad is not None and not p.grad.any()
               for p in pointrcnn.parameters() if p.requires_grad)
    # mmdet3d's own methods cannot stack a batch with an empty scan
    data = _pointrcnn_batch(pointrcnn, (512, 0), True)
    empty_scans_pointrcnn.remove()
    try:
        with pytest.raises(RuntimeError, match='stack expects'):
            pointrcnn.loss(data['inputs'], data['data_samples'])
    finally:
        empty_scans_pointrcnn.apply()
