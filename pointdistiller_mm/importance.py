"""Importance scores, top-N sampling and softmax reweighting (PointDistiller).

Rows are the distilled feature rows of a whole batch stacked along dim 0
(voxels, pillars, points or BEV cells), with ``batch_idx`` giving the sample
each row belongs to. Sampling works per sample by default; the official
code's batch-global sampling is available as ``mode='batch_global'``.
"""
import math
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = [
    'TopN', 'voxel_point_count_scores', 'bev_cell_index',
    'bev_point_count_scores',
    'channel_max_scores', 'topn_per_sample', 'gather_rows', 'reweight'
]

IntPair = Union[int, Sequence[int]]


class TopN(NamedTuple):
    """Padded result of :func:`topn_per_sample`.

    Attributes:
        index (Tensor): (G, n) long, row indices into the stacked rows, sorted
            by descending score inside each group; padded entries hold 0.
        mask (Tensor): (G, n) bool, True where ``index`` is a real row.
    """
    index: Tensor
    mask: Tensor


def voxel_point_count_scores(num_points: Tensor) -> Tensor:
    """Importance of voxel / pillar rows: the number of points in each voxel.

    Args:
        num_points (Tensor): (M,) point count per voxel (the voxelizer's
            ``num_points``).

    Returns:
        Tensor: (M,) float scores.
    """
    return num_points.reshape(-1).float()


def _pair(v: IntPair) -> Tuple[int, int]:
    if isinstance(v, (int, float)):
        return int(v), int(v)
    v = tuple(int(x) for x in v)
    if len(v) != 2:
        raise ValueError(f'expected an int or a pair, got {v}')
    return v


def _cell_index(coord: Tensor, grid: int, cells: int,
                stride: Optional[int]) -> Tensor:
    """Map voxel grid coordinates to map cells along one axis."""
    if stride is None:
        s = max(1, int(round(grid / cells)))
        # A strided conv gives ceil(grid / s) (padded) or floor(grid / s)
        # cells; both are integer-stride maps. Anything else (e.g. an
        # upsampled map) falls back to proportional mapping.
        if cells in (math.ceil(grid / s), grid // s):
            stride = s
    if stride is not None:
        idx = torch.div(coord, stride, rounding_mode='floor')
    else:
        idx = torch.div(coord * cells, grid, rounding_mode='floor')
    # Voxels beyond the last full window (floor-sized maps) go to the last
    # cell instead of being dropped.
    return idx.clamp_(0, cells - 1)


def bev_cell_index(coors_yx: Tensor, grid_shape: IntPair,
                   map_shape: IntPair,
                   stride: Optional[IntPair] = None) -> Tuple[Tensor, Tensor]:
    """``(y, x)`` cell of a BEV map for voxel grid coordinates ``(y, x)``,
    with the stride rule of :func:`bev_point_count_scores`.

    Args:
        coors_yx (Tensor): (M, 2) int voxel coordinates ``(y, x)``.
        grid_shape (int | tuple): voxel grid size ``(H, W)``.
        map_shape (int | tuple): BEV map size ``(h, w)``.
        stride (int | tuple, optional): explicit stride ``(sy, sx)``.
    """
    H, W = _pair(grid_shape)
    h, w = _pair(map_shape)
    sy, sx = _pair(stride) if stride is not None else (None, None)
    coors_yx = coors_yx.long()
    return (_cell_index(coors_yx[:, 0], H, h, sy),
            _cell_index(coors_yx[:, 1], W, w, sx))


def bev_point_count_scores(coors: Tensor,
                           num_points: Tensor,
                           batch_size: int,
                           grid_shape: IntPair,
                           map_shape: IntPair,
                           stride: Optional[IntPair] = None) -> Tensor:
    """Scatter voxel point counts onto a BEV map at that map's stride.

    The score of a BEV cell is the number of points of all voxels that fall
    into it. mmdet3d voxel ``coors`` are ``(batch_idx, z, y, x)``; the map is
    indexed ``(y, x)`` like mmdet3d's scatter / sparse encoders.

    The stride per axis is ``stride`` when given, otherwise the integer
    ``round(grid / cells)`` when the map size is ``ceil`` or ``floor`` of
    ``grid / stride`` (strided convolutions with or without padding; voxels
    past the last full window go to the last cell), and proportional mapping
    ``floor(coord * cells / grid)`` for any other ratio.

    Args:
        coors (Tensor): (M, 4) or (M, 3) int voxel coordinates, batch index
            first and ``(y, x)`` last.
        num_points (Tensor): (M,) point count per voxel.
        batch_size (int): number of samples B.
        grid_shape (int | tuple): voxel grid size ``(H, W)`` in ``(y, x)``.
        map_shape (int | tuple): BEV map size ``(h, w)``.
        stride (int | tuple, optional): explicit stride ``(sy, sx)``.

    Returns:
        Tensor: (B, h * w) float scores, row-major over ``(y, x)``.
    """
    h, w = _pair(map_shape)
    coors = coors.long()
    b = coors[:, 0]
    y, x = bev_cell_index(coors[:, -2:], grid_shape, map_shape, stride)
    flat = (b * h + y) * w + x
    out = torch.zeros(
        batch_size * h * w, dtype=torch.float32, device=coors.device)
    out.index_add_(0, flat, num_points.reshape(-1).float())
    return out.view(batch_size, h * w)


def channel_max_scores(feats: Tensor) -> Tensor:
    """Importance as the maximum over channels (point rows, BEV option).

    Args:
        feats (Tensor): (M, C) rows, or a (B, C, h, w) map.

    Returns:
        Tensor: (M,) for rows, (B, h * w) for a map; detached.
    """
    feats = feats.detach()
    if feats.dim() == 4:
        return feats.amax(dim=1).flatten(1)
    if feats.dim() != 2:
        raise ValueError(f'expected (M, C) or (B, C, h, w), got '
                         f'{tuple(feats.shape)}')
    return feats.amax(dim=1)


def topn_per_sample(scores: Tensor,
                    batch_idx: Tensor,
                    n: Optional[int],
                    batch_size: Optional[int] = None,
                    mode: str = 'per_sample') -> TopN:
    """Indices of the top-``n`` rows by score, per sample.

    A sample with fewer than ``n`` rows keeps all of them; an empty sample
    gives an all-False mask row. Ties are broken by row order (stable sort).

    Args:
        scores (Tensor): (M,) importance scores.
        batch_idx (Tensor): (M,) sample index of each row.
        n (int | None): rows to keep per group; None keeps all rows (sorted).
        batch_size (int, optional): number of samples; defaults to
            ``batch_idx.max() + 1`` (pass it when trailing samples may be
            empty).
        mode (str): ``'per_sample'`` (one group per sample, G = B) or
            ``'batch_global'`` (the whole batch as one group, G = 1, as the
            official code samples).

    Returns:
        TopN: padded ``index`` and ``mask`` of shape (G, n_max) with
        ``n_max = min(n, largest group)``.
    """
    if mode not in ('per_sample', 'batch_global'):
        raise ValueError(f"mode must be 'per_sample' or 'batch_global', "
                         f'got {mode!r}')
    scores = scores.detach().reshape(-1)
    device = scores.device
    M = scores.numel()
    if mode == 'batch_global':
        group = torch.zeros(M, dtype=torch.long, device=device)
        num_groups = 1
    else:
        group = batch_idx.reshape(-1).long()
        if batch_size is None:
            batch_size = int(group.max().item()) + 1 if M > 0 else 0
        num_groups = batch_size
    if num_groups == 0 or M == 0:
        width = 0
        return TopN(
            torch.zeros(num_groups, width, dtype=torch.long, device=device),
            torch.zeros(num_groups, width, dtype=torch.bool, device=device))
    # Sort by score (descending), then stably by group: groups become
    # contiguous and each is sorted by descending score.
    order = torch.sort(scores, descending=True, stable=True).indices
    order = order[torch.sort(group[order], stable=True).indices]
    counts = torch.bincount(group, minlength=num_groups)
    starts = torch.cumsum(counts, 0) - counts
    g_sorted = group[order]
    rank = torch.arange(M, device=device) - starts[g_sorted]
    largest = int(counts.max().item())
    width = largest if n is None else min(int(n), largest)
    keep = rank < width
    index = torch.zeros(num_groups, width, dtype=torch.long, device=device)
    mask = torch.zeros(num_groups, width, dtype=torch.bool, device=device)
    index[g_sorted[keep], rank[keep]] = order[keep]
    mask[g_sorted[keep], rank[keep]] = True
    return TopN(index, mask)


def gather_rows(rows: Tensor, topn: TopN) -> Tensor:
    """Gather stacked rows (M, ...) into the padded layout (G, n, ...).

    Padded entries are zero.
    """
    shape = (*topn.index.shape, *rows.shape[1:])
    out = rows[topn.index.reshape(-1)].view(shape)
    m = topn.mask.view(*topn.mask.shape, *([1] * (rows.dim() - 1)))
    return out * m.to(out.dtype) if out.is_floating_point() else out


def reweight(scores_sampled: Tensor,
             tau: Optional[float],
             mask: Optional[Tensor] = None) -> Tensor:
    """Reweighting phi = softmax(score / tau) * n_valid over a sample's rows.

    The softmax runs over the valid (sampled) rows of each group along the
    last dim and is rescaled to mean 1 over them, so phi = 1 everywhere
    means "no reweighting" at the same loss scale. ``tau=None`` gives ones.
    Large ``tau`` tends to ones; tiny ``tau`` to an argmax (ties share).

    Args:
        scores_sampled (Tensor): (..., n) scores of the sampled rows.
        tau (float | None): softmax temperature; None disables reweighting.
        mask (Tensor, optional): (..., n) bool, True on valid rows.

    Returns:
        Tensor: (..., n) float weights, 0 on padded rows.
    """
    scores_sampled = scores_sampled.detach().float()
    if mask is None:
        mask = torch.ones_like(scores_sampled, dtype=torch.bool)
    valid = mask.to(scores_sampled.dtype)
    if tau is None:
        return valid
    if tau <= 0:
        raise ValueError(f'tau must be > 0 or None, got {tau}')
    logits = (scores_sampled / tau).masked_fill(~mask, float('-inf'))
    # Rows with no valid entry would give NaN: use zeros there.
    any_valid = mask.any(dim=-1, keepdim=True)
    logits = torch.where(any_valid, logits, torch.zeros_like(logits))
    phi = torch.softmax(logits, dim=-1) * valid
    n_valid = valid.sum(dim=-1, keepdim=True)
    return phi * n_valid
