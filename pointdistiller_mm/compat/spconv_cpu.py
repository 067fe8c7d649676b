"""Make spconv 2.x sparse-convolution backward work on CPU-only machines.

In spconv 2.3.x, ``spconv.pytorch.ops.indice_conv_backward`` (the backward of
every native-algorithm sparse convolution, the only algorithm of the CPU build)
calls ``get_current_stream()`` before looking at the tensors' device.  That
helper is ``torch.cuda.current_stream().cuda_stream``, so on a machine without
CUDA every backward pass raises ``AssertionError: Torch not compiled with CUDA
enabled`` even though the CPU kernels right after it work with stream ``0``.
The implicit-GEMM ops (``get_indice_pairs_implicit_gemm``, ``implicit_gemm``,
``implicit_gemm_backward`` and the implicit-GEMM pooling ops) call it
unconditionally too, but those algorithms are CUDA-only.

The patch rebinds the name ``get_current_stream`` in ``spconv.pytorch.cppcore``
and in every loaded spconv module that imported it (``spconv.pytorch.ops``,
``spconv.pytorch.hash``, ``spconv.pytorch.utils``, the quantization modules)
to a wrapper that returns stream ``0`` while CUDA is unavailable and defers to
the original otherwise.  Modules imported later pick the wrapper up from
``cppcore``.
"""
from __future__ import annotations

import importlib.util
import sys
from typing import Callable, Dict, List

from ._contexts import patch_contexts

PATCH_NAME = 'spconv_cpu_stream'
_ATTR = 'get_current_stream'
_CPPCORE = 'spconv.pytorch.cppcore'

# 'original' / 'wrapper' while the patch is in effect.
_state: Dict[str, Callable[[], int]] = {}


def spconv_installed() -> bool:
    """Whether the ``spconv`` package can be imported."""
    return importlib.util.find_spec('spconv') is not None


def needs_patch() -> bool:
    """True when CUDA is unavailable and spconv is installed."""
    import torch
    return not torch.cuda.is_available() and spconv_installed()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def _make_wrapper(original: Callable[[], int]) -> Callable[[], int]:
    import torch

    def get_current_stream() -> int:
        """CUDA stream handle, or 0 (CPU) when CUDA is unavailable."""
        if torch.cuda.is_available():
            return original()
        return 0

    get_current_stream.__wrapped__ = original  # type: ignore[attr-defined]
    return get_current_stream


def _spconv_modules_binding(func: Callable[[], int]) -> List[str]:
    return [
        name for name, module in list(sys.modules.items())
        if (name == 'spconv' or name.startswith('spconv.'))
        and getattr(module, _ATTR, None) is func
    ]


def patched_modules() -> List[str]:
    """Names of the loaded spconv modules that now bind the wrapper."""
    if not _state:
        return []
    return _spconv_modules_binding(_state['wrapper'])


def apply(force: bool = False) -> bool:
    """Rebind spconv's ``get_current_stream`` to the CPU-safe wrapper.

    Args:
        force: apply even where CUDA is available (the wrapper still defers to
            the original there).

    Returns:
        True when the patch is in effect after the call.
    """
    if _state:
        return True
    if not spconv_installed() or (not force and not needs_patch()):
        return False
    try:
        cppcore = importlib.import_module(_CPPCORE)
    except ImportError:
        return False
    original = getattr(cppcore, _ATTR)
    wrapper = _make_wrapper(original)
    for name in _spconv_modules_binding(original):
        setattr(sys.modules[name], _ATTR, wrapper)
    _state.update(original=original, wrapper=wrapper)
    return True


def remove() -> None:
    """Undo :func:`apply` (no-op when not applied)."""
    if not _state:
        return
    # Includes modules imported while patched (they bound the wrapper).
    for name in _spconv_modules_binding(_state['wrapper']):
        setattr(sys.modules[name], _ATTR, _state['original'])
    _state.clear()


patched, unpatched = patch_contexts(apply, remove, is_applied)
