"""Route functions of mmcv's compiled extension ``mmcv._ext`` to CPU code.

mmcv 2.1 binds every op to ``mmcv._ext`` and looks the functions up at call
time (``ext_module.<name>(...)``), and every module that loads the extension
(``mmcv.ops.*``, ``mmdet3d.models.data_preprocessors.voxelize``) holds the
same module object.  Replacing an attribute of ``mmcv._ext`` therefore reaches
all callers, including those imported before the patch.

:class:`ExtPatch` installs wrappers that call a CPU implementation when the
first argument is a CPU tensor and the original compiled function otherwise,
so a machine with CUDA keeps mmcv's kernels even when the patch is forced on.
"""
from __future__ import annotations

import functools
import importlib
from typing import Any, Callable, Dict

import torch

EXT_MODULE = 'mmcv._ext'


def load_ext() -> Any:
    """``mmcv._ext`` (the compiled ops), or None when mmcv has no ops."""
    try:
        return importlib.import_module(EXT_MODULE)
    except ImportError:
        return None


def _dispatching(name: str, original: Callable,
                 cpu_impl: Callable) -> Callable:

    @functools.wraps(cpu_impl)
    def wrapper(*args, **kwargs):
        first = args[0] if args else None
        if isinstance(first, torch.Tensor) and first.device.type == 'cpu':
            return cpu_impl(*args, **kwargs)
        return original(*args, **kwargs)

    wrapper.__name__ = name
    wrapper.__wrapped_ext__ = original  # type: ignore[attr-defined]
    return wrapper


class ExtPatch:
    """Swap functions of ``mmcv._ext`` for device-dispatching wrappers.

    Args:
        cpu_impls: extension function name -> CPU implementation with the
            same signature and return value.
    """

    def __init__(self, cpu_impls: Dict[str, Callable]) -> None:
        self.cpu_impls = dict(cpu_impls)
        self._originals: Dict[str, Callable] = {}

    def is_applied(self) -> bool:
        """Whether the wrappers are installed."""
        return bool(self._originals)

    def apply(self) -> bool:
        """Install the wrappers; True when in effect after the call."""
        if self._originals:
            return True
        ext = load_ext()
        if ext is None or not all(hasattr(ext, n) for n in self.cpu_impls):
            return False
        for name, impl in self.cpu_impls.items():
            original = getattr(ext, name)
            self._originals[name] = original
            setattr(ext, name, _dispatching(name, original, impl))
        return True

    def remove(self) -> None:
        """Restore the compiled functions (no-op when not applied)."""
        if not self._originals:
            return
        ext = load_ext()
        for name, original in self._originals.items():
            setattr(ext, name, original)
        self._originals.clear()
