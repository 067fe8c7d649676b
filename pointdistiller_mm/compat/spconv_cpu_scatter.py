"""Make spconv 2.x CPU sparse convolutions correct with several threads.

spconv 2.3.8 runs a sparse convolution on CPU as gather -> matmul ->
scatter-add per kernel offset (``spconv.pytorch.ops.indice_conv`` and
``indice_conv_backward``). Its scatter-add kernel,
``SpconvOps.scatter_add_cpu``, gives wrong sums when OpenMP runs more than
one thread, even though the output rows of one kernel offset are unique:
with ``OMP_NUM_THREADS=2`` three calls on the same inputs differ from
``torch.index_add_`` by up to 2.9 (unit-scale features), with one thread
they match it exactly. Every sparse-convolution forward and backward on CPU
(SECOND's middle encoder, MinkUNet) is then wrong and not repeatable.

The patch replaces ``SpconvOps.scatter_add_cpu`` (the class attribute, which
``spconv.pytorch.ops`` looks up at each call) with ``torch.index_add_`` on
zero-copy views of the same buffers. Only CPU tensors ever reach this
function, so the patch is applied on every machine.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Dict, List

import torch

PATCH_NAME = 'spconv_cpu_scatter_add'

_state: Dict[str, Any] = {}


def _spconv_ops() -> Any:
    from spconv.core_cc.csrc.sparse.all import SpconvOps
    return SpconvOps


def _as_torch(tv_tensor: Any) -> torch.Tensor:
    """A torch view of a CPU ``tv.Tensor`` (shares its memory)."""
    return torch.from_numpy(tv_tensor.numpy_view())


def scatter_add_cpu(out: Any, buffer: Any, indices: Any) -> None:
    """``out[indices[i]] += buffer[i]`` for ``i < len(indices)``, in place.

    Same arguments as ``SpconvOps.scatter_add_cpu`` (``tv.Tensor`` s):
    ``out`` (M, C), ``buffer`` (>= N, C), ``indices`` (N,) int32.
    """
    idx = _as_torch(indices).long()
    if idx.numel() == 0:
        return
    _as_torch(out).index_add_(0, idx, _as_torch(buffer)[:idx.numel()])


def spconv_installed() -> bool:
    """Whether the ``spconv`` package can be imported."""
    return importlib.util.find_spec('spconv') is not None


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def apply() -> List[str]:
    """Install the torch scatter-add (idempotent). Returns the patch names
    in effect (none without spconv)."""
    if _state:
        return [PATCH_NAME]
    if not spconv_installed():
        return []
    ops = _spconv_ops()
    _state['original'] = ops.__dict__['scatter_add_cpu']  # a staticmethod
    ops.scatter_add_cpu = staticmethod(scatter_add_cpu)
    return [PATCH_NAME]


def remove() -> None:
    """Restore spconv's own scatter-add."""
    if _state:
        _spconv_ops().scatter_add_cpu = _state.pop('original')
