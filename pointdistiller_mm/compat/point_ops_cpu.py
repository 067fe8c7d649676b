"""CPU versions of mmcv 2.1's CUDA-only point-cloud ops (PointNet++, RoI).

Each function reproduces the logic of the CUDA kernel named in its docstring
(``mmcv/ops/csrc/common/cuda/<name>_cuda_kernel.cuh``) with vectorised torch
code: the same arithmetic in the same dtype and operation order, the same
selection and tie-breaking rules, the same padding and empty-set outputs.
The one inherent difference: nvcc may contract ``a * b + c`` into a fused
multiply-add, which can move a squared distance by one unit in the last
place; results can then differ only where two distances tie to the last bit.

Ball query, points-in-boxes and RoI point pooling only test pairs that can
pass: points are bucketed once in a BEV grid and each centre or box takes
the points of the cells its bounding rectangle overlaps (``searchsorted`` on
the sorted cell ids), the rectangle widened by a margin far above the
rounding error of the exact test, which then runs, in the kernel's
arithmetic, on those pairs only. The result is the same as testing every
pair (the grid only lets extra pairs reach the exact test). Small inputs
(:data:`WINDOW_MIN_PAIRS`, :data:`WINDOW_MIN_POINTS`) and inputs with
non-finite coordinates test every pair.

The functions take and return tensors shaped like the mmcv ops' CUDA
launchers; :mod:`.mmcv_point_ops` installs them behind mmcv's autograd
functions on machines without CUDA.
"""
from __future__ import annotations

import math
from typing import Callable, Iterator, Tuple

import torch
from torch import Tensor

__all__ = [
    'furthest_point_sample', 'furthest_point_sample_with_dist',
    'fps_block_size', 'ball_query', 'group_points', 'group_points_backward',
    'gather_points', 'gather_points_backward', 'three_nn',
    'three_interpolate', 'three_interpolate_backward', 'points_in_boxes_flags',
    'points_in_boxes_pairs', 'points_in_boxes_part', 'points_in_boxes_all',
    'roipoint_pool3d'
]

#: Elements of one (rows x columns) block of pairwise work; bounds memory.
CHUNK_ELEMENTS = 1 << 22
#: Ball query, points-in-boxes and RoI pooling with at least this many
#: (centre or box, point) pairs and :data:`WINDOW_MIN_POINTS` points per
#: sample use the BEV grid search; smaller inputs test every pair (faster
#: there, e.g. the RoI head's ball queries on 128 pooled points per RoI).
WINDOW_MIN_PAIRS = 1 << 14
WINDOW_MIN_POINTS = 512


def _row_chunks(rows: int, cols: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


# ---------------------------------------------------- grid pair search
def _grid_margin(dtype: torch.dtype) -> float:
    """Relative widening of a search rectangle: far above the rounding
    error of the exact tests in ``dtype`` (a few units in the last place)."""
    return max(1e-4, 64 * torch.finfo(dtype).eps)


def _use_grid(pairs: int, points: int, *tensors: Tensor) -> bool:
    """Whether the grid search applies: enough pairs and points per
    sample, finite inputs."""
    return pairs >= WINDOW_MIN_PAIRS and points >= WINDOW_MIN_POINTS and all(
        bool(torch.isfinite(t).all()) for t in tensors)


def _grid_pairs(px: Tensor, py: Tensor, cx: Tensor, cy: Tensor,
                reach_x: Tensor, reach_y: Tensor) -> Tuple[Tensor, Tensor]:
    """Every (rectangle, point) pair of a sample with the point in a BEV
    grid cell that overlaps the rectangle ``cx[b, q] +- reach_x[b, q]``,
    ``cy +- reach_y`` (a superset of the points inside the rectangle).

    Points are bucketed in square cells of half the median rectangle half
    size and sorted by (sample, column, row); each rectangle then reads, for
    every column it overlaps, one contiguous run of the sorted points
    (``searchsorted``).

    Args:
        px, py: (B, N) float64 point coordinates.
        cx, cy, reach_x, reach_y: (B, Q) float64 rectangle centres and half
            sizes.

    Returns:
        ``(q, i)`` int64 flat indices ``b * Q + q`` and ``b * N + i``,
        grouped by ``q`` in ascending order.
    """
    B, N = px.shape
    Q = cx.shape[1]
    dev = px.device
    x0, y0 = float(px.min()), float(py.min())
    x1, y1 = float(px.max()), float(py.max())
    width = float(torch.median(torch.maximum(reach_x, reach_y))) / 2.0
    cell = max(width, (x1 - x0) / 4096.0, (y1 - y0) / 4096.0, 1e-12)
    nx = int((x1 - x0) // cell) + 1
    ny = int((y1 - y0) // cell) + 1
    ix = ((px - x0) / cell).floor_().long().clamp_(0, nx - 1)
    iy = ((py - y0) / cell).floor_().long().clamp_(0, ny - 1)
    bb = torch.arange(B, device=dev).view(B, 1)
    keys, order = torch.sort(((bb * nx + ix) * ny + iy).reshape(-1))
    # each rectangle's range of columns and rows (clamped to the grid: the
    # cells outside hold no point)
    ix0 = ((cx - reach_x - x0) / cell).floor_().clamp_(0, nx - 1).long()
    ix1 = ((cx + reach_x - x0) / cell).floor_().clamp_(0, nx - 1).long()
    iy0 = ((cy - reach_y - y0) / cell).floor_().clamp_(0, ny - 1).long()
    iy1 = ((cy + reach_y - y0) / cell).floor_().clamp_(0, ny - 1).long()
    ncol = (ix1 - ix0 + 1).clamp_(min=0).reshape(-1)
    qid = torch.repeat_interleave(torch.arange(B * Q, device=dev), ncol,
                                  output_size=int(ncol.sum()))
    col = torch.arange(len(qid), device=dev) - (torch.cumsum(ncol, 0) -
                                                ncol)[qid]
    col = (bb * nx + ix0).reshape(-1)[qid] + col  # global column id
    start = torch.searchsorted(keys, col * ny + iy0.reshape(-1)[qid])
    end = torch.searchsorted(keys, col * ny + iy1.reshape(-1)[qid],
                             side='right')
    cnt = (end - start).clamp_(min=0)
    seg = torch.repeat_interleave(torch.arange(len(cnt), device=dev), cnt,
                                  output_size=int(cnt.sum()))
    pos = torch.arange(len(seg), device=dev) + (start - (torch.cumsum(
        cnt, 0) - cnt))[seg]
    return qid[seg], order[pos]


def _first_k_pairs(group: Tensor, item: Tensor, num_groups: int,
                   num_items: int, k: int) -> Tuple[Tensor, Tensor]:
    """The first ``k`` items (ascending) of each group from a list of
    ``(group, item)`` pairs (each pair once).

    Returns:
        ``(vals, cnt)``: (num_groups, k) int64 items, slots past the group's
        size hold 0, and (num_groups,) int64 sizes clipped to ``k``.
    """
    key, _ = torch.sort(group * num_items + item)
    group = key // num_items
    sizes = torch.bincount(group, minlength=num_groups)
    rank = torch.arange(len(key), device=key.device) - (
        torch.cumsum(sizes, 0) - sizes)[group]
    keep = rank < k
    vals = torch.zeros(num_groups, k, dtype=torch.long, device=key.device)
    vals[group[keep], rank[keep]] = key[keep] - group[keep] * num_items
    return vals, sizes.clamp(max=k)


# ------------------------------------------------------------------ FPS
def fps_block_size(n: int) -> int:
    """Threads per block of mmcv's FPS launcher (``opt_n_threads``)."""
    if n <= 0:
        return 1
    pow_2 = int(math.log(float(n)) / math.log(2.0))
    return max(min(1 << pow_2, 1024), 1)


def _bit_reverse(values: Tensor, bits: int) -> Tensor:
    out = torch.zeros_like(values)
    for b in range(bits):
        out |= ((values >> b) & 1) << (bits - 1 - b)
    return out


def fps_priority(n: int, device=None) -> Tensor:
    """Point order in which the FPS kernel breaks ties of the maximum.

    Thread ``t = k % block`` scans ``k = t, t + block, ...`` and keeps its
    first maximum; the block's tree reduction (``__update``: the upper half
    wins only when strictly greater) then prefers, among equal maxima, the
    thread with the smallest bit-reversed id. Returns the permutation of
    ``range(n)`` sorted by that priority (element 0 is point 0).
    """
    block = fps_block_size(n)
    bits = block.bit_length() - 1
    k = torch.arange(n, device=device)
    per_thread = -(-n // block)
    key = _bit_reverse(k % block, bits) * per_thread + k // block
    return torch.argsort(key)


def _fps(row_of: Callable[[Tensor], Tensor], batch: int, n: int,
         num_points: int, perm: Tensor, device) -> Tensor:
    """Shared FPS loop in priority order (``perm``); ``row_of(old)`` gives
    the (B, n) distances from the current points (positions in priority
    order)."""
    out = torch.zeros(batch, max(num_points, 0), dtype=torch.int32,
                      device=device)
    if num_points <= 0 or n == 0:
        return out
    temp = torch.full((batch, n), 1e10, dtype=torch.float32, device=device)
    old = torch.zeros(batch, dtype=torch.long, device=device)
    picked = [old]
    for _ in range(1, num_points):
        torch.minimum(temp, row_of(old), out=temp)
        old = temp.argmax(dim=1)  # first maximum in priority order
        picked.append(old)
    return perm[torch.stack(picked, 1)].to(torch.int32)


def furthest_point_sample(points_xyz: Tensor, num_points: int) -> Tensor:
    """``furthest_point_sampling_forward_cuda_kernel``.

    Starts at point 0; each step picks the point whose squared distance to
    the chosen set (float32, ``dx*dx + dy*dy + dz*dz``) is largest, ties
    broken as the kernel's block reduction does (:func:`fps_priority`).

    Args:
        points_xyz: (B, N, 3).
        num_points: samples per cloud (more than N repeats point 0 once all
            distances are 0, as the kernel does).

    Returns:
        (B, num_points) int32 indices.
    """
    B, N = points_xyz.shape[:2]
    if num_points <= 0 or N == 0:
        return _fps(None, B, N, num_points, None, points_xyz.device)
    perm = fps_priority(N, points_xyz.device)
    # (B, 3, N) coordinates in priority order, and buffers reused each step
    pts = points_xyz.detach().float()[:, perm].transpose(1, 2).contiguous()
    diff = torch.empty_like(pts)
    dist = torch.empty(B, N, dtype=torch.float32, device=pts.device)

    def row_of(old: Tensor) -> Tensor:
        centre = pts.gather(2, old.view(B, 1, 1).expand(B, 3, 1))
        torch.sub(pts, centre, out=diff)
        diff.mul_(diff)
        torch.add(diff[:, 0], diff[:, 1], out=dist)
        return dist.add_(diff[:, 2])  # (dx*dx + dy*dy) + dz*dz

    return _fps(row_of, B, N, num_points, perm, pts.device)


def furthest_point_sample_with_dist(points_dist: Tensor,
                                    num_points: int) -> Tensor:
    """``furthest_point_sampling_with_dist_forward_cuda_kernel``: FPS on a
    given (B, N, N) distance matrix (row ``old`` is the distance of every
    point to point ``old``); same start and tie rule as
    :func:`furthest_point_sample`."""
    B, N, _ = points_dist.shape
    if num_points <= 0 or N == 0:
        return _fps(None, B, N, num_points, None, points_dist.device)
    perm = fps_priority(N, points_dist.device)
    dist = points_dist.detach().float()[:, perm][:, :, perm]
    rows = dist.reshape(B * N, N)
    base = torch.arange(B, device=dist.device) * N

    def row_of(old: Tensor) -> Tensor:
        return rows.index_select(0, base + old)

    return _fps(row_of, B, N, num_points, perm, dist.device)


# ----------------------------------------------------------- ball query
def _first_k(mask: Tensor, k: int) -> Tuple[Tensor, Tensor]:
    """Indices of the first ``k`` True entries along the last dim (ascending)
    and whether each slot was found."""
    n = mask.shape[-1]
    ar = torch.arange(n, device=mask.device)
    cand = torch.where(mask, ar, torch.full_like(ar, n))
    kk = min(k, n)
    vals = torch.topk(cand, kk, dim=-1, largest=False, sorted=True).values
    if kk < k:
        pad = vals.new_full((*vals.shape[:-1], k - kk), n)
        vals = torch.cat([vals, pad], -1)
    return vals, vals < n


def _ball_mask(d2: Tensor, r2_min: Tensor, r2_max: Tensor) -> Tensor:
    return (d2 == 0) | ((d2 >= r2_min) & (d2 < r2_max))


def _ball_query_dense(r2_min: Tensor, r2_max: Tensor, sample_num: int,
                      xyz: Tensor, center: Tensor, idx: Tensor) -> None:
    """Every (centre, point) pair tested, in row chunks; fills ``idx``."""
    x, y, z = (xyz[..., i].unsqueeze(1) for i in range(3))
    for sl in _row_chunks(center.shape[1], xyz.shape[0] * xyz.shape[1]):
        c = center[:, sl]
        dx = c[..., 0:1] - x
        dy = c[..., 1:2] - y
        dz = c[..., 2:3] - z
        d2 = dx * dx + dy * dy + dz * dz
        vals, found = _first_k(_ball_mask(d2, r2_min, r2_max), sample_num)
        first = torch.where(found[..., :1], vals[..., :1],
                            torch.zeros_like(vals[..., :1]))
        idx[:, sl] = torch.where(found, vals, first).to(torch.int32)


def _ball_query_grid(r2_min: Tensor, r2_max: Tensor, sample_num: int,
                     xyz: Tensor, center: Tensor, idx: Tensor) -> None:
    """Only the points in the grid cells near each centre tested."""
    B, N, _ = xyz.shape
    M = center.shape[1]
    # a point in the ball has |c - p| <= sqrt(r2_max) along each axis, up to
    # rounding; d2 == 0 needs |c - p| below sqrt of the smallest normal
    reach = math.sqrt(max(float(r2_max), 0.0)) * (
        1.0 + _grid_margin(xyz.dtype)) + math.sqrt(torch.finfo(
            xyz.dtype).tiny)
    c64, p64 = center.double(), xyz.double()
    reach_t = torch.full((B, M), reach, dtype=torch.float64,
                         device=xyz.device)
    q, i = _grid_pairs(p64[..., 0], p64[..., 1], c64[..., 0], c64[..., 1],
                       reach_t, reach_t)
    c = center.reshape(B * M, 3).index_select(0, q)
    p = xyz.reshape(B * N, 3).index_select(0, i)
    dx = c[:, 0] - p[:, 0]
    dy = c[:, 1] - p[:, 1]
    dz = c[:, 2] - p[:, 2]
    d2 = dx * dx + dy * dy + dz * dz
    inside = _ball_mask(d2, r2_min, r2_max)
    q, i = q[inside], i[inside]
    vals, cnt = _first_k_pairs(q, i - (q // M) * N, B * M, N, sample_num)
    slots = torch.arange(sample_num, device=xyz.device)
    vals = torch.where(slots < cnt.unsqueeze(1), vals, vals[:, :1])
    idx.copy_(vals.view(B, M, sample_num))


def ball_query(min_radius: float, max_radius: float, sample_num: int,
               xyz: Tensor, center_xyz: Tensor) -> Tensor:
    """``ball_query_forward_cuda_kernel``.

    For each centre, the first ``sample_num`` points (in index order) with
    ``d2 == 0 or min_r^2 <= d2 < max_r^2`` (radii squared in float32, ``d2``
    in the input dtype); slots past the found points repeat the first one; a
    centre with no point keeps all zeros.

    Args:
        xyz: (B, N, 3) points; center_xyz: (B, M, 3) centres.

    Returns:
        (B, M, sample_num) int32.
    """
    B, N, _ = xyz.shape
    M = center_xyz.shape[1]
    idx = torch.zeros(B, M, sample_num, dtype=torch.int32, device=xyz.device)
    if N == 0 or M == 0 or sample_num <= 0:
        return idx
    xyz = xyz.detach()
    center = center_xyz.detach().to(xyz.dtype)
    r_max = torch.tensor(max_radius, dtype=torch.float32)
    r_min = torch.tensor(min_radius, dtype=torch.float32)
    r2_max = (r_max * r_max).to(xyz.dtype)
    r2_min = (r_min * r_min).to(xyz.dtype)
    if _use_grid(B * M * N, N, xyz, center, r2_max):
        _ball_query_grid(r2_min, r2_max, sample_num, xyz, center, idx)
    else:
        _ball_query_dense(r2_min, r2_max, sample_num, xyz, center, idx)
    return idx


# ------------------------------------------------------ group / gather
def group_points(features: Tensor, indices: Tensor) -> Tensor:
    """``group_points_forward_cuda_kernel``: (B, C, N) features, (B, M, S)
    indices -> (B, C, M, S) with ``out[b, c, m, s] = f[b, c, idx[b, m, s]]``.
    """
    B, C, _ = features.shape
    _, M, S = indices.shape
    index = indices.long().reshape(B, 1, M * S).expand(B, C, M * S)
    return features.gather(2, index).reshape(B, C, M, S)


def group_points_backward(grad_out: Tensor, indices: Tensor,
                          num_features: int) -> Tensor:
    """``group_points_backward_cuda_kernel``: scatter-add (B, C, M, S) into
    (B, C, N)."""
    B, C, M, S = grad_out.shape
    index = indices.long().reshape(B, 1, M * S).expand(B, C, M * S)
    grad = grad_out.new_zeros(B, C, num_features)
    return grad.scatter_add_(2, index, grad_out.reshape(B, C, M * S))


def gather_points(features: Tensor, indices: Tensor) -> Tensor:
    """``gather_points_forward_cuda_kernel``: (B, C, N), (B, M) -> (B, C, M).
    """
    B, C, _ = features.shape
    index = indices.long().unsqueeze(1).expand(B, C, indices.shape[1])
    return features.gather(2, index)


def gather_points_backward(grad_out: Tensor, indices: Tensor,
                           num_features: int) -> Tensor:
    """``gather_points_backward_cuda_kernel``: scatter-add (B, C, M) into
    (B, C, N)."""
    B, C, M = grad_out.shape
    index = indices.long().unsqueeze(1).expand(B, C, M)
    grad = grad_out.new_zeros(B, C, num_features)
    return grad.scatter_add_(2, index, grad_out)


# -------------------------------------------------------- three NN
def _sortable_key(d: Tensor, m: int) -> Tensor:
    """int64 keys ordering (distance, index) lexicographically for
    non-negative float32 distances (their bit patterns are monotonic)."""
    bits = d.contiguous().view(torch.int32).long()
    return bits * m + torch.arange(m, device=d.device)


def _three_smallest(d: Tensor, k: int) -> Tensor:
    """Indices of the ``k`` smallest float32 distances along the last dim,
    ascending, equal distances in index order.

    ``topk`` on the distances picks among equal values arbitrarily, so rows
    where two of the ``k + 1`` smallest are equal are redone with int64
    (distance, index) keys (:func:`_sortable_key`).
    """
    m = d.shape[-1]
    vals, sel = torch.topk(d, min(k + 1, m), dim=-1, largest=False,
                           sorted=True)
    sel = sel[..., :k].contiguous()
    tie = (vals[..., 1:] == vals[..., :-1]).any(-1)
    if bool(tie.any()):
        rows = tie.nonzero(as_tuple=True)
        sel[rows] = torch.topk(_sortable_key(d[rows], m), k, dim=-1,
                               largest=False, sorted=True).indices
    return sel


def three_nn(target: Tensor, source: Tensor) -> Tuple[Tensor, Tensor]:
    """``three_nn_forward_cuda_kernel``.

    For each target point, the three source points with the smallest squared
    distance (input dtype, ``dx*dx + dy*dy + dz*dz``), ascending, equal
    distances in index order (the kernel's strict ``<`` updates). With fewer
    than three sources the missing slots hold index 0 and distance 1e40
    (``inf`` in float32), as the kernel leaves them.

    Returns:
        ``(dist2, idx)``: (B, N, 3) squared distances in the input dtype and
        (B, N, 3) int32 indices.
    """
    B, N, _ = target.shape
    M = source.shape[1]
    target, source = target.detach(), source.detach().to(target.dtype)
    # the kernel's double 1e40, stored in the output dtype (inf in float32)
    dist2 = torch.full((B, N, 3), 1e40, dtype=torch.float64,
                       device=target.device).to(target.dtype)
    idx = torch.zeros(B, N, 3, dtype=torch.int32, device=target.device)
    if M == 0 or N == 0:
        return dist2, idx
    k = min(3, M)
    sx, sy, sz = (source[..., i].unsqueeze(1) for i in range(3))
    for sl in _row_chunks(N, B * M):
        t = target[:, sl]
        dx = t[..., 0:1] - sx
        dy = t[..., 1:2] - sy
        dz = t[..., 2:3] - sz
        d = dx * dx + dy * dy + dz * dz
        if d.dtype == torch.float32:
            sel = _three_smallest(d, k)
        else:  # a stable sort keeps equal distances in index order
            sel = torch.sort(d, dim=-1, stable=True).indices[..., :k]
        dsel = d.gather(-1, sel)
        valid = dsel < 1e40  # the kernel never takes d >= 1e40 (or NaN)
        dist2[:, sl, :k] = torch.where(valid, dsel, dist2[:, sl, :k])
        idx[:, sl, :k] = torch.where(valid, sel, torch.zeros_like(sel)).to(
            torch.int32)
    return dist2, idx


def three_interpolate(features: Tensor, indices: Tensor,
                      weight: Tensor) -> Tensor:
    """``three_interpolate_forward_cuda_kernel``: (B, C, M) features, (B, N,
    3) indices and weights -> (B, C, N),
    ``w0 * f[i0] + w1 * f[i1] + w2 * f[i2]`` in that order."""
    B, C, _ = features.shape
    N = indices.shape[1]
    out = None
    for s in range(3):
        index = indices[..., s].long().unsqueeze(1).expand(B, C, N)
        term = weight[..., s].unsqueeze(1) * features.gather(2, index)
        out = term if out is None else out + term
    return out


def three_interpolate_backward(grad_out: Tensor, indices: Tensor,
                               weight: Tensor, num_features: int) -> Tensor:
    """``three_interpolate_backward_cuda_kernel``: gradient w.r.t. the
    (B, C, M) features (the kernel gives none for indices or weights)."""
    B, C, N = grad_out.shape
    grad = grad_out.new_zeros(B, C, num_features)
    for s in range(3):
        index = indices[..., s].long().unsqueeze(1).expand(B, C, N)
        grad.scatter_add_(2, index, grad_out * weight[..., s].unsqueeze(1))
    return grad


# ---------------------------------------------------- points in boxes
def _box_params(boxes: Tensor):
    """Per-box terms of ``check_pt_in_box3d`` (float32): centre x / y, z
    centre, half sizes, cos / sin of ``-rz``, and the negated sin and half
    sizes (exact, negated once per box rather than per pair)."""
    cx, cy, cz, dx, dy, dz = (boxes[..., i] for i in range(6))
    rz = boxes[..., 6].double()
    cosa = torch.cos(-rz).float()
    sina = torch.sin(-rz).float()
    hx, hy = dx / 2.0, dy / 2.0
    return (cx, cy, cz + dz / 2.0, hx, hy, dz / 2.0, cosa, sina, -sina, -hx,
            -hy)


def _inside(x, y, z, cx, cy, zc, hx, hy, hz, cosa, sina, nsina, nhx,
            nhy) -> Tensor:
    """``check_pt_in_box3d`` on broadcastable float32 tensors
    (:func:`_box_params` terms)."""
    inside = ~((z - zc).abs() > hz)
    sx = x - cx
    sy = y - cy
    lx = sx * cosa + sy * nsina
    ly = sx * sina + sy * cosa
    return inside & (lx > nhx) & (lx < hx) & (ly > nhy) & (ly < hy)


def points_in_boxes_flags(points: Tensor, boxes: Tensor) -> Tensor:
    """``check_pt_in_box3d`` of mmcv's points-in-boxes and roipoint-pool
    kernels, for every point and box of each sample.

    A point is inside a box ``(cx, cy, cz, dx, dy, dz, rz)`` (``cz`` the
    bottom) when ``|z - (cz + dz / 2)| <= dz / 2`` (the z faces count as
    inside) and its box-frame coordinates, rotated by ``-rz`` in float32,
    satisfy ``-dx/2 < x < dx/2`` and ``-dy/2 < y < dy/2`` (the side faces do
    not). ``cos`` / ``sin`` of ``-rz`` are rounded from float64.

    Args:
        points: (B, M, 3); boxes: (B, T, 7).

    Returns:
        (B, M, T) bool.
    """
    points = points.detach().float()
    boxes = boxes.detach().float()
    B, M, _ = points.shape
    T = boxes.shape[1]
    flags = torch.zeros(B, M, T, dtype=torch.bool, device=points.device)
    if M == 0 or T == 0:
        return flags
    b, t, m = points_in_boxes_pairs(points, boxes)
    flags[b, m, t] = True
    return flags


def points_in_boxes_pairs(points: Tensor,
                          boxes: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Every ``(b, t, m)`` with point ``m`` of sample ``b`` inside box ``t``
    (:func:`points_in_boxes_flags`), as int64 tensors in no set order.

    Large inputs test only the points in the grid cells near each box's
    axis-aligned bounding rectangle in BEV (``|x - cx| <= dx/2 |cos rz| +
    dy/2 |sin rz|``, ``|y - cy| <= dx/2 |sin rz| + dy/2 |cos rz|``, widened
    by 1e-4 of ``dx/2 + dy/2``, far above the rounding of the exact test).
    """
    points = points.detach().float()
    boxes = boxes.detach().float()
    B, M, _ = points.shape
    T = boxes.shape[1]
    empty = torch.zeros(0, dtype=torch.long, device=points.device)
    if M == 0 or T == 0:
        return empty, empty, empty
    params = _box_params(boxes)
    if not _use_grid(B * M * T, M, points, boxes):
        return _points_in_boxes_pairs_dense(points, params)
    p64, b64 = points.double(), boxes.double()
    # half sizes of the rotated box's axis-aligned square, widened
    hx, hy = params[3].double(), params[4].double()
    cosa, sina = params[6].double().abs(), params[7].double().abs()
    slack = (hx + hy) * _grid_margin(torch.float32)
    q, i = _grid_pairs(p64[..., 0], p64[..., 1], b64[..., 0], b64[..., 1],
                       hx * cosa + hy * sina + slack,
                       hx * sina + hy * cosa + slack)
    p = points.reshape(B * M, 3).index_select(0, i)
    box = torch.stack(params, -1).reshape(B * T, len(params)).index_select(
        0, q)
    inside = _inside(p[:, 0], p[:, 1], p[:, 2], *box.unbind(1))
    keep = inside.nonzero().squeeze(1)
    q, i = q.index_select(0, keep), i.index_select(0, keep)
    b = q // T
    return b, q - b * T, i - b * M


def _points_in_boxes_pairs_dense(points: Tensor, params) -> Tuple[Tensor, ...]:
    B, M, _ = points.shape
    T = params[0].shape[1]
    cols = [v.unsqueeze(1) for v in params]  # (B, 1, T)
    found = []
    for sl in _row_chunks(M, B * T):
        p = points[:, sl]
        inside = _inside(p[..., 0:1], p[..., 1:2], p[..., 2:3], *cols)
        b, m, t = inside.nonzero(as_tuple=True)
        found.append((b, t, m + sl.start))
    return tuple(torch.cat(v) for v in zip(*found))


def points_in_boxes_part(points: Tensor, boxes: Tensor) -> Tensor:
    """``points_in_boxes_part_forward_cuda_kernel``: the first box (lowest
    index) containing each point, -1 for none. (B, M) int32."""
    B, M = points.shape[:2]
    T = boxes.shape[1]
    first = torch.full((B * M, ), T, dtype=torch.long, device=points.device)
    if T > 0 and M > 0:
        b, t, m = points_in_boxes_pairs(points, boxes)
        first.scatter_reduce_(0, b * M + m, t, 'amin')
    first = first.view(B, M)
    return torch.where(first < T, first,
                       torch.full_like(first, -1)).to(torch.int32)


def points_in_boxes_all(points: Tensor, boxes: Tensor) -> Tensor:
    """``points_in_boxes_all_forward_cuda_kernel``: (B, M, T) int32, 1 where
    the point is inside the box."""
    return points_in_boxes_flags(points, boxes).to(torch.int32)


# ------------------------------------------------------ roipoint pool
def roipoint_pool3d(points: Tensor, point_features: Tensor, boxes3d: Tensor,
                    num_sampled_points: int = 512) -> Tuple[Tensor, Tensor]:
    """``roipoint_pool3d`` CUDA kernels (``assign_pts_to_box3d``,
    ``get_pooled_idx``, ``roipoint_pool3d_forward``).

    Each box takes the first ``num_sampled_points`` points inside it in index
    order (:func:`points_in_boxes_flags`); with ``cnt`` fewer, slot ``k``
    repeats slot ``k % cnt``. A box without points gets empty flag 1 and an
    all-zero output.

    Args:
        points: (B, N, 3); point_features: (B, N, C); boxes3d: (B, M, 7).

    Returns:
        ``(pooled, empty_flag)``: (B, M, S, 3 + C) in the features' dtype and
        (B, M) int32.
    """
    B, N, _ = points.shape
    C = point_features.shape[2]
    boxes = boxes3d.reshape(B, -1, 7)
    M = boxes.shape[1]
    S = num_sampled_points
    pooled = point_features.new_zeros(B, M, S, 3 + C)
    empty = torch.ones(B, M, dtype=torch.int32, device=points.device)
    if N == 0 or M == 0 or S <= 0:
        return pooled, empty
    rows = torch.cat([points.to(point_features.dtype), point_features], -1)
    b, t, m = points_in_boxes_pairs(points, boxes)
    vals, cnt = _first_k_pairs(b * M + t, m, B * M, N, S)
    slots = torch.arange(S, device=points.device)
    src = vals.gather(1, slots % cnt.clamp(min=1).unsqueeze(1))  # (B*M, S)
    src = src.view(B, M * S)  # a box without points reads row 0
    pooled = rows.gather(1, src.unsqueeze(-1).expand(-1, -1, 3 + C)).view(
        B, M, S, 3 + C)
    has = (cnt > 0).view(B, M)
    pooled = torch.where(has[..., None, None], pooled,
                         torch.zeros_like(pooled))
    return pooled, (~has).to(torch.int32)
