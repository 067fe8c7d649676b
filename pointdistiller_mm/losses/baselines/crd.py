"""Contrastive representation distillation (Tian et al., ICLR 2020)."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ._common import check_map, graph_zero

__all__ = ['CRDLoss']

NEGATIVE_CHOICES = ('batch', 'sample')
CANDIDATE_CHOICES = ('nonzero', 'all')


def map_rows(feats: Tensor) -> Tuple[Tensor, Tensor]:
    """(B, C, *spatial) -> rows (B*S, C) and their sample index (B*S,)."""
    b, c = feats.shape[:2]
    rows = feats.flatten(2).transpose(1, 2).reshape(-1, c)
    batch_idx = torch.arange(b, device=feats.device).repeat_interleave(
        rows.shape[0] // max(b, 1))
    return rows, batch_idx


@MODELS.register_module()
class CRDLoss(nn.Module):
    """InfoNCE between embedded student and teacher features of the same
    location (positive) and of other locations (negatives).

    Locations are the cells of the maps; ``num_samples`` of them are drawn
    at random per batch among the candidates. Each side has a trainable
    linear embedding to ``embed_channels`` followed by L2 normalisation;
    with ``z_S``, ``z_T`` the embeddings of the drawn locations::

        L_S = CE(z_S z_T^T / tau, diag)   student anchors, teacher keys
        L_T = CE(z_T z_S^T / tau, diag)   teacher anchors, student keys
        L   = loss_weight * (L_S + L_T)   (both directions, as CRD sums)

    CRD keeps 16384 negatives in a memory bank over the data set; here the
    negatives are the other drawn locations of the batch (no memory bank).

    Args:
        student_channels: C_S.
        teacher_channels: C_T.
        embed_channels: Width of the shared embedding space (CRD: 128).
        temperature: tau (CRD: 0.07).
        num_samples: Locations drawn per batch; each has
            ``num_samples - 1`` negatives.
        negatives: ``'batch'`` (default: every other drawn location of the
            batch) or ``'sample'`` (only those of the same sample).
        candidates: ``'nonzero'`` (default: locations where the teacher
            feature is not all zero; empty pillars of a scattered pillar map
            share the zero feature and cannot be told apart) or ``'all'``.
        symmetric: Add the teacher-anchored term L_T.
        loss_weight: Scale (CRD's beta is 0.8).
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 embed_channels: int = 128,
                 temperature: float = 0.07,
                 num_samples: int = 1024,
                 negatives: str = 'batch',
                 candidates: str = 'nonzero',
                 symmetric: bool = True,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if negatives not in NEGATIVE_CHOICES:
            raise ValueError(f'negatives must be one of {NEGATIVE_CHOICES},'
                             f' got {negatives!r}')
        if candidates not in CANDIDATE_CHOICES:
            raise ValueError(f'candidates must be one of '
                             f'{CANDIDATE_CHOICES}, got {candidates!r}')
        self.student_embed = nn.Linear(student_channels, embed_channels)
        self.teacher_embed = nn.Linear(teacher_channels, embed_channels)
        self.temperature = temperature
        self.num_samples = num_samples
        self.negatives = negatives
        self.candidates = candidates
        self.symmetric = symmetric
        self.loss_weight = loss_weight

    def _draw(self, t_rows: Tensor, weight: Optional[Tensor]) -> Tensor:
        """Indices of the drawn rows."""
        ok = torch.ones(t_rows.shape[0], dtype=torch.bool,
                        device=t_rows.device)
        if self.candidates == 'nonzero':
            ok &= t_rows.abs().amax(1) > 0
        if weight is not None:
            ok &= weight.reshape(-1) > 0
        idx = ok.nonzero().squeeze(1)
        if idx.numel() > self.num_samples:
            perm = torch.randperm(idx.numel(), device=idx.device)
            idx = idx[perm[:self.num_samples]].sort().values
        return idx

    def _nce(self, anchors: Tensor, keys: Tensor,
             mask: Optional[Tensor]) -> Tensor:
        logits = anchors @ keys.t() / self.temperature
        if mask is not None:
            logits = logits.masked_fill(~mask, float('-inf'))
        target = torch.arange(logits.shape[0], device=logits.device)
        return F.cross_entropy(logits, target)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on maps (B, C, *spatial); ``weight`` > 0 marks the
        candidate locations. Fewer than two candidates give 0."""
        check_map('CRDLoss', student_feats)
        s_rows, batch_idx = map_rows(student_feats)
        t_rows, _ = map_rows(teacher_feats.detach())
        idx = self._draw(t_rows, weight)
        if idx.numel() < 2:
            return graph_zero(self, student_feats)
        z_s = F.normalize(self.student_embed(s_rows[idx]), dim=1)
        z_t = F.normalize(self.teacher_embed(t_rows[idx]), dim=1)
        mask = None
        if self.negatives == 'sample':
            b = batch_idx[idx]
            mask = b[:, None] == b[None, :]
        loss = self._nce(z_s, z_t, mask)
        if self.symmetric:
            loss = loss + self._nce(z_t, z_s, mask)
        return self.loss_weight * loss
