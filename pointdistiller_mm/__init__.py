"""pointdistiller_mm: knowledge distillation for mmdetection3d 1.4.

Importing the package registers its models, losses, hooks and task
utilities into mmdet3d's registries, and applies the compatibility patches
of :mod:`pointdistiller_mm.compat`: checkpoint I/O for torch >= 2.6
and numpy 1.24+ (always) and, on machines without CUDA, the CPU patches. Configs load it
with::

    custom_imports = dict(imports=['pointdistiller_mm'],
                          allow_failed_imports=False)
"""
from .compat import apply_cpu_patches
from .compat import numpy_aliases
from .compat.checkpoint_io import apply_checkpoint_io_patches

CHECKPOINT_IO_PATCHES = apply_checkpoint_io_patches() + numpy_aliases.apply()
CPU_PATCHES = apply_cpu_patches()

from . import (adapters, distillers, hooks, losses, recorders,  # noqa: E402,F401
               registry)
from .compat import cpu_distributed  # noqa: E402,F401

__version__ = '0.1.0'
__all__ = ['CPU_PATCHES', 'CHECKPOINT_IO_PATCHES', '__version__']
