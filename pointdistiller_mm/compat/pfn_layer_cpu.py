"""Faster ``PFNLayer`` / ``VFELayer`` forwards (mmdet3d's pillar and voxel
point MLPs) on CPU.

mmdet3d's ``PFNLayer`` (PointPillars' ``PillarFeatureNet``) and ``VFELayer``
(``HardVFE``, the nuScenes PointPillars encoder) run ``linear -> permute ->
BatchNorm1d -> permute -> ReLU`` on the (pillars, points per pillar,
channels) tensor. On CPU two
of these steps take most of a PointPillars training step although they do
little arithmetic (demo teacher, one thread, 4,049 pillars x 32 points x 64
channels, ``torch.profiler``):

* ``BatchNorm1d`` on the permuted (N, C, M) tensor with M = 32: forward
  177 ms and backward 379 ms, where the same statistics over the
  contiguous (N * M, C) rows take a quarter of that;
* the linear layer's weight gradient, ``grad.t() @ x`` with a long
  reduction over N * M rows and a 10-channel input: 110 ms, where the
  transposed product ``(x.t() @ grad).t()`` takes 9 ms (MKL's kernel
  choice for this shape).

On the nuScenes demo teacher (``HardVFE``, two ``VFELayer``, one thread)
a training step takes 1.95 s of CPU time with the rows forward, 3.12 s
without (``tools/analysis/bench_point_ops.py --step``).

:func:`pfn_forward` and :func:`vfe_forward` compute the same functions:
batch normalisation over the (N * M, C) rows uses the statistics of the
(N, C, M) tensor (mean and variance over every dimension but C, the running
variance's unbiased factor from the same N * M count), and the weight
gradient is the same product, transposed. Results equal mmdet3d's up to
float rounding (``tests/test_pfn_layer_cpu.py``). :func:`apply` installs
them on ``PFNLayer`` and ``VFELayer`` where CUDA is absent; GPU runs keep
mmdet3d's code. ``HardVFE``'s ``naiveSyncBN1d`` accepts the (rows, C)
input too and, across processes, reduces the same per-channel statistics.
"""
from __future__ import annotations

from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from ._contexts import patch_contexts

PATCH_NAME = 'pfn_layer_cpu'

# layer name -> mmdet3d's forward while the patch is in effect.
_state: Dict[str, Callable] = {}


class _RowLinear(torch.autograd.Function):
    """``x @ weight.t()`` for (rows, in) ``x``, with the weight gradient
    computed as ``(x.t() @ grad).t()``."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor) -> Tensor:
        ctx.save_for_backward(x, weight)
        return x.mm(weight.t())

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad.mm(weight) if ctx.needs_input_grad[0] else None
        grad_w = x.t().mm(grad).t() if ctx.needs_input_grad[1] else None
        return grad_x, grad_w


def _linear_rows(linear: torch.nn.Linear, rows: Tensor) -> Tensor:
    if linear.bias is not None or rows.is_cuda:
        return linear(rows)
    return _RowLinear.apply(rows, linear.weight)


def pfn_forward(self,
                inputs: Tensor,
                num_voxels: Optional[Tensor] = None,
                aligned_distance: Optional[Tensor] = None) -> Tensor:
    """``PFNLayer.forward`` on rows: same arguments and result."""
    n, m, c_in = inputs.shape
    rows = _linear_rows(self.linear, inputs.reshape(n * m, c_in))
    x = F.relu(self.norm(rows)).view(n, m, -1)
    if aligned_distance is not None:
        x = x.mul(aligned_distance.unsqueeze(-1))
    if self.mode == 'max':
        x_max = torch.max(x, dim=1, keepdim=True)[0]
    else:  # 'avg'
        x_max = x.sum(dim=1, keepdim=True) / num_voxels.type_as(
            inputs).view(-1, 1, 1)
    if self.last_vfe:
        return x_max
    x_repeat = x_max.repeat(1, m, 1)
    return torch.cat([x, x_repeat], dim=2)


def vfe_forward(self, inputs: Tensor) -> Tensor:
    """``VFELayer.forward`` on rows: same argument and result."""
    n, m, c_in = inputs.shape
    rows = _linear_rows(self.linear, inputs.reshape(n * m, c_in))
    pointwise = F.relu(self.norm(rows)).view(n, m, -1)
    if not self.max_out:
        return pointwise
    aggregated = torch.max(pointwise, dim=1, keepdim=True)[0]
    if not self.cat_max:
        return aggregated.squeeze(1)
    return torch.cat([pointwise, aggregated.repeat(1, m, 1)], dim=2)


def _layer_forwards() -> Dict[str, tuple]:
    """Layer name -> (mmdet3d class, forward on rows)."""
    from mmdet3d.models.voxel_encoders.utils import PFNLayer, VFELayer
    return {'PFNLayer': (PFNLayer, pfn_forward),
            'VFELayer': (VFELayer, vfe_forward)}


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def apply(force: bool = False) -> bool:
    """Install :func:`pfn_forward` on ``PFNLayer`` and :func:`vfe_forward`
    on ``VFELayer`` (idempotent).

    Args:
        force: apply even where CUDA is available.

    Returns:
        Whether the patch is in effect after the call.
    """
    if _state:
        return True
    if torch.cuda.is_available() and not force:
        return False
    for name, (cls, forward) in _layer_forwards().items():
        _state[name] = cls.forward
        cls.forward = forward
    return True


def remove() -> None:
    """Restore mmdet3d's forwards (no-op when not applied)."""
    for name, (cls, _) in _layer_forwards().items():
        if name in _state:
            cls.forward = _state.pop(name)


patched, unpatched = patch_contexts(apply, remove, is_applied)
