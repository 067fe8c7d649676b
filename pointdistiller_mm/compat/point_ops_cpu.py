"""CPU versions of mmcv 2.1's CUDA-only point-cloud ops (PointNet++, RoI).

Each function reproduces the logic of the CUDA kernel named in its docstring
(``mmcv/ops/csrc/common/cuda/<name>_cuda_kernel.cuh``) with vectorised torch
code: the same arithmetic in the same dtype and operation order, the same
selection and tie-breaking rules, the same padding and empty-set outputs.
The one inherent difference: nvcc may contract ``a * b + c`` into a fused
multiply-add, which can move a squared distance by one unit in the last
place; results can then differ only where two distances tie to the last bit.

The functions take and return tensors shaped like the mmcv ops' CUDA
launchers; :mod:`.mmcv_point_ops` installs them behind mmcv's autograd
functions on machines without CUDA.
"""
from __future__ import annotations

import math
from typing import Iterator, Tuple

import torch
from torch import Tensor

__all__ = [
    'furthest_point_sample', 'furthest_point_sample_with_dist',
    'fps_block_size', 'ball_query', 'group_points', 'group_points_backward',
    'gather_points', 'gather_points_backward', 'three_nn',
    'three_interpolate', 'three_interpolate_backward', 'points_in_boxes_flags',
    'points_in_boxes_part', 'points_in_boxes_all', 'roipoint_pool3d'
]

#: Elements of one (rows x columns) block of pairwise work; bounds memory.
CHUNK_ELEMENTS = 1 << 22


def _row_chunks(rows: int, cols: int) -> Iterator[slice]:
    step = max(1, CHUNK_ELEMENTS // max(cols, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))


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


def _fps(row_of: callable, batch: int, n: int, num_points: int,
         device) -> Tensor:
    """Shared FPS loop in priority order; ``row_of(old)`` gives the (B, n)
    distances from the current points (positions in priority order)."""
    out = torch.zeros(batch, max(num_points, 0), dtype=torch.int32,
                      device=device)
    if num_points <= 0 or n == 0:
        return out
    perm = fps_priority(n, device)
    temp = torch.full((batch, n), 1e10, dtype=torch.float32, device=device)
    picked = torch.zeros(batch, num_points, dtype=torch.long, device=device)
    old = torch.zeros(batch, dtype=torch.long, device=device)
    for j in range(1, num_points):
        torch.minimum(temp, row_of(old, perm), out=temp)
        old = temp.argmax(dim=1)  # first maximum in priority order
        picked[:, j] = old
    return perm[picked].to(torch.int32)


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
    pts = points_xyz.detach().float()
    cols = []

    def row_of(old: Tensor, perm: Tensor) -> Tensor:
        if not cols:
            p = pts[:, perm]
            cols.extend(p[..., i].contiguous() for i in range(3))
        x, y, z = cols
        ar = torch.arange(B, device=pts.device)
        dx = x - x[ar, old].unsqueeze(1)
        dy = y - y[ar, old].unsqueeze(1)
        dz = z - z[ar, old].unsqueeze(1)
        return dx * dx + dy * dy + dz * dz

    return _fps(row_of, B, N, num_points, pts.device)


def furthest_point_sample_with_dist(points_dist: Tensor,
                                    num_points: int) -> Tensor:
    """``furthest_point_sampling_with_dist_forward_cuda_kernel``: FPS on a
    given (B, N, N) distance matrix (row ``old`` is the distance of every
    point to point ``old``); same start and tie rule as
    :func:`furthest_point_sample`."""
    B, N, _ = points_dist.shape
    dist = points_dist.detach().float()

    def row_of(old: Tensor, perm: Tensor) -> Tensor:
        ar = torch.arange(B, device=dist.device)
        return dist[ar, perm[old]][:, perm]

    return _fps(row_of, B, N, num_points, dist.device)


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
    x, y, z = (xyz[..., i].unsqueeze(1) for i in range(3))
    for sl in _row_chunks(M, B * N):
        c = center[:, sl]
        dx = c[..., 0:1] - x
        dy = c[..., 1:2] - y
        dz = c[..., 2:3] - z
        d2 = dx * dx + dy * dy + dz * dz
        mask = (d2 == 0) | ((d2 >= r2_min) & (d2 < r2_max))
        vals, found = _first_k(mask, sample_num)
        first = torch.where(found[..., :1], vals[..., :1],
                            torch.zeros_like(vals[..., :1]))
        idx[:, sl] = torch.where(found, vals, first).to(torch.int32)
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
            sel = torch.topk(_sortable_key(d, M), k, dim=-1, largest=False,
                             sorted=True).indices
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
    cx, cy, cz, dx, dy, dz = (boxes[..., i].unsqueeze(1) for i in range(6))
    rz = boxes[..., 6].double()
    cosa = torch.cos(-rz).float().unsqueeze(1)
    sina = torch.sin(-rz).float().unsqueeze(1)
    zc = cz + dz / 2.0
    hx, hy, hz = dx / 2.0, dy / 2.0, dz / 2.0
    for sl in _row_chunks(M, B * T):
        p = points[:, sl]
        x, y, z = p[..., 0:1], p[..., 1:2], p[..., 2:3]
        inside = ~((z - zc).abs() > hz)
        sx = x - cx
        sy = y - cy
        lx = sx * cosa + sy * (-sina)
        ly = sx * sina + sy * cosa
        inside &= (lx > -hx) & (lx < hx) & (ly > -hy) & (ly < hy)
        flags[:, sl] = inside
    return flags


def points_in_boxes_part(points: Tensor, boxes: Tensor) -> Tensor:
    """``points_in_boxes_part_forward_cuda_kernel``: the first box (lowest
    index) containing each point, -1 for none. (B, M) int32."""
    flags = points_in_boxes_flags(points, boxes)
    if flags.shape[-1] == 0:
        return torch.full(flags.shape[:2], -1, dtype=torch.int32,
                          device=flags.device)
    first = flags.to(torch.uint8).argmax(-1)  # first True
    return torch.where(flags.any(-1), first,
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
    flags = points_in_boxes_flags(points, boxes).transpose(1, 2)  # (B, M, N)
    slots = torch.arange(S, device=points.device)
    for sl in _row_chunks(M, B * N):
        f = flags[:, sl]
        vals, found = _first_k(f, S)
        cnt = found.sum(-1, keepdim=True)
        src = vals.gather(-1, slots % cnt.clamp(min=1))
        src = torch.where(cnt > 0, src, torch.zeros_like(src))
        chunk = rows.gather(
            1, src.reshape(B, -1, 1).expand(-1, -1, 3 + C)).reshape(
                B, -1, S, 3 + C)
        has = cnt > 0  # (B, m, 1)
        pooled[:, sl] = torch.where(has.unsqueeze(-1), chunk,
                                    torch.zeros_like(chunk))
        empty[:, sl] = (~has[..., 0]).to(torch.int32)
    return pooled, empty
