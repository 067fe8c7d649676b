"""Per-part CPU time of PointRCNN (or distiller) training steps and test
scans, for choosing the demo's point and RoI counts.

:func:`profile_steps` builds the config's model and optimiser as the runner
does, reads batches from the config's train dataloader (in this process),
runs one warm-up step and then ``steps`` timed training steps, and sums the
thread CPU time spent in each part: the model's ``backbone``, ``neck``,
``rpn_head`` (forward, ``loss_and_predict``, ``class_agnostic_nms``),
``roi_head`` (``loss``, ``predict``, RoI extractor, bbox head), a
distiller's ``run_teacher`` and distillation losses, and every CPU point op
of :mod:`pointdistiller_mm.compat.point_ops_cpu`. Parts nest (the bbox head
is inside ``roi_head.loss``), so they do not add up to the step.
"""
from __future__ import annotations

import collections
import copy
import resource
import time
from typing import Any, Callable, Dict, List, Optional

import torch

__all__ = ['profile_steps', 'format_profile']

_OPS = ('furthest_point_sample', 'furthest_point_sample_with_dist',
        'ball_query', 'group_points', 'group_points_backward',
        'gather_points', 'gather_points_backward', 'three_nn',
        'three_interpolate', 'three_interpolate_backward',
        'points_in_boxes_part', 'points_in_boxes_all', 'roipoint_pool3d')


class _PartTimer:
    """Wraps methods so that their thread CPU time adds up per name; undone
    by :meth:`restore`."""

    def __init__(self) -> None:
        self.times: Dict[str, float] = collections.defaultdict(float)
        self._undo: List[Callable[[], None]] = []

    def wrap(self, name: str, owner: Any, attr: str) -> None:
        orig = getattr(owner, attr, None)
        if orig is None:
            return
        had_own = attr in vars(owner)

        def timed(*args, **kwargs):
            start = time.thread_time()
            try:
                return orig(*args, **kwargs)
            finally:
                self.times[name] += time.thread_time() - start

        setattr(owner, attr, timed)
        self._undo.append(lambda: setattr(owner, attr, orig) if had_own
                          else delattr(owner, attr))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


def _wrap_model(timer: _PartTimer, model: Any) -> None:
    from ..compat import point_ops_cpu
    detector = getattr(model, 'student', model)
    if detector is not model:
        timer.wrap('distill.run_teacher', model, 'run_teacher')
        for name, loss in getattr(model, 'distill_losses', {}).items():
            timer.wrap(f'distill.loss_{name}', loss, 'forward')
    for part in ('backbone', 'neck'):
        if getattr(detector, part, None) is not None:
            timer.wrap(f'{part}.forward', getattr(detector, part), 'forward')
    rpn = getattr(detector, 'rpn_head', None)
    if rpn is not None:
        for attr in ('forward', 'loss_and_predict', 'predict',
                     'class_agnostic_nms'):
            timer.wrap(f'rpn_head.{attr}', rpn, attr)
    roi = getattr(detector, 'roi_head', None)
    if roi is not None:
        for attr in ('loss', 'predict'):
            timer.wrap(f'roi_head.{attr}', roi, attr)
        for part in ('bbox_roi_extractor', 'bbox_head'):
            if getattr(roi, part, None) is not None:
                timer.wrap(f'roi_head.{part}', getattr(roi, part), 'forward')
    for op in _OPS:
        timer.wrap(f'op.{op}', point_ops_cpu, op)


def profile_steps(cfg: Any, steps: int = 3, test_scans: int = 0,
                  batch_size: int = 2, seed: int = 0) -> Dict[str, Any]:
    """Time ``steps`` training steps (after one warm-up) and ``test_scans``
    test scans of ``cfg``'s model on its own data.

    Args:
        cfg: an mmengine ``Config`` (default scope ``mmdet3d``).
        steps: timed training steps.
        test_scans: timed ``test_step`` calls on the val dataloader (batch
            1) after the training steps; 0 skips them.
        batch_size: training batch size.
        seed: torch seed and dataloader seed.

    Returns:
        dict with ``step`` (mean wall and CPU seconds of the whole step, of
        forward, backward and optimiser step), ``parts`` (mean CPU seconds
        per step by part), and with ``test_scans``, ``test`` and
        ``test_parts`` (per scan).
    """
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner import Runner

    from mmdet3d.registry import MODELS
    torch.manual_seed(seed)
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
    batches = iter(Runner.build_dataloader(loader_cfg, seed=seed))
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    model.train()
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    timer = _PartTimer()
    _wrap_model(timer, model)
    try:
        result = _run(model, optim, batches, timer, steps)
        if test_scans:
            vcfg = copy.deepcopy(cfg.val_dataloader)
            vcfg.update(batch_size=1, num_workers=0, persistent_workers=False)
            result.update(_run_test(model, iter(Runner.build_dataloader(
                vcfg, seed=seed)), timer, test_scans))
    finally:
        timer.restore()
    return result


def _thread_usage() -> Any:
    """``getrusage`` of the calling thread (of the process where the
    platform has no per-thread figures)."""
    who = getattr(resource, 'RUSAGE_THREAD', resource.RUSAGE_SELF)
    return resource.getrusage(who)


def _run(model: Any, optim: Any, batches: Any, timer: _PartTimer,
         steps: int) -> Dict[str, Any]:
    rows = []
    for i in range(steps + 1):
        batch = next(batches)
        if i == 1:
            timer.times.clear()
        wall, cpu = time.perf_counter(), time.thread_time()
        usage = _thread_usage()
        data = model.data_preprocessor(batch, True)
        with optim.optim_context(model):
            losses = model._run_forward(data, mode='loss')
        loss, _ = model.parse_losses(losses)
        fwd = time.thread_time()
        optim.backward(loss)
        bwd = time.thread_time()
        optim.step()
        optim.zero_grad()
        end = time.thread_time()
        done = _thread_usage()
        if i:
            rows.append(dict(wall=time.perf_counter() - wall,
                             cpu=end - cpu, forward=fwd - cpu,
                             backward=bwd - fwd, optim=end - bwd,
                             system=done.ru_stime - usage.ru_stime,
                             minor_faults=done.ru_minflt - usage.ru_minflt))
    n = max(len(rows), 1)
    return dict(step={k: sum(r[k] for r in rows) / n for k in rows[0]},
                steps=rows,
                parts={k: v / n for k, v in sorted(
                    timer.times.items(), key=lambda kv: -kv[1])})


def _run_test(model: Any, batches: Any, timer: _PartTimer,
              scans: int) -> Dict[str, Any]:
    model.eval()
    walls, cpus = [], []
    with torch.no_grad():
        for i in range(scans + 1):
            batch = next(batches)
            if i == 1:
                timer.times.clear()
            wall, cpu = time.perf_counter(), time.thread_time()
            model.test_step(batch)
            if i:
                walls.append(time.perf_counter() - wall)
                cpus.append(time.thread_time() - cpu)
    model.train()
    return dict(test=dict(wall=sum(walls) / scans, cpu=sum(cpus) / scans),
                test_parts={k: v / scans for k, v in sorted(
                    timer.times.items(), key=lambda kv: -kv[1])})


def format_profile(result: Dict[str, Any],
                   title: Optional[str] = None) -> str:
    """The result of :func:`profile_steps` as text lines."""
    s = result['step']
    lines = [title] if title else []
    lines.append(
        'training step (mean of %d): CPU %.2f s (forward %.2f, backward '
        '%.2f, optimiser %.2f; system %.2f), wall %.2f s, %d minor page '
        'faults' %
        (len(result['steps']), s['cpu'], s['forward'], s['backward'],
         s['optim'], s['system'], s['wall'], s['minor_faults']))
    lines += ['  %-36s %7.3f s' % kv for kv in result['parts'].items()]
    if 'test' in result:
        t = result['test']
        lines.append('test scan: CPU %.2f s, wall %.2f s' % (t['cpu'],
                                                             t['wall']))
        lines += ['  %-36s %7.3f s' % kv
                  for kv in result['test_parts'].items()]
    return '\n'.join(lines)
