"""FitNets (Romero et al., ICLR 2015): hint learning through a regressor."""
from __future__ import annotations

from typing import Any, Optional

from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._common import apply_connector, build_connector, location_weight

__all__ = ['FitNetsLoss']


@MODELS.register_module()
class FitNetsLoss(nn.Module):
    """``loss_weight * MSE(connector(F_S), F_T)``.

    The mean runs over every element; with ``weight`` (per location) it is
    ``sum(w * (d ** 2)) / (C * sum(w))``. Works on maps ``(B, C, *spatial)``
    and on rows ``(N, C)`` (e.g. ``VoxelRows``).

    Args:
        student_channels: C_S.
        teacher_channels: C_T.
        connector: ``'auto'`` (default: a trainable 1x1 conv when C_S != C_T,
            identity otherwise), ``'conv'`` or ``'none'``.
        loss_weight: Scale of the loss.
    """

    def __init__(self, student_channels: int, teacher_channels: int,
                 connector: str = 'auto', loss_weight: float = 1.0) -> None:
        super().__init__()
        self.connector = build_connector(student_channels, teacher_channels,
                                         connector)
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss; the teacher side is detached."""
        s = apply_connector(self.connector, student_feats)
        sq = (s - teacher_feats.detach()).pow(2)
        w = location_weight(weight, sq)
        if w is None:
            return self.loss_weight * sq.mean()
        total = (sq * w).sum()
        norm = (w.expand_as(sq)).sum().clamp(min=1e-12)
        return self.loss_weight * total / norm
