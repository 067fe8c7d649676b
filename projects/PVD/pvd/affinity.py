"""PVD affinity distillation inside sampled supervoxels (L_aff.p, L_aff.v).

Inside each sampled supervoxel the cosine-similarity matrix of the points'
(resp. voxels') features is computed for teacher and student; the loss is
the mean squared difference of the two matrices, averaged over the sampled
supervoxels. Cosine matrices do not depend on the width, so a 0.5x student
needs no connector.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS, TASK_UTILS
from torch import Tensor, nn

__all__ = ['cosine_matrix', 'affinity_l2', 'point_labels',
           'PointAffinityLoss', 'VoxelAffinityLoss']

FEATURE_LEVELS = ('voxel', 'point')


def cosine_matrix(feats: Tensor, eps: float = 1e-8) -> Tensor:
    """``(n, n)`` cosine similarities of the rows of ``feats (n, C)``."""
    unit = F.normalize(feats, dim=1, eps=eps)
    return unit @ unit.t()


def affinity_l2(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared difference of the student's and the (detached)
    teacher's cosine matrices of the same rows."""
    return (cosine_matrix(student) -
            cosine_matrix(teacher.detach())).pow(2).mean()


def point_labels(data_samples: Optional[list]) -> Optional[Tensor]:
    """Per-point semantic labels of the batch (``gt_pts_seg.
    pts_semantic_mask`` concatenated in point order), or None."""
    if not data_samples:
        return None
    labels = []
    for sample in data_samples:
        seg = getattr(sample, 'gt_pts_seg', None)
        mask = getattr(seg, 'pts_semantic_mask', None) if seg is not None \
            else None
        if mask is None:
            return None
        labels.append(torch.as_tensor(mask).long().reshape(-1))
    return torch.cat(labels)


class _AffinityLoss(nn.Module):
    """Shared machinery of the point / voxel affinity losses."""

    def __init__(self, sampler: Mapping, max_rows: int,
                 loss_weight: float) -> None:
        super().__init__()
        if max_rows < 2:
            raise ValueError(f'max rows per supervoxel must be >= 2, got '
                             f'{max_rows}')
        self.sampler = TASK_UTILS.build(dict(sampler)) if isinstance(
            sampler, Mapping) else sampler
        self.max_rows = int(max_rows)
        self.loss_weight = loss_weight

    def _cap(self, rows: Tensor) -> Tensor:
        if rows.numel() <= self.max_rows:
            return rows
        keep = torch.randperm(rows.numel(), device=rows.device)
        return rows[keep[:self.max_rows]]

    def _sample(self, voxel_coors, point2voxel, point_range, data_samples):
        for name, value in (('voxel_coors', voxel_coors),
                            ('point2voxel', point2voxel),
                            ('point_range', point_range)):
            if value is None:
                raise ValueError(f'{type(self).__name__} needs {name}: use '
                                 "rows=dict(type='Cylinder3DRows')")
        labels = point_labels(data_samples)
        if labels is not None and labels.numel() != point2voxel.numel():
            labels = None  # e.g. points dropped by the pipeline after labels
        return self.sampler(voxel_coors, point2voxel, point_range,
                            labels.to(point2voxel.device)
                            if labels is not None else None)

    @staticmethod
    def _mean(terms, student: Tensor, teacher: Tensor) -> Tensor:
        if not terms:  # no supervoxel with two rows: keep the graph
            return student.sum() * 0.0
        return torch.stack(terms).mean()


@MODELS.register_module()
class PointAffinityLoss(_AffinityLoss):
    """Inter-point affinity distillation (L_aff.p).

    Point features are, with ``Cylinder3DRows`` on voxel-level recordings
    (default: the backbone output, i.e. the decode head's input), the
    features of each point's voxel: the features the classifier sees for
    that point. If the recorded rows are per point (``P`` rows, e.g. a
    point-wise branch), they are used as they are.

    Args:
        sampler: ``SupervoxelSampler`` config (supervoxel size, K, f_class
            and f_dist parameters).
        max_points: Points per supervoxel kept for the (n x n) matrix (a
            uniform random subset above it).
        loss_weight: beta1 of PVD (0.15 for Cylinder3D).
    """

    def __init__(self, sampler: Mapping = dict(type='SupervoxelSampler'),
                 max_points: int = 256, loss_weight: float = 0.15) -> None:
        super().__init__(sampler, max_points, loss_weight)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                point2voxel: Optional[Tensor] = None,
                point_range: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        sv = self._sample(voxel_coors, point2voxel, point_range,
                          data_samples)
        per_point = student_feats.shape[0] == point2voxel.numel() and \
            student_feats.shape[0] != voxel_coors.shape[0]
        terms = []
        for pts in sv.points:
            if pts.numel() < 2:
                continue
            pts = self._cap(pts)
            rows = pts if per_point else point2voxel[pts]
            terms.append(affinity_l2(student_feats[rows],
                                     teacher_feats[rows]))
        return self.loss_weight * self._mean(terms, student_feats,
                                             teacher_feats)


@MODELS.register_module()
class VoxelAffinityLoss(_AffinityLoss):
    """Inter-voxel affinity distillation (L_aff.v): cosine matrices of the
    voxel features (default the backbone output, the decode head's input)
    of each sampled supervoxel.

    Args:
        sampler: ``SupervoxelSampler`` config.
        max_voxels: Voxels per supervoxel kept (uniform random subset).
        loss_weight: beta2 of PVD (0.25 for Cylinder3D).
    """

    def __init__(self, sampler: Mapping = dict(type='SupervoxelSampler'),
                 max_voxels: int = 256, loss_weight: float = 0.25) -> None:
        super().__init__(sampler, max_voxels, loss_weight)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                point2voxel: Optional[Tensor] = None,
                point_range: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        sv = self._sample(voxel_coors, point2voxel, point_range,
                          data_samples)
        terms = []
        for rows in sv.voxels:
            if rows.numel() < 2:
                continue
            rows = self._cap(rows)
            terms.append(affinity_l2(student_feats[rows],
                                     teacher_feats[rows]))
        return self.loss_weight * self._mean(terms, student_feats,
                                             teacher_feats)
