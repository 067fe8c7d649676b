"""Rows builders for sparse segmentors (MinkUNet): recorded outputs ->
loss keyword arguments with per-row voxel coordinates.

Registered in ``TASK_UTILS`` and called by ``Distiller3D`` as
``builder(student, teacher, inputs, context)``.
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from mmdet3d.registry import TASK_UTILS
from torch import Tensor

__all__ = ['SparseRows', 'VoxelLogitRows', 'sparse_features_and_coords']


def sparse_features_and_coords(x: Any) -> Tuple[Tensor, Tensor]:
    """``(features (N, C), integer coordinates (N, D))`` of a sparse tensor:
    spconv's ``SparseConvTensor`` (``features`` / ``indices``, batch index
    first), or torchsparse / MinkowskiEngine tensors (``F`` / ``C``)."""
    if hasattr(x, 'features') and hasattr(x, 'indices'):
        return x.features, x.indices
    if hasattr(x, 'F') and hasattr(x, 'C'):
        return x.F, x.C
    raise TypeError(
        f'expected a sparse tensor (spconv SparseConvTensor, torchsparse or '
        f'MinkowskiEngine SparseTensor), got {type(x).__name__}; record the '
        'output of a sparse module (e.g. backbone.encoder.3) without an index')


@TASK_UTILS.register_module()
class SparseRows:
    """Rows of two recorded sparse tensors with their own coordinates
    (MinkUNet encoder / decoder feature maps). The loss pairs the rows by
    coordinates."""

    def __call__(self, student: Any, teacher: Any, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        s_feats, s_coords = sparse_features_and_coords(student)
        t_feats, t_coords = sparse_features_and_coords(teacher)
        return dict(student_feats=s_feats, teacher_feats=t_feats,
                    student_coords=s_coords, teacher_coords=t_coords)


@TASK_UTILS.register_module()
class VoxelLogitRows:
    """Voxel logits ``(N, K)`` of both models (MinkUNet's
    ``decode_head.conv_seg`` output), one row per voxel of the shared
    voxelized batch, so both sides take ``inputs['voxels']['coors']`` as
    their coordinates."""

    def __call__(self, student: Tensor, teacher: Tensor, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        voxels = inputs.get('voxels')
        if voxels is None or 'coors' not in voxels:
            raise KeyError('VoxelLogitRows needs the voxelized batch '
                           "(inputs['voxels']['coors']); the student has no "
                           'voxelizing data preprocessor')
        coors = voxels['coors']
        for side, logits in (('student', student), ('teacher', teacher)):
            if not isinstance(logits, Tensor) or logits.dim() != 2 or \
                    logits.shape[0] != coors.shape[0]:
                shape = tuple(logits.shape) if isinstance(
                    logits, Tensor) else type(logits).__name__
                raise ValueError(
                    f'{side} logits {shape} are not one row per voxel of the '
                    f'batch ({coors.shape[0]} voxels); record '
                    "'decode_head.conv_seg' (voxel logits)")
        return dict(student_feats=student, teacher_feats=teacher,
                    student_coords=coors, teacher_coords=coors)
