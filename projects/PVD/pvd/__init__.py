"""PVD (point-to-voxel knowledge distillation) for Cylinder3D: losses,
supervoxel sampling, rows builder and the comparison methods. Importing
this package registers them in mmdet3d's registries."""
from .affinity import (PointAffinityLoss, VoxelAffinityLoss, affinity_l2,
                       cosine_matrix, point_labels)
from .comparison import (ChannelWiseKDLoss, IFVLoss, KAAdaptationLoss,
                         PairwiseAffinityLoss, voxel_majority_labels)
from .output_kd import PointOutputKDLoss, VoxelOutputKDLoss, softmax_kl
from .rows import Cylinder3DRows, linear_keys
from .supervoxel import (SEMANTICKITTI_MINORITY, SupervoxelSampler,
                         Supervoxels, f_class, f_dist)

__all__ = [
    'Cylinder3DRows', 'PointOutputKDLoss', 'VoxelOutputKDLoss',
    'PointAffinityLoss', 'VoxelAffinityLoss', 'SupervoxelSampler',
    'Supervoxels', 'f_class', 'f_dist', 'SEMANTICKITTI_MINORITY',
    'ChannelWiseKDLoss', 'IFVLoss', 'PairwiseAffinityLoss',
    'KAAdaptationLoss', 'softmax_kl', 'cosine_matrix', 'affinity_l2',
    'point_labels', 'voxel_majority_labels', 'linear_keys'
]
