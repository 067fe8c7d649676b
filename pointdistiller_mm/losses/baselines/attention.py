"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017)."""
from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._common import check_map

__all__ = ['ATLoss', 'attention_map']


def attention_map(feats: Tensor, p: float = 2.0,
                  weight: Optional[Tensor] = None) -> Tensor:
    """``normalize(mean_c |F|^p)`` per sample: (B, C, *spatial) -> (B, S),
    L2-normalised over the S locations (masked by ``weight`` first)."""
    a = feats.abs().pow(p).mean(1).flatten(1)
    if weight is not None:
        a = a * weight.reshape(a.shape).to(a.dtype)
    return F.normalize(a, dim=1)


@MODELS.register_module()
class ATLoss(nn.Module):
    """``loss_weight * mean_{b,s} (A_S - A_T) ** 2`` of the attention maps.

    No connector: the attention map is a mean over channels, so student and
    teacher widths may differ.

    Args:
        p: Exponent of the attention map (2 in the paper).
        loss_weight: Scale (the paper's beta / 2 = 500 with beta = 1000).
    """

    def __init__(self, p: float = 2.0, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.p = p
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss; ``weight`` (B, *spatial) masks both maps."""
        check_map('ATLoss', student_feats)
        a_s = attention_map(student_feats, self.p, weight)
        a_t = attention_map(teacher_feats.detach(), self.p, weight)
        return self.loss_weight * (a_s - a_t).pow(2).mean()
