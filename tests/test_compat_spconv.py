"""Tests of the spconv CPU backward patch (``compat.spconv_cpu``).

The sparse network's outputs and gradients are compared with the same network
written with dense ``torch.nn.functional`` convolutions.
"""
from typing import Dict, Tuple

import pytest
import torch
import torch.nn.functional as F

spconv = pytest.importorskip('spconv.pytorch')

from pointdistiller_mm.compat import spconv_cpu  # noqa: E402

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the patch targets CPU-only machines')

SPATIAL = (6, 7, 5)  # (D, H, W)
NUM_SITES = 24
IN_CH, MID_CH, DOWN_CH, OUT_CH = 2, 3, 4, 2


def _sparse_input(seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random active sites ``(batch, z, y, x)`` and their features."""
    gen = torch.Generator().manual_seed(seed)
    d, h, w = SPATIAL
    flat = torch.randperm(d * h * w, generator=gen)[:NUM_SITES]
    z, y, x = flat // (h * w), (flat // w) % h, flat % w
    coords = torch.stack([torch.zeros_like(z), z, y, x], dim=1).int()
    feats = torch.randn(NUM_SITES, IN_CH, generator=gen)
    return coords, feats


def _build_net() -> Dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return dict(
        subm=spconv.SubMConv3d(IN_CH, MID_CH, 3, bias=False, indice_key='s'),
        down=spconv.SparseConv3d(
            MID_CH, DOWN_CH, 3, stride=2, padding=1, bias=False,
            indice_key='d'),
        inv=spconv.SparseInverseConv3d(
            DOWN_CH, OUT_CH, 3, bias=False, indice_key='d'),
    )


def _sparse_forward(net, coords, feats) -> torch.Tensor:
    x = spconv.SparseConvTensor(feats, coords, list(SPATIAL), 1)
    return net['inv'](net['down'](net['subm'](x))).dense()


def _dense_forward(weights, coords, feats) -> torch.Tensor:
    """Same network with dense convolutions (spconv weights are KRSC)."""
    d, h, w = SPATIAL
    b, z, y, x = coords.long().unbind(1)
    dense = torch.zeros(1, d, h, w, IN_CH).index_put((b, z, y, x), feats)
    dense = dense.permute(0, 4, 1, 2, 3)
    mask = torch.zeros(1, 1, d, h, w)
    mask[0, 0, z, y, x] = 1.0
    out = F.conv3d(dense, weights['subm'].permute(0, 4, 1, 2, 3), padding=1)
    out = out * mask  # submanifold: outputs only at the input sites
    out = F.conv3d(out, weights['down'].permute(0, 4, 1, 2, 3), stride=2,
                   padding=1)
    # Inverse conv = transposed conv restricted to the original sites.
    out_pad = [
        size - (2 * low - 1) for size, low in zip(SPATIAL, out.shape[2:])
    ]
    out = F.conv_transpose3d(out, weights['inv'].permute(4, 0, 1, 2, 3),
                             stride=2, padding=1, output_padding=out_pad)
    return out * mask


def test_backward_raises_without_patch():
    coords, feats = _sparse_input()
    net = _build_net()
    feats.requires_grad_(True)
    with spconv_cpu.unpatched():
        assert not spconv_cpu.is_applied()
        out = _sparse_forward(net, coords, feats)  # forward is fine
        with pytest.raises((AssertionError, RuntimeError), match='CUDA'):
            out.sum().backward()


def test_gradients_match_dense_reference():
    coords, feats = _sparse_input()
    net = _build_net()
    feats_sp = feats.clone().requires_grad_(True)
    feats_ref = feats.clone().requires_grad_(True)
    weights = {k: m.weight.detach().clone().requires_grad_(True)
               for k, m in net.items()}
    with spconv_cpu.patched() as active:
        assert active
        out = _sparse_forward(net, coords, feats_sp)
        ref = _dense_forward(weights, coords, feats_ref)
        assert out.shape == ref.shape == (1, OUT_CH) + SPATIAL
        torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
        upstream = torch.randn(out.shape, generator=torch.Generator()
                               .manual_seed(1))
        (out * upstream).sum().backward()
        (ref * upstream).sum().backward()
    assert feats_sp.grad.abs().max() > 1e-3
    torch.testing.assert_close(feats_sp.grad, feats_ref.grad, rtol=1e-5,
                               atol=1e-5)
    for key, module in net.items():
        assert module.weight.grad is not None, key
        torch.testing.assert_close(module.weight.grad, weights[key].grad,
                                   rtol=1e-5, atol=1e-5)


def test_patch_is_idempotent_and_removable():
    import spconv.pytorch.cppcore as cppcore
    import spconv.pytorch.ops as ops
    with spconv_cpu.unpatched():
        original = ops.get_current_stream
        assert cppcore.get_current_stream is original
        assert spconv_cpu.apply() is True
        assert spconv_cpu.apply() is True
        assert ops.get_current_stream is not original
        assert ops.get_current_stream() == 0
        assert 'spconv.pytorch.ops' in spconv_cpu.patched_modules()
        assert cppcore.get_current_stream is ops.get_current_stream
        spconv_cpu.remove()
        spconv_cpu.remove()
        assert ops.get_current_stream is original
        assert cppcore.get_current_stream is original
        assert spconv_cpu.patched_modules() == []


def test_mmdet3d_sparse_encoder_trains_on_cpu():
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    sparse_shape = [41, 48, 40]  # (z, y, x), SECOND's z extent
    encoder = MODELS.build(
        dict(type='SparseEncoder', in_channels=4, sparse_shape=sparse_shape,
             order=('conv', 'norm', 'act')))
    encoder.train()
    gen = torch.Generator().manual_seed(0)
    num_voxels, batch_size = 300, 2
    coors = torch.stack([
        torch.randint(0, batch_size, (num_voxels, ), generator=gen),
        torch.randint(0, sparse_shape[0], (num_voxels, ), generator=gen),
        torch.randint(0, sparse_shape[1], (num_voxels, ), generator=gen),
        torch.randint(0, sparse_shape[2], (num_voxels, ), generator=gen),
    ], dim=1)
    coors = torch.unique(coors, dim=0).int()
    feats = torch.randn(coors.shape[0], 4, generator=gen, requires_grad=True)
    with spconv_cpu.patched():
        out = encoder(feats, coors, batch_size)
        # SECOND: 128 channels x 2 z-cells, BEV downsampled 8x.
        assert out.shape == (batch_size, 256, sparse_shape[1] // 8,
                             sparse_shape[2] // 8)
        out.square().mean().backward()
    assert feats.grad is not None and torch.isfinite(feats.grad).all()
    assert feats.grad.abs().sum() > 0
    for name, param in encoder.named_parameters():
        assert param.grad is not None, name
        assert torch.isfinite(param.grad).all(), name
    first_conv = encoder.conv_input[0].weight
    assert first_conv.grad.abs().sum() > 0
