"""Smaller3D (Adamyan & Harutyunyan): knowledge distillation of MinkUNet.

Importing the package registers the Smaller3D losses (``MODELS``) and the
sparse rows builders (``TASK_UTILS``) and the demo's range filter
(``TRANSFORMS``) into mmdet3d's registries. Configs load
it with::

    custom_imports = dict(
        imports=['pointdistiller_mm', 'projects.Smaller3D.smaller3d'],
        allow_failed_imports=False)
"""
from .losses import Smaller3DLogitKDLoss, SparseFeatureMSELoss, aligned_rows
from .matching import VoxelMismatchError, match_voxels, voxel_keys
from .rows import SparseRows, VoxelLogitRows, sparse_features_and_coords
from .transforms import SegPointsRangeFilter

__all__ = [
    'Smaller3DLogitKDLoss', 'SparseFeatureMSELoss', 'aligned_rows',
    'VoxelMismatchError', 'match_voxels', 'voxel_keys', 'SparseRows',
    'VoxelLogitRows', 'sparse_features_and_coords', 'SegPointsRangeFilter'
]
