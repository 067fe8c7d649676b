"""The distillation methods PVD compares with (supplementary Table 4), in
their standard forms, on the voxel rows of ``Cylinder3DRows``.

* KD (Hinton et al., 2015): :class:`~.output_kd.PointOutputKDLoss` with a
  temperature (no extra class).
* CD: channel-wise distillation (Shu et al., ICCV 2021), on features
  (``lambda_fea``) and on score maps, i.e. logits (``lambda_score``):
  :class:`ChannelWiseKDLoss`.
* IFV: intra-class feature variation distillation (Wang et al., ECCV 2020):
  :class:`IFVLoss`.
* SKD: structured KD (Liu et al., CVPR 2019): pixel-wise term = per-voxel
  KL (:class:`~.output_kd.VoxelOutputKDLoss`, T = 1, ``lambda_pi``) and
  pair-wise term :class:`PairwiseAffinityLoss` (``lambda_pa``); the
  holistic adversarial term has no coefficient in Table 4 and is left out.
* KA: knowledge adaptation (He et al., CVPR 2019): :class:`KAAdaptationLoss`
  (``lambda_ada``) and affinity distillation :class:`PairwiseAffinityLoss`
  (``lambda_aff``).
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from .affinity import cosine_matrix, point_labels
from .rows import linear_keys

__all__ = ['ChannelWiseKDLoss', 'IFVLoss', 'PairwiseAffinityLoss',
           'KAAdaptationLoss', 'voxel_majority_labels', 'scan_rows']


def scan_rows(voxel_coors: Optional[Tensor], n: int) -> List[Tensor]:
    """Row indices of each scan (one scan when ``voxel_coors`` is None)."""
    if voxel_coors is None:
        return [torch.arange(n)]
    batch = voxel_coors[:, 0].long()
    return [torch.nonzero(batch == b).squeeze(1)
            for b in torch.unique(batch).tolist()]


def voxel_majority_labels(point2voxel: Tensor, labels: Tensor,
                          num_voxels: int, num_classes: int) -> Tensor:
    """Most frequent point label of each voxel ``(M,)`` (labels in
    ``[0, num_classes]``; ``num_classes`` itself is the ignore label)."""
    hist = torch.zeros(num_voxels * (num_classes + 1), dtype=torch.long,
                       device=labels.device)
    hist.index_add_(0, point2voxel * (num_classes + 1) +
                    labels.clamp(0, num_classes),
                    torch.ones_like(labels))
    return hist.view(num_voxels, num_classes + 1).argmax(1)


def _connector(student_channels: Optional[int],
               teacher_channels: Optional[int]) -> Optional[nn.Module]:
    if student_channels is None or teacher_channels is None or \
            student_channels == teacher_channels:
        return None
    return nn.Linear(student_channels, teacher_channels)


@MODELS.register_module()
class ChannelWiseKDLoss(nn.Module):
    """CWD: per scan and channel, ``softmax over voxels(x_c / T)``;
    ``loss_weight * T^2 * mean over (scan, channel) of KL(teacher ||
    student)``. Rows are voxel features or logits ``(M, C)``.

    Args:
        temperature: T (4 in the CWD paper's segmentation runs).
        student_channels, teacher_channels: A trainable linear connector
            maps the student to the teacher width when they differ.
        loss_weight: lambda_fea (0.1) or lambda_score (0.3) for Cylinder3D.
    """

    def __init__(self, temperature: float = 4.0,
                 student_channels: Optional[int] = None,
                 teacher_channels: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        self.temperature = float(temperature)
        self.connector = _connector(student_channels, teacher_channels)
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        s = student_feats if self.connector is None else self.connector(
            student_feats)
        t = teacher_feats.detach()
        if s.shape != t.shape:
            raise ValueError(f'student {tuple(s.shape)} vs teacher '
                             f'{tuple(t.shape)}: set student_channels and '
                             'teacher_channels for a connector')
        temp, terms = self.temperature, []
        for rows in scan_rows(voxel_coors, s.shape[0]):
            rows = rows.to(s.device)
            log_p_t = F.log_softmax(t[rows] / temp, dim=0)
            log_p_s = F.log_softmax(s[rows] / temp, dim=0)
            terms.append((log_p_t.exp() * (log_p_t - log_p_s)).sum(0).mean())
        loss = torch.stack(terms).mean() if terms else s.sum() * 0.0
        return self.loss_weight * temp * temp * loss


@MODELS.register_module()
class IFVLoss(nn.Module):
    """IFV: per scan and class, the prototype is the mean feature of the
    class's voxels; each voxel's IFV is the cosine similarity of its feature
    to its class prototype; loss = ``loss_weight * MSE(IFV_S, IFV_T)`` over
    labelled voxels. Voxel labels are the majority point label
    (``gt_pts_seg.pts_semantic_mask``).

    Args:
        num_classes: Labels ``>= num_classes`` are ignored (19 for
            SemanticKITTI, whose ignore label is 19).
        loss_weight: 0.2 for Cylinder3D.
    """

    def __init__(self, num_classes: int = 19,
                 loss_weight: float = 0.2) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.loss_weight = loss_weight

    def ifv(self, feats: Tensor, labels: Tensor) -> Tensor:
        """Cosine similarity of each row to its class's mean row."""
        protos = feats.new_zeros(self.num_classes + 1, feats.shape[1])
        protos.index_add_(0, labels, feats)
        counts = torch.bincount(labels, minlength=self.num_classes + 1)
        protos = protos / counts.clamp(min=1)[:, None].to(feats.dtype)
        return F.cosine_similarity(feats, protos[labels], dim=1, eps=1e-8)

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                point2voxel: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                voxel_labels: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        if voxel_labels is None:
            labels = point_labels(data_samples)
            if labels is None or point2voxel is None:
                raise ValueError('IFVLoss needs labels: voxel_labels, or '
                                 'data_samples with gt_pts_seg and '
                                 "point2voxel (rows=dict(type="
                                 "'Cylinder3DRows'))")
            voxel_labels = voxel_majority_labels(
                point2voxel, labels.to(point2voxel.device),
                student_feats.shape[0], self.num_classes)
        voxel_labels = voxel_labels.long().clamp(0, self.num_classes)
        t = teacher_feats.detach()
        terms = []
        for rows in scan_rows(voxel_coors, student_feats.shape[0]):
            rows = rows.to(student_feats.device)
            lab = voxel_labels[rows]
            keep = lab < self.num_classes
            if not keep.any():
                continue
            diff = self.ifv(student_feats[rows], lab) - self.ifv(t[rows], lab)
            terms.append(diff[keep].pow(2))
        if not terms:
            return student_feats.sum() * 0.0
        return self.loss_weight * torch.cat(terms).mean()


@MODELS.register_module()
class PairwiseAffinityLoss(nn.Module):
    """SKD pair-wise distillation / KA affinity distillation: voxel features
    are averaged into nodes of ``node_size`` voxels (rho, phi, z); per scan,
    ``loss_weight * mean((cos_S - cos_T)^2)`` over all node pairs.

    Args:
        node_size: Voxels per node (SKD pools the map into nodes).
        max_nodes: Nodes per scan kept (uniform random subset above it).
        loss_weight: lambda_pa (0.2) / lambda_aff (0.15) for Cylinder3D.
    """

    def __init__(self, node_size: Sequence[int] = (8, 8, 4),
                 max_nodes: int = 1024, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.node_size = tuple(int(v) for v in node_size)
        self.max_nodes = int(max_nodes)
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                voxel_coors: Optional[Tensor] = None,
                **unused: Any) -> Tensor:
        if voxel_coors is None:
            raise ValueError('PairwiseAffinityLoss needs voxel_coors '
                             "(rows=dict(type='Cylinder3DRows'))")
        size = voxel_coors.new_tensor((1, ) + self.node_size).long()
        cells = voxel_coors.long() // size
        if cells.shape[0] == 0:
            return student_feats.sum() * 0.0
        _, node = torch.unique(linear_keys(cells, cells.max(0).values + 1),
                               return_inverse=True)
        n = int(node.max()) + 1
        node_batch = torch.zeros(n, dtype=torch.long, device=node.device)
        node_batch[node] = cells[:, 0]
        count = torch.bincount(node, minlength=n).clamp(min=1)[:, None]

        def pool(x: Tensor) -> Tensor:
            out = x.new_zeros(n, x.shape[1]).index_add_(0, node, x)
            return out / count.to(x.dtype)

        s, t = pool(student_feats), pool(teacher_feats.detach())
        terms = []
        for b in torch.unique(node_batch).tolist():
            ids = torch.nonzero(node_batch == b).squeeze(1)
            if ids.numel() > self.max_nodes:
                ids = ids[torch.randperm(ids.numel(),
                                         device=ids.device)[:self.max_nodes]]
            if ids.numel() < 2:
                continue
            terms.append((cosine_matrix(s[ids]) -
                          cosine_matrix(t[ids])).pow(2).mean())
        if not terms:
            return student_feats.sum() * 0.0
        return self.loss_weight * torch.stack(terms).mean()


@MODELS.register_module()
class KAAdaptationLoss(nn.Module):
    """KA adaptation: an auto-encoder (linear encoder / decoder, ReLU code)
    compresses teacher features to ``code_channels``; a linear adapter maps
    student features to the code;
    ``loss = loss_weight * (MSE(adapter(F_S), enc(F_T)) + recon_weight *
    MSE(dec(enc(F_T)), F_T))``. The paper pre-trains the auto-encoder;
    here it trains jointly through the reconstruction term (the adaptation
    target is detached, so the student never moves the code).

    Args:
        student_channels, teacher_channels: Widths (64 and 128 for
            Cylinder3D 0.5x / 1x backbone outputs).
        code_channels: Width of the compressed knowledge.
        recon_weight: Weight of the reconstruction term.
        loss_weight: lambda_ada (0.2 for Cylinder3D).
    """

    def __init__(self, student_channels: int, teacher_channels: int,
                 code_channels: int = 64, recon_weight: float = 1.0,
                 loss_weight: float = 0.2) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(teacher_channels, code_channels), nn.ReLU())
        self.decoder = nn.Linear(code_channels, teacher_channels)
        self.adapter = nn.Linear(student_channels, code_channels)
        self.recon_weight = float(recon_weight)
        self.loss_weight = loss_weight

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                **unused: Any) -> Tensor:
        t = teacher_feats.detach()
        code = self.encoder(t)
        recon = F.mse_loss(self.decoder(code), t)
        adapt = F.mse_loss(self.adapter(student_feats), code.detach())
        return self.loss_weight * (adapt + self.recon_weight * recon)
