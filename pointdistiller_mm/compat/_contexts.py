"""Context managers shared by the stack patches of this package."""
from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Iterator, Tuple

__all__ = ['patch_contexts']


def patch_contexts(
    apply: Callable[..., bool], remove: Callable[[], None],
    is_applied: Callable[[], bool]
) -> Tuple[Callable[..., ContextManager[bool]],
           Callable[[], ContextManager[None]]]:
    """``(patched, unpatched)`` context managers of one patch module.

    ``patched(force=True)`` applies the patch on entry and restores the
    previous state on exit (yields whether it is in effect);
    ``unpatched()`` lifts the patch inside the block and re-applies it
    after when it was applied before.
    """

    @contextlib.contextmanager
    def patched(force: bool = True) -> Iterator[bool]:
        """Patch on entry, restore the previous state on exit."""
        was_applied = is_applied()
        active = apply(force=force)
        try:
            yield active
        finally:
            if not was_applied:
                remove()

    @contextlib.contextmanager
    def unpatched() -> Iterator[None]:
        """Lift the patch inside the block, re-apply it after."""
        was_applied = is_applied()
        remove()
        try:
            yield
        finally:
            if was_applied:
                apply(force=True)

    return patched, unpatched
