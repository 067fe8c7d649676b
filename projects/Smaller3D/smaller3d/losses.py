"""Smaller3D distillation losses: voxel-logit KD and sparse feature-map MSE.

Both take the project's call shape ``loss(student_feats, teacher_feats,
...)`` with rows ``(N, C)`` and the rows' integer voxel coordinates; rows are
paired by coordinates (:func:`match_voxels`), never by position.
"""
from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from pointdistiller_mm.adapters.connectors import LinearConnector

from .matching import match_voxels

__all__ = ['Smaller3DLogitKDLoss', 'SparseFeatureMSELoss', 'aligned_rows']

KD_FORMS = ('paper', 'official')


def aligned_rows(student_feats: Tensor, teacher_feats: Tensor,
                 student_coords: Optional[Tensor],
                 teacher_coords: Optional[Tensor]) -> tuple:
    """Both sides' rows in one common voxel order.

    Coordinates are required on both sides; rows must be as many as
    coordinates.
    """
    if student_coords is None or teacher_coords is None:
        raise ValueError('Smaller3D losses pair voxels by coordinates: pass '
                         'student_coords and teacher_coords (the SparseRows '
                         'and VoxelLogitRows builders do)')
    for side, feats, coords in (('student', student_feats, student_coords),
                                ('teacher', teacher_feats, teacher_coords)):
        if feats.dim() != 2 or feats.shape[0] != coords.shape[0]:
            raise ValueError(
                f'{side} rows {tuple(feats.shape)} do not fit its '
                f'coordinates {tuple(coords.shape)}: expected (N, C) rows, '
                'one per coordinate row')
    s_order, t_order = match_voxels(student_coords, teacher_coords)
    return student_feats[s_order], teacher_feats[t_order]


@MODELS.register_module()
class Smaller3DLogitKDLoss(nn.Module):
    """Logit distillation on voxel class scores (Smaller3D, seed Sec. 2/4.2).

    ``form='paper'`` (default), Hinton et al.'s mixing as the paper writes
    it::

        L = alpha * L_task + (1 - alpha) * T^2 * mean_v KL(softmax(t_v / T)
                                                  || softmax(s_v / T))

    alpha = 1 leaves the task loss alone (the paper's first student column),
    alpha = 0.5 weighs both halves equally. The KD half is this loss's
    value; the task half is the student's own loss, which the
    ``Distiller3D`` wrapper scales by :attr:`task_loss_weight` (= alpha).

    ``form='official'``, what the released Smaller3D code computes::

        L = (1 - alpha) * CE(s, argmax t) + alpha * mean_v sum_c
            (s_vc - t_vc)^2 / (2 T^2)

    with no ground-truth term (:attr:`task_loss_weight` 0), unless
    ``task_loss_weight`` is given.

    Rows are voxels ``(N, K)`` of the same voxelized batch on both sides;
    they are paired by coordinates. ``loss_weight`` multiplies the returned
    value (not the task loss).

    Args:
        alpha: Mixing weight (see above).
        temperature: T.
        form: ``'paper'`` or ``'official'``.
        task_loss_weight: Weight of the student's own losses; default
            ``alpha`` (paper) or 0 (official).
        loss_weight: Scale of this loss.
    """

    def __init__(self,
                 alpha: float = 0.5,
                 temperature: float = 1.0,
                 form: str = 'paper',
                 task_loss_weight: Optional[float] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if form not in KD_FORMS:
            raise ValueError(f'form must be one of {KD_FORMS}, got {form!r}')
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f'alpha must be in [0, 1], got {alpha}')
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.alpha = float(alpha)
        self.temperature = float(temperature)
        self.form = form
        if task_loss_weight is None:
            task_loss_weight = self.alpha if form == 'paper' else 0.0
        self.task_loss_weight = float(task_loss_weight)
        self.loss_weight = float(loss_weight)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                student_coords: Optional[Tensor] = None,
                teacher_coords: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on voxel logits ``(N, K)`` paired by coordinates."""
        s, t = aligned_rows(student_feats, teacher_feats, student_coords,
                            teacher_coords)
        t = t.detach()
        if s.shape != t.shape:
            raise ValueError(f'student logits {tuple(s.shape)} and teacher '
                             f'logits {tuple(t.shape)} differ; the two '
                             'models must predict the same classes')
        if s.shape[0] == 0:
            return s.sum() * 0.0
        temp = self.temperature
        if self.form == 'paper':
            log_p_t = F.log_softmax(t / temp, dim=-1)
            kl = (log_p_t.exp() *
                  (log_p_t - F.log_softmax(s / temp, dim=-1))).sum(-1)
            loss = (1.0 - self.alpha) * temp * temp * kl.mean()
        else:
            ce = F.cross_entropy(s, t.argmax(-1))
            l2 = ((s - t)**2).sum(-1).mean() / (2.0 * temp * temp)
            loss = (1.0 - self.alpha) * ce + self.alpha * l2
        return self.loss_weight * loss


@MODELS.register_module()
class SparseFeatureMSELoss(nn.Module):
    """MSE between a teacher feature map and the student's map lifted to the
    teacher's width (Smaller3D encoder / decoder feature losses)::

        L = loss_weight * mean_{v, c} (t_vc - W(s_v)_c)^2

    With ``normalize='teacher'`` the value is divided by the teacher map's
    mean square on the batch, ``mean_{v, c} t_vc^2``: the fraction of the
    teacher map's energy the lifted student misses (1 for ``W(s) = 0``),
    free of the teacher's feature scale. A teacher whose maps are large, or
    spike on a batch (eval-mode BatchNorm on inputs unlike its training
    data), then gives a term of order 1 instead of one that swamps the task
    loss.

    ``W`` is a trainable 1x1 sparse convolution with bias from the student's
    to the teacher's channels. A kernel-size-1 sparse convolution maps every
    active voxel's feature vector on its own, so it is a per-voxel linear
    layer (``LinearConnector``); it is trained with the student and dropped
    at export. Voxels are paired by coordinates; a voxel present on one
    side only raises :class:`VoxelMismatchError`.

    Args:
        student_channels: Student width C_s.
        teacher_channels: Teacher width C_t.
        loss_weight: Scale.
        normalize: ``None`` (the paper's plain MSE) or ``'teacher'``
            (divide by the teacher map's mean square).
        eps: Floor of the normalizer.
    """

    NORMALIZE = (None, 'teacher')

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 loss_weight: float = 1.0,
                 normalize: Optional[str] = None,
                 eps: float = 1e-6) -> None:
        super().__init__()
        if normalize not in self.NORMALIZE:
            raise ValueError(f'normalize must be one of {self.NORMALIZE}, '
                             f'got {normalize!r}')
        if not eps > 0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.normalize = normalize
        self.eps = float(eps)
        self.student_channels = int(student_channels)
        self.teacher_channels = int(teacher_channels)
        self.connector = LinearConnector(student_channels, teacher_channels,
                                         bias=True)
        self.loss_weight = float(loss_weight)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                student_coords: Optional[Tensor] = None,
                teacher_coords: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on rows ``(N, C_s)`` / ``(N, C_t)`` paired by
        coordinates."""
        for side, feats, channels in (
                ('student', student_feats, self.student_channels),
                ('teacher', teacher_feats, self.teacher_channels)):
            if feats.dim() != 2 or feats.shape[1] != channels:
                raise ValueError(
                    f'{side} features {tuple(feats.shape)} do not have the '
                    f'configured {side}_channels={channels}; set '
                    f'{side}_channels to the width of the recorded map')
        s, t = aligned_rows(student_feats, teacher_feats, student_coords,
                            teacher_coords)
        if s.shape[0] == 0:
            return self.connector(s).sum() * 0.0
        t = t.detach()
        loss = F.mse_loss(self.connector(s), t)
        if self.normalize == 'teacher':
            loss = loss / t.pow(2).mean().clamp_min(self.eps)
        return self.loss_weight * loss
