"""CPU kernels for mmcv's own sparse convolution (``mmcv.ops.SubMConv3d``...).

mmdet3d 1.4's Cylinder3D (``Asymm3DSpconv``, ``Cylinder3DHead``) imports
``SubMConv3d``, ``SparseConv3d``, ``SparseInverseConv3d`` and
``SparseConvTensor`` straight from ``mmcv.ops``; mmdet3d's
``register_spconv2`` only swaps the *registry* entries, so these modules stay
mmcv's.  mmcv 2.1 compiles their index-pair search, gather-GEMM-scatter and
max-pool kernels for CUDA only: on a CPU-only machine the first forward
raises ``get_indice_pairs is not implemented on CPU``.

Replacing the modules by spconv 2's classes is not an option: the backbone
assigns ``x.features = ...``, which spconv 2's ``SparseConvTensor`` refuses,
and spconv 2 stores weights as (out, *kernel, in) where mmcv (and mmdet3d's
published Cylinder3D checkpoints) use (*kernel, in, out).  This patch keeps
mmcv's modules, tensors, autograd functions and weight layout, and supplies
the compiled functions they call (through ``mmcv._ext``) for CPU tensors:

* ``get_indice_pairs_{2,3,4}d_forward``: the rule search of spconv 2 (its CPU
  hash tables, ``spconv.pytorch.ops.get_indice_pairs``), converted to mmcv's
  layout: pairs ``(kernel_volume, 2, num_in)`` int32 (row 0 input index, row
  1 output index, ``-1`` padded), counts ``(kernel_volume,)`` int32.
  Submanifold rules: spconv 2 returns only the offsets before the kernel
  centre; the others are their mirror images with input and output swapped,
  and the centre is the identity.  Output sites of a strided / transposed
  convolution are sorted by ``batch * volume + row-major(spatial)``, the order
  of mmcv's CUDA kernel (a sorted ``unique``).
* ``indice_conv_forward`` / ``indice_conv_backward`` /
  ``fused_indice_conv_forward``: gather-GEMM-scatter per kernel offset with
  torch ops, weights ``(*kernel, in, out)``.
* ``indice_maxpool_forward`` / ``indice_maxpool_backward``: mmcv's rule
  (output starts at 0; every input equal to the maximum gets the gradient).

On CUDA tensors the wrappers call mmcv's kernels.  Rule searches that take a
``grid`` (``get_indice_pairs_*_backward``) are not provided.
"""
from __future__ import annotations

import importlib.util
from typing import List, Sequence

import torch

from ._contexts import patch_contexts
from ._mmcv_ext import ExtPatch

PATCH_NAME = 'mmcv_sparse_conv_cpu'


def spconv_installed() -> bool:
    """Whether spconv 2 (the rule search backend) can be imported."""
    return importlib.util.find_spec('spconv') is not None


def _sorted_outputs(out_inds: torch.Tensor, pairs: torch.Tensor,
                    counts: torch.Tensor, out_shape: Sequence[int]):
    """Reorder output sites by linear index and remap the pairs."""
    key = out_inds[:, 0].long()
    for axis, size in enumerate(out_shape):
        key = key * int(size) + out_inds[:, axis + 1].long()
    order = torch.argsort(key)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    out_col = pairs[:, 1]
    filled = out_col >= 0
    out_col[filled] = rank[out_col[filled].long()].to(pairs.dtype)
    return out_inds[order].contiguous(), pairs, counts


def get_indice_pairs_forward_cpu(indices: torch.Tensor, batch_size: int,
                                 out_shape: Sequence[int],
                                 spatial_shape: Sequence[int],
                                 ksize: Sequence[int], stride: Sequence[int],
                                 padding: Sequence[int],
                                 dilation: Sequence[int],
                                 out_padding: Sequence[int], subm: int,
                                 transpose: int) -> List[torch.Tensor]:
    """mmcv's ``get_indice_pairs_<n>d_forward`` on CPU (see module doc).

    Returns:
        ``[out_indices (M, 1 + ndim) int32, pairs (kv, 2, N) int32,
        counts (kv,) int32]``.
    """
    from spconv.core import ConvAlgo
    from spconv.pytorch import ops as spconv_ops
    ksize, stride = [int(k) for k in ksize], [int(s) for s in stride]
    padding, dilation = [int(p) for p in padding], [int(d) for d in dilation]
    out_padding = [int(p) for p in out_padding]
    spatial_shape, out_shape = list(spatial_shape), list(out_shape)
    indices = indices.to(torch.int32).contiguous()
    num_in = indices.size(0)
    kv = 1
    for k in ksize:
        kv *= k
    if num_in == 0:
        return [indices.new_empty((0, indices.size(1))),
                indices.new_full((kv, 2, 0), -1),
                indices.new_zeros((kv, ))]
    if subm and any(k % 2 == 0 for k in ksize):
        raise NotImplementedError(
            f'submanifold sparse convolution with an even kernel size '
            f'{ksize} has no CPU implementation; use odd kernel sizes')
    out_inds, pair, num = spconv_ops.get_indice_pairs(
        indices, int(batch_size), spatial_shape, ConvAlgo.Native, ksize,
        stride, padding, dilation, out_padding, bool(subm), bool(transpose))
    pairs = pair.permute(1, 0, 2).to(torch.int32).contiguous()
    counts = num.to(torch.int32).clone()
    if not subm:
        return list(
            _sorted_outputs(out_inds.to(torch.int32), pairs, counts,
                            out_shape))
    center = kv // 2
    for k in range(center + 1, kv):
        mirror = kv - 1 - k
        n = int(counts[mirror])
        pairs[k].fill_(-1)
        pairs[k, 0, :n] = pairs[mirror, 1, :n]
        pairs[k, 1, :n] = pairs[mirror, 0, :n]
        counts[k] = n
    identity = torch.arange(num_in, dtype=torch.int32)
    pairs[center, 0] = identity
    pairs[center, 1] = identity
    counts[center] = num_in
    return [indices, pairs, counts]


def _rules(indice_pairs: torch.Tensor, indice_num: torch.Tensor,
           inverse: bool):
    """Yield ``(k, src, dst)`` long index vectors of each non-empty offset."""
    src_row, dst_row = (1, 0) if inverse else (0, 1)
    for k, n in enumerate(indice_num.tolist()):
        if n <= 0:
            continue
        yield (k, indice_pairs[k, src_row, :n].long(),
               indice_pairs[k, dst_row, :n].long())


def indice_conv_forward_cpu(features: torch.Tensor, filters: torch.Tensor,
                            indice_pairs: torch.Tensor,
                            indice_num: torch.Tensor, num_act_out: int,
                            inverse: int, subm: int) -> torch.Tensor:
    """Sparse convolution: sum over offsets of gathered inputs x ``W[k]``.

    ``filters`` has mmcv's layout ``(*kernel, in, out)``.
    """
    c_in, c_out = filters.shape[-2], filters.shape[-1]
    weight = filters.reshape(-1, c_in, c_out)
    out = features.new_zeros((int(num_act_out), c_out))
    for k, src, dst in _rules(indice_pairs, indice_num, bool(inverse)):
        out.index_add_(0, dst, features.index_select(0, src).mm(weight[k]))
    return out


def fused_indice_conv_forward_cpu(features: torch.Tensor,
                                  filters: torch.Tensor, bias: torch.Tensor,
                                  indice_pairs: torch.Tensor,
                                  indice_num: torch.Tensor, num_act_out: int,
                                  inverse: int, subm: int) -> torch.Tensor:
    """:func:`indice_conv_forward_cpu` plus ``bias``."""
    return indice_conv_forward_cpu(features, filters, indice_pairs,
                                   indice_num, num_act_out, inverse,
                                   subm) + bias


def indice_conv_backward_cpu(features: torch.Tensor, filters: torch.Tensor,
                             out_bp: torch.Tensor,
                             indice_pairs: torch.Tensor,
                             indice_num: torch.Tensor, inverse: int,
                             subm: int) -> List[torch.Tensor]:
    """Gradients ``[d features, d filters]`` of the sparse convolution."""
    c_in, c_out = filters.shape[-2], filters.shape[-1]
    weight = filters.reshape(-1, c_in, c_out)
    out_bp = out_bp.contiguous()
    input_bp = torch.zeros_like(features)
    filters_bp = torch.zeros_like(weight)
    for k, src, dst in _rules(indice_pairs, indice_num, bool(inverse)):
        grad_out = out_bp.index_select(0, dst)
        input_bp.index_add_(0, src, grad_out.mm(weight[k].t()))
        filters_bp[k] = features.index_select(0, src).t().mm(grad_out)
    return [input_bp, filters_bp.view_as(filters)]


def indice_maxpool_forward_cpu(features: torch.Tensor,
                               indice_pairs: torch.Tensor,
                               indice_num: torch.Tensor,
                               num_act_out: int) -> torch.Tensor:
    """Sparse max-pooling; outputs start at 0 as in mmcv's kernel."""
    channels = features.size(1)
    out = features.new_zeros((int(num_act_out), channels))
    for _, src, dst in _rules(indice_pairs, indice_num, False):
        out.scatter_reduce_(0, dst.unsqueeze(1).expand(-1, channels),
                            features.index_select(0, src), 'amax',
                            include_self=True)
    return out


def indice_maxpool_backward_cpu(features: torch.Tensor,
                                out_features: torch.Tensor,
                                out_bp: torch.Tensor,
                                indice_pairs: torch.Tensor,
                                indice_num: torch.Tensor) -> torch.Tensor:
    """Gradient of :func:`indice_maxpool_forward_cpu` w.r.t. ``features``."""
    input_bp = torch.zeros_like(features)
    for _, src, dst in _rules(indice_pairs, indice_num, False):
        hit = features.index_select(0, src) == out_features.index_select(
            0, dst)
        grad = torch.where(hit, out_bp.index_select(0, dst),
                           torch.zeros((), dtype=out_bp.dtype))
        input_bp.index_add_(0, src, grad.to(input_bp.dtype))
    return input_bp


_PATCH = ExtPatch({
    'get_indice_pairs_2d_forward': get_indice_pairs_forward_cpu,
    'get_indice_pairs_3d_forward': get_indice_pairs_forward_cpu,
    'get_indice_pairs_4d_forward': get_indice_pairs_forward_cpu,
    'indice_conv_forward': indice_conv_forward_cpu,
    'indice_conv_backward': indice_conv_backward_cpu,
    'fused_indice_conv_forward': fused_indice_conv_forward_cpu,
    'indice_maxpool_forward': indice_maxpool_forward_cpu,
    'indice_maxpool_backward': indice_maxpool_backward_cpu,
})


def needs_patch() -> bool:
    """True when CUDA is unavailable and spconv 2 is installed."""
    return not torch.cuda.is_available() and spconv_installed()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return _PATCH.is_applied()


def apply(force: bool = False) -> bool:
    """Route mmcv's sparse-convolution extension functions to the CPU code.

    Args:
        force: apply even where CUDA is available (CUDA tensors still use
            mmcv's kernels); spconv 2 must be installed either way.

    Returns:
        True when the patch is in effect after the call.
    """
    if is_applied():
        return True
    if not spconv_installed() or (not force and not needs_patch()):
        return False
    return _PATCH.apply()


def remove() -> None:
    """Undo :func:`apply` (no-op when not applied)."""
    _PATCH.remove()


patched, unpatched = patch_contexts(apply, remove, is_applied)
