"""PVD output distillation: point-wise and voxel-wise KL (L_out.p, L_out.v).

Cylinder3D classifies voxels; a point's logits are those of its voxel
(``Cylinder3DHead.predict`` gathers them through ``point2voxel_map``). Point
logits are therefore never materialised: a mean over points equals a mean
over voxels weighted by their point counts.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .rows import linear_keys

__all__ = ['softmax_kl', 'PointOutputKDLoss', 'VoxelOutputKDLoss']


def softmax_kl(student: Tensor, teacher: Tensor,
               temperature: float = 1.0) -> Tensor:
    """Row-wise ``KL(softmax(t / T) || softmax(s / T))`` of logits ``(N, K)``
    (teacher detached)."""
    log_p_t = F.log_softmax(teacher.detach() / temperature, dim=-1)
    log_p_s = F.log_softmax(student / temperature, dim=-1)
    return (log_p_t.exp() * (log_p_t - log_p_s)).sum(-1)


def _check_logits(student: Tensor, teacher: Tensor, owner: str) -> None:
    if student.dim() != 2 or student.shape != teacher.shape:
        raise ValueError(
            f'{owner} takes voxel logits (M, num_classes) of the same shape '
            f'on both sides, got student {tuple(student.shape)} and teacher '
            f'{tuple(teacher.shape)}; record decode_head.conv_seg on both '
            'models (same num_classes)')


@MODELS.register_module()
class PointOutputKDLoss(nn.Module):
    """Point-wise output KD: ``loss_weight * T^2 * mean over points of
    KL(p_T || p_S)``, p = softmax(logits / T).

    Args:
        temperature: T (PVD uses plain probabilities: 1; Hinton KD: e.g. 2).
        loss_weight: alpha1 of PVD (0.1 for Cylinder3D).
    """

    def __init__(self, temperature: float = 1.0,
                 loss_weight: float = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = float(temperature)
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                point2voxel: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        """``student_feats`` / ``teacher_feats``: voxel logits ``(M, K)``;
        ``point2voxel (P,)``: voxel row of each point (None: one point per
        row, i.e. the rows already are points)."""
        _check_logits(student_feats, teacher_feats, type(self).__name__)
        kl = softmax_kl(student_feats, teacher_feats, self.temperature)
        if point2voxel is None:
            loss = kl.mean() if kl.numel() else kl.sum()
        else:
            counts = torch.bincount(point2voxel, minlength=kl.shape[0])
            loss = (kl * counts.to(kl.dtype)).sum() / max(
                point2voxel.numel(), 1)
        return self.loss_weight * self.temperature**2 * loss


@MODELS.register_module()
class VoxelOutputKDLoss(nn.Module):
    """Voxel-wise output KD: point logits averaged inside each voxel, then
    ``loss_weight * T^2 * mean over voxels of KL(p_T || p_S)``.

    With ``voxel_size=(1, 1, 1)`` (default) the KD voxel is the network's
    voxel: all points of a voxel carry its logits, so the average is the
    voxel's logits and every occupied voxel counts once (against once per
    point in :class:`PointOutputKDLoss`). A coarser KD grid groups
    ``voxel_size`` network voxels (rho, phi, z cells) and averages the point
    logits inside it (voxel logits weighted by their point counts).

    Args:
        voxel_size: KD voxel in network voxels along (rho, phi, z).
        temperature: T.
        loss_weight: alpha2 of PVD (0.15 for Cylinder3D).
    """

    def __init__(self, voxel_size: Sequence[int] = (1, 1, 1),
                 temperature: float = 1.0,
                 loss_weight: float = 0.15) -> None:
        super().__init__()
        if len(voxel_size) != 3 or any(int(v) < 1 for v in voxel_size):
            raise ValueError('voxel_size is three positive integers (rho, '
                             f'phi, z network voxels), got {voxel_size!r}')
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.voxel_size = tuple(int(v) for v in voxel_size)
        self.temperature = float(temperature)
        self.loss_weight = loss_weight

    def pool(self, logits: Tensor, voxel_coors: Tensor,
             weights: Tensor) -> Tensor:
        """Weighted mean of voxel rows inside each KD voxel ``(G, K)``."""
        size = voxel_coors.new_tensor((1, ) + self.voxel_size)
        cells = voxel_coors.long() // size
        dims = cells.max(0).values + 1
        _, group = torch.unique(linear_keys(cells, dims), return_inverse=True)
        n = int(group.max()) + 1 if group.numel() else 0
        w = weights.to(logits.dtype)[:, None]
        num = logits.new_zeros(n, logits.shape[1]).index_add_(
            0, group, logits * w)
        den = logits.new_zeros(n, 1).index_add_(0, group, w)
        return num / den.clamp(min=1e-12)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                point2voxel: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        """``student_feats`` / ``teacher_feats``: voxel logits ``(M, K)``,
        ``voxel_coors (M, 4)`` (batch, rho, phi, z), ``point2voxel (P,)``
        (point counts; needed when the KD grid is coarser)."""
        _check_logits(student_feats, teacher_feats, type(self).__name__)
        s, t = student_feats, teacher_feats.detach()
        if self.voxel_size != (1, 1, 1) and s.shape[0]:
            if voxel_coors is None or point2voxel is None:
                raise ValueError('a coarser KD voxel_size needs voxel_coors '
                                 'and point2voxel (use Cylinder3DRows)')
            counts = torch.bincount(point2voxel, minlength=s.shape[0])
            s = self.pool(s, voxel_coors, counts)
            t = self.pool(t, voxel_coors, counts)
        kl = softmax_kl(s, t, self.temperature)
        loss = kl.mean() if kl.numel() else kl.sum()
        return self.loss_weight * self.temperature**2 * loss
