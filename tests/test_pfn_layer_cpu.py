"""pointdistiller_mm.compat.pfn_layer_cpu: PFNLayer and VFELayer on
contiguous rows give mmdet3d's outputs, gradients and running statistics."""
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
    original = pfn_layer_cpu._state.get('PFNLayer')
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
    _assert_same(got, want)


_NAMES = ('output', 'input grad', 'linear weight grad', 'norm weight grad',
          'running mean', 'running var')


def _assert_same(got, want):
    for name, a, b in zip(_NAMES, got, want):
        assert a.shape == b.shape, name
        # float rounding: sums over 37 x 32 rows in another order
        atol = 1e-5 * float(b.abs().max()) + 1e-7
        torch.testing.assert_close(a, b, rtol=1e-4, atol=atol, msg=name)


@pytest.mark.parametrize('max_out,cat_max,norm', [
    (True, True, 'BN1d'), (True, False, 'BN1d'), (False, False, 'BN1d'),
    (True, True, 'naiveSyncBN1d')])
def test_vfe_rows_forward_matches_mmdet3d(max_out, cat_max, norm):
    from mmdet3d.models.voxel_encoders.utils import VFELayer
    original = pfn_layer_cpu._state.get('VFELayer', VFELayer.forward)
    torch.manual_seed(0)
    ours = VFELayer(10, 64, norm_cfg=dict(type=norm, eps=1e-3, momentum=0.01),
                    max_out=max_out, cat_max=cat_max)
    with torch.no_grad():
        ours.norm.weight.uniform_(0.5, 1.5)
        ours.norm.bias.uniform_(-0.2, 0.2)
    theirs = copy.deepcopy(ours)
    torch.manual_seed(1)
    inputs = torch.randn(29, 32, 10)
    inputs[:, 18:] = 0  # padded points

    def forward(fn):
        return lambda layer, x, num_voxels, distance: fn(layer, x)

    got = _run(ours, forward(pfn_layer_cpu.vfe_forward), inputs, None, None)
    want = _run(theirs, forward(original), inputs, None, None)
    _assert_same(got, want)


def test_applied_on_cpu_and_removable():
    from mmdet3d.models.voxel_encoders.utils import PFNLayer, VFELayer
    if torch.cuda.is_available():
        pytest.skip('the patch is for CPU-only machines')
    assert 'pfn_layer_cpu' in pointdistiller_mm.CPU_PATCHES
    assert PFNLayer.forward is pfn_layer_cpu.pfn_forward
    assert VFELayer.forward is pfn_layer_cpu.vfe_forward
    with pfn_layer_cpu.unpatched():
        assert PFNLayer.forward is not pfn_layer_cpu.pfn_forward
        assert VFELayer.forward is not pfn_layer_cpu.vfe_forward
        assert not pfn_layer_cpu.is_applied()
    assert PFNLayer.forward is pfn_layer_cpu.pfn_forward
    assert VFELayer.forward is pfn_layer_cpu.vfe_forward
    assert pfn_layer_cpu.apply()  # idempotent
