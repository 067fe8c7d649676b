"""Hinton et al. (2015): KL between softened classification outputs."""
from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .head_outputs import HeadOutputs, head_output

__all__ = ['LogitKDLoss']

ACTIVATIONS = ('sigmoid', 'softmax')


@MODELS.register_module()
class LogitKDLoss(nn.Module):
    """``loss_weight * T^2 * mean_rows KL(p_T || p_S)`` with softened
    probabilities ``p = act(z / T)``.

    ``'sigmoid'`` (default; mmdet3d's anchor heads classify with
    per-class sigmoids) sums the binary KL of each class; ``'softmax'`` is
    the KL over the class axis. Rows are anchors (or any leading axes);
    classes are the last axis.

    Args:
        temperature: T (default 2).
        activation: ``'sigmoid'`` or ``'softmax'``.
        loss_weight: Scale.
    """

    def __init__(self, temperature: float = 2.0,
                 activation: str = 'sigmoid',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation must be one of {ACTIVATIONS}, '
                             f'got {activation!r}')
        self.temperature = temperature
        self.activation = activation
        self.loss_weight = loss_weight

    def forward(self, student_feats: HeadOutputs, teacher_feats: HeadOutputs,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on logits (..., K) (``cls_scores`` of
        ``AnchorHeadRows``); ``weight`` (...) weights the rows
        (``sum(w * kl) / sum(w)``)."""
        s = head_output(student_feats, 'cls_scores', 'LogitKDLoss')
        t = head_output(teacher_feats, 'cls_scores', 'LogitKDLoss').detach()
        temp = self.temperature
        if self.activation == 'sigmoid':
            p_t = (t / temp).sigmoid()
            kl = (F.binary_cross_entropy_with_logits(
                s / temp, p_t, reduction='none') -
                  F.binary_cross_entropy_with_logits(
                      t / temp, p_t, reduction='none')).sum(-1)
        else:
            log_p_t = F.log_softmax(t / temp, dim=-1)
            kl = (log_p_t.exp() *
                  (log_p_t - F.log_softmax(s / temp, dim=-1))).sum(-1)
        if weight is None:
            loss = kl.mean()
        else:
            w = weight.reshape(kl.shape).to(kl.dtype)
            loss = (kl * w).sum() / w.sum().clamp(min=1e-12)
        return self.loss_weight * temp * temp * loss
