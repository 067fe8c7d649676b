"""pointdistiller_mm: knowledge distillation for mmdetection3d 1.4.

Importing the package registers its models, losses, hooks and task
utilities into mmdet3d's registries, and applies the compatibility patches
of :mod:`pointdistiller_mm.compat`: fixes for this stack (checkpoint I/O
under torch >= 2.6, numpy 1.24+, empty scans, nuScenes evaluation without
predictions, spconv's multi-threaded CPU scatter-add, numba's OpenMP pool
resetting torch's thread count) everywhere, and the
CPU patches on machines without CUDA. Configs load it with::

    custom_imports = dict(imports=['pointdistiller_mm'],
                          allow_failed_imports=False)
"""
from .compat import apply_cpu_patches
from .compat import empty_scans, numpy_aliases
from .compat import (empty_point_sample, empty_scans_pointrcnn,
                     nuscenes_empty_predictions, numba_threads,
                     spconv_cpu_scatter)
from .compat.checkpoint_io import apply_checkpoint_io_patches

#: Fixes for this stack applied everywhere (see pointdistiller_mm/compat).
STACK_PATCHES = (apply_checkpoint_io_patches() + numpy_aliases.apply() +
                 empty_scans.apply() + empty_point_sample.apply() +
                 empty_scans_pointrcnn.apply() +
                 nuscenes_empty_predictions.apply() +
                 spconv_cpu_scatter.apply() + numba_threads.apply())
CPU_PATCHES = apply_cpu_patches()

from . import (adapters, distillers, hooks, losses, recorders,  # noqa: E402,F401
               registry)
from .compat import cpu_distributed  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['CPU_PATCHES', 'STACK_PATCHES', '__version__']
