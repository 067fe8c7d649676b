"""Time and memory of the three parts of a ``Distiller3D`` training step.

Phases, each on the same fixed batch:

* ``student_step``: ``model.train_step`` with ``distill_loss_scale = 0``
  (voxelization, student forward + backward, optimizer step; the wrapper
  skips the teacher and the distillation terms at scale 0);
* ``teacher_forward``: ``model.run_teacher`` on the batch voxelized once
  beforehand (the teacher consumes the student's voxels; eval, no_grad,
  recorded), as the distillation step runs it: up to the last module a
  teacher recorder needs (``teacher_early_exit``);
* ``teacher_full``: the same forward run to its end (what running the
  teacher network costs without the early exit);
* ``distill_step``: ``model.train_step`` with ``distill_loss_scale = 1``
  (everything: voxelization, teacher, student, distillation terms, backward
  and optimizer step over the student and the adapters).

``overhead_ratio = distill_step / (student_step + teacher_forward)``: 1.0
means the distillation terms cost nothing beyond running the student and
the part of the teacher they read. ``full_teacher_ratio = distill_step /
(student_step + teacher_full)`` compares the step with running both
networks whole.
"""
from __future__ import annotations

import contextlib
import copy
import logging
import os.path as osp
import resource
import time
from typing import (Any, Callable, Dict, Iterator, List, Mapping, Optional,
                    Tuple)

import torch
from torch import nn

from .memory import PeakMemory

__all__ = ['PHASES', 'local_teacher_checkpoint', 'build_distiller',
           'StepBenchmark', 'overhead_ratio', 'judged_ratio']

PHASES = ('student_step', 'teacher_forward', 'teacher_full',
          'distill_step')


@contextlib.contextmanager
def _quiet_init_log() -> Iterator[None]:
    """Hide mmengine's per-parameter ``init_weights`` report (printed at
    INFO when the logger has no file)."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def local_teacher_checkpoint(checkpoint: Optional[str]) -> Optional[str]:
    """The local checkpoint file ``checkpoint`` names (a file, or a work dir
    holding one), else None (unset, a URL, or missing)."""
    from ..distillers.teacher import resolve_checkpoint
    if not checkpoint or '://' in checkpoint:
        return None
    try:
        path = resolve_checkpoint(checkpoint)
    except FileNotFoundError:
        return None
    return path if osp.isfile(path) else None


def build_distiller(cfg: Any, random_teacher: Optional[bool] = None,
                    checkpoint: Optional[str] = None
                    ) -> Tuple[nn.Module, Dict[str, Any]]:
    """Build the ``Distiller3D`` of ``cfg`` without downloading anything.

    Args:
        cfg: an mmengine config whose ``model`` is a ``Distiller3D``.
        random_teacher: True: teacher with random weights; False: load the
            teacher checkpoint (must be local); None: load it when it is a
            local file or work dir, else random weights.
        checkpoint: replaces ``model.teacher.checkpoint``.

    Returns:
        The model (train mode, weights initialised as the runner does) and
        ``dict(random=bool, checkpoint=str or None, reason=str)``.
    """
    from mmdet3d.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('type') != 'Distiller3D':
        raise ValueError(f"the config's model is {model_cfg.get('type')!r}; "
                         'the benchmark needs a Distiller3D config')
    wanted = checkpoint or model_cfg.teacher.get('checkpoint')
    local = local_teacher_checkpoint(wanted)
    if random_teacher is False and local is None:
        raise FileNotFoundError(
            f'teacher checkpoint {wanted!r} is not a local file or work dir '
            '(the benchmark never downloads); download it and pass '
            '--teacher-checkpoint PATH, or use --random-teacher')
    use_random = bool(random_teacher) or local is None
    if use_random:
        reason = ('--random-teacher' if random_teacher else
                  f'checkpoint {wanted!r} is not a local file (the benchmark '
                  'never downloads)' if wanted else 'no checkpoint set')
    else:
        reason = f'loaded from {local}'
    model_cfg.teacher['checkpoint'] = None if use_random else local
    with _quiet_init_log():
        model = MODELS.build(model_cfg)
        model.init_weights()
        init = getattr(model.teacher, 'init_weights', None)
        if use_random and callable(init):
            init()
    model.train()
    return model, dict(random=use_random, checkpoint=wanted, reason=reason)


def overhead_ratio(distill: float, student: float, teacher: float) -> float:
    """``distill / (student + teacher)``."""
    return distill / max(student + teacher, 1e-12)


def judged_ratio(result: Dict[str, Any]) -> float:
    """The overhead ratio the target is judged on: of the median wall
    times, or of CPU times when the teacher runs in a second thread
    (``model.concurrent_teacher``), whose wall time uses a second core."""
    if result.get('concurrent_teacher'):
        return result['overhead_ratio_cpu']
    return result['overhead_ratio']


def _cpu_time() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _median(values: List[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


class StepBenchmark:
    """The three phases of a distillation step on one fixed batch.

    Args:
        model: a ``Distiller3D`` on ``device``.
        optim_wrapper: mmengine optim wrapper over ``model``'s parameters.
        batch: a dataloader batch (``inputs`` / ``data_samples``).
        device: ``'cpu'`` or a CUDA device.
    """

    def __init__(self, model: nn.Module, optim_wrapper: Any, batch: Mapping,
                 device: str = 'cpu') -> None:
        self.model = model
        self.optim_wrapper = optim_wrapper
        self.batch = batch
        self.device = torch.device(device)
        with torch.no_grad():
            self.voxelized = model.data_preprocessor(copy.copy(batch), True)
        self._kd_forward: List[float] = []
        self._kd_handles = self._time_kd_forward()

    # --------------------------------------------------------------- phases
    def _sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)

    def student_step(self) -> None:
        """One training step of the student alone."""
        self.model.distill_loss_scale = 0.0
        try:
            self.model.train_step(copy.copy(self.batch), self.optim_wrapper)
        finally:
            self.model.distill_loss_scale = 1.0

    def teacher_forward(self, full: bool = False) -> None:
        """The teacher's recorded no-grad forward on the voxelized batch, as
        far as the recorders need (to its end with ``full``)."""
        data = self.voxelized
        self.model.run_teacher(data['inputs'], data['data_samples'],
                               full=full)
        self.model.teacher_recorders.reset()

    def teacher_full(self) -> None:
        """The teacher's whole recorded no-grad forward."""
        self.teacher_forward(full=True)

    def distill_step(self) -> None:
        """One full distillation training step."""
        self.model.distill_loss_scale = 1.0
        self.model.train_step(copy.copy(self.batch), self.optim_wrapper)

    def run(self, phase: str) -> None:
        """Run one phase and wait for the device."""
        getattr(self, phase)()
        self._sync()

    # --------------------------------------------------------- measurements
    def _time_kd_forward(self) -> list:
        """Hooks timing the forward of every distillation loss module."""
        handles, start = [], {}

        def pre(module: nn.Module, args: tuple, kwargs: dict) -> None:
            self._sync()
            start[id(module)] = time.perf_counter()

        def post(module: nn.Module, args: tuple, kwargs: dict,
                 out: Any) -> None:
            self._sync()
            self._kd_forward.append(time.perf_counter() -
                                    start.pop(id(module)))

        for loss in self.model.distill_losses.values():
            handles.append(
                loss.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(loss.register_forward_hook(post, with_kwargs=True))
        return handles

    def time(self, warmup: int, iters: int,
             report: Optional[Callable[[str], None]] = None
             ) -> Dict[str, Dict[str, Any]]:
        """Wall and CPU seconds of every phase over ``iters`` rounds after
        ``warmup`` rounds; a round runs every phase, in an order that
        rotates from round to round."""
        wall: Dict[str, List[float]] = {p: [] for p in PHASES}
        cpu: Dict[str, List[float]] = {p: [] for p in PHASES}
        kd_fwd: List[float] = []
        for it in range(warmup + iters):
            r = it % len(PHASES)
            order = PHASES[r:] + PHASES[:r]
            for phase in order:
                self._kd_forward.clear()
                t0, c0 = time.perf_counter(), _cpu_time()
                self.run(phase)
                dt, dc = time.perf_counter() - t0, _cpu_time() - c0
                if it >= warmup:
                    wall[phase].append(dt)
                    cpu[phase].append(dc)
                    if phase == 'distill_step':
                        kd_fwd.append(sum(self._kd_forward))
            if report:
                tag = 'warm-up' if it < warmup else 'timed'
                report(f'  round {it + 1}/{warmup + iters} ({tag}) done')
        out = {
            p: dict(median_s=_median(wall[p]),
                    mean_s=sum(wall[p]) / len(wall[p]),
                    min_s=min(wall[p]),
                    cpu_median_s=_median(cpu[p]),
                    times_s=wall[p])
            for p in PHASES
        }
        out['distill_step']['kd_forward_median_s'] = _median(kd_fwd)
        return out

    def memory(self) -> Dict[str, Dict[str, Any]]:
        """Peak memory of one run of every phase (see
        :class:`~pointdistiller_mm.analysis.memory.PeakMemory`; on CPU this
        pins glibc's mmap threshold for the rest of the process)."""
        out = {}
        for phase in PHASES:
            with PeakMemory(str(self.device)) as pm:
                self.run(phase)
            out[phase] = dict(peak_mib=pm.peak_mib, method=pm.method)
        return out

    def batch_stats(self) -> Dict[str, Any]:
        """Voxels per sample of the batch and, per distillation term, the
        rows it sampled in the last distillation step."""
        coors = self.voxelized['inputs'].get('voxels', {}).get('coors')
        stats: Dict[str, Any] = {}
        if coors is not None:
            b = len(self.voxelized['data_samples'])
            counts = torch.bincount(coors[:, 0].long(), minlength=b)
            stats['voxels_per_sample'] = counts.float().mean().item()
        terms = {}
        for name, loss in self.model.distill_losses.items():
            keys = ('num_samples', 'k', 'aggregation')
            info = {k: getattr(loss, k) for k in keys if hasattr(loss, k)}
            last = getattr(loss, 'last_stats', {}) or {}
            if 'num_sampled' in last:
                info['sampled_per_sample'] = float(last['num_sampled'])
            info['type'] = type(loss).__name__
            terms[name] = info
        stats['distill_terms'] = terms
        return stats

    def close(self) -> None:
        """Remove the timing hooks."""
        for h in self._kd_handles:
            h.remove()
        self._kd_handles = []
