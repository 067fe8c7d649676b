"""Batch size from the batch, not from the last voxel (empty scans).

mmdet3d 1.4's ``VoxelNet.extract_feat`` and ``DynamicVoxelNet.extract_feat``
compute the batch size as ``coors[-1, 0] + 1``, the batch index of the last
voxel. A scan with zero points (a dropped LiDAR frame, or a frame whose
points all fall outside the point-cloud range) then either crashes
(``IndexError`` when the whole batch is empty, e.g. validation at batch 1)
or, when it is the last sample of a training batch, silently shrinks the
BEV batch so features and labels no longer line up. The patched methods take
the batch size from the number of point clouds in the batch (the data
preprocessor's ``points`` list) and are otherwise mmdet3d's code. An empty
scan then gives an all-zero BEV map: no detections, finite losses.

A batch without any voxel (an empty scan at batch size 1) is one more case:
spconv's sparse convolutions refuse empty tensors (SECOND's
``SparseEncoder``). There, ``VoxelNet.extract_feat`` runs the voxel and
middle encoders (in eval mode, so BatchNorm statistics do not move) on one
all-zero voxel and multiplies the middle encoder's
BEV output by zero, so every later layer sees the all-zero map of an empty
scan and the computation graph stays connected.
"""
import contextlib
from typing import Iterator, Tuple

from torch import Tensor, nn

from mmdet3d.models.detectors import DynamicVoxelNet, VoxelNet

PATCH_NAME = 'empty_scan_batch_size'
_ORIGINAL = {}


def batch_size_of(batch_inputs_dict: dict) -> int:
    """Samples in the batch: the point clouds, else the last voxel's index."""
    points = batch_inputs_dict.get('points')
    if points is not None:
        return len(points)
    return int(batch_inputs_dict['voxels']['coors'][-1, 0].item()) + 1


@contextlib.contextmanager
def _frozen_statistics(*modules: nn.Module, active: bool) -> Iterator[None]:
    """Eval mode for a while (the dummy voxel must not touch BatchNorm
    statistics, and BatchNorm refuses one value per channel in training)."""
    modes = [m.training for m in modules]
    if active:
        for m in modules:
            m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes):
            m.train(mode)


def voxelnet_extract_feat(self: VoxelNet,
                          batch_inputs_dict: dict) -> Tuple[Tensor]:
    """``VoxelNet.extract_feat`` with the batch size of the batch."""
    voxel_dict = batch_inputs_dict['voxels']
    voxels, num_points, coors = (voxel_dict['voxels'],
                                 voxel_dict['num_points'],
                                 voxel_dict['coors'])
    empty = coors.shape[0] == 0
    if empty:  # one all-zero voxel of sample 0; its output is zeroed below
        voxels = voxels.new_zeros((1, ) + tuple(voxels.shape[1:]))
        num_points = num_points.new_ones(1)
        coors = coors.new_zeros((1, coors.shape[1]))
    with _frozen_statistics(self.voxel_encoder, self.middle_encoder,
                            active=empty):
        voxel_features = self.voxel_encoder(voxels, num_points, coors)
        x = self.middle_encoder(voxel_features, coors,
                                batch_size_of(batch_inputs_dict))
    if empty:
        x = x * 0
    x = self.backbone(x)
    if self.with_neck:
        x = self.neck(x)
    return x


def dynamic_voxelnet_extract_feat(self: DynamicVoxelNet,
                                  batch_inputs_dict: dict) -> Tuple[Tensor]:
    """``DynamicVoxelNet.extract_feat`` with the batch size of the batch."""
    voxel_dict = batch_inputs_dict['voxels']
    voxel_features, feature_coors = self.voxel_encoder(
        voxel_dict['voxels'], voxel_dict['coors'])
    x = self.middle_encoder(voxel_features, feature_coors,
                            batch_size_of(batch_inputs_dict))
    x = self.backbone(x)
    if self.with_neck:
        x = self.neck(x)
    return x


def apply() -> list:
    """Install the patched methods (idempotent)."""
    if _ORIGINAL:
        return [PATCH_NAME]
    _ORIGINAL[VoxelNet] = VoxelNet.extract_feat
    _ORIGINAL[DynamicVoxelNet] = DynamicVoxelNet.extract_feat
    VoxelNet.extract_feat = voxelnet_extract_feat
    DynamicVoxelNet.extract_feat = dynamic_voxelnet_extract_feat
    return [PATCH_NAME]


def remove() -> None:
    """Restore mmdet3d's methods."""
    for cls, fn in _ORIGINAL.items():
        cls.extract_feat = fn
    _ORIGINAL.clear()
