"""Supervoxels of a cylindrical voxel grid and PVD's difficulty-aware
sampling: supervoxel s is drawn with probability proportional to
``f_class(s) * f_dist(s)``."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS

from .rows import linear_keys

__all__ = ['SupervoxelSampler', 'Supervoxels', 'f_class', 'f_dist',
           'SEMANTICKITTI_MINORITY']

#: Default minority classes, SemanticKITTI's 19-class indices as mmdet3d
#: maps them: bicycle, motorcycle, truck, other-vehicle (bus), person,
#: bicyclist, motorcyclist, pole, traffic-sign. Each holds under ~0.5 % of
#: the labelled training points.
SEMANTICKITTI_MINORITY = (1, 2, 3, 4, 5, 6, 7, 17, 18)

MINOR_MEASURES = ('inverse_count', 'count', 'share')


def f_class(n_minor: Tensor, n_points: Tensor, a: float = 5.0,
            b: float = -2.0, measure: str = 'inverse_count') -> Tensor:
    """``a * exp(b * g) + 1`` per supervoxel.

    ``measure`` chooses g from the number of minority-class points
    ``n_minor`` (and all points ``n_points``):

    * ``'inverse_count'`` (default): g = 1 / n_minor (g = inf, f = 1 for
      no minority point). With b < 0 (the paper sweeps b in {-1, -2, -3},
      a in {3, ..., 6}) f rises from 1 towards a + 1 as minority points
      are added.
    * ``'count'``: g = n_minor (the formula read literally; with b < 0 it
      *falls* as minority points are added, use b > 0 to favour them).
    * ``'share'``: g = n_minor / n_points.
    """
    if measure not in MINOR_MEASURES:
        raise ValueError(f'measure must be one of {MINOR_MEASURES}, got '
                         f'{measure!r}')
    n_minor = n_minor.float()
    if measure == 'inverse_count':
        g = torch.where(n_minor > 0, 1.0 / n_minor.clamp(min=1),
                        torch.full_like(n_minor, math.inf))
        if b >= 0:
            raise ValueError("measure='inverse_count' needs b < 0 (f grows "
                             f'with minority points), got b={b}')
    elif measure == 'count':
        g = n_minor
    else:
        g = n_minor / n_points.float().clamp(min=1)
    return a * torch.exp(b * g) + 1


def f_dist(mean_range: Tensor, max_range: float = 50.0,
           coef: float = 1.0) -> Tensor:
    """``1 + coef * min(d / max_range, 1)`` per supervoxel, d the mean
    distance (x-y plane, metres) of its points from the sensor: 1 at the
    sensor, ``1 + coef`` at ``max_range`` and beyond."""
    return 1 + coef * (mean_range.float() / max_range).clamp(0, 1)


@dataclass
class Supervoxels:
    """The sampled supervoxels of a batch.

    ``voxels[k]`` / ``points[k]``: voxel rows / point indices of the k-th
    sampled supervoxel; ``prob``: sampling probability of every supervoxel
    of the batch (normalised per scan); ``batch``: scan of each supervoxel.
    """
    voxels: List[Tensor]
    points: List[Tensor]
    prob: Tensor
    batch: Tensor


@TASK_UTILS.register_module()
class SupervoxelSampler:
    """Partition each scan's cylindrical grid into supervoxels and sample K
    of them per scan, without replacement, with probability proportional to
    ``f_class * f_dist`` (see :func:`f_class`, :func:`f_dist`).

    A supervoxel is a block of ``supervoxel_size`` (rho, phi, z) network
    voxels; empty blocks are never drawn. A scan with fewer than K
    non-empty supervoxels gives all of them.

    Args:
        supervoxel_size: Network voxels per supervoxel along (rho, phi, z).
        num_samples: K, supervoxels per scan.
        minority_classes: Label indices counted as minority (N_minor);
            default :data:`SEMANTICKITTI_MINORITY`. Without labels every
            supervoxel has N_minor = 0.
        class_a, class_b: a and b of ``f_class``.
        minor_measure: How N_minor enters ``f_class``.
        max_range, dist_coef: ``f_dist`` parameters (metres; slope).
    """

    def __init__(self,
                 supervoxel_size: Sequence[int] = (20, 15, 8),
                 num_samples: int = 64,
                 minority_classes: Optional[Sequence[int]] = (
                     SEMANTICKITTI_MINORITY),
                 class_a: float = 5.0,
                 class_b: float = -2.0,
                 minor_measure: str = 'inverse_count',
                 max_range: float = 50.0,
                 dist_coef: float = 1.0) -> None:
        if len(supervoxel_size) != 3 or any(int(s) < 1
                                            for s in supervoxel_size):
            raise ValueError('supervoxel_size is three positive integers '
                             f'(rho, phi, z voxels), got {supervoxel_size!r}')
        if num_samples < 1:
            raise ValueError(f'num_samples must be >= 1, got {num_samples}')
        if minor_measure not in MINOR_MEASURES:
            raise ValueError(f'minor_measure must be one of {MINOR_MEASURES},'
                             f' got {minor_measure!r}')
        self.supervoxel_size = tuple(int(s) for s in supervoxel_size)
        self.num_samples = int(num_samples)
        self.minority_classes = tuple(minority_classes or ())
        self.class_a, self.class_b = float(class_a), float(class_b)
        self.minor_measure = minor_measure
        self.max_range, self.dist_coef = float(max_range), float(dist_coef)

    def weights(self, n_minor: Tensor, n_points: Tensor,
                mean_range: Tensor) -> Tensor:
        """Unnormalised sampling weight ``f_class * f_dist``."""
        return f_class(n_minor, n_points, self.class_a, self.class_b,
                       self.minor_measure) * f_dist(
                           mean_range, self.max_range, self.dist_coef)

    def __call__(self, voxel_coors: Tensor, point2voxel: Tensor,
                 point_range: Tensor,
                 point_labels: Optional[Tensor] = None) -> Supervoxels:
        """Sample supervoxels of a batch (see the class docstring).

        Args:
            voxel_coors: ``(M, 4)`` (batch, rho, phi, z) voxel coordinates.
            point2voxel: ``(P,)`` voxel row of each point.
            point_range: ``(P,)`` distance of each point from the sensor.
            point_labels: ``(P,)`` semantic labels or None.
        """
        dev = voxel_coors.device
        size = voxel_coors.new_tensor((1, ) + self.supervoxel_size).long()
        cells = voxel_coors.long() // size
        if cells.shape[0] == 0:
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            return Supervoxels([], [], empty.float(), empty)
        keys = linear_keys(cells, cells.max(0).values + 1)
        uniq, sv_of_voxel = torch.unique(keys, return_inverse=True)
        n_sv = uniq.numel()
        sv_batch = torch.zeros(n_sv, dtype=torch.long, device=dev)
        sv_batch[sv_of_voxel] = cells[:, 0]
        sv_of_point = sv_of_voxel[point2voxel]
        n_points = torch.bincount(sv_of_point, minlength=n_sv)
        range_sum = torch.zeros(n_sv, device=dev).index_add_(
            0, sv_of_point, point_range.float())
        mean_range = range_sum / n_points.clamp(min=1)
        n_minor = torch.zeros(n_sv, dtype=torch.long, device=dev)
        if point_labels is not None and self.minority_classes:
            minor = torch.isin(point_labels.long(),
                               torch.tensor(self.minority_classes,
                                            device=dev))
            n_minor = torch.bincount(sv_of_point[minor], minlength=n_sv)
        weight = self.weights(n_minor, n_points, mean_range)
        weight = torch.where(n_points > 0, weight, torch.zeros_like(weight))
        prob = torch.zeros_like(weight)
        chosen = []
        for b in torch.unique(sv_batch).tolist():
            ids = torch.nonzero(sv_batch == b).squeeze(1)
            w = weight[ids]
            prob[ids] = w / w.sum()
            k = min(self.num_samples, int((w > 0).sum()))
            chosen.append(ids[torch.multinomial(w, k, replacement=False)])
        chosen_ids = torch.cat(chosen)
        voxel_order = torch.argsort(sv_of_voxel)
        voxel_start = torch.cumsum(
            torch.bincount(sv_of_voxel, minlength=n_sv), 0)
        point_order = torch.argsort(sv_of_point)
        point_start = torch.cumsum(n_points, 0)
        voxels, points = [], []
        for s in chosen_ids.tolist():
            v0 = int(voxel_start[s - 1]) if s else 0
            p0 = int(point_start[s - 1]) if s else 0
            voxels.append(voxel_order[v0:int(voxel_start[s])])
            points.append(point_order[p0:int(point_start[s])])
        return Supervoxels(voxels, points, prob, sv_batch)
