"""Where a distillation loss spends its time, on the rows of a real step.

:func:`capture_kd_inputs` records the keyword arguments each distillation
term of a ``Distiller3D`` receives in one training step;
:func:`profile_kd_block` runs that term's forward + backward on them under
``torch.profiler`` and returns the operators that took the most time.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Mapping

import torch
from torch import Tensor, nn

__all__ = ['capture_kd_inputs', 'profile_kd_block']


def _detached(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, Tensor) else value


def capture_kd_inputs(model: nn.Module, batch: Mapping
                      ) -> Dict[str, Dict[str, Any]]:
    """Keyword arguments of every distillation term in one distillation
    forward of ``batch`` (detached copies; no backward, no optimizer
    step)."""
    captured: Dict[str, Dict[str, Any]] = {}
    handles = []
    for name, loss in model.distill_losses.items():
        def hook(module: nn.Module, args: tuple, kwargs: dict,
                 name: str = name) -> None:
            captured[name] = {k: _detached(v) for k, v in kwargs.items()}
        handles.append(loss.register_forward_pre_hook(hook, with_kwargs=True))
    scale = model.distill_loss_scale
    model.distill_loss_scale = 1.0
    try:
        with torch.no_grad():
            data = model.data_preprocessor(copy.copy(batch), True)
            model.loss(data['inputs'], data['data_samples'])
    finally:
        model.distill_loss_scale = scale
        for h in handles:
            h.remove()
    return captured


def profile_kd_block(loss_fn: nn.Module, kwargs: Mapping[str, Any],
                     threads: int = 1, warmup: int = 1,
                     row_limit: int = 12) -> Dict[str, Any]:
    """Profile one forward + backward of ``loss_fn(**kwargs)``.

    Floating-point tensors whose argument name starts with ``student``
    (``student_feats``) become leaves that require grad. Runs with
    ``threads`` torch threads, after ``warmup`` unprofiled steps.

    Returns:
        dict: ``total_s`` (self time of all ops), ``threads`` and ``top``:
        ``row_limit`` ops by self time, each ``name``, ``self_s``,
        ``share`` (of ``total_s``), ``total_s`` (with children) and
        ``calls``.
    """
    from torch.profiler import ProfilerActivity, profile
    kw = dict(kwargs)
    leaves = []
    for key, value in kw.items():
        if key.startswith('student') and isinstance(value, Tensor) and \
                value.is_floating_point():
            kw[key] = value.detach().clone().requires_grad_()
            leaves.append(kw[key])
    cuda = any(isinstance(v, Tensor) and v.is_cuda for v in kw.values())

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        loss_fn.zero_grad(set_to_none=True)
        loss = loss_fn(**kw)
        if loss.requires_grad:
            loss.backward()
        if cuda:
            torch.cuda.synchronize()

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        loss_fn.train()
        for _ in range(warmup):
            step()
        acts = [ProfilerActivity.CPU]
        if cuda:
            acts.append(ProfilerActivity.CUDA)
        with profile(activities=acts) as prof:
            step()
    finally:
        torch.set_num_threads(before)
    events = prof.key_averages()
    attr = 'self_device_time_total' if cuda else 'self_cpu_time_total'
    total_us = sum(getattr(e, attr) for e in events)
    rows: List[Dict[str, Any]] = []
    for e in sorted(events, key=lambda e: getattr(e, attr), reverse=True):
        if len(rows) >= row_limit:
            break
        self_us = getattr(e, attr)
        rows.append(dict(name=e.key, self_s=self_us / 1e6,
                         share=self_us / max(total_us, 1e-9),
                         total_s=(e.device_time_total if cuda else
                                  e.cpu_time_total) / 1e6,
                         calls=e.count))
    return dict(total_s=total_us / 1e6, threads=threads, top=rows)
