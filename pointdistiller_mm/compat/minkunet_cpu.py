"""MinkUNet voxelization (``voxel_type='minkunet'``) on CPU-only machines.

``Det3DDataPreprocessor.voxelize`` in mmdet3d 1.4 moves the point-to-voxel
map and the kept voxel indices to the GPU unconditionally in its
``'minkunet'`` branch::

    point2voxel_map = torch.from_numpy(point2voxel_map).cuda()
    ...
    inds = torch.from_numpy(inds).cuda()

so every MinkUNet config (training, validation and test) fails on a machine
without CUDA with ``AssertionError: Torch not compiled with CUDA enabled``.

The patch wraps ``Det3DDataPreprocessor.voxelize``: for
``voxel_type='minkunet'`` it runs :func:`minkunet_voxelize`, mmdet3d's
branch with the two tensors put on the points' device instead of
``.cuda()`` (same rounding, ``sparse_quantize`` on the same hash, same
``max_voxels`` subsampling with ``np.random.choice``, same fields written
into the data samples); every other ``voxel_type`` goes to mmdet3d's method
unchanged.
"""
from __future__ import annotations

from typing import Callable, Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._contexts import patch_contexts

PATCH_NAME = 'minkunet_cpu_voxelize'

# 'original' while the patch is in effect.
_state: Dict[str, Callable] = {}


def needs_patch() -> bool:
    """True when CUDA is unavailable."""
    return not torch.cuda.is_available()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def minkunet_voxelize(preprocessor, points: List[Tensor],
                      data_samples: list) -> Dict[str, Tensor]:
    """mmdet3d's ``'minkunet'`` voxelization, on the points' device.

    Each point is put into the voxel ``round(xyz / voxel_size)`` (shifted so
    the scan's minimum is 0); one point per voxel is kept (the first in
    ``np.unique`` order of mmdet3d's ravel hash), at most ``max_voxels`` of
    them in training (a random subset). Writes ``voxel_semantic_mask``,
    ``batch_idx`` and ``point2voxel_map`` into each data sample, as mmdet3d
    does.

    Returns:
        ``dict(voxels=(M, C) kept points, coors=(M, 4) int)`` with the batch
        index first (``batch_first=True``) or last.
    """
    voxels, coors = [], []
    voxel_size = points[0].new_tensor(preprocessor.voxel_layer.voxel_size)
    for i, (res, data_sample) in enumerate(zip(points, data_samples)):
        device = res.device
        res_coors = torch.round(res[:, :3] / voxel_size).int()
        res_coors -= res_coors.min(0)[0]

        res_coors_numpy = res_coors.cpu().numpy()
        inds, point2voxel_map = preprocessor.sparse_quantize(
            res_coors_numpy, return_index=True, return_inverse=True)
        point2voxel_map = torch.from_numpy(point2voxel_map).to(device)
        if preprocessor.training and preprocessor.max_voxels is not None:
            if len(inds) > preprocessor.max_voxels:
                inds = np.random.choice(
                    inds, preprocessor.max_voxels, replace=False)
        inds = torch.from_numpy(inds).to(device)
        if hasattr(data_sample.gt_pts_seg, 'pts_semantic_mask'):
            data_sample.gt_pts_seg.voxel_semantic_mask = \
                data_sample.gt_pts_seg.pts_semantic_mask[inds]
        res_voxel_coors = res_coors[inds]
        res_voxels = res[inds]
        if preprocessor.batch_first:
            res_voxel_coors = F.pad(
                res_voxel_coors, (1, 0), mode='constant', value=i)
            data_sample.batch_idx = res_voxel_coors[:, 0]
        else:
            res_voxel_coors = F.pad(
                res_voxel_coors, (0, 1), mode='constant', value=i)
            data_sample.batch_idx = res_voxel_coors[:, -1]
        data_sample.point2voxel_map = point2voxel_map.long()
        voxels.append(res_voxels)
        coors.append(res_voxel_coors)
    return dict(voxels=torch.cat(voxels, dim=0), coors=torch.cat(coors, dim=0))


def _make_wrapper(original: Callable) -> Callable:

    @torch.no_grad()
    def voxelize(self, points: List[Tensor],
                 data_samples: list) -> Dict[str, Tensor]:
        """``Det3DDataPreprocessor.voxelize``; the ``'minkunet'`` branch
        without ``.cuda()`` (see :mod:`pointdistiller_mm.compat.minkunet_cpu`).
        """
        if self.voxel_type == 'minkunet':
            return minkunet_voxelize(self, points, data_samples)
        return original(self, points, data_samples)

    voxelize.__wrapped__ = original  # type: ignore[attr-defined]
    return voxelize


def _preprocessor_cls():
    from mmdet3d.models.data_preprocessors import Det3DDataPreprocessor
    return Det3DDataPreprocessor


def apply(force: bool = False) -> bool:
    """Install the CPU-safe ``voxelize`` (idempotent).

    Args:
        force: apply even where CUDA is available.

    Returns:
        True when the patch is in effect after the call.
    """
    if _state:
        return True
    if not force and not needs_patch():
        return False
    cls = _preprocessor_cls()
    original = cls.voxelize
    cls.voxelize = _make_wrapper(original)
    _state['original'] = original
    return True


def remove() -> None:
    """Restore mmdet3d's ``voxelize`` (no-op when not applied)."""
    if not _state:
        return
    _preprocessor_cls().voxelize = _state.pop('original')


patched, unpatched = patch_contexts(apply, remove, is_applied)
