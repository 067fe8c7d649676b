"""A schedule for the multiplier of the distillation losses.

:class:`DistillWeightSchedule` is a pure function of the training position;
:class:`DistillLossWeightHook` evaluates it before every training iteration
and hands the value to the model.
"""
import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence, Tuple

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmdet3d.registry import HOOKS

#: Model attribute the hook sets and the distiller multiplies its
#: distillation losses by.
SCALE_ATTR = 'distill_loss_scale'
#: Message-hub key of the current weight. LogProcessor prints every
#: ``train/*`` scalar of the message hub on the training log line, without
#: the ``train/`` prefix; keys matching its ``mean_pattern`` (containing
#: ``loss``, ``time`` or ``grad_norm``) would be averaged over the logging
#: window, which is why the key does not contain ``loss``.
LOG_KEY = 'train/distill_weight'


def _check_nonneg(name: str, value: Optional[float]) -> None:
    if value is not None and (not isinstance(value, (int, float))
                              or isinstance(value, bool) or value < 0):
        raise ValueError(f'{name} must be a number >= 0, got {value!r}')


@dataclass(frozen=True)
class DistillWeightSchedule:
    """The distillation weight as a function of the training position.

    ``weight = warmup_factor(t) * decay(t)``, and 0 once distillation stops.

    * ``decay(t)``: ``base_weight`` (``mode='constant'``); cosine from
      ``base_weight`` at ``begin`` to ``min_weight`` at ``end``
      (``mode='cosine'``); ``base_weight * gamma ** k`` with ``k`` the number
      of ``milestones <= t`` (``mode='step'``).
    * ``warmup_factor(t)``: 1, or with ``warmup='linear'`` rising linearly
      from ``warmup_ratio`` at ``t=0`` to 1 at ``t=warmup_length``.

    ``t`` is the 0-based index of the iteration about to run, or, with
    ``by_epoch``, the fractional epoch ``iter / iters_per_epoch``. The stop
    points have their own units: the weight is 0 from iteration index
    ``stop_iter`` on and from epoch index ``stop_epoch`` on (the first
    ``stop_epoch`` epochs distill).

    Args:
        mode: ``'constant'``, ``'cosine'`` or ``'step'``.
        base_weight: The multiplier after warm-up and before decay.
        by_epoch: Unit of ``warmup_length``, ``begin``, ``end`` and
            ``milestones``: iterations (False) or epochs (True).
        warmup: ``None`` or ``'linear'``.
        warmup_length: Warm-up length (> 0 with a warm-up).
        warmup_ratio: Warm-up start factor in [0, 1].
        begin: Cosine start; defaults to the warm-up end (0 without one).
        end: Cosine end; the hook defaults it to the run's
            ``max_iters`` / ``max_epochs``.
        min_weight: Cosine floor in [0, base_weight]; default 0.
        milestones: Step positions, strictly increasing (step mode).
        gamma: Step factor in (0, 1]; default 0.1.
        stop_iter: Iteration index from which the weight is 0 (> 0).
        stop_epoch: Epoch index from which the weight is 0 (> 0).
    """

    mode: str = 'constant'
    base_weight: float = 1.0
    by_epoch: bool = False
    warmup: Optional[str] = None
    warmup_length: float = 0
    warmup_ratio: float = 0.0
    begin: Optional[float] = None
    end: Optional[float] = None
    min_weight: Optional[float] = None
    milestones: Optional[Tuple[float, ...]] = None
    gamma: Optional[float] = None
    stop_iter: Optional[int] = None
    stop_epoch: Optional[int] = None

    MODES = ('constant', 'cosine', 'step')
    WARMUPS = (None, 'linear')

    def __post_init__(self) -> None:
        if self.milestones is not None:
            object.__setattr__(self, 'milestones', tuple(self.milestones))
        if self.mode not in self.MODES:
            raise ValueError(f'unknown mode {self.mode!r}; choose one of '
                             f'{self.MODES}')
        if self.warmup not in self.WARMUPS:
            raise ValueError(f'unknown warmup {self.warmup!r}; choose one of '
                             f'{self.WARMUPS}')
        for name in ('base_weight', 'warmup_length', 'warmup_ratio', 'begin',
                     'end', 'min_weight', 'gamma'):
            _check_nonneg(name, getattr(self, name))
        for name in ('stop_iter', 'stop_epoch'):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int)
                                      or isinstance(value, bool)
                                      or value <= 0):
                raise ValueError(f'{name} must be an int > 0 (or None), got '
                                 f'{value!r}')
        self._check_warmup()
        self._check_mode_args()
        self._check_order(iters_per_epoch=None)

    def _check_warmup(self) -> None:
        if self.warmup is None:
            if self.warmup_length or self.warmup_ratio:
                raise ValueError('warmup_length / warmup_ratio are set but '
                                 "warmup is None; set warmup='linear'")
            return
        if not self.warmup_length > 0:
            raise ValueError(f'warmup={self.warmup!r} needs warmup_length > 0'
                             f', got {self.warmup_length!r}')
        if not 0 <= self.warmup_ratio <= 1:
            raise ValueError('warmup_ratio must be in [0, 1], got '
                             f'{self.warmup_ratio!r}')

    def _check_mode_args(self) -> None:
        only = dict(
            begin='cosine',
            end='cosine',
            min_weight='cosine',
            milestones='step',
            gamma='step')
        for name, mode in only.items():
            if getattr(self, name) is not None and self.mode != mode:
                raise ValueError(f'{name} only applies to mode={mode!r}, got '
                                 f'mode={self.mode!r}')
        if self.mode == 'cosine':
            if self.min_weight is not None and (self.min_weight >
                                                self.base_weight):
                raise ValueError(f'min_weight ({self.min_weight}) must not '
                                 f'exceed base_weight ({self.base_weight})')
            if self.end is not None and not self.end > self.cosine_begin:
                raise ValueError(f'cosine end ({self.end}) must be after its '
                                 f'begin ({self.cosine_begin})')
        if self.mode == 'step':
            ms = self.milestones
            if not ms:
                raise ValueError("mode='step' needs milestones, e.g. "
                                 'milestones=(8, 11)')
            for m in ms:
                _check_nonneg('milestones', m)
            if any(b <= a for a, b in zip(ms, ms[1:])):
                raise ValueError('milestones must be strictly increasing, '
                                 f'got {tuple(ms)}')
            if self.gamma is not None and not 0 < self.gamma <= 1:
                raise ValueError(f'gamma must be in (0, 1], got {self.gamma}')

    def _check_order(self, iters_per_epoch: Optional[float]) -> None:
        """Warm-up must end before distillation stops. Stops in another unit
        than the warm-up are compared only when ``iters_per_epoch`` is
        known."""
        if self.warmup is None:
            return
        stops = []  # (position in the warm-up's unit, description)
        ipe = iters_per_epoch
        if self.stop_iter is not None:
            if not self.by_epoch:
                stops.append((self.stop_iter, f'stop_iter={self.stop_iter}'))
            elif ipe:
                stops.append((self.stop_iter / ipe,
                              f'stop_iter={self.stop_iter}'))
        if self.stop_epoch is not None:
            if self.by_epoch:
                stops.append((self.stop_epoch,
                              f'stop_epoch={self.stop_epoch}'))
            elif ipe:
                stops.append((self.stop_epoch * ipe,
                              f'stop_epoch={self.stop_epoch}'))
        unit = 'epochs' if self.by_epoch else 'iterations'
        for position, what in stops:
            if self.warmup_length >= position:
                raise ValueError(
                    f'warm-up of {self.warmup_length} {unit} does not end '
                    f'before distillation stops ({what}, at {position:g} '
                    f'{unit}); shorten the warm-up or stop later')

    @property
    def cosine_begin(self) -> float:
        """Where the cosine decay starts."""
        if self.begin is not None:
            return self.begin
        return self.warmup_length if self.warmup is not None else 0

    def with_run(self, max_iters: int, max_epochs: Optional[int],
                 iters_per_epoch: Optional[int]) -> 'DistillWeightSchedule':
        """Fill run-dependent defaults (cosine ``end``) and check the
        schedule against the run; returns a new schedule."""
        if (self.by_epoch or self.stop_epoch is not None) and not (
                iters_per_epoch):
            raise ValueError('by_epoch / stop_epoch need a train dataloader '
                             'with a length (iterations per epoch)')
        schedule = self
        if self.mode == 'cosine' and self.end is None:
            end = max_epochs if self.by_epoch else max_iters
            schedule = replace(self, end=end)
        schedule._check_order(iters_per_epoch)
        return schedule

    def decay(self, t: float) -> float:
        """The decayed weight at position ``t`` (without warm-up)."""
        if self.mode == 'constant':
            return float(self.base_weight)
        if self.mode == 'step':
            gamma = 0.1 if self.gamma is None else self.gamma
            k = sum(1 for m in self.milestones if t >= m)
            return float(self.base_weight * gamma**k)
        if self.end is None:
            raise ValueError('cosine decay needs end (the hook sets it to '
                             'the run length)')
        low = 0.0 if self.min_weight is None else self.min_weight
        begin = self.cosine_begin
        progress = min(max((t - begin) / (self.end - begin), 0.0), 1.0)
        return low + (self.base_weight - low) * (
            1 + math.cos(math.pi * progress)) / 2

    def warmup_factor(self, t: float) -> float:
        """The warm-up factor at position ``t``."""
        if self.warmup is None or t >= self.warmup_length:
            return 1.0
        r = self.warmup_ratio
        return r + (1 - r) * t / self.warmup_length

    def weight(self,
               iteration: int,
               iters_per_epoch: Optional[float] = None) -> float:
        """The weight for 0-based training iteration index ``iteration``.

        ``iters_per_epoch`` is needed with ``by_epoch`` or ``stop_epoch``.
        """
        epoch = None
        if self.by_epoch or self.stop_epoch is not None:
            if not iters_per_epoch:
                raise ValueError('by_epoch / stop_epoch need iters_per_epoch')
            epoch = iteration / iters_per_epoch
        if self.stop_iter is not None and iteration >= self.stop_iter:
            return 0.0
        if self.stop_epoch is not None and epoch >= self.stop_epoch:
            return 0.0
        t = epoch if self.by_epoch else iteration
        return self.warmup_factor(t) * self.decay(t)


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Schedule the multiplier of the distillation losses.

    Contract with the model: before training the hook checks that the
    (unwrapped) model has an attribute ``distill_loss_scale`` — the
    distiller defines it (1.0 by default) and multiplies every
    distillation loss by it. Before each training iteration the hook sets
    ``model.distill_loss_scale`` to the scheduled weight (on
    ``model.module`` for wrapped models) and records it in the message hub as
    ``train/distill_weight``, so the training log line shows
    ``distill_weight: <value>``. A weight of 0 means distillation is off.

    The weight is recomputed from ``runner.iter`` every iteration, so a run
    resumed from a checkpoint continues the schedule exactly; the hook holds
    no state to save.

    Args: see :class:`DistillWeightSchedule` (same names), e.g.::

        custom_hooks = [dict(type='DistillLossWeightHook', mode='cosine',
                             warmup='linear', warmup_length=500,
                             stop_epoch=70)]
    """

    priority = 'NORMAL'

    def __init__(self,
                 mode: str = 'constant',
                 base_weight: float = 1.0,
                 by_epoch: bool = False,
                 warmup: Optional[str] = None,
                 warmup_length: float = 0,
                 warmup_ratio: float = 0.0,
                 begin: Optional[float] = None,
                 end: Optional[float] = None,
                 min_weight: Optional[float] = None,
                 milestones: Optional[Sequence[float]] = None,
                 gamma: Optional[float] = None,
                 stop_iter: Optional[int] = None,
                 stop_epoch: Optional[int] = None) -> None:
        self.schedule = DistillWeightSchedule(
            mode=mode,
            base_weight=base_weight,
            by_epoch=by_epoch,
            warmup=warmup,
            warmup_length=warmup_length,
            warmup_ratio=warmup_ratio,
            begin=begin,
            end=end,
            min_weight=min_weight,
            milestones=milestones,
            gamma=gamma,
            stop_iter=stop_iter,
            stop_epoch=stop_epoch)
        self.iters_per_epoch: Optional[int] = None
        self.current_weight: Optional[float] = None

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _apply(self, runner, log: bool) -> None:
        weight = self.schedule.weight(runner.iter, self.iters_per_epoch)
        setattr(self._model(runner), SCALE_ATTR, weight)
        self.current_weight = weight
        if log:
            runner.message_hub.update_scalar(LOG_KEY, weight)

    def before_train(self, runner) -> None:
        """Check the model contract, fill run defaults, set the weight."""
        model = self._model(runner)
        if not hasattr(model, SCALE_ATTR):
            raise AttributeError(
                f'{type(model).__name__} has no attribute {SCALE_ATTR!r}: '
                'DistillLossWeightHook only works with a distiller that '
                'multiplies its distillation losses by it; remove the hook '
                'or train a distiller model')
        try:
            self.iters_per_epoch = len(runner.train_dataloader)
        except TypeError:
            self.iters_per_epoch = None
        self.schedule = self.schedule.with_run(
            max_iters=runner.max_iters,
            max_epochs=runner.max_epochs,
            iters_per_epoch=self.iters_per_epoch)
        self._apply(runner, log=False)

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        """Set the weight of the iteration about to run and log it."""
        self._apply(runner, log=True)
