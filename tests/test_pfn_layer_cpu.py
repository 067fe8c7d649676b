"""pointdistiller_mm.compat.pfn_layer_cpu: PFNLayer on contiguous rows gives
mmdet3d's outputs, gradients and running statistics."""
import copy

import pytest
import torch

import pointdistiller_mm
from pointdistiller_mm.compat import pfn_layer_cpu


def _pair(last_layer: bool, mode: str = 'max'):
    from mmdet3d.models.voxel_encoders.utils import PFNLayer
    torch.manual_seed(0)
    layer = PFNLayer(10, 64, last_layer=last_layer, mode=mode)
    with torch.no_grad():
        layer.norm.weight.uniform_(0.5, 1.5)
        layer.norm.bias.uniform_(-0.2, 0.2)
    return layer, copy.deepcopy(layer)


def _run(layer, forward, inputs, num_voxels, distance):
    x = inputs.clone().requires_grad_(True)
    out = forward(layer, x, num_voxels, distance)
    # a fixed, non-uniform upstream gradient
    weights = torch.linspace(-1.0, 2.0, out.numel()).view_as(out)
    (out * weights).sum().backward()
    return out.detach(), x.grad, layer.linear.weight.grad, \
        layer.norm.weight.grad, layer.norm.running_mean.clone(), \
        layer.norm.running_var.clone()


@pytest.mark.parametrize('last_layer,mode,with_distance', [
    (True, 'max', False), (False, 'max', False), (True, 'avg', False),
    (True, 'max', True)])
def test_rows_forward_matches_mmdet3d(last_layer, mode, with_distance):
    original = pfn_layer_cpu._state.get('original')
    if original is None:
        from mmdet3d.models.voxel_encoders.utils import PFNLayer
        original = PFNLayer.forward
    ours, theirs = _pair(last_layer, mode)
    torch.manual_seed(1)
    inputs = torch.randn(37, 32, 10)
    inputs[:, 20:] = 0  # padded points, as in a real pillar tensor
    num_voxels = torch.randint(1, 33, (37,))
    distance = torch.rand(37, 32) if with_distance else None
    got = _run(ours, pfn_layer_cpu.pfn_forward, inputs, num_voxels, distance)
    want = _run(theirs, original, inputs, num_voxels, distance)
    names = ('output', 'input grad', 'linear weight grad', 'norm weight grad',
             'running mean', 'running var')
    for name, a, b in zip(names, got, want):
        assert a.shape == b.shape, name
        # float rounding: sums over 37 x 32 rows in another order
        atol = 1e-5 * float(b.abs().max()) + 1e-7
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol, msg=name)


def test_applied_on_cpu_and_removable():
    from mmdet3d.models.voxel_encoders.utils import PFNLayer
    if torch.cuda.is_available():
        pytest.skip('the patch is for CPU-only machines')
    assert 'pfn_layer_cpu' in pointdistiller_mm.CPU_PATCHES
    assert PFNLayer.forward is pfn_layer_cpu.pfn_forward
    with pfn_layer_cpu.unpatched():
        assert PFNLayer.forward is not pfn_layer_cpu.pfn_forward
        assert not pfn_layer_cpu.is_applied()
    assert PFNLayer.forward is pfn_layer_cpu.pfn_forward
    assert pfn_layer_cpu.apply()  # idempotent
