"""Tests of the CPU ``DynamicScatter`` patch (``compat.dynamic_scatter_cpu``).

Outputs, maps and gradients are compared with a plain Python loop over the
voxels, on small random inputs, through mmcv's and mmdet3d's own entry points.
"""
from typing import Dict, List, Tuple

import pytest
import torch

from pointdistiller_mm.compat import dynamic_scatter_cpu

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the patch targets CPU-only machines')


def _reference(feats: torch.Tensor, coors: torch.Tensor, reduce: str
               ) -> Tuple[torch.Tensor, torch.Tensor, List[int], List[int]]:
    """Loop reference: voxels in sorted coordinate order, -1 for dropped."""
    groups: Dict[tuple, List[int]] = {}
    for i, row in enumerate(coors.tolist()):
        if min(row) < 0:
            continue
        groups.setdefault(tuple(row), []).append(i)
    keys = sorted(groups)
    out = []
    for key in keys:
        rows = feats[groups[key]]
        if reduce == 'max':
            out.append(rows.max(0).values)
        elif reduce == 'sum':
            out.append(rows.sum(0))
        else:
            out.append(rows.mean(0))
    mapping = [-1] * len(coors)
    for v, key in enumerate(keys):
        for i in groups[key]:
            mapping[i] = v
    return (torch.stack(out), torch.tensor(keys, dtype=coors.dtype), mapping,
            [len(groups[k]) for k in keys])


def _inputs(num=40, channels=3, grid=3, ndim=3, seed=0, dtype=torch.float32,
            negatives=4):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(num, channels, generator=gen, dtype=dtype)
    coors = torch.randint(0, grid, (num, ndim), generator=gen,
                          dtype=torch.int32)
    coors[:negatives, torch.randint(0, ndim, (1, ), generator=gen)] = -1
    return feats, coors


def test_unpatched_cpu_has_no_kernel():
    from mmcv.ops import dynamic_scatter
    feats, coors = _inputs()
    with dynamic_scatter_cpu.unpatched():
        with pytest.raises(RuntimeError, match='cpu'):
            dynamic_scatter(feats, coors, 'mean')


@pytest.mark.parametrize('reduce', ['mean', 'max', 'sum'])
def test_forward_matches_loop_reference(reduce):
    feats, coors = _inputs()
    with dynamic_scatter_cpu.patched():
        voxel_feats, voxel_coors, mapping, counts = \
            dynamic_scatter_cpu.dynamic_point_to_voxel_forward_cpu(
                feats, coors, reduce)
    ref_feats, ref_coors, ref_map, ref_counts = _reference(
        feats, coors, reduce)
    torch.testing.assert_close(voxel_feats, ref_feats)
    assert torch.equal(voxel_coors, ref_coors)
    assert mapping.dtype == torch.int32 and counts.dtype == torch.int32
    assert mapping.tolist() == ref_map
    assert counts.tolist() == ref_counts


@pytest.mark.parametrize('average', [True, False])
def test_mmcv_module_single_and_batched(average):
    from mmcv.ops import DynamicScatter
    feats, coors = _inputs(num=60, negatives=0)
    batch = torch.cat([torch.tensor([0] * 25 + [1] * 35,
                                    dtype=torch.int32)[:, None], coors], 1)
    scatter = DynamicScatter([1, 1, 1], [0, 0, 0, 3, 3, 3], average)
    reduce = 'mean' if average else 'max'
    with dynamic_scatter_cpu.patched():
        single = scatter(feats, coors)
        batched = scatter(feats, batch)
    ref_feats, ref_coors, _, _ = _reference(feats, coors, reduce)
    torch.testing.assert_close(single[0], ref_feats)
    assert torch.equal(single[1], ref_coors)
    ref_b_feats, ref_b_coors, _, _ = _reference(feats, batch, reduce)
    torch.testing.assert_close(batched[0], ref_b_feats)
    assert torch.equal(batched[1], ref_b_coors)


def test_mmdet3d_dynamic_scatter_3d_returns_map():
    from mmdet3d.models.data_preprocessors.voxelize import dynamic_scatter_3d
    feats, coors = _inputs(negatives=0)
    with dynamic_scatter_cpu.patched():
        voxel_feats, voxel_coors, mapping = dynamic_scatter_3d(
            feats, coors, 'mean', True)
    # The map sends every point to the voxel with its own coordinates.
    assert torch.equal(voxel_coors[mapping.long()], coors)
    torch.testing.assert_close(voxel_feats, _reference(feats, coors,
                                                       'mean')[0])


@pytest.mark.parametrize('reduce', ['mean', 'max', 'sum'])
def test_gradcheck_float64(reduce):
    from mmcv.ops import dynamic_scatter
    feats, coors = _inputs(num=24, channels=2, grid=2, dtype=torch.float64)
    feats.requires_grad_(True)
    with dynamic_scatter_cpu.patched():
        assert torch.autograd.gradcheck(
            lambda f: dynamic_scatter(f, coors, reduce)[0], (feats, ))


def test_max_gradient_goes_to_lowest_index_on_ties():
    from mmcv.ops import dynamic_scatter
    feats = torch.tensor([[1.0, 5.0], [3.0, 5.0], [3.0, 2.0], [7.0, 0.0]],
                         requires_grad=True)
    coors = torch.tensor([[0, 0], [0, 0], [0, 0], [1, 0]], dtype=torch.int32)
    with dynamic_scatter_cpu.patched():
        out, _ = dynamic_scatter(feats, coors, 'max')
        out.backward(torch.tensor([[10.0, 20.0], [30.0, 40.0]]))
    assert out.tolist() == [[3.0, 5.0], [7.0, 0.0]]
    # channel 0: points 1 and 2 tie at 3 -> point 1; channel 1: 0 and 1 -> 0.
    assert feats.grad.tolist() == [[0, 20], [10, 0], [0, 0], [30, 40]]


def test_mean_gradient_and_dropped_points():
    from mmcv.ops import dynamic_scatter
    feats = torch.ones(4, 1, requires_grad=True)
    coors = torch.tensor([[0, 0], [0, 0], [-1, 2], [1, 1]], dtype=torch.int32)
    with dynamic_scatter_cpu.patched():
        out, out_coors = dynamic_scatter(feats, coors, 'mean')
        out.sum().backward()
    assert out_coors.tolist() == [[0, 0], [1, 1]]
    assert feats.grad.flatten().tolist() == [0.5, 0.5, 0.0, 1.0]


def test_empty_input():
    feats, coors = torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int32)
    out = dynamic_scatter_cpu.dynamic_point_to_voxel_forward_cpu(
        feats, coors, 'max')
    assert [t.shape[0] for t in out] == [0, 0, 0, 0]


def test_bad_reduce_type_names_the_options():
    feats, coors = _inputs()
    with pytest.raises(ValueError, match="'sum', 'mean', 'max'"):
        dynamic_scatter_cpu.dynamic_point_to_voxel_forward_cpu(
            feats, coors, 'median')


def test_apply_is_idempotent_and_removable():
    import mmcv._ext as ext
    with dynamic_scatter_cpu.unpatched():
        original = ext.dynamic_point_to_voxel_forward
        assert dynamic_scatter_cpu.apply(force=True)
        wrapper = ext.dynamic_point_to_voxel_forward
        assert wrapper is not original
        assert dynamic_scatter_cpu.apply(force=True)
        assert ext.dynamic_point_to_voxel_forward is wrapper
        dynamic_scatter_cpu.remove()
        assert ext.dynamic_point_to_voxel_forward is original
        assert not dynamic_scatter_cpu.is_applied()


def test_applied_on_package_import():
    import pointdistiller_mm
    from pointdistiller_mm.compat import applied_cpu_patches
    assert 'dynamic_scatter_cpu' in pointdistiller_mm.CPU_PATCHES
    assert 'mmcv_sparse_conv_cpu' in pointdistiller_mm.CPU_PATCHES
    assert dynamic_scatter_cpu.is_applied()
    assert 'dynamic_scatter_cpu' in applied_cpu_patches()
