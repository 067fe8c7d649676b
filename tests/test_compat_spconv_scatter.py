"""spconv's CPU sparse convolution with several threads: the scatter-add
patch (pointdistiller_mm/compat/spconv_cpu_scatter.py) against
torch.index_add_ and a dense convolution reference."""
import pytest
import torch
import torch.nn.functional as F

import pointdistiller_mm  # noqa: F401  (applies the patch)
from pointdistiller_mm.compat import spconv_cpu_scatter

spconv = pytest.importorskip('spconv.pytorch')


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _sparse_input(grid=32, n=12000, channels=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    coords = torch.unique(torch.randint(0, grid, (n, 3), generator=gen),
                          dim=0).int()
    indices = torch.cat([torch.zeros(len(coords), 1, dtype=torch.int32),
                         coords], 1)
    feats = torch.randn(len(coords), channels, generator=gen)
    return feats, indices, [grid] * 3


def test_patch_is_applied_on_import():
    assert spconv_cpu_scatter.is_applied()
    assert spconv_cpu_scatter.PATCH_NAME in pointdistiller_mm.STACK_PATCHES
    assert spconv_cpu_scatter.apply() == [spconv_cpu_scatter.PATCH_NAME]


def test_scatter_add_matches_index_add(two_threads):
    from spconv.core_cc.csrc.sparse.all import SpconvOps
    from spconv.pytorch.cppcore import torch_tensor_to_tv
    gen = torch.Generator().manual_seed(1)
    out = torch.randn(30000, 16, generator=gen)
    buffer = torch.randn(25000, 16, generator=gen)  # longer than the indices
    idx = torch.randperm(30000, generator=gen)[:20000].int()
    expected = out.clone().index_add_(0, idx.long(), buffer[:20000])
    for _ in range(3):
        got = out.clone()
        SpconvOps.scatter_add_cpu(torch_tensor_to_tv(got),
                                  torch_tensor_to_tv(buffer),
                                  torch_tensor_to_tv(idx))
        assert torch.equal(got, expected)


def test_submanifold_conv_matches_dense_conv(two_threads):
    feats, indices, shape = _sparse_input()
    feats.requires_grad_(True)
    torch.manual_seed(0)
    conv = spconv.SubMConv3d(4, 8, 3, bias=False, indice_key='s')
    x = spconv.SparseConvTensor(feats, indices, shape, 1)
    out = conv(x).features
    # dense reference: the same weights, (out, k, k, k, in) -> (out, in, k..)
    c = indices[:, 1:].long()
    dense_feats = feats.detach().clone().requires_grad_(True)
    grid = torch.zeros(*shape, 4).index_put(
        (c[:, 0], c[:, 1], c[:, 2]), dense_feats).permute(3, 0, 1, 2)
    weight = conv.weight.detach().permute(0, 4, 1, 2, 3)
    ref = F.conv3d(grid[None], weight, padding=1)[0][:, c[:, 0], c[:, 1],
                                                     c[:, 2]].t()
    assert torch.allclose(out, ref, atol=1e-5)
    # backward: the input gradient goes through the scatter-add too
    g = torch.randn_like(out)
    out.backward(g)
    ref.backward(g)
    assert torch.allclose(feats.grad, dense_feats.grad, atol=1e-5)
    # repeatable
    again = conv(spconv.SparseConvTensor(feats.detach(), indices, shape,
                                         1)).features
    assert torch.equal(again, out.detach())
