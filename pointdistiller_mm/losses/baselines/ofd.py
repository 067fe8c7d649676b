"""Overhaul of feature distillation (Heo et al., ICCV 2019)."""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from mmdet3d.registry import MODELS
from torch import Tensor, nn

from ...recorders import resolve_module
from ._common import apply_connector, build_connector, location_weight

__all__ = ['OFDLoss', 'bn_margin']


def bn_margin(weight: Tensor, bias: Tensor,
              min_prob: float = 0.001) -> Tensor:
    """Per-channel margin ``E[x | x < 0]`` of ``x ~ N(bias, weight^2)``, the
    expected negative response of a BatchNorm output; ``-3 |weight|`` where
    ``P(x < 0) <= min_prob`` (OFD's rule)."""
    out = []
    for s, m in zip(weight.detach().abs().tolist(),
                    bias.detach().tolist()):
        s = max(s, 1e-12)
        cdf = 0.5 * (1.0 + math.erf(-m / s / math.sqrt(2.0)))
        if cdf > min_prob:
            pdf = math.exp(-(m / s) ** 2 / 2) / math.sqrt(2 * math.pi)
            out.append(-s * pdf / cdf + m)
        else:
            out.append(-3.0 * s)
    return torch.tensor(out, dtype=torch.float32)


def _check_bn(module: nn.Module, where: str) -> nn.Module:
    if not isinstance(module, nn.modules.batchnorm._BatchNorm):
        raise TypeError(f'OFDLoss: {where} is a {type(module).__name__}, '
                        'not a BatchNorm layer; name the BatchNorm that '
                        'precedes the ReLU')
    return module


@MODELS.register_module()
class OFDLoss(nn.Module):
    """Partial L2 between the connected student and the clipped teacher,
    both taken before the ReLU::

        t = max(T, margin)        margin from the teacher BN (per channel)
        s = connector(S)          1x1 conv + BN on the student
        L = loss_weight * sum((s - t)^2 * [(s > t) or (t > 0)]) / B

    Positions where the teacher is non-positive and the student is already
    below it are skipped.

    The margin comes from the teacher BatchNorm at ``teacher_bn`` and is
    kept as a buffer (saved with the checkpoint); :class:`Distiller3D`
    calls :meth:`bind_models` once both models are built.

    Args:
        student_channels: C_S.
        teacher_channels: C_T.
        teacher_bn: Module path of the teacher BatchNorm before the ReLU.
        student_bn: Module path of the student BatchNorm before the ReLU
            (default: ``teacher_bn``); used with ``apply_bn``.
        apply_bn: The recorded features are the inputs of these BatchNorms
            (conv outputs) and the loss applies them: the teacher's in eval
            mode, the student's with the statistics of the batch in training
            (as its own forward does) and its running statistics in eval.
            Needed where the BatchNorm is followed by an in-place ReLU
            (mmdet3d's SECOND backbone), since its recorded output would
            be overwritten. False: the recorded features are already the
            pre-ReLU maps.
        connector: ``'conv'`` (default, conv + BN as in OFD), ``'auto'`` or
            ``'none'``.
        loss_weight: Scale; OFD divides the batch sum by 1000 (CIFAR) or
            10000 (ImageNet).
    """

    def __init__(self,
                 student_channels: int,
                 teacher_channels: int,
                 teacher_bn: Optional[str] = None,
                 student_bn: Optional[str] = None,
                 apply_bn: bool = False,
                 connector: str = 'conv',
                 loss_weight: float = 1.0) -> None:
        super().__init__()
        if apply_bn and teacher_bn is None:
            raise ValueError('apply_bn=True needs teacher_bn')
        self.teacher_bn_path = teacher_bn
        self.student_bn_path = student_bn or teacher_bn
        self.apply_bn = apply_bn
        self.loss_weight = loss_weight
        self.connector = build_connector(student_channels, teacher_channels,
                                         connector, norm=True)
        # N(0, 1) BatchNorm output until bind_models reads the teacher
        self.register_buffer(
            'margin', bn_margin(torch.ones(teacher_channels),
                                torch.zeros(teacher_channels)))
        self.__dict__['_student_bn'] = None
        self.__dict__['_teacher_bn'] = None

    def bind_models(self, student: nn.Module, teacher: nn.Module) -> None:
        """Read the margin from the teacher BN (and keep the BN layers for
        ``apply_bn``; they stay out of this module's parameters)."""
        if self.teacher_bn_path is None:
            return
        t_bn = _check_bn(resolve_module(teacher, self.teacher_bn_path),
                         f"teacher_bn '{self.teacher_bn_path}'")
        if t_bn.num_features != self.margin.numel():
            raise ValueError(
                f"teacher_bn '{self.teacher_bn_path}' has "
                f'{t_bn.num_features} channels, teacher_channels is '
                f'{self.margin.numel()}')
        self.margin.copy_(bn_margin(t_bn.weight, t_bn.bias).to(
            self.margin.device))
        self.__dict__['_teacher_bn'] = t_bn
        if self.apply_bn:
            self.__dict__['_student_bn'] = _check_bn(
                resolve_module(student, self.student_bn_path),
                f"student_bn '{self.student_bn_path}'")

    def _pre_relu(self, student: Tensor, teacher: Tensor):
        if not self.apply_bn:
            return student, teacher
        s_bn, t_bn = self._student_bn, self._teacher_bn
        if s_bn is None or t_bn is None:
            raise RuntimeError('OFDLoss(apply_bn=True) needs bind_models('
                               'student, teacher) before the first call')
        with torch.no_grad():
            teacher = F.batch_norm(teacher, t_bn.running_mean,
                                   t_bn.running_var, t_bn.weight, t_bn.bias,
                                   False, 0.0, t_bn.eps)
        batch_stats = s_bn.training or s_bn.running_mean is None
        student = F.batch_norm(
            student, None if batch_stats else s_bn.running_mean,
            None if batch_stats else s_bn.running_var, s_bn.weight,
            s_bn.bias, batch_stats, 0.0, s_bn.eps)
        return student, teacher

    def forward(self, student_feats: Tensor, teacher_feats: Tensor,
                weight: Optional[Tensor] = None,
                data_samples: Optional[list] = None,
                **unused: Any) -> Tensor:
        """Scalar loss on maps (B, C, *spatial); the teacher is detached."""
        student, teacher = self._pre_relu(student_feats,
                                          teacher_feats.detach())
        s = apply_connector(self.connector, student)
        shape = [1, -1] + [1] * (teacher.dim() - 2)
        t = torch.max(teacher, self.margin.to(teacher.dtype).view(shape))
        keep = ((s > t) | (t > 0)).to(s.dtype)
        sq = (s - t).pow(2) * keep
        w = location_weight(weight, sq)
        if w is not None:
            sq = sq * w
        return self.loss_weight * sq.sum() / s.shape[0]
