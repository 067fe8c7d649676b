"""Distiller model wrappers and their per-architecture row builders."""
from .distiller3d import Distiller3D
from .rows import BEVRows, FeaturePair, PointRows, VoxelRows, bev_map_rows
from .teacher import (TeacherCheckpointError, VoxelizationMismatchError,
                      build_teacher, check_same_voxelization,
                      load_teacher_checkpoint)

__all__ = [
    'Distiller3D', 'VoxelRows', 'BEVRows', 'PointRows', 'FeaturePair',
    'bev_map_rows', 'build_teacher', 'load_teacher_checkpoint',
    'check_same_voxelization', 'TeacherCheckpointError',
    'VoxelizationMismatchError'
]
