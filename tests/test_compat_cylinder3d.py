"""Cylinder3D on CPU: mmcv's sparse convolutions (``compat.mmcv_spconv_cpu``)
against dense ``torch.nn.functional`` convolutions, the Cylinder3D backbone
forward + backward, and a tiny train + test run through the tools.
"""
from typing import Tuple

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('spconv.pytorch')

from pointdistiller_mm.compat import (dynamic_scatter_cpu,  # noqa: E402
                                      mmcv_spconv_cpu)

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the patches target CPU-only machines')

SPATIAL = (6, 7, 5)  # (D, H, W)
BATCH = 2
NUM_SITES = 40


def _sparse_input(seed: int = 0, channels: int = 3
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random distinct active sites ``(batch, z, y, x)`` and features."""
    gen = torch.Generator().manual_seed(seed)
    d, h, w = SPATIAL
    flat = torch.randperm(BATCH * d * h * w, generator=gen)[:NUM_SITES]
    b, rest = flat // (d * h * w), flat % (d * h * w)
    z, y, x = rest // (h * w), (rest // w) % h, rest % w
    coords = torch.stack([b, z, y, x], dim=1).int()
    return coords, torch.randn(NUM_SITES, channels, generator=gen)


def _build_net():
    from mmcv.ops import SparseConv3d, SparseInverseConv3d, SubMConv3d
    torch.manual_seed(0)
    return dict(
        # Cylinder3D's asymmetric kernel, with its padding argument.
        subm=SubMConv3d(3, 4, (1, 3, 3), padding=1, bias=False,
                        indice_key='s'),
        down=SparseConv3d(4, 5, 3, stride=2, padding=1, bias=True,
                          indice_key='d'),
        inv=SparseInverseConv3d(5, 2, 3, bias=False, indice_key='d'),
    )


def _sparse_forward(net, coords, feats):
    from mmcv.ops import SparseConvTensor
    x = SparseConvTensor(feats, coords, list(SPATIAL), BATCH)
    down = net['down'](net['subm'](x))
    return net['inv'](down).dense(), down


def _dense_forward(net, coords, feats):
    """The same network with dense convolutions (mmcv weights: DHWIO)."""
    b, z, y, x = coords.long().unbind(1)
    dense = torch.zeros(BATCH, *SPATIAL, feats.shape[1]).index_put(
        (b, z, y, x), feats).permute(0, 4, 1, 2, 3)
    mask = torch.zeros(BATCH, 1, *SPATIAL)
    mask[b, 0, z, y, x] = 1.0
    out = F.conv3d(dense, net['subm'].weight.permute(4, 3, 0, 1, 2),
                   padding=(0, 1, 1)) * mask
    out = F.conv3d(out, net['down'].weight.permute(4, 3, 0, 1, 2),
                   net['down'].bias, stride=2, padding=1)
    out_pad = [s - (2 * low - 1) for s, low in zip(SPATIAL, out.shape[2:])]
    out = F.conv_transpose3d(out, net['inv'].weight.permute(3, 4, 0, 1, 2),
                             stride=2, padding=1, output_padding=out_pad)
    return out * mask


def test_unpatched_cpu_has_no_kernel():
    coords, feats = _sparse_input()
    net = _build_net()
    with mmcv_spconv_cpu.unpatched():
        with pytest.raises(RuntimeError, match='CPU|cpu'):
            _sparse_forward(net, coords, feats)


def test_forward_and_gradients_match_dense():
    coords, feats = _sparse_input()
    net = _build_net()
    params = [p for m in net.values() for p in m.parameters()]
    with mmcv_spconv_cpu.patched():
        f_sparse = feats.clone().requires_grad_(True)
        out_sparse, _ = _sparse_forward(net, coords, f_sparse)
        grads_sparse = torch.autograd.grad(
            (out_sparse * out_sparse).sum(), [f_sparse] + params)
    f_dense = feats.clone().requires_grad_(True)
    out_dense = _dense_forward(net, coords, f_dense)
    grads_dense = torch.autograd.grad((out_dense * out_dense).sum(),
                                      [f_dense] + params)
    assert out_sparse.abs().sum() > 0
    torch.testing.assert_close(out_sparse, out_dense, atol=1e-5, rtol=1e-5)
    for g_s, g_d in zip(grads_sparse, grads_dense):
        torch.testing.assert_close(g_s, g_d, atol=1e-4, rtol=1e-4)


def test_strided_outputs_in_cuda_order():
    """Output sites sorted by batch, then row-major position (mmcv CUDA)."""
    coords, feats = _sparse_input()
    net = _build_net()
    with mmcv_spconv_cpu.patched():
        _, down = _sparse_forward(net, coords, feats)
    ind = down.indices.long()
    shape = down.spatial_shape
    key = ((ind[:, 0] * shape[0] + ind[:, 1]) * shape[1] +
           ind[:, 2]) * shape[2] + ind[:, 3]
    assert torch.all(key[1:] > key[:-1])
    # mmcv's rule: output o receives input c through kernel offset k when
    # c + padding - k == 2 * o, per axis.
    expected = set()
    for b, *site in coords.tolist():
        per_axis = [[(c + 1 - k) // 2 for k in range(3)
                     if (c + 1 - k) % 2 == 0 and 0 <= (c + 1 - k) // 2 < s]
                    for c, s in zip(site, shape)]
        expected.update((b, z, y, x) for z in per_axis[0]
                        for y in per_axis[1] for x in per_axis[2])
    assert set(map(tuple, ind.tolist())) == expected


def test_maxpool_matches_loop_reference():
    from mmcv.ops import SparseConvTensor, SparseMaxPool3d
    coords, feats = _sparse_input(seed=3, channels=4)
    feats = feats.requires_grad_(True)
    pool = SparseMaxPool3d(2, stride=2)
    with mmcv_spconv_cpu.patched():
        out = pool(SparseConvTensor(feats, coords, list(SPATIAL), BATCH))
        out.features.sum().backward()
    ref = {}
    out_shape = [s // 2 for s in SPATIAL]  # sites past it fall off the grid
    for i, (b, *site) in enumerate(coords.tolist()):
        cell = [c // 2 for c in site]
        if all(c < s for c, s in zip(cell, out_shape)):
            ref.setdefault((b, *cell), []).append(i)
    got = {tuple(c): f for c, f in zip(out.indices.tolist(), out.features)}
    assert set(got) == set(ref)
    grad = torch.zeros_like(feats)
    for key, rows in ref.items():
        # mmcv's rule: outputs start at 0, every maximal input gets the grad.
        expected = feats[rows].detach().max(0).values.clamp(min=0)
        torch.testing.assert_close(got[key], expected)
        grad[rows] += (feats[rows].detach() == expected).float()
    torch.testing.assert_close(feats.grad, grad)


def _cylinder_parts(base_channels: int = 8):
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    grid = [16, 12, 8]
    vfe = MODELS.build(
        dict(type='SegVFE', feat_channels=[16, 32], in_channels=6,
             with_voxel_center=True, feat_compression=8, grid_shape=grid,
             return_point_feats=False))
    backbone = MODELS.build(
        dict(type='Asymm3DSpconv', grid_size=grid, input_channels=8,
             base_channels=base_channels,
             norm_cfg=dict(type='BN1d', eps=1e-5, momentum=0.1)))
    head = MODELS.build(
        dict(type='Cylinder3DHead', channels=4 * base_channels,
             num_classes=5, ignore_index=4,
             loss_lovasz=dict(type='LovaszLoss', loss_weight=1.0,
                              reduction='none')))
    return grid, vfe, backbone, head


def test_cylinder3d_backbone_forward_backward():
    from mmcv.ops import SparseConvTensor
    grid, vfe, backbone, head = _cylinder_parts()
    torch.manual_seed(0)
    num_points = 300
    coors = torch.stack(
        [torch.randint(0, 2, (num_points, ))] +
        [torch.randint(0, g, (num_points, )) for g in grid], 1).int()
    coors = coors[torch.argsort(coors[:, 0], stable=True)]
    feats = torch.randn(num_points, 6)
    with dynamic_scatter_cpu.patched(), mmcv_spconv_cpu.patched():
        voxel_feats, voxel_coors = vfe(feats, coors)
        out = backbone(voxel_feats, voxel_coors, 2)
        logits = head(out)
        assert isinstance(out, SparseConvTensor)
        assert torch.equal(out.indices, voxel_coors)
        assert logits.features.shape == (voxel_coors.shape[0], 5)
        labels = torch.randint(0, 5, (voxel_coors.shape[0], ))
        loss = (head.loss_ce(logits.features, labels, ignore_index=4) +
                head.loss_lovasz(logits.features, labels, ignore_index=4))
        loss.backward()
    assert torch.isfinite(loss)
    modules = dict(vfe=vfe, backbone=backbone, head=head)
    for name, module in modules.items():
        for pname, param in module.named_parameters():
            assert param.grad is not None, f'{name}.{pname} has no gradient'
            assert torch.isfinite(param.grad).all(), f'{name}.{pname}'
    # mmcv weight layout (*kernel, in, out), that of mmdet3d's checkpoints.
    assert backbone.down_context.conv0_0.weight.shape == (1, 3, 3, 8, 8)


STUDENT = 'configs/demo/cylinder3d_0.5x_student.py'
# One epoch of the 3 tiny training scans (2 iterations at batch 2), no
# worker processes, a log line per iteration, one thread (on a loaded 2-core
# machine two threads made the many small gather / scatter ops of the sparse
# convolutions several times slower). The generous tool timeouts allow for a
# shared, loaded machine.
TINY_OPTIONS = [
    'train_cfg.max_epochs=1', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]


def test_cylinder3d_train_and_test_through_tools(tiny_semantickitti,
                                                 tmp_path):
    import re

    from tests.conftest import run_tool
    work = tmp_path / 'cylinder3d'
    train = run_tool(['PYTHON', 'tools/train.py', STUDENT, '--work-dir',
                      str(work), '--data-root', str(tiny_semantickitti),
                      '--cfg-options', *TINY_OPTIONS], timeout=1200,
                     threads=1)
    log = train.stdout + train.stderr
    losses = [float(v) for v in re.findall(r'decode\.loss_ce: ([0-9.]+)', log)]
    assert len(losses) == 2, log[-3000:]
    assert all(0 < v < 100 for v in losses)
    checkpoint = work / 'epoch_1.pth'
    assert checkpoint.is_file()
    test = run_tool(['PYTHON', 'tools/test.py', STUDENT, str(checkpoint),
                     '--work-dir', str(work / 'test'), '--data-root',
                     str(tiny_semantickitti), '--cfg-options',
                     *TINY_OPTIONS[3:]], timeout=1200,
                    threads=1)
    out = test.stdout + test.stderr
    miou = re.search(r'miou: ([0-9.]+)', out)
    assert miou is not None, out[-3000:]
    assert 0.0 <= float(miou.group(1)) <= 1.0
    # SegMetric's per-class table names the SemanticKITTI classes.
    assert 'car' in out and 'vegetation' in out
