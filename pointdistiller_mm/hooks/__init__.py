"""mmengine hooks of pointdistiller_mm (registered in ``mmdet3d.registry``)."""
from .distill_loss_weight_hook import (DistillLossWeightHook,
                                       DistillWeightSchedule)
from .malloc_trim_hook import MallocTrimHook, malloc_trim, set_heap_reuse

__all__ = ['DistillLossWeightHook', 'DistillWeightSchedule',
           'MallocTrimHook', 'malloc_trim', 'set_heap_reuse']
