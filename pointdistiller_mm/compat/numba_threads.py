"""Keep numba's parallel loops from changing torch's CPU thread count.

mmdet3d's KITTI evaluation (``d3_box_overlap_kernel``) and this package's
CPU rotated IoU (:mod:`.kitti_rotate_iou`) run numba ``prange`` loops. On
this stack numba picks its OpenMP threading layer, which shares the libgomp
that torch loads; starting numba's pool calls ``omp_set_num_threads`` with
numba's thread count (all cores) on the calling thread, and that is torch's
intra-op thread count too. A training process started with
``OMP_NUM_THREADS=1`` therefore runs torch on every core after its first
KITTI validation: the thread count changes mid-run (results are not
repeatable across identical runs), and on a machine shared by several jobs
the OpenMP barriers of the oversubscribed cores make training steps several
times slower (0.33 s -> 2-5 s per PointPillars demo step measured).

The patch selects numba's own ``workqueue`` threading layer, which does not
touch OpenMP, as long as numba's pool has not started and the user has not
chosen a layer (``NUMBA_THREADING_LAYER``). numba keeps its own thread
count (``NUMBA_NUM_THREADS``, all cores by default) for its loops; torch
keeps ``OMP_NUM_THREADS``. Applied on every machine.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List

PATCH_NAME = 'numba_threading_layer'

_state: Dict[str, Any] = {}


def _pool_started() -> bool:
    from numba.np.ufunc import parallel
    return bool(getattr(parallel, '_is_initialized', False))


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def apply() -> List[str]:
    """Select numba's ``workqueue`` layer (idempotent). Returns the patch
    names in effect (none when the user chose a layer or numba's pool has
    already started)."""
    if _state:
        return [PATCH_NAME]
    if os.environ.get('NUMBA_THREADING_LAYER'):
        return []
    from numba import config
    if _pool_started():
        return []
    _state['layer'] = config.THREADING_LAYER
    config.THREADING_LAYER = 'workqueue'
    return [PATCH_NAME]


def remove() -> None:
    """Restore numba's configured layer (effective only while numba's
    pool has not started)."""
    if not _state:
        return
    from numba import config
    config.THREADING_LAYER = _state.pop('layer')
