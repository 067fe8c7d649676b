"""Peak memory of a block of code: process RSS on CPU, allocator on CUDA.

CPU (``method='rss-hwm'``): the peak resident set size is reset through
``/proc/self/clear_refs`` before the block and read from ``VmHWM`` after
it; the figure is that peak minus the resident size just before the block.
For it to mean "the most memory the block held at once", freed tensors must
go back to the OS: :func:`fix_mmap_threshold` pins glibc's mmap threshold
at 128 KiB (as ``MALLOC_MMAP_THRESHOLD_=131072`` would), so every tensor
buffer above that size is its own mapping, and :func:`release_freed_memory`
trims the heap before measuring. The first CPU measurement pins the
threshold for the rest of the process; large allocations then cost page
faults, so take timings before measuring memory (or in another process).

Without ``clear_refs`` (non-Linux, restricted containers) the fallback is
``method='ru_maxrss'``: ``getrusage``'s lifetime maximum after the block
minus the RSS before it, an upper bound of the block's peak (exact when the
block sets a new maximum for the process).

CUDA (``method='cuda-max-allocated'``): ``torch.cuda.max_memory_allocated``
after ``reset_peak_memory_stats``, minus ``memory_allocated`` before.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import resource
from typing import Optional

import torch

__all__ = [
    'status_bytes', 'reset_peak_rss', 'fix_mmap_threshold',
    'release_freed_memory', 'PeakMemory', 'MMAP_THRESHOLD',
    'memory_method_note'
]

#: glibc mmap threshold used while measuring (bytes).
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
_libc: Optional[ctypes.CDLL] = None
_threshold_fixed = False


def _glibc() -> Optional[ctypes.CDLL]:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library('c')
        try:
            lib = ctypes.CDLL(name) if name else None
        except OSError:
            lib = None
        if lib is None or not hasattr(lib, 'mallopt') or not hasattr(
                lib, 'malloc_trim'):
            return None
        _libc = lib
    return _libc


def status_bytes(field: str) -> int:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in
    bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS; False where not supported."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def fix_mmap_threshold(nbytes: int = MMAP_THRESHOLD) -> bool:
    """Pin glibc's mmap threshold (disables its dynamic growth) for the rest
    of the process; False without glibc."""
    global _threshold_fixed
    lib = _glibc()
    if lib is None:
        return False
    if not _threshold_fixed:
        _threshold_fixed = bool(lib.mallopt(_M_MMAP_THRESHOLD, int(nbytes)))
    return _threshold_fixed


def release_freed_memory() -> None:
    """Collect garbage and give free heap pages back to the OS."""
    gc.collect()
    lib = _glibc()
    if lib is not None:
        lib.malloc_trim(0)


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakMemory:
    """``with PeakMemory(device) as pm: ...`` then ``pm.peak_bytes``.

    Args:
        device: where the block allocates (``'cpu'``, ``'cuda'``, ...).

    Attributes:
        peak_bytes: peak memory of the block above what was held before it.
        method: ``'rss-hwm'``, ``'ru_maxrss'`` or ``'cuda-max-allocated'``.
    """

    def __init__(self, device: str = 'cpu') -> None:
        self.device = torch.device(device)
        self.peak_bytes = 0
        self.method = ''
        self._base = 0

    def __enter__(self) -> 'PeakMemory':
        if self.device.type == 'cuda':
            self.method = 'cuda-max-allocated'
            torch.cuda.synchronize(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        fix_mmap_threshold()
        release_freed_memory()
        self._base = status_bytes('VmRSS')
        if reset_peak_rss():
            self.method = 'rss-hwm'
        else:
            self.method = 'ru_maxrss'
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method == 'rss-hwm':
            peak = status_bytes('VmHWM')
        else:
            peak = _maxrss_bytes()
        self.peak_bytes = max(0, peak - self._base)

    @property
    def peak_mib(self) -> float:
        """``peak_bytes`` in MiB."""
        return self.peak_bytes / 2**20


def memory_method_note(method: str) -> str:
    """One line saying what a memory figure measured by ``method`` is."""
    return {
        'rss-hwm': 'CPU peak RSS (VmHWM after clear_refs) above the RSS '
                   'before the block; glibc mmap threshold pinned at 128 KiB '
                   'so freed tensors return to the OS',
        'ru_maxrss': 'CPU getrusage lifetime max RSS minus the RSS before '
                     'the block (upper bound; exact when the block sets a new '
                     'maximum)',
        'cuda-max-allocated': 'torch.cuda.max_memory_allocated above the '
                              'memory allocated before the block',
    }.get(method, method)
