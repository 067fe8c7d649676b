"""Rows of a voxel segmentor (Cylinder3D): voxel features matched by
coordinates, and the point -> voxel-row map of the batch."""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS

__all__ = ['Cylinder3DRows', 'linear_keys', 'sparse_parts']


def sparse_parts(record: Any, side: str) -> Tuple[Tensor, Tensor]:
    """``(features (M, C), indices (M, 4))`` of a recorded sparse tensor
    (mmcv / spconv ``SparseConvTensor``) or of a ``dict`` with those keys."""
    if isinstance(record, Mapping):
        feats, idx = record.get('features'), record.get('indices')
    else:
        feats = getattr(record, 'features', None)
        idx = getattr(record, 'indices', None)
    if not isinstance(feats, Tensor) or not isinstance(idx, Tensor):
        raise TypeError(
            f'Cylinder3DRows needs the whole sparse tensor of the {side} '
            f'(features and indices), got {type(record).__name__}; record a '
            "sparse module's output without an index (e.g. source="
            "'backbone' or 'decode_head.conv_seg')")
    return feats, idx


def linear_keys(coors: Tensor, dims: Tensor) -> Tensor:
    """One int64 key per row of integer coordinates ``(N, D)`` given the
    extent of each column ``dims (D,)`` (row-major)."""
    coors = coors.long()
    key = torch.zeros(coors.shape[0], dtype=torch.long, device=coors.device)
    for d in range(coors.shape[1]):
        key = key * int(dims[d]) + coors[:, d]
    return key


def _lookup(sorted_keys: Tensor, order: Tensor, query: Tensor,
            what: str) -> Tensor:
    """Rows (in the unsorted order) whose key equals each query key."""
    pos = torch.searchsorted(sorted_keys, query).clamp(
        max=max(sorted_keys.numel() - 1, 0))
    if query.numel() and (sorted_keys.numel() == 0
                          or not torch.equal(sorted_keys[pos], query)):
        raise ValueError(
            f'{what}: some voxels have no counterpart. The teacher and the '
            'student must see the same voxels (same data_preprocessor '
            'voxelization; record sparse tensors at full resolution, e.g. the '
            'backbone output or the decode head logits)')
    return order[pos]


@TASK_UTILS.register_module()
class Cylinder3DRows:
    """Voxel rows of a Cylinder3D-style segmentor for the PVD losses.

    Both recordings are sparse tensors at the input voxel resolution
    (``backbone`` output = the decode head's input features, or
    ``decode_head.conv_seg`` output = voxel logits). Teacher rows are
    matched to student rows by their ``(batch, rho, phi, z)`` coordinates,
    never by row order. Each point of the batch is mapped to its voxel row
    through the per-point voxel coordinates of the data preprocessor
    (``inputs['voxels']['coors']``).

    Returns the loss keyword arguments ``student_feats (M, Cs)``,
    ``teacher_feats (M, Ct)``, ``voxel_coors (M, 4)``, ``point2voxel (P,)``
    (row of each point), ``point_range (P,)`` (distance of each point from
    the sensor in the x-y plane, metres) and ``batch_size``.
    """

    def __call__(self, student: Any, teacher: Any, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        s_feat, s_idx = sparse_parts(student, 'student')
        t_feat, t_idx = sparse_parts(teacher, 'teacher')
        voxels = inputs.get('voxels')
        if voxels is None or 'coors' not in voxels:
            raise KeyError('Cylinder3DRows needs the voxelized batch '
                           "(inputs['voxels']['coors']); the student needs a "
                           'voxelizing Det3DDataPreprocessor')
        p_coors = voxels['coors'].long()
        s_idx, t_idx = s_idx.long(), t_idx.long()
        allc = torch.cat([s_idx, t_idx, p_coors], 0)
        dims = allc.max(0).values + 1 if allc.numel() else torch.ones(
            4, dtype=torch.long)
        s_key = linear_keys(s_idx, dims)
        t_key = linear_keys(t_idx, dims)
        if t_key.numel() != s_key.numel():
            raise ValueError(
                f'student has {s_key.numel()} voxels, teacher '
                f'{t_key.numel()}: record both at the input voxel '
                'resolution with the same voxelization')
        t_sorted, t_order = torch.sort(t_key)
        teacher_rows = t_feat[_lookup(t_sorted, t_order, s_key,
                                      'teacher rows')]
        s_sorted, s_order = torch.sort(s_key)
        point2voxel = _lookup(s_sorted, s_order, linear_keys(p_coors, dims),
                              'point to voxel map')
        points = torch.cat([p[:, :2] for p in inputs['points']], 0)
        point_range = points.float().norm(dim=1)
        return dict(student_feats=s_feat, teacher_feats=teacher_rows,
                    voxel_coors=s_idx, point2voxel=point2voxel,
                    point_range=point_range,
                    batch_size=context['batch_size'])
