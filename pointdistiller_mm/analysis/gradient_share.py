"""How much a distillation term teaches: the gradient it sends into a
student module, next to the gradient of the detection (or segmentation)
loss, on real training batches.

A distillation term whose gradient is a percent of the task loss's barely
moves the student, whatever its other settings; this is the figure to look
at when choosing ``loss_weight``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import torch
from torch import Tensor, nn

__all__ = ['GradientShare', 'split_losses', 'grad_norm', 'gradient_share',
           'load_trained_state']


@dataclass
class GradientShare:
    """One batch: task loss and gradient norm, and per distillation term
    its loss, gradient norm and ratio to the task gradient."""
    task_loss: float
    task_grad: float
    terms: Dict[str, Dict[str, float]] = field(default_factory=dict)


def _total(value) -> Tensor:
    if isinstance(value, (list, tuple)):
        return sum(_total(v) for v in value)
    return value


def split_losses(losses: Dict[str, object]) -> tuple:
    """``(task loss, {term: loss})`` from a distiller's loss dict: keys with
    ``loss`` in their name, ``distill.*`` ones being distillation terms."""
    task, terms = None, {}
    for key, value in losses.items():
        if 'loss' not in key:
            continue
        value = _total(value)
        if key.startswith('distill.'):
            terms[key[len('distill.'):]] = value
        else:
            task = value if task is None else task + value
    if task is None or not terms:
        raise ValueError(
            'expected task losses and distill.* terms in the loss dict, got '
            f'{sorted(losses)}; is the config a Distiller3D config?')
    return task, terms


def grad_norm(loss: Tensor, params: List[nn.Parameter]) -> float:
    """L2 norm over ``params`` of d loss / d params (the graph is kept)."""
    grads = torch.autograd.grad(loss, params, retain_graph=True,
                                allow_unused=True)
    sq = sum(float(g.pow(2).sum()) for g in grads if g is not None)
    return sq ** 0.5


def gradient_share(model: nn.Module, batches: Iterable[dict],
                   module: str) -> List[GradientShare]:
    """Per batch, the gradient norm on ``model.student.<module>`` from the
    task loss and from each distillation term (model in train mode)."""
    target = model.student.get_submodule(module)
    params = [p for p in target.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f'student.{module} has no trainable parameters')
    model.train()
    out = []
    for data in batches:
        data = model.data_preprocessor(data, True)
        task, terms = split_losses(model(**data, mode='loss'))
        share = GradientShare(float(task), grad_norm(task, params))
        for name, loss in terms.items():
            g = grad_norm(loss, params) if loss.requires_grad else 0.0
            share.terms[name] = dict(
                loss=float(loss), grad=g,
                ratio=g / share.task_grad if share.task_grad else
                float('nan'))
        out.append(share)
    return out


def load_trained_state(model: nn.Module, checkpoint: str) -> None:
    """Load a distillation checkpoint (student and adapters) into ``model``;
    the teacher keeps the weights it was built with."""
    from mmengine.runner.checkpoint import CheckpointLoader
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith('teacher.')]
    if missing or unexpected:
        raise ValueError(
            f'{checkpoint} does not fit the config: missing '
            f'{missing[:5]}, unexpected {list(unexpected)[:5]}')


def mean_ratios(shares: List[GradientShare]) -> Dict[str, Optional[float]]:
    """Mean ratio per term over the batches."""
    names = shares[0].terms if shares else {}
    return {n: sum(s.terms[n]['ratio'] for s in shares) / len(shares)
            for n in names}
