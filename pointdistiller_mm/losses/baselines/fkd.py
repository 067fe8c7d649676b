"""Attention-guided and non-local distillation (Zhang & Ma, ICLR 2021)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._common import apply_connector, build_connector, location_weight

__all__ = ['FKDLoss', 'NonLocalBlock', 'spatial_channel_attention']


def spatial_channel_attention(feats: Tensor,
                              temperature: float) -> Tuple[Tensor, Tensor]:
    """Spatial and channel attention masks of a map (B, C, H, W)::

        A_S = H W softmax(mean_c |F| / T)    (B, 1, H, W)
        A_C = C   softmax(mean_hw |F| / T)   (B, C, 1, 1)

    Both have mean 1.
    """
    b, c = feats.shape[:2]
    absf = feats.abs()
    s = absf.mean(1).flatten(1)
    n = s.shape[1]
    a_s = (F.softmax(s / temperature, dim=1) * n).view(b, 1,
                                                       *feats.shape[2:])
    ch = absf.flatten(2).mean(2)
    a_c = (F.softmax(ch / temperature, dim=1) * c).view(
        b, c, *([1] * (feats.dim() - 2)))
    return a_s, a_c


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block (Wang et al., CVPR 2018)::

        z = x + BN(W(softmax(theta(x)^T phi(x)) g(x)))

    The output BN starts at zero weight, so z = x at initialisation.
    """

    def __init__(self, channels: int,
                 inter_channels: Optional[int] = None) -> None:
        super().__init__()
        inter = inter_channels or max(channels // 2, 1)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.g = nn.Conv2d(channels, inter, 1)
        self.out = nn.Conv2d(inter, channels, 1)
        self.bn = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, HW, I)
        phi = self.phi(x).flatten(2)  # (B, I, HW)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, HW, I)
        y = torch.softmax(theta @ phi, dim=-1) @ g
        y = y.transpose(1, 2).reshape(b, -1, h, w)
        return x + self.bn(self.out(y))


@MODELS.register_module()
class FKDLoss(nn.Module):
    """Attention-guided distillation plus non-local distillation::

        A_S, A_C  = masks of the teacher (or a mix with the student's)
        L_AM = feat_weight * sqrt(sum (F_T - f(F_S))^2 * A_S * A_C)
        L_AT = attention_weight * (L1(A_S^T, A_S^S) + L1(A_C^T, A_C^S))
        L_NL = nonlocal_weight * || r_T - h(r_S) ||_2
        L    = loss_weight * (L_AM + L_AT + L_NL)

    f and h are trainable 1x1 convs C_S -> C_T; the student's attention is
    taken on f(F_S), so both sides have C_T channels. r = NonLocalBlock of
    each side (both trainable, teacher features detached) on the maps
    average-pooled by ``nonlocal_pool`` (a non-local block on a full BEV
    grid would need an (HW)^2 affinity). L1 is the mean absolute
    difference. L_AT is the paper's (L1 between the masks); the official
    code compares channel- and spatial-pooled features through adaptation
    layers instead. Temperature and weights default to the official
    code's values (0.1; 7e-5, 4e-3, 7e-5, which the code also multiplies
    by 6).

    Args:
        student_channels: C_S.
        teacher_channels: C_T.
        temperature: T of the attention softmax.
        mask_student_ratio: r in ``(A^T + r A^S) / (1 + r)``; 0 (default)
            uses the teacher's masks as the paper describes, 1 is the
            official code's average.
        feat_weight: beta of L_AM.
        attention_weight: gamma of L_AT.
        nonlocal_weight: lambda of L_NL (0 drops the non-local blocks).
        nonlocal_pool: Average-pool kernel before the non-local blocks.
        connector: ``'auto'`` (default), ``'conv'`` or ``'none'`` for f and
            h.
        loss_weight: Overall scale.
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 temperature: float = 0.1,
                 mask_student_ratio: float = 0.0,
                 feat_weight: float = 7e-5,
                 attention_weight: float = 4e-3,
                 nonlocal_weight: float = 7e-5,
                 nonlocal_pool: int = 8,
                 connector: str = 'auto',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = temperature
        self.mask_student_ratio = mask_student_ratio
        self.feat_weight = feat_weight
        self.attention_weight = attention_weight
        self.nonlocal_weight = nonlocal_weight
        self.nonlocal_pool = nonlocal_pool
        self.loss_weight = loss_weight
        self.connector = build_connector(student_channels, teacher_channels,
                                         connector)
        if nonlocal_weight > 0:
            self.student_non_local = NonLocalBlock(student_channels)
            self.teacher_non_local = NonLocalBlock(teacher_channels)
            self.nonlocal_connector = build_connector(
                student_channels, teacher_channels, connector)
        else:
            self.student_non_local = self.teacher_non_local = None
            self.nonlocal_connector = None
        self.last_terms: dict = {}

    def _pool(self, x: Tensor) -> Tensor:
        k = self.nonlocal_pool
        return F.avg_pool2d(x, k, ceil_mode=True) if k > 1 else x

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on BEV maps (B, C, H, W); ``weight`` (B, H, W)
        multiplies the spatial mask of L_AM."""
        if student_feats.dim() != 4:
            raise ValueError('FKDLoss takes BEV maps (B, C, H, W), got '
                             f'{tuple(student_feats.shape)}')
        t = teacher_feats.detach()
        s = apply_connector(self.connector, student_feats)
        t_sa, t_ca = spatial_channel_attention(t, self.temperature)
        s_sa, s_ca = spatial_channel_attention(s, self.temperature)
        r = self.mask_student_ratio
        m_sa = ((t_sa + r * s_sa) / (1 + r)).detach()
        m_ca = ((t_ca + r * s_ca) / (1 + r)).detach()
        w = location_weight(weight, s)
        if w is not None:
            m_sa = m_sa * w
        l_am = torch.linalg.vector_norm((t - s) * (m_sa * m_ca).sqrt())
        l_at = (t_sa - s_sa).abs().mean() + (t_ca - s_ca).abs().mean()
        loss = self.feat_weight * l_am + self.attention_weight * l_at
        terms = dict(am=l_am.detach(), at=l_at.detach())
        if self.student_non_local is not None:
            r_s = self.student_non_local(self._pool(student_feats))
            r_t = self.teacher_non_local(self._pool(t))
            r_s = apply_connector(self.nonlocal_connector, r_s)
            l_nl = torch.linalg.vector_norm(r_t - r_s)
            loss = loss + self.nonlocal_weight * l_nl
            terms['nl'] = l_nl.detach()
        self.last_terms = terms
        return self.loss_weight * loss
