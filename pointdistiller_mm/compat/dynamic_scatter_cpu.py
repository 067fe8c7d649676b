"""CPU implementation of mmcv's ``DynamicScatter`` (points -> voxels).

mmcv 2.1 implements ``dynamic_point_to_voxel_forward`` /
``dynamic_point_to_voxel_backward`` (behind ``mmcv.ops.DynamicScatter``,
``mmcv.ops.dynamic_scatter`` and mmdet3d's ``dynamic_scatter_3d`` in
``mmdet3d/models/data_preprocessors/voxelize.py``) for CUDA only, so on a
CPU-only machine ``SegVFE`` (Cylinder3D), the dynamic voxel encoders and the
cylindrical voxelization of ``Det3DDataPreprocessor`` raise
``implementation for device cpu not found``.

:func:`dynamic_point_to_voxel_forward_cpu` and
:func:`dynamic_point_to_voxel_backward_cpu` reproduce the CUDA kernels with
torch ops (``torch.unique``, ``scatter_reduce``, ``index_add``):

* points whose coordinates contain a negative entry are dropped (map ``-1``);
* output voxels are the unique coordinate rows in ascending lexicographic
  order (``torch.unique(dim=0, sorted=True)``, the call the CUDA launcher
  makes), so voxel ``i`` of one call is voxel ``i`` of any other call on the
  same coordinates: mmdet3d relies on this when it pairs the per-voxel labels
  of the preprocessor with ``SegVFE``'s voxel features;
* ``'max'`` starts from ``-inf``, ``'sum'`` / ``'mean'`` from 0 and
  ``'mean'`` divides by the point count;
* backward: ``'sum'`` copies the voxel gradient to its points, ``'mean'``
  divides it by the count, ``'max'`` gives it, per channel, to the
  lowest-index point that attains the maximum;
* the map and the counts are ``int32``, as mmcv returns them.

:func:`apply` swaps the two functions of ``mmcv._ext`` for wrappers that run
this code for CPU tensors and mmcv's kernels otherwise; mmcv's and mmdet3d's
autograd functions stay as they are and now work on CPU.
"""
from __future__ import annotations

from typing import List

import torch

from ._contexts import patch_contexts
from ._mmcv_ext import ExtPatch

PATCH_NAME = 'dynamic_scatter_cpu'
REDUCE_TYPES = ('sum', 'mean', 'max')


def _check_inputs(feats: torch.Tensor, coors: torch.Tensor,
                  reduce_type: str) -> None:
    if reduce_type not in REDUCE_TYPES:
        raise ValueError(f'reduce_type must be one of {REDUCE_TYPES}, '
                         f'got {reduce_type!r}')
    if feats.dim() != 2 or coors.dim() != 2:
        raise ValueError('feats must be (N, C) and coors (N, ndim); got '
                         f'{tuple(feats.shape)} and {tuple(coors.shape)}')
    if feats.size(0) != coors.size(0):
        raise ValueError(f'feats has {feats.size(0)} rows but coors has '
                         f'{coors.size(0)}: one coordinate row per point')
    if coors.is_floating_point():
        raise TypeError('coors must hold integer voxel indices, got '
                        f'{coors.dtype}')


def dynamic_point_to_voxel_forward_cpu(feats: torch.Tensor,
                                       coors: torch.Tensor,
                                       reduce_type: str) -> List[torch.Tensor]:
    """Reduce point features into the voxels given by ``coors``.

    Args:
        feats: (N, C) floating point features.
        coors: (N, ndim) integer voxel coordinates; a row with a negative
            entry marks a point outside the grid.
        reduce_type: ``'max'``, ``'sum'`` or ``'mean'``.

    Returns:
        ``[voxel_feats (M, C), voxel_coors (M, ndim), point2voxel_map (N,)
        int32, voxel_points_count (M,) int32]``, as mmcv's
        ``dynamic_point_to_voxel_forward``.
    """
    _check_inputs(feats, coors, reduce_type)
    num_points, num_feats = feats.shape
    if num_points == 0:
        return [feats.clone().detach(), coors.clone().detach(),
                coors.new_empty((0, ), dtype=torch.int32),
                coors.new_empty((0, ), dtype=torch.int32)]
    clean = coors.masked_fill(coors.lt(0).any(-1, keepdim=True), -1)
    out_coors, point2voxel, counts = torch.unique(
        clean, sorted=True, return_inverse=True, return_counts=True, dim=0)
    if bool(out_coors[0, 0] < 0):
        out_coors, counts = out_coors[1:], counts[1:]
        point2voxel = point2voxel - 1
    valid = point2voxel >= 0
    target = point2voxel[valid]
    src = feats[valid]
    num_voxels = out_coors.size(0)
    if reduce_type == 'max':
        voxel_feats = feats.new_full((num_voxels, num_feats), float('-inf'))
        voxel_feats.scatter_reduce_(
            0, target.unsqueeze(1).expand(-1, num_feats), src, 'amax',
            include_self=True)
    else:
        voxel_feats = feats.new_zeros((num_voxels, num_feats))
        voxel_feats.index_add_(0, target, src)
        if reduce_type == 'mean':
            voxel_feats /= counts.unsqueeze(-1).to(voxel_feats.dtype)
    return [voxel_feats, out_coors.contiguous(),
            point2voxel.to(torch.int32), counts.to(torch.int32)]


def dynamic_point_to_voxel_backward_cpu(grad_feats: torch.Tensor,
                                        grad_reduced_feats: torch.Tensor,
                                        feats: torch.Tensor,
                                        reduced_feats: torch.Tensor,
                                        coors_map: torch.Tensor,
                                        reduce_count: torch.Tensor,
                                        reduce_type: str) -> None:
    """Write the gradient of the point features into ``grad_feats``.

    Same arguments as mmcv's ``dynamic_point_to_voxel_backward``:
    ``grad_feats`` (N, C) is overwritten; ``feats``, ``reduced_feats``,
    ``coors_map`` and ``reduce_count`` come from the forward pass.
    """
    if reduce_type not in REDUCE_TYPES:
        raise ValueError(f'reduce_type must be one of {REDUCE_TYPES}, '
                         f'got {reduce_type!r}')
    grad_feats.zero_()
    num_points, num_feats = feats.shape
    num_voxels = reduced_feats.size(0)
    if num_points == 0 or num_voxels == 0:
        return
    valid = coors_map >= 0
    target = coors_map[valid].long()
    if reduce_type in ('sum', 'mean'):
        grad = grad_reduced_feats.index_select(0, target)
        if reduce_type == 'mean':
            count = reduce_count.index_select(0, target).to(grad.dtype)
            grad = grad / count.unsqueeze(-1)
        grad_feats[valid] = grad
        return
    # max: per voxel and channel, the lowest point index attaining the max.
    point_ids = torch.arange(num_points, device=feats.device)[valid]
    is_max = feats[valid] == reduced_feats.index_select(0, target)
    candidate = torch.where(is_max, point_ids.unsqueeze(1),
                            torch.full_like(point_ids, num_points)
                            .unsqueeze(1))
    reduce_from = torch.full((num_voxels, num_feats), num_points,
                             dtype=torch.long, device=feats.device)
    reduce_from.scatter_reduce_(0, target.unsqueeze(1).expand(-1, num_feats),
                                candidate, 'amin', include_self=True)
    has_source = reduce_from < num_points
    channels = torch.arange(num_feats, device=feats.device).expand_as(
        reduce_from)
    flat = reduce_from[has_source] * num_feats + channels[has_source]
    grad_feats.view(-1).index_copy_(0, flat,
                                    grad_reduced_feats[has_source].to(
                                        grad_feats.dtype))


_PATCH = ExtPatch({
    'dynamic_point_to_voxel_forward': dynamic_point_to_voxel_forward_cpu,
    'dynamic_point_to_voxel_backward': dynamic_point_to_voxel_backward_cpu,
})


def needs_patch() -> bool:
    """True when CUDA is unavailable."""
    return not torch.cuda.is_available()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return _PATCH.is_applied()


def apply(force: bool = False) -> bool:
    """Route mmcv's dynamic-scatter extension functions to the CPU code.

    Args:
        force: apply even where CUDA is available (CUDA tensors still use
            mmcv's kernels).

    Returns:
        True when the patch is in effect after the call.
    """
    if not force and not needs_patch() and not is_applied():
        return False
    return _PATCH.apply()


def remove() -> None:
    """Undo :func:`apply` (no-op when not applied)."""
    _PATCH.remove()


patched, unpatched = patch_contexts(apply, remove, is_applied)
