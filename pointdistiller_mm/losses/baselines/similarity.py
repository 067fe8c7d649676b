"""Similarity-preserving KD (Tung & Mori, ICCV 2019)."""
from __future__ import annotations

from typing import Any, Optional

import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._common import check_map, location_weight

__all__ = ['SPLoss', 'similarity_matrix']


def similarity_matrix(feats: Tensor) -> Tensor:
    """Row-L2-normalised ``Q Q^T`` of the per-sample flattened features
    (B, ...) -> (B, B)."""
    q = feats.flatten(1)
    return F.normalize(q @ q.t(), dim=1)


@MODELS.register_module()
class SPLoss(nn.Module):
    """``loss_weight * ||G_S - G_T||_F^2 / b^2`` over the b samples of the
    batch. Widths may differ (G is b x b); a batch of one sample gives 0.

    Args:
        loss_weight: Scale (the paper's gamma is 3000).
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss; ``weight`` (B, *spatial) multiplies both maps."""
        check_map('SPLoss', student_feats)
        teacher_feats = teacher_feats.detach()
        w = location_weight(weight, student_feats)
        if w is not None:
            student_feats, teacher_feats = student_feats * w, \
                teacher_feats * w
        g_s = similarity_matrix(student_feats)
        g_t = similarity_matrix(teacher_feats)
        b = student_feats.shape[0]
        return self.loss_weight * (g_s - g_t).pow(2).sum() / (b * b)
