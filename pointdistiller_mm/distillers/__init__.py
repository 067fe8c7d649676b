"""Distiller model wrappers and their per-architecture row builders."""
from .distiller3d import Distiller3D
from .early_exit import EarlyExit
from .rows import (AnchorHeadRows, BEVRows, FeaturePair, PointRows,
                   VoxelRows, anchor_rows, bev_map_rows)
from .teacher import (TeacherCheckpointError, VoxelizationMismatchError,
                      build_teacher, check_same_voxelization,
                      load_teacher_checkpoint)

__all__ = [
    'Distiller3D', 'EarlyExit', 'VoxelRows', 'BEVRows', 'PointRows',
    'FeaturePair',
    'AnchorHeadRows', 'bev_map_rows', 'anchor_rows', 'build_teacher',
    'load_teacher_checkpoint', 'check_same_voxelization',
    'TeacherCheckpointError', 'VoxelizationMismatchError'
]
