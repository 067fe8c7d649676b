"""MinkUNet on CPU (``compat.minkunet_cpu``): the 'minkunet' voxelization
against mmdet3d's own code and a plain numpy reference, and a MinkUNet W16
(spconv backend) training step."""
import os.path as osp

import mmdet3d
import numpy as np
import pytest
import torch
from mmengine.config import Config

import pointdistiller_mm  # noqa: F401  (applies the CPU patches)
from pointdistiller_mm.compat import minkunet_cpu
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, PointData
from mmdet3d.utils import register_all_modules

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the patch targets CPU-only machines')

STOCK_CFG = osp.join(
    osp.dirname(mmdet3d.__file__), '.mim', 'configs', 'minkunet',
    'minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py')
VOXEL = 0.2


def _batch(num_points=(3000, 2000), seed=0, labels=True):
    gen = torch.Generator().manual_seed(seed)
    points, samples = [], []
    for n in num_points:
        p = torch.rand(n, 4, generator=gen) * torch.tensor(
            [20.0, 20.0, 4.0, 1.0]) - torch.tensor([10.0, 10.0, 2.0, 0.0])
        points.append(p)
        s = Det3DDataSample()
        s.gt_pts_seg = PointData(pts_semantic_mask=torch.randint(
            0, 19, (n, ), generator=gen)) if labels else PointData()
        samples.append(s)
    return points, samples


def _preprocessor(batch_first=True, max_voxels=None):
    register_all_modules()
    cfg = Config.fromfile(STOCK_CFG).model.data_preprocessor
    cfg.update(batch_first=batch_first, max_voxels=max_voxels)
    cfg.voxel_layer.voxel_size = [VOXEL] * 3
    return MODELS.build(cfg)


def test_patch_applied_and_reversible():
    from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
    assert minkunet_cpu.is_applied()
    assert 'minkunet_cpu_voxelize' in pointdistiller_mm.CPU_PATCHES
    patched = Det3DDataPreprocessor.voxelize
    assert minkunet_cpu.apply() and Det3DDataPreprocessor.voxelize is patched
    with minkunet_cpu.unpatched():
        assert Det3DDataPreprocessor.voxelize is patched.__wrapped__
        pre = _preprocessor()
        points, samples = _batch()
        with pytest.raises((AssertionError, RuntimeError), match='CUDA'):
            pre.voxelize(points, samples)
    assert minkunet_cpu.is_applied()
    assert Det3DDataPreprocessor.voxelize.__wrapped__ is patched.__wrapped__


def test_voxels_match_numpy_reference():
    pre = _preprocessor()
    pre.eval()
    points, samples = _batch()
    out = pre.voxelize(points, samples)
    voxels, coors = out['voxels'], out['coors']
    start = 0
    for i, (p, s) in enumerate(zip(points, samples)):
        # reference: round(xyz / size), shifted to a zero minimum, unique
        grid = np.round(p[:, :3].numpy() / np.float32(VOXEL)).astype(np.int64)
        grid -= grid.min(0)
        uniq = np.unique(grid, axis=0)
        rows = coors[:, 0] == i
        c = coors[rows][:, 1:].numpy()
        assert rows.sum() == len(uniq)
        assert np.array_equal(np.unique(c, axis=0), uniq)
        # each kept voxel holds one of its own points
        v = voxels[rows]
        assert np.array_equal(
            np.round(v[:, :3].numpy() / np.float32(VOXEL)).astype(np.int64) -
            np.round(p[:, :3].numpy() / np.float32(VOXEL)).astype(
                np.int64).min(0), c)
        # every point maps to the voxel that contains it
        p2v = s.point2voxel_map.numpy()
        assert np.array_equal(c[p2v], grid)
        assert torch.equal(s.batch_idx, coors[rows][:, 0])
        # voxel labels: the label of the kept point
        kept = [int(np.flatnonzero((p[:, :3] == v[j, :3]).all(1).numpy())[0])
                for j in range(0, len(v), 97)]
        assert torch.equal(
            s.gt_pts_seg.voxel_semantic_mask[::97],
            s.gt_pts_seg.pts_semantic_mask[kept])
        start += len(p)


@pytest.mark.parametrize('batch_first,training', [(True, True),
                                                  (False, False)])
def test_same_as_mmdet3d_code(monkeypatch, batch_first, training):
    """Bit-identical to mmdet3d's branch run with ``.cuda()`` made a no-op
    (on CPU the two differ only in that call)."""
    pre = _preprocessor(batch_first=batch_first, max_voxels=1500)
    pre.train(training)
    points, s_new = _batch(seed=3)
    _, s_old = _batch(seed=3)
    np.random.seed(0)
    new = pre.voxelize(points, s_new)
    with minkunet_cpu.unpatched():
        monkeypatch.setattr(torch.Tensor, 'cuda', lambda self, *a, **k: self)
        np.random.seed(0)
        old = pre.voxelize(points, s_old)
    assert torch.equal(new['voxels'], old['voxels'])
    assert torch.equal(new['coors'], old['coors'])
    if training:
        assert len(new['coors']) == 2 * 1500  # max_voxels subsampling
    for a, b in zip(s_new, s_old):
        assert torch.equal(a.point2voxel_map, b.point2voxel_map)
        assert torch.equal(a.batch_idx, b.batch_idx)
        assert torch.equal(a.gt_pts_seg.voxel_semantic_mask,
                           b.gt_pts_seg.voxel_semantic_mask)


def test_minkunet_w16_trains_and_predicts_on_cpu():
    register_all_modules()
    cfg = Config.fromfile(STOCK_CFG).model
    cfg.backbone.update(base_channels=16, encoder_channels=[16, 32, 64, 128],
                        decoder_channels=[128, 64, 48, 48])
    cfg.decode_head.channels = 48
    cfg.data_preprocessor.voxel_layer.voxel_size = [VOXEL] * 3
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    points, samples = _batch()
    data = model.data_preprocessor(
        dict(inputs=dict(points=points), data_samples=samples), training=True)
    model.train()
    losses = model.loss(data['inputs'], data['data_samples'])
    loss = losses['loss_sem_seg']
    assert torch.isfinite(loss) and loss.item() > 0
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads)
    # the first (input) sparse conv got a gradient through the whole U-Net
    assert model.backbone.conv_input[0][0].weight.grad.abs().sum() > 0
    model.eval()
    points, samples = _batch(labels=False, seed=5)
    data = model.data_preprocessor(
        dict(inputs=dict(points=points), data_samples=samples))
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    for p, r in zip(points, results):
        assert r.pred_pts_seg.pts_semantic_mask.shape == (len(p), )
