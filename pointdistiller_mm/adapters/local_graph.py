"""Local graph of the sampled rows: KNN and one EdgeConv block (DGCNN).

Layout: rows are grouped per sample and padded, ``x`` is (B, N, C) with a
(B, N) bool ``mask``. Neighbours are chosen among the ``keys`` rows of the
same group (by default the queries themselves).
"""
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

__all__ = [
    'knn_indices', 'edge_features', 'FactoredEdges', 'paired_edge_distance',
    'LocalGraphAdapter'
]


@torch.no_grad()
def knn_indices(x: Tensor,
                k: int,
                mask: Optional[Tensor] = None,
                keys: Optional[Tensor] = None,
                key_mask: Optional[Tensor] = None,
                self_index: Optional[Tensor] = None,
                chunk_size: int = 1024,
                return_mask: bool = False):
    """Indices of the ``k`` nearest rows (self first) in the same group.

    Euclidean distances are ranked in query chunks, so the working memory
    is O(B x chunk_size x M) for M key rows (M = N when the keys are
    the sampled rows themselves); the full distance matrix is never built.

    Column 0 is the query itself (``k - 1`` neighbours follow, nearest
    first). Invalid keys are never chosen. When a group has fewer than ``k``
    valid keys, the missing columns repeat column 0 (the row itself) and are
    marked False in the returned edge mask; with max aggregation such
    repeats change nothing, and the loss / BatchNorm ignore masked edges.

    Args:
        x (Tensor): (B, N, C) query rows (features or coordinates).
        k (int): neighbours per row, self included.
        mask (Tensor, optional): (B, N) bool, valid query rows.
        keys (Tensor, optional): (B, M, C) candidate rows; defaults to ``x``.
        key_mask (Tensor, optional): (B, M) bool, valid keys; defaults to
            ``mask`` when ``keys`` is None, else all True.
        self_index (Tensor, optional): (B, N) position of each query among
            the keys, forced into column 0; defaults to ``arange(N)`` when
            ``keys`` is None. With explicit keys and no ``self_index`` the
            plain nearest rows are returned.
        chunk_size (int): query rows per distance block.
        return_mask (bool): also return the (B, N, k) bool edge mask.

    Returns:
        Tensor | tuple[Tensor, Tensor]: (B, N, k) long indices into the keys
        (0 on padded queries), and the edge mask when ``return_mask``.
    """
    if k < 1:
        raise ValueError(f'k must be >= 1, got {k}')
    B, N, _ = x.shape
    x = x.detach().float()
    if keys is None:
        keys = x
        key_mask = mask
        if self_index is None:
            self_index = torch.arange(N, device=x.device).expand(B, N)
    else:
        keys = keys.detach().float()
    M = keys.shape[1]
    if mask is None:
        mask = torch.ones(B, N, dtype=torch.bool, device=x.device)
    if key_mask is None:
        key_mask = torch.ones(B, M, dtype=torch.bool, device=x.device)
    idx = torch.zeros(B, N, k, dtype=torch.long, device=x.device)
    edge_mask = torch.zeros(B, N, k, dtype=torch.bool, device=x.device)
    k_eff = min(k, M)
    if N == 0 or M == 0:
        return (idx, edge_mask) if return_mask else idx
    # Per query, ||q - k||^2 ranks like ||k||^2 - 2 q.k; invalid keys get an
    # infinite norm so they rank last, the row itself is forced first.
    key_sq = (keys * keys).sum(-1).masked_fill(~key_mask, float('inf'))
    keys_t = keys.transpose(1, 2)
    for s in range(0, N, chunk_size):
        e = min(s + chunk_size, N)
        d = torch.baddbmm(
            key_sq[:, None, :].expand(B, e - s, M), x[:, s:e], keys_t,
            alpha=-2.0)
        if self_index is not None:
            d.scatter_(2, self_index[:, s:e, None], float('-inf'))
        dist, nn_idx = torch.topk(d, k_eff, dim=2, largest=False, sorted=True)
        ok = (dist != float('inf')) & mask[:, s:e, None]
        nn_idx = torch.where(ok, nn_idx, nn_idx[:, :, :1])
        nn_idx = nn_idx * mask[:, s:e, None].long()
        idx[:, s:e, :k_eff] = nn_idx
        idx[:, s:e, k_eff:] = nn_idx[:, :, :1]
        edge_mask[:, s:e, :k_eff] = ok
    return (idx, edge_mask) if return_mask else idx


def _gather(keys: Tensor, idx: Tensor) -> Tensor:
    """keys (B, M, C), idx (B, N, K) -> (B, N, K, C), a fresh tensor (not a
    view, so in-place ops on it stay cheap in the backward pass)."""
    B, M, C = keys.shape
    flat = idx + torch.arange(B, device=idx.device).view(B, 1, 1) * M
    return F.embedding(flat, keys.reshape(B * M, C))


def edge_features(x: Tensor,
                  idx: Tensor,
                  keys: Optional[Tensor] = None,
                  edge_mode: str = 'cat') -> Tensor:
    """Dense edge features of a KNN graph.

    Args:
        x (Tensor): (B, N, C) centre rows z_i.
        idx (Tensor): (B, N, K) neighbour indices into ``keys``.
        keys (Tensor, optional): (B, M, C) neighbour rows; defaults to ``x``.
        edge_mode (str): ``'cat'``: cat[z_i, z_j] (paper);
            ``'diff'``: cat[z_j - z_i, z_i] (DGCNN).

    Returns:
        Tensor: (B, N, K, 2C) edge features.
    """
    keys = x if keys is None else keys
    nb = _gather(keys, idx)
    ctr = x.unsqueeze(2).expand_as(nb)
    if edge_mode == 'cat':
        return torch.cat([ctr, nb], dim=-1)
    if edge_mode == 'diff':
        return torch.cat([nb - ctr, ctr], dim=-1)
    raise ValueError(f"edge_mode must be 'cat' or 'diff', got {edge_mode!r}")


def _flat_index(idx: Tensor, num_keys: int) -> Tensor:
    """(B, N, K) per-group key indices -> (B * N, K) indices into B * M."""
    B = idx.shape[0]
    off = torch.arange(B, device=idx.device).view(B, 1, 1) * num_keys
    return (idx + off).reshape(-1, idx.shape[-1])


class FactoredEdges(NamedTuple):
    """Edge features of a local graph kept in factored form.

    ``G[b, i, k] = relu(node[b, i] + nbr[b, idx[b, i, k]])`` on valid edges
    (``mask``), zero elsewhere: the EdgeConv output after the 1x1 conv,
    BatchNorm and ReLU, with BatchNorm folded into both terms.

    Attributes:
        node (Tensor): (B, N, C) per-centre term.
        nbr (Tensor): (B, M, C) per-neighbour term.
        idx (Tensor): (B, N, K) neighbour indices into ``nbr``.
        mask (Tensor): (B, N, K) bool, valid edges.
    """
    node: Tensor
    nbr: Tensor
    idx: Tensor
    mask: Tensor

    def materialize(self, rows: Optional[slice] = None) -> Tensor:
        """(B, N, K, C) edge features (optionally for a slice of rows)."""
        node, idx, mask = self.node, self.idx, self.mask
        if rows is not None:
            node, idx, mask = node[:, rows], idx[:, rows], mask[:, rows]
        out = F.relu(node.unsqueeze(2) + _gather(self.nbr, idx))
        return out * mask.unsqueeze(-1).to(out.dtype)

    def max(self) -> Tensor:
        """(B, N, C) max over the K edges, without building the edges.

        relu is monotone, so max_k relu(u_i + v_j) = relu(u_i + max_k v_j).
        Masked edges are replaced by the first valid edge of their row (a
        repeat never changes a max); rows without a valid edge give zero.
        """
        B, N, K = self.idx.shape
        M, C = self.nbr.shape[1], self.nbr.shape[2]
        if N == 0 or M == 0 or K == 0:
            return self.node.new_zeros(B, N, C)
        first = self.mask.to(torch.uint8).argmax(-1, keepdim=True)
        idx = torch.where(self.mask, self.idx,
                          self.idx.gather(-1, first))
        top = F.embedding_bag(
            _flat_index(idx, M), self.nbr.reshape(B * M, C), mode='max')
        out = F.relu(self.node + top.view(B, N, C))
        return out * self.mask.any(-1, keepdim=True).to(out.dtype)


def paired_edge_distance(g_s: FactoredEdges,
                         g_t: FactoredEdges,
                         norm: str = 'mse',
                         chunk_size: int = 512) -> Tensor:
    """Per-row distance between two edge feature sets over valid edges.

    Rows are processed in chunks under activation checkpointing, so the
    (B, chunk, K, C) edge tensors exist one chunk at a time, in the backward
    pass too: memory O(B x chunk x K x C) instead of O(B x N x K x C).

    Args:
        g_s (FactoredEdges): student side.
        g_t (FactoredEdges): teacher side (same ``idx`` and ``mask``).
        norm (str): ``'mse'`` (mean of squares over valid edges and
            channels), ``'l1'`` (mean absolute value) or ``'l2'``
            (euclidean norm over edges and channels).
        chunk_size (int): rows per chunk.

    Returns:
        Tensor: (B, N) distances, 0 on rows without a valid edge.
    """
    if norm not in ('mse', 'l1', 'l2'):
        raise ValueError(f"norm must be 'mse', 'l1' or 'l2', got {norm!r}")
    N = g_s.idx.shape[1]
    parts = []
    for s in range(0, N, chunk_size):
        rows = slice(s, min(s + chunk_size, N))
        args = (g_s.node[:, rows], g_s.nbr, g_t.node[:, rows], g_t.nbr,
                g_s.idx[:, rows], g_s.mask[:, rows])
        if torch.is_grad_enabled() and any(a.requires_grad for a in args):
            parts.append(
                checkpoint(_chunk_distance, *args, norm, use_reentrant=False))
        else:
            parts.append(_chunk_distance(*args, norm))
    if not parts:
        return g_s.node.new_zeros(g_s.idx.shape[:2])
    return torch.cat(parts, dim=1)


def _chunk_distance(u_s: Tensor, v_s: Tensor, u_t: Tensor, v_t: Tensor,
                    idx: Tensor, mask: Tensor, norm: str) -> Tensor:
    # In-place ops on fresh tensors keep one (B, n, K, C) buffer per side.
    g_s = _gather(v_s, idx).add_(u_s.unsqueeze(2)).relu_()
    g_t = _gather(v_t, idx).add_(u_t.unsqueeze(2)).relu_()
    diff = g_s - g_t
    if not bool(mask.all()):
        diff = diff.mul_(mask.unsqueeze(-1).to(diff.dtype))
    if norm == 'l2':
        return torch.linalg.vector_norm(diff, dim=(2, 3))
    if norm == 'l1':
        dist = diff.abs().sum((2, 3))
    else:
        dist = diff.pow(2).sum((2, 3))
    count = (mask.sum(-1) * diff.shape[-1]).clamp(min=1).to(diff.dtype)
    return dist / count


@MODELS.register_module()
class LocalGraphAdapter(nn.Module):
    """One EdgeConv block: 1x1 conv over edge features + BatchNorm + ReLU.

    Maps (B, N, C_in) rows and their (B, N, K) neighbour indices to
    (B, N, K, C_out) edge features (``aggregation='none'``) or (B, N, C_out)
    after a max over the K edges (``aggregation='max'``).

    The default path is the cheap form of the same computation: a 1x1 conv
    with weight ``[W1, W2]`` over ``cat[z_i, z_j]`` equals
    ``W1 z_i + W2 z_j`` (``'diff'``: ``(W2 - W1) z_i + W1 z_j``), so both
    projections are computed once per row (N x C_out). The BatchNorm
    statistics over all valid edges (padded rows and masked edges left
    out) follow from per-row sums and neighbour counts, so no edge tensor
    is needed for them, and BatchNorm folds into the two projections
    (:class:`FactoredEdges`). Max aggregation then never builds an edge
    tensor; ``'none'`` builds the (B, N, K, C_out) output only when asked.
    ``dense=True`` runs the dense reference: the full (B, N, K, 2 C_in)
    edge tensor through a real ``nn.Conv2d`` and ``BatchNorm1d``.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        edge_mode (str): ``'cat'`` (cat[z_i, z_j], paper) or ``'diff'``
            (cat[z_j - z_i, z_i], DGCNN).
        aggregation (str): ``'max'`` over K or ``'none'``.
        bias (bool): conv bias (redundant before BatchNorm).
        bn_eps (float): BatchNorm eps.
        bn_momentum (float, optional): BatchNorm momentum (None: cumulative
            average, as ``nn.BatchNorm1d``).
        dense (bool): use the dense reference path.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 edge_mode: str = 'cat',
                 aggregation: str = 'max',
                 bias: bool = False,
                 bn_eps: float = 1e-5,
                 bn_momentum: Optional[float] = 0.1,
                 dense: bool = False) -> None:
        super().__init__()
        if edge_mode not in ('cat', 'diff'):
            raise ValueError(
                f"edge_mode must be 'cat' or 'diff', got {edge_mode!r}")
        if aggregation not in ('max', 'none'):
            raise ValueError(
                f"aggregation must be 'max' or 'none', got {aggregation!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.edge_mode = edge_mode
        self.aggregation = aggregation
        self.dense = dense
        self.conv = nn.Conv2d(2 * in_channels, out_channels, 1, bias=bias)
        self.bn = nn.BatchNorm1d(
            out_channels, eps=bn_eps, momentum=bn_momentum)

    # -- cheap path -----------------------------------------------------
    def projections(self, x: Tensor, keys: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-row centre and neighbour terms of the 1x1 conv.

        Returns (B, N, C_out) and (B, M, C_out) with
        ``conv(edge(i, j)) = ctr[i] + nbr[j]`` (the bias is in ``ctr``).
        """
        w = self.conv.weight.view(self.out_channels, 2 * self.in_channels)
        w1, w2 = w[:, :self.in_channels], w[:, self.in_channels:]
        if self.edge_mode == 'cat':
            w_ctr, w_nb = w1, w2
        else:
            w_ctr, w_nb = w2 - w1, w1
        return F.linear(x, w_ctr, self.conv.bias), F.linear(keys, w_nb)

    def _edge_moments(self, ctr: Tensor, nbr: Tensor, idx: Tensor,
                      valid: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Mean and biased variance over valid edges of ctr[i] + nbr[j].

        Uses sum_e (a_i + b_j)^2 = sum_i K_i a_i^2 + 2 sum_i a_i . S_i
        + sum_j n_j b_j^2 with S_i = sum_k b_j(i,k) and n_j the number of
        valid edges that end at j, on centred terms (no cancellation).
        """
        B, M, C = nbr.shape
        w = valid.to(ctr.dtype)
        count = w.sum()
        denom = count.clamp(min=1)
        k_i = w.sum(-1).reshape(-1, 1)  # (B*N, 1)
        flat = _flat_index(idx, M)
        n_j = torch.zeros(B * M, dtype=ctr.dtype, device=ctr.device)
        n_j.index_add_(0, flat.reshape(-1), w.reshape(-1))
        n_j = n_j.unsqueeze(1)
        a = ctr.reshape(-1, C)
        b = nbr.reshape(-1, C)
        mean_a = (k_i * a).sum(0) / denom
        mean_b = (n_j * b).sum(0) / denom
        a = a - mean_a
        b = b - mean_b
        s_i = F.embedding_bag(
            flat, b, mode='sum', per_sample_weights=w.reshape(flat.shape))
        var = ((k_i * a * a).sum(0) + 2 * (a * s_i).sum(0) +
               (n_j * b * b).sum(0)) / denom
        return mean_a + mean_b, var.clamp(min=0), count

    def _update_running_stats(self, mean: Tensor, var: Tensor,
                              count: Tensor) -> None:
        bn = self.bn
        if not bn.track_running_stats or count < 2:
            return
        with torch.no_grad():
            bn.num_batches_tracked += 1
            m = bn.momentum
            if m is None:
                m = 1.0 / float(bn.num_batches_tracked)
            bn.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
            unbiased = var.detach() * (count / (count - 1))
            bn.running_var.mul_(1 - m).add_(unbiased, alpha=m)

    def factored(self,
                 x: Tensor,
                 idx: Tensor,
                 mask: Optional[Tensor] = None,
                 keys: Optional[Tensor] = None,
                 edge_mask: Optional[Tensor] = None) -> FactoredEdges:
        """Edge features in factored form (cheap path; see forward)."""
        keys = x if keys is None else keys
        valid = self._valid_edges(idx, mask, edge_mask)
        ctr, nbr = self.projections(x, keys)
        bn = self.bn
        use_batch = bn.training or not bn.track_running_stats
        if use_batch:
            mean, var, count = self._edge_moments(ctr, nbr, idx, valid)
            if bn.training:
                self._update_running_stats(mean, var, count)
        else:
            mean, var = bn.running_mean, bn.running_var
        scale = torch.rsqrt(var + bn.eps)
        if bn.affine:
            scale = scale * bn.weight
        node = (ctr - mean) * scale
        if bn.affine:
            node = node + bn.bias
        return FactoredEdges(node, nbr * scale, idx, valid)

    # -- dense reference path -------------------------------------------
    def _dense(self, x: Tensor, idx: Tensor, keys: Tensor,
               valid: Tensor) -> Tensor:
        e = edge_features(x, idx, keys, self.edge_mode)
        y = self.conv(e.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        shape = y.shape
        flat = y.reshape(-1, shape[-1])
        if bool(valid.all()):
            out = self._bn_rows(flat)
        else:
            sel = valid.reshape(-1).nonzero().squeeze(1)
            out = flat.new_zeros(flat.shape)
            if sel.numel() > 0:
                out = out.index_copy(0, sel, self._bn_rows(flat[sel]))
        return F.relu(out).view(shape)

    def _bn_rows(self, rows: Tensor) -> Tensor:
        if self.bn.training and rows.shape[0] < 2:
            # One edge is its own batch mean: BatchNorm gives beta.
            beta = self.bn.bias if self.bn.affine else None
            if beta is None:
                return rows * 0
            return beta.expand_as(rows) + rows * 0
        return self.bn(rows)

    @staticmethod
    def _valid_edges(idx: Tensor, mask: Optional[Tensor],
                     edge_mask: Optional[Tensor]) -> Tensor:
        valid = torch.ones_like(idx, dtype=torch.bool) \
            if edge_mask is None else edge_mask
        if mask is not None:
            valid = valid & mask.unsqueeze(-1)
        return valid

    def forward(self,
                x: Tensor,
                idx: Tensor,
                mask: Optional[Tensor] = None,
                keys: Optional[Tensor] = None,
                edge_mask: Optional[Tensor] = None) -> Tensor:
        """Edge features of the local graph.

        Args:
            x (Tensor): (B, N, C_in) centre rows.
            idx (Tensor): (B, N, K) neighbour indices into ``keys``.
            mask (Tensor, optional): (B, N) bool, valid centre rows.
            keys (Tensor, optional): (B, M, C_in) neighbour rows (default x).
            edge_mask (Tensor, optional): (B, N, K) bool, valid edges (from
                :func:`knn_indices`); combined with ``mask``.

        Returns:
            Tensor: (B, N, K, C_out) for ``'none'``, (B, N, C_out) for
            ``'max'``; zero on invalid rows / edges.
        """
        keys = x if keys is None else keys
        if self.dense:
            valid = self._valid_edges(idx, mask, edge_mask)
            out = self._dense(x, idx, keys, valid)
            # ReLU output >= 0, so zeroed invalid edges never win the max.
            return out.amax(dim=2) if self.aggregation == 'max' else out
        g = self.factored(x, idx, mask, keys, edge_mask)
        return g.max() if self.aggregation == 'max' else g.materialize()
