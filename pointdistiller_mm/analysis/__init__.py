"""Model analysis: parameters and FLOPs (multiply-accumulates)."""
from .complexity import (ModuleCount, build_deployed_model,
                         config_complexity, count_parameters, deployed_model,
                         group_by_prefix, mmdet3d_tensor_forward,
                         model_complexity, module_macs, sparse_count_methods,
                         val_scans)
from .paper_table import KITTI_RANGES, PAPER_TABLE1, match_paper_key

__all__ = [
    'ModuleCount', 'build_deployed_model', 'config_complexity',
    'val_scans', 'count_parameters', 'deployed_model', 'group_by_prefix',
    'mmdet3d_tensor_forward', 'model_complexity', 'module_macs',
    'sparse_count_methods', 'KITTI_RANGES', 'PAPER_TABLE1', 'match_paper_key'
]
