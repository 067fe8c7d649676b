"""Match the voxels of two sparse tensors by their coordinates.

A student and a teacher feature map of the same sparse level list the same
voxels, but nothing guarantees the same row order (sparse-conv libraries
order the output sites of a strided convolution by hash tables and may
differ between runs, devices and backends). Losses therefore pair rows by
coordinates, ``(batch index, voxel index ...)``, never by position.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor

__all__ = ['VoxelMismatchError', 'voxel_keys', 'match_voxels']


class VoxelMismatchError(ValueError):
    """The two sides do not hold the same set of voxels."""


def voxel_keys(coords: Tensor, extent: Tensor) -> Tensor:
    """One int64 key per row of integer ``coords`` (N, D), ravelled over
    ``extent`` (D,) (each column's max + 1 over both sides)."""
    coords = coords.long()
    keys = torch.zeros(coords.shape[0], dtype=torch.long,
                       device=coords.device)
    for d in range(coords.shape[1]):
        keys = keys * extent[d] + coords[:, d]
    return keys


def _describe(coords: Tensor, rows: Tensor, limit: int = 3) -> str:
    shown = [tuple(int(v) for v in coords[r]) for r in rows[:limit].tolist()]
    more = f' ... (+{len(rows) - limit} more)' if len(rows) > limit else ''
    return f'{shown}{more}'


def match_voxels(student_coords: Tensor,
                 teacher_coords: Tensor) -> Tuple[Tensor, Tensor]:
    """Row permutations that put both sides in one common voxel order.

    Args:
        student_coords: (Ns, D) integer coordinates (batch index first or
            last, any column order, as long as both sides use the same).
        teacher_coords: (Nt, D) the same for the teacher.

    Returns:
        ``(student_order, teacher_order)``: index tensors such that
        ``student_coords[student_order]`` equals
        ``teacher_coords[teacher_order]`` row by row.

    Raises:
        VoxelMismatchError: different column counts, duplicate coordinates on
            one side, or a voxel present on one side only (the message gives
            the counts and a few such voxels).
    """
    if student_coords.dim() != 2 or teacher_coords.dim() != 2 or \
            student_coords.shape[1] != teacher_coords.shape[1]:
        raise VoxelMismatchError(
            'student and teacher coordinates must both be (N, D) with the '
            f'same D, got {tuple(student_coords.shape)} and '
            f'{tuple(teacher_coords.shape)}')
    s, t = student_coords.long(), teacher_coords.long()
    if s.shape[0] == 0 and t.shape[0] == 0:
        empty = s.new_zeros(0)
        return empty, empty
    both = torch.cat([s, t])
    if int(both.min()) < 0:
        raise VoxelMismatchError('voxel coordinates must be non-negative')
    extent = both.max(0)[0] + 1
    s_keys, t_keys = voxel_keys(s, extent), voxel_keys(t, extent)
    s_sorted, s_order = torch.sort(s_keys)
    t_sorted, t_order = torch.sort(t_keys)
    for name, keys, coords, order in (('student', s_sorted, s, s_order),
                                      ('teacher', t_sorted, t, t_order)):
        dup = (keys[1:] == keys[:-1]).nonzero().flatten()
        if len(dup):
            raise VoxelMismatchError(
                f'{name} coordinates repeat {len(dup)} voxel(s), e.g. '
                f'{_describe(coords, order[dup])}; rows must be unique voxels')
    if s_sorted.shape == t_sorted.shape and torch.equal(s_sorted, t_sorted):
        return s_order, t_order
    only_s = ~torch.isin(s_keys, t_keys)
    only_t = ~torch.isin(t_keys, s_keys)
    raise VoxelMismatchError(
        f'student ({len(s_keys)} voxels) and teacher ({len(t_keys)} voxels) '
        f'do not hold the same voxels: {int(only_s.sum())} only in the '
        f'student, e.g. {_describe(s, only_s.nonzero().flatten())}; '
        f'{int(only_t.sum())} only in the teacher, e.g. '
        f'{_describe(t, only_t.nonzero().flatten())}. Distil feature maps of '
        'the same sparse level, computed on the same voxelized batch.')
