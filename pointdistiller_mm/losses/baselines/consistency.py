"""SE-SSD-style consistency (Zheng et al., CVPR 2021) on anchor heads."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .head_outputs import HeadOutputs, head_output

__all__ = ['SESSDConsistencyLoss']

OUTPUT_CHOICES = ('cls', 'bbox', 'dir')


@MODELS.register_module()
class SESSDConsistencyLoss(nn.Module):
    """Consistency between the student's and the teacher's predictions on
    the anchors the teacher is confident about.

    Student and teacher heads share their anchors (same grid and anchor
    generator), so each anchor pairs a student box with a teacher box of
    IoU 1; SE-SSD's IoU matching after NMS reduces to selecting the anchors
    whose teacher score ``max_k sigmoid(c_T)`` reaches ``score_thr``. On
    those N' anchors::

        cls:  SmoothL1(sigmoid(c_S) - sigmoid(c_T)), mean over classes
        bbox: sum over box codes of SmoothL1(d_S - d_T), the angle code
              compared as sin(theta_S - theta_T)
        dir:  SmoothL1(softmax(dir_S) - softmax(dir_T)), mean over bins
        L = loss_weight * sum_o weight_o * sum_anchors(term_o) / N'

    Box codes are the head's deltas to the shared anchor, so their
    differences are SE-SSD's center, size and angle offsets in the anchor's
    normalised frame. No confident anchor gives 0.

    Args:
        score_thr: Teacher confidence threshold (SE-SSD: 0.3).
        outputs: Head outputs compared; default ``('cls', 'bbox')`` as in
            SE-SSD, ``'dir'`` adds the direction classifier.
        angle_index: Position of the yaw in the box code (7-dof: 6).
        beta: Smooth-L1 beta (mmdet3d's PointPillars box loss: 1/9).
        cls_weight: Weight of the class term.
        bbox_weight: Weight of the box term.
        dir_weight: Weight of the direction term.
        loss_weight: Overall scale.
    """

    def __init__(self,
                 score_thr: float = 0.3,
                 outputs: Sequence[str] = ('cls', 'bbox'),
                 angle_index: int = 6,
                 beta: float = 1.0 / 9.0,
                 cls_weight: float = 1.0,
                 bbox_weight: float = 1.0,
                 dir_weight: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        outputs = tuple(outputs)
        bad = [o for o in outputs if o not in OUTPUT_CHOICES]
        if bad or not outputs:
            raise ValueError(f'outputs must be a non-empty subset of '
                             f'{OUTPUT_CHOICES}, got {outputs!r}')
        self.score_thr = score_thr
        self.outputs = outputs
        self.angle_index = angle_index
        self.beta = beta
        self.weights = dict(cls=cls_weight, bbox=bbox_weight, dir=dir_weight)
        self.loss_weight = loss_weight
        self.last_stats: dict = {}

    def _smooth_l1(self, diff: Tensor) -> Tensor:
        return F.smooth_l1_loss(diff, torch.zeros_like(diff), beta=self.beta,
                                reduction='none')

    def _term(self, name: str, s: HeadOutputs, t: HeadOutputs) -> Tensor:
        """Per-anchor consistency (B, N) of one output."""
        key = dict(cls='cls_scores', bbox='bbox_preds',
                   dir='dir_cls_preds')[name]
        owner = 'SESSDConsistencyLoss'
        a = head_output(s, key, owner)
        b = head_output(t, key, owner).detach()
        if name == 'cls':
            return self._smooth_l1(a.sigmoid() - b.sigmoid()).mean(-1)
        if name == 'dir':
            return self._smooth_l1(a.softmax(-1) - b.softmax(-1)).mean(-1)
        diff = a - b
        i = self.angle_index
        if 0 <= i < diff.shape[-1]:
            diff = torch.cat([diff[..., :i], torch.sin(diff[..., i:i + 1]),
                              diff[..., i + 1:]], -1)
        return self._smooth_l1(diff).sum(-1)

    def forward(self, student_feats: HeadOutputs, teacher_feats: HeadOutputs,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on the head outputs of ``AnchorHeadRows``;
        ``weight`` (B, N) multiplies the per-anchor terms."""
        t_cls = head_output(teacher_feats, 'cls_scores',
                            'SESSDConsistencyLoss').detach()
        mask = (t_cls.sigmoid().amax(-1) >= self.score_thr).to(t_cls.dtype)
        if weight is not None:
            mask = mask * weight.reshape(mask.shape).to(mask.dtype)
        n = (mask > 0).sum().clamp(min=1).to(mask.dtype)
        loss = t_cls.new_zeros(())
        for name in self.outputs:
            per_anchor = self._term(name, student_feats, teacher_feats)
            loss = loss + self.weights[name] * (per_anchor * mask).sum() / n
        self.last_stats = dict(num_confident=(mask > 0).sum().detach())
        return self.loss_weight * loss
