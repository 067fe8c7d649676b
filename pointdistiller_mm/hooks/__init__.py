"""mmengine hooks of pointdistiller_mm (registered in ``mmdet3d.registry``)."""
from .distill_loss_weight_hook import (DistillLossWeightHook,
                                       DistillWeightSchedule)

__all__ = ['DistillLossWeightHook', 'DistillWeightSchedule']
