"""Stop the teacher's forward once every teacher recorder has its data.

The distillation terms read the teacher only through its recorders, so the
layers that run after the last recorded module compute nothing that is
used (for PointDistiller on pillar features, the whole backbone and neck
of a PointPillars teacher). :class:`EarlyExit` runs the teacher's forward
and leaves it, by an exception raised from a forward hook, as soon as
every recorder holds a call.

This is exact only if each recorded module is called once per forward (a
recorder keeps the module's last call). The first forward therefore runs
to the end and counts the calls of every recorded module; early exit is
used from then on only if each was called exactly once (a recorder with
``keep_all`` never allows it). The teacher is frozen and in eval mode, so
the skipped layers have no side effects to miss.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

from torch import nn
from torch.utils.hooks import RemovableHandle

from ..recorders import RecorderManager, resolve_module

__all__ = ['EarlyExit']


class _AllRecorded(Exception):
    """Raised from a forward hook when every recorder holds its data."""


class EarlyExit:
    """Run a model's forward only as far as its recorders need.

    Args:
        model: the recorded model (the teacher).
        recorders: its recorders, registered on ``model``.
        enabled: False always runs the whole forward.

    Attributes:
        active (bool | None): None before the first (counting) forward,
            then whether later forwards exit early (False from the start
            when disabled or with a ``keep_all`` recorder).
        calls (dict): calls of each recorded module in the counting
            forward, by recorder name.
    """

    def __init__(self, model: nn.Module, recorders: RecorderManager,
                 enabled: bool = True) -> None:
        self.recorders = recorders
        self._modules = {
            name: (resolve_module(model, rec.source), rec.record)
            for name, rec in recorders.items()
        }
        keep_all = any(rec.keep_all for _, rec in recorders.items())
        usable = enabled and len(recorders) > 0 and not keep_all
        self.active: Optional[bool] = None if usable else False
        self.calls: Dict[str, int] = {}

    def __call__(self, forward: Callable[[], object]) -> None:
        """Run ``forward()`` (inside the recorders' window), stopping it
        early where that is known to be exact."""
        if self.active is False:
            forward()
        elif self.active is None:
            self._count_calls(forward)
        else:
            self._run_until_recorded(forward)

    # ------------------------------------------------------------------
    def _count_calls(self, forward: Callable[[], object]) -> None:
        counts = {name: 0 for name in self._modules}
        handles: List[RemovableHandle] = []
        for name, (module, _) in self._modules.items():

            def count(*_args, _name: str = name) -> None:
                counts[_name] += 1

            handles.append(module.register_forward_pre_hook(count))
        try:
            forward()
        finally:
            for h in handles:
                h.remove()
        self.calls = counts
        self.active = all(c == 1 for c in counts.values())

    def _run_until_recorded(self, forward: Callable[[], object]) -> None:
        recorders = [rec for _, rec in self.recorders.items()]

        def check(*_args) -> None:
            if all(rec.num_calls > 0 for rec in recorders):
                raise _AllRecorded

        handles: List[RemovableHandle] = []
        for module, record in self._modules.values():
            # registered after the recorders' own hooks, so they run after
            if record == 'input':
                handles.append(module.register_forward_pre_hook(check))
            else:
                handles.append(module.register_forward_hook(check))
        try:
            forward()
        except _AllRecorded:
            pass
        finally:
            for h in handles:
                h.remove()
