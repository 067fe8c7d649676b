"""Run one call in a background thread while the caller goes on.

The distiller uses it to run the frozen teacher's forward while the student
computes its own forward and losses: both only read the batch, and on a CPU
run with one intra-op thread per process the two forwards then occupy two
cores instead of one. Every operator computes exactly what it computes
in the caller's thread, so the results are the same bit for bit.
"""
from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import Callable, List, Optional, Type

import torch

__all__ = ['BackgroundCall']

_AUTOCAST_DEVICES = ('cpu', 'cuda')


def _autocast_state() -> List[tuple]:
    """``(device, dtype)`` of each device type with autocast on in this
    thread (autocast is thread-local, so the worker must re-enter it)."""
    state = []
    for device in _AUTOCAST_DEVICES:
        if torch.is_autocast_enabled(device):
            state.append((device, torch.get_autocast_dtype(device)))
    return state


class BackgroundCall:
    """``with BackgroundCall(fn): ...`` runs ``fn()`` in a thread from the
    ``with`` until its end, where the thread is joined and an exception it
    raised is raised again in the caller.

    The thread starts with the caller's grad mode and autocast state
    (both are thread-local in torch). ``enabled=False`` calls ``fn()`` at
    the start of the ``with`` instead, in the caller's thread.
    """

    def __init__(self, fn: Callable[[], object], enabled: bool = True,
                 name: str = 'background-call') -> None:
        self.fn = fn
        self.enabled = enabled
        self.name = name
        self._thread: Optional[threading.Thread] = None
        self._error: Optional[BaseException] = None

    def _target(self, grad: bool, autocast: List[tuple]) -> None:
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(torch.set_grad_enabled(grad))
                for device, dtype in autocast:
                    stack.enter_context(torch.autocast(device, dtype=dtype))
                self.fn()
        except BaseException as err:  # handed to the caller in __exit__
            self._error = err

    def __enter__(self) -> 'BackgroundCall':
        if not self.enabled:
            self.fn()
            return self
        self._error = None
        self._thread = threading.Thread(
            target=self._target,
            args=(torch.is_grad_enabled(), _autocast_state()),
            name=self.name, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, exc_type: Optional[Type[BaseException]],
                 exc: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None:
        if self._thread is None:
            return
        self._thread.join()  # also when the caller's block raised
        self._thread = None
        error, self._error = self._error, None
        if error is not None and exc is None:
            raise error
