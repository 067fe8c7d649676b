"""Local graph of the sampled rows: KNN and one EdgeConv block (DGCNN).

Layout: rows are grouped per sample and padded, ``x`` is (B, N, C) with a
(B, N) bool ``mask``. Neighbours are chosen among the ``keys`` rows of the
same group (by default the queries themselves).
"""
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.utils.checkpoint import checkpoint

__all__ = [
    'knn_indices', 'edge_features', 'EdgeGraph', 'FactoredEdges',
    'edge_max', 'paired_edge_distance', 'LocalGraphAdapter'
]


@torch.no_grad()
def knn_indices(x: Tensor,
                k: int,
                mask: Optional[Tensor] = None,
                keys: Optional[Tensor] = None,
                key_mask: Optional[Tensor] = None,
                self_index: Optional[Tensor] = None,
                chunk_size: int = 1024,
                return_mask: bool = False,
                sort: bool = True):
    """Indices of the ``k`` nearest rows (self first) in the same group.

    Euclidean distances are ranked in query chunks, so the working memory
    is O(B x chunk_size x M) for M key rows (M = N when the keys are
    the sampled rows themselves); the full distance matrix is never built.
    The ranking is exact: the same neighbour sets as a plain
    ``torch.topk`` over each row of distances (see :func:`_k_smallest`).

    Column 0 is the query itself (``k - 1`` neighbours follow, nearest
    first; in no particular order with ``sort=False``). Invalid keys are
    never chosen. When a group has fewer than ``k`` valid keys, the missing
    columns repeat column 0 (the row itself) and are marked False in the
    returned edge mask; with max aggregation such repeats change nothing,
    and the loss / BatchNorm ignore masked edges.

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
            plain nearest rows are returned (the nearest in column 0).
        chunk_size (int): query rows per distance block.
        return_mask (bool): also return the (B, N, k) bool edge mask.
        sort (bool): order columns 1.. by distance (False saves a sort of
            each row's neighbours; the neighbour sets are the same).

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
    ws = _Workspace(x.device)
    for s in range(0, N, chunk_size):
        e = min(s + chunk_size, N)
        d = ws.get('dist', B * (e - s) * M, x.dtype).view(B, e - s, M)
        _rank_distances(d, x[:, s:e], keys_t, key_sq)
        if self_index is not None:
            d.scatter_(2, self_index[:, s:e, None], float('-inf'))
        dist, nn_idx = _k_smallest(d.view(-1, M), k_eff, sort, ws)
        if not sort:
            dist, nn_idx = _nearest_first(dist, nn_idx)
        dist, nn_idx = dist.view(B, e - s, k_eff), nn_idx.view(B, e - s, k_eff)
        ok = (dist != float('inf')) & mask[:, s:e, None]
        nn_idx = torch.where(ok, nn_idx, nn_idx[:, :, :1])
        nn_idx = nn_idx * mask[:, s:e, None].long()
        idx[:, s:e, :k_eff] = nn_idx
        idx[:, s:e, k_eff:] = nn_idx[:, :, :1]
        edge_mask[:, s:e, :k_eff] = ok
    return (idx, edge_mask) if return_mask else idx


# Query rows per distance product in _rank_distances.
_GEMM_ROWS = 64


def _rank_distances(out: Tensor, q: Tensor, keys_t: Tensor,
                    key_sq: Tensor) -> Tensor:
    """``out`` (B, n, M) = ``key_sq - 2 q keys^T`` (one ``baddbmm``).

    Computed ``_GEMM_ROWS`` query rows at a time: each block of ``out``
    stays in cache between the copy of ``key_sq`` and the product that
    reads it back, which makes the whole about 1.5x faster than a single
    call; every entry is the same dot product, bit for bit.
    """
    B, n, M = out.shape
    for b in range(B):
        for s in range(0, n, _GEMM_ROWS):
            e = min(s + _GEMM_ROWS, n)
            torch.baddbmm(
                key_sq[b:b + 1, None, :].expand(1, e - s, M),
                q[b:b + 1, s:e], keys_t[b:b + 1], alpha=-2.0,
                out=out[b:b + 1, s:e])
    return out


# Threshold pre-selection (see _k_smallest): about this many column blocks
# per wanted entry, and no pre-selection below this block size.
_BLOCKS_PER_ENTRY = 3
_MIN_BLOCK = 4
# Rows with more candidates than this many per wanted entry (massive ties)
# are ranked directly.
_MAX_CANDIDATES_PER_ENTRY = 4


class _Workspace:
    """Scratch buffers reused by the chunks of one call, so that every
    chunk does not fault in fresh pages."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._bufs: Dict[str, Tensor] = {}

    def get(self, name: str, numel: int, dtype: torch.dtype) -> Tensor:
        """A flat (numel,) buffer; its content is undefined."""
        buf = self._bufs.get(name)
        if buf is None or buf.numel() < numel or buf.dtype != dtype:
            buf = torch.empty(numel, dtype=dtype, device=self.device)
            self._bufs[name] = buf
        return buf[:numel]


def _k_smallest(d: Tensor,
                k: int,
                sort: bool,
                ws: Optional[_Workspace] = None) -> Tuple[Tensor, Tensor]:
    """Values and columns of the ``k`` smallest entries of each row of
    ``d`` (R, M): exactly the entries ``torch.topk(d, k, largest=False)``
    returns, for a fraction of its cost.

    ``torch.topk`` selects among all M entries of a row. Here a threshold
    ``t`` is found first: the (k+1)-th smallest of the minima of disjoint
    column blocks, so at least k + 1 entries are <= t and so is every one
    of the k + 1 smallest. Only the entries <= t (typically little more
    than k) are ranked. A row whose k-th and (k+1)-th smallest values tie
    would make the choice among the tied entries depend on the algorithm;
    such rows (and rows without a finite threshold) are ranked by
    ``torch.topk`` on the full row, so the result is ``torch.topk``'s in
    every case (only the order of the columns may differ among equal
    values).
    """
    R, M = d.shape
    b = int(M // (_BLOCKS_PER_ENTRY * (k + 1)))
    exact_only = d.dtype not in (torch.float32, torch.float64)
    if b < _MIN_BLOCK or R == 0 or exact_only:
        return torch.topk(d, k, dim=1, largest=False, sorted=sort)
    ws = ws or _Workspace(d.device)
    t = _block_threshold(d, k + 1, b, ws)
    direct = ~torch.isfinite(t)
    t.masked_fill_(direct, float('-inf'))
    vals, cols, crowded = _rank_candidates(
        d, t, k + 1, sort, _MAX_CANDIDATES_PER_ENTRY * (k + 1), ws)
    direct |= crowded
    # vals[:, k] is the (k+1)-th smallest value: a tie with the k-th?
    direct |= (vals[:, :k] == vals[:, k:]).any(1)
    vals, cols = vals[:, :k], cols[:, :k]
    rows = direct.nonzero().squeeze(1)
    if rows.numel() > 0:
        v, c = torch.topk(d[rows], k, dim=1, largest=False, sorted=sort)
        vals, cols = vals.index_copy(0, rows, v), cols.index_copy(0, rows, c)
    return vals, cols


def _block_threshold(d: Tensor, r: int, b: int, ws: _Workspace) -> Tensor:
    """(R,) the r-th smallest of the minima of disjoint column blocks of
    ``d`` (R, M): blocks of ``b`` columns with stride ``M // b`` (a
    contiguous reduction), the remaining columns as blocks of one."""
    R, M = d.shape
    nb = M // b
    mins = ws.get('mins', R * (M - nb * (b - 1)), d.dtype).view(R, -1)
    torch.amin(d[:, :nb * b].view(R, b, nb), 1, out=mins[:, :nb])
    mins[:, nb:] = d[:, nb * b:]
    keys = _int_view(mins)
    tmp = ws.get('key_tmp', keys.numel(), keys.dtype).view(keys.shape)
    top = torch.topk(_flip_order_bits(keys, tmp), r, dim=1, largest=False,
                     sorted=False).values
    return _flip_order_bits(top.amax(1)).view(d.dtype)


def _int_view(x: Tensor) -> Tensor:
    """The bits of float32 / float64 ``x`` as int32 / int64."""
    return x.view(torch.int32 if x.element_size() == 4 else torch.int64)


def _flip_order_bits(bits: Tensor, tmp: Optional[Tensor] = None) -> Tensor:
    """In place on the integer view ``bits`` of floats: afterwards the
    integers sort like the floats did (-0.0 just below 0.0; NaN with the
    sign bit below -inf, else above inf); a second call restores the
    floats. ``topk`` ranks integers faster than floats (no NaN checks).
    ``tmp``: optional scratch tensor shaped like ``bits``."""
    sign = torch.bitwise_right_shift(bits, 8 * bits.element_size() - 1,
                                     out=tmp)
    return bits.bitwise_xor_(sign.bitwise_and_(torch.iinfo(bits.dtype).max))


def _rank_candidates(d: Tensor, t: Tensor, r: int, sort: bool, cap: int,
                     ws: _Workspace) -> Tuple[Tensor, Tensor, Tensor]:
    """The ``r`` smallest of the entries ``d <= t`` of each row.

    Returns values (R, r), columns (R, r) and a (R,) bool flag of the rows
    with more than ``cap`` candidates, which are left out (padded, like
    rows with fewer than r candidates: NaN values). With ``sort=False``
    column ``r - 1`` still holds the largest of the r values.
    """
    R, M = d.shape
    flat = _entries_at_most(d, t, ws)
    rows = torch.div(flat, M, rounding_mode='floor')
    count = torch.bincount(rows, minlength=R)
    crowded = count > cap
    if bool(crowded.any()):
        keep = ~crowded.index_select(0, rows)
        flat, rows = flat[keep], rows[keep]
        count = count.masked_fill(crowded, 0)
    # Candidates packed row by row into (R, width), padded with the
    # largest key; ranked as integer keys (see _flip_order_bits).
    width = max(int(count.max()), r)
    filled = torch.arange(width, device=d.device) < count.unsqueeze(1)
    keys = _flip_order_bits(_int_view(d.view(-1).index_select(0, flat)))
    packed = ws.get('packed', R * width, keys.dtype).view(R, width)
    packed.fill_(torch.iinfo(keys.dtype).max).masked_scatter_(filled, keys)
    packed_cols = ws.get('packed_cols', R * width, flat.dtype).view(R, width)
    packed_cols.fill_(0).masked_scatter_(filled, flat - rows * M)
    pos = torch.topk(packed, r, dim=1, largest=False, sorted=sort).indices
    vals = _flip_order_bits(packed.gather(1, pos)).view(d.dtype)
    cols = packed_cols.gather(1, pos)
    if not sort:
        vals, cols = _swap_columns(vals, cols, vals.argmax(1), r - 1)
    return vals, cols, crowded


def _entries_at_most(d: Tensor, t: Tensor, ws: _Workspace) -> Tensor:
    """Flat indices (ascending) of the entries ``d[i, j] <= t[i]`` of
    ``d`` (R, M), when few entries qualify.

    The comparison mask is scanned as 8-byte words first, then only the
    bytes of the words with a hit: about 8 times fewer elements for
    ``nonzero`` than a scan of the whole mask.
    """
    n = d.numel()
    mask = ws.get('mask', -(-n // 8) * 8, torch.bool)
    mask[n:] = False
    torch.le(d, t.unsqueeze(1), out=mask[:n].view(d.shape))
    words = mask.view(torch.int64).nonzero().squeeze(1)
    hits = mask.view(-1, 8).index_select(0, words).view(-1).nonzero()
    hits = hits.squeeze(1)
    return (words.index_select(0, hits >> 3) << 3) | (hits & 7)


def _swap_columns(vals: Tensor, cols: Tensor, src: Tensor,
                  dst: int) -> Tuple[Tensor, Tensor]:
    """Swap column ``src[i]`` of row i with column ``dst``, in place."""
    src = src.unsqueeze(1)
    for t in (vals, cols):
        a, b = t.gather(1, src), t[:, dst:dst + 1].clone()
        t.scatter_(1, src, b)
        t[:, dst:dst + 1] = a
    return vals, cols


def _nearest_first(vals: Tensor, cols: Tensor) -> Tuple[Tensor, Tensor]:
    """Move each row's smallest value (the forced self) to column 0."""
    return _swap_columns(vals, cols, vals.argmin(1), 0)


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


class EdgeGraph:
    """Neighbour structure of one local graph, shared by its adapters.

    Built once per graph (both the student- and the teacher-side adapter
    use the same indices and edge mask): flat indices, valid-edge counts
    per row and per key, and, on first use in a backward pass, the
    transposed adjacency (the edges sorted by key).

    Args:
        idx (Tensor): (B, N, K) neighbour indices into M keys per group.
        valid (Tensor): (B, N, K) bool, valid edges.
        num_keys (int): M.
    """

    def __init__(self, idx: Tensor, valid: Tensor, num_keys: int) -> None:
        B, N, K = idx.shape
        self.idx, self.valid, self.num_keys = idx, valid, num_keys
        self.all_valid = bool(valid.all())
        if not self.all_valid:
            # Masked edges repeat the row's first valid edge: harmless for
            # a max, weighted 0 in sums.
            first = valid.to(torch.uint8).argmax(-1, keepdim=True)
            idx = torch.where(valid, idx, idx.gather(-1, first))
        #: (B * N, K) indices into the B * M stacked keys.
        self.flat = _flat_index(idx, num_keys)
        #: (B * N, 1) valid edges per row.
        self.row_count = valid.sum(-1).reshape(-1, 1)
        self._ends = self.flat.reshape(-1) if self.all_valid else \
            self.flat[valid.reshape(B * N, K)]
        #: (B * M, 1) valid edges ending at each key.
        self.in_degree = torch.bincount(
            self._ends, minlength=B * num_keys).reshape(-1, 1)
        self._weights: Dict[torch.dtype, Tensor] = {}
        self._transposed: Optional[Tuple[Tensor, Tensor]] = None

    @property
    def num_edges(self) -> int:
        """Number of valid edges."""
        return self._ends.numel()

    def weights(self, dtype: torch.dtype) -> Optional[Tensor]:
        """(B * N, K) edge weights (1 valid, 0 masked); None if all valid."""
        if self.all_valid:
            return None
        if dtype not in self._weights:
            self._weights[dtype] = self.valid.reshape(self.flat.shape).to(
                dtype)
        return self._weights[dtype]

    def gather_sum(self, v: Tensor) -> Tensor:
        """(B * M, C) key rows -> (B * N, C): sum of v_j over the valid
        edges (i, j) of each row i."""
        return F.embedding_bag(
            self.flat, v, mode='sum', per_sample_weights=self.weights(
                v.dtype))

    def scatter_sum(self, u: Tensor) -> Tensor:
        """(B * N, C) rows -> (B * M, C): sum of u_i over the valid edges
        (i, j) ending at each key j (the transposed adjacency)."""
        src, offsets = self._transpose()
        return F.embedding_bag(src, u, offsets, mode='sum')

    def _transpose(self) -> Tuple[Tensor, Tensor]:
        if self._transposed is None:
            ends = self._ends
            # Narrow keys sort faster.
            for dtype in (torch.int16, torch.int32):
                if self.in_degree.shape[0] <= torch.iinfo(dtype).max:
                    ends = ends.to(dtype)
                    break
            order = torch.sort(ends).indices
            K = self.flat.shape[1]
            if not self.all_valid:
                pos = self.valid.reshape(-1).nonzero().squeeze(1)
                order = pos[order]
            src = torch.div(order, K, rounding_mode='floor')
            deg = self.in_degree.reshape(-1)
            self._transposed = (src, torch.cumsum(deg, 0) - deg)
        return self._transposed


class _EdgeCross(torch.autograd.Function):
    """Per-channel sum over the valid edges (i, j) of ``a_i * b_j``.

    The backward pass needs ``sum_k b_j(i, k)`` (saved from the forward)
    and ``sum_{i -> j} a_i``, one pass over the transposed adjacency,
    instead of autograd's generic embedding-bag backward (a sort of all
    edges per call).
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, graph: EdgeGraph) -> Tensor:
        s = graph.gather_sum(b)
        ctx.graph = graph
        ctx.save_for_backward(a, s)
        return (a * s).sum(0)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        a, s = ctx.saved_tensors
        grad_a = s * grad if ctx.needs_input_grad[0] else None
        grad_b = ctx.graph.scatter_sum(a) * grad \
            if ctx.needs_input_grad[1] else None
        return grad_a, grad_b, None


# Rows per block of gathered edges in _BagMax (K x C values each).
_MAX_CHUNK_ROWS = 128


class _BagMax(torch.autograd.Function):
    """``out[i] = max_k v[flat[i, k]]`` per channel (the first maximum wins,
    as in ``F.embedding_bag(mode='max')``), with a cheap forward.

    The edges are gathered a block of rows at a time and reduced by a
    channels-last max pool (vectorised over channels, with the argmax),
    instead of the scalar loop of the embedding bag; the backward pass
    scatters the gradient to the argmax rows.
    """

    @staticmethod
    def forward(ctx, v: Tensor, flat: Tensor) -> Tensor:
        R, K = flat.shape
        C = v.shape[1]
        out = v.new_empty(R, C)
        arg = torch.empty(R, C, dtype=torch.long, device=v.device)
        for s in range(0, R, _MAX_CHUNK_ROWS):
            rows = flat[s:s + _MAX_CHUNK_ROWS]
            n = rows.shape[0]
            # (n, K, C) edges seen as a channels-last (n, C, 1, K) image.
            g = F.embedding(rows, v).view(n, 1, K, C).permute(0, 3, 1, 2)
            top, pos = F.max_pool2d(g, (1, K), return_indices=True)
            out[s:s + n] = top.view(n, C)
            torch.gather(rows, 1, pos.view(n, C), out=arg[s:s + n])
        ctx.save_for_backward(arg)
        ctx.num_keys = v.shape[0]
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):
        arg, = ctx.saved_tensors
        grad_v = grad.new_zeros(ctx.num_keys, grad.shape[1])
        return grad_v.scatter_add_(0, arg, grad), None


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
    graph: Optional[EdgeGraph] = None

    def edge_graph(self) -> EdgeGraph:
        """The shared :class:`EdgeGraph` (built here when not given)."""
        if self.graph is not None:
            return self.graph
        return EdgeGraph(self.idx, self.mask, self.nbr.shape[1])

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
        return edge_max(self)[0]


def edge_max(*edges: FactoredEdges) -> List[Tensor]:
    """:meth:`FactoredEdges.max` of edge sets on the same graph (same
    ``idx`` and ``mask``, e.g. the student and teacher sides), in one pass
    over the edges."""
    first = edges[0]
    B, N, K = first.idx.shape
    M = first.nbr.shape[1]
    widths = [e.nbr.shape[2] for e in edges]
    if N == 0 or M == 0 or K == 0:
        return [e.node.new_zeros(B, N, c) for e, c in zip(edges, widths)]
    nbr = torch.cat([e.nbr for e in edges], 2) if len(edges) > 1 \
        else first.nbr
    top = _BagMax.apply(nbr.reshape(B * M, -1), first.edge_graph().flat)
    keep = first.mask.any(-1, keepdim=True)
    outs = []
    for e, t in zip(edges, top.view(B, N, -1).split(widths, 2)):
        out = F.relu(e.node + t)
        outs.append(out * keep.to(out.dtype))
    return outs


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

    @staticmethod
    def _edge_moments(ctr: Tensor, nbr: Tensor,
                      graph: EdgeGraph) -> Tuple[Tensor, Tensor, Tensor]:
        """Mean and biased variance over valid edges of ctr[i] + nbr[j].

        Uses sum_e (a_i + b_j)^2 = sum_i K_i a_i^2 + 2 sum_i a_i . S_i
        + sum_j n_j b_j^2 with S_i = sum_k b_j(i,k) and n_j the number of
        valid edges that end at j, on centred terms (no cancellation).
        """
        C = nbr.shape[-1]
        count = ctr.new_tensor(float(graph.num_edges))
        denom = count.clamp(min=1)
        k_i = graph.row_count.to(ctr.dtype)  # (B*N, 1)
        n_j = graph.in_degree.to(ctr.dtype)  # (B*M, 1)
        a = ctr.reshape(-1, C)
        b = nbr.reshape(-1, C)
        mean_a = (k_i * a).sum(0) / denom
        mean_b = (n_j * b).sum(0) / denom
        a = a - mean_a
        b = b - mean_b
        cross = _EdgeCross.apply(a, b, graph)
        var = ((k_i * a * a).sum(0) + 2 * cross +
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
                 edge_mask: Optional[Tensor] = None,
                 graph: Optional[EdgeGraph] = None) -> FactoredEdges:
        """Edge features in factored form (cheap path; see forward).

        ``graph`` is the :class:`EdgeGraph` of ``idx`` and the valid edges
        (``edge_mask & mask``), when the caller shares one between
        adapters; it is built here otherwise.
        """
        keys = x if keys is None else keys
        if graph is None:
            graph = EdgeGraph(idx, self._valid_edges(idx, mask, edge_mask),
                              keys.shape[1])
        ctr, nbr = self.projections(x, keys)
        bn = self.bn
        use_batch = bn.training or not bn.track_running_stats
        if use_batch:
            mean, var, count = self._edge_moments(ctr, nbr, graph)
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
        return FactoredEdges(node, nbr * scale, idx, graph.valid, graph)

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
