"""Patches that let the mmdet3d stack run on machines without CUDA.

Each patch is applied only where ``torch.cuda.is_available()`` is False, is
idempotent and can be undone (see ``README.md`` in this folder):

* ``spconv_cpu_stream`` (:mod:`.spconv_cpu`): spconv sparse-conv backward on
  CPU.
* ``kitti_rotate_iou_cpu`` (:mod:`.kitti_rotate_iou`): CPU rotated IoU for
  mmdet3d's KITTI evaluation (skipped when ``NUMBA_ENABLE_CUDASIM`` is set).
* ``minkunet_cpu_voxelize`` (:mod:`.minkunet_cpu`): MinkUNet voxelization
  (``voxel_type='minkunet'``) without ``.cuda()``.
* ``mmcv_point_ops_cpu`` (:mod:`.mmcv_point_ops`): CPU versions of mmcv's
  CUDA-only point ops (FPS, ball query, grouping, three-NN, points in boxes,
  RoI point pooling) for PointNet++ / PointRCNN.
* ``dynamic_scatter_cpu`` (:mod:`.dynamic_scatter_cpu`): mmcv's
  ``DynamicScatter`` / mmdet3d's ``dynamic_scatter_3d`` on CPU (Cylinder3D's
  ``SegVFE`` and cylindrical voxelization).
* ``mmcv_sparse_conv_cpu`` (:mod:`.mmcv_spconv_cpu`): mmcv's own sparse
  convolutions (``mmcv.ops.SubMConv3d``...) on CPU, rules from spconv 2.
* ``pfn_layer_cpu`` (:mod:`.pfn_layer_cpu`): PointPillars' ``PFNLayer`` and
  ``HardVFE``'s ``VFELayer`` with batch normalisation on contiguous rows
  (same functions, about half of a PointPillars training step faster on
  CPU).

Importing this package is cheap: nothing is compiled until first use.
"""
from __future__ import annotations

import sys
from typing import List

__all__ = ['apply_cpu_patches', 'remove_cpu_patches', 'applied_cpu_patches',
           'PATCH_MODULES']

# Modules of this package that each hold one patch (``apply``, ``remove``,
# ``is_applied``, ``PATCH_NAME``, ``patched`` / ``unpatched``).
PATCH_MODULES = ('spconv_cpu', 'kitti_rotate_iou', 'minkunet_cpu',
                 'mmcv_point_ops', 'dynamic_scatter_cpu', 'mmcv_spconv_cpu',
                 'pfn_layer_cpu')


def _cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def apply_cpu_patches() -> List[str]:
    """Apply every CPU patch this machine needs.

    Returns:
        Names of the patches in effect after the call (empty with CUDA).
    """
    if _cuda_available():
        return applied_cpu_patches()
    from . import kitti_rotate_iou, minkunet_cpu, mmcv_point_ops, spconv_cpu
    spconv_cpu.apply()
    kitti_rotate_iou.apply()
    minkunet_cpu.apply()
    mmcv_point_ops.apply()
    from . import dynamic_scatter_cpu, mmcv_spconv_cpu, pfn_layer_cpu
    dynamic_scatter_cpu.apply()
    mmcv_spconv_cpu.apply()
    pfn_layer_cpu.apply()
    return applied_cpu_patches()


def applied_cpu_patches() -> List[str]:
    """Names of the CPU patches currently in effect."""
    names = []
    for module_name in PATCH_MODULES:
        module = sys.modules.get(f'{__name__}.{module_name}')
        if module is not None and module.is_applied():
            names.append(module.PATCH_NAME)
    return names


def remove_cpu_patches() -> None:
    """Undo every CPU patch applied by :func:`apply_cpu_patches`."""
    for module_name in PATCH_MODULES:
        module = sys.modules.get(f'{__name__}.{module_name}')
        if module is not None:
            module.remove()
