"""numba's parallel loops (KITTI evaluation's rotated IoU) leave torch's
thread count alone: a process started with OMP_NUM_THREADS=1 keeps training
on one thread after a KITTI validation. Each case runs in a fresh process
(numba's pool starts once per process)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import sys
import numpy as np
import torch
from pointdistiller_mm.compat import numba_threads
if sys.argv[1] == 'unpatched':
    numba_threads.remove()
import pointdistiller_mm  # noqa: F401  (applies the patches)
if sys.argv[1] == 'unpatched':
    numba_threads.remove()
from pointdistiller_mm.compat.kitti_rotate_iou import rotate_iou_cpu_eval
before = torch.get_num_threads()
rng = np.random.default_rng(0)
boxes = np.concatenate([rng.uniform(0, 20, (64, 2)),
                        rng.uniform(1, 4, (64, 2)),
                        rng.uniform(-3, 3, (64, 1))], 1).astype(np.float32)
# the rotated BEV IoU of KITTI's evaluation, on numba's thread pool
iou = rotate_iou_cpu_eval(boxes, boxes, -1, parallel_min_pairs=1)
assert iou.shape == (64, 64) and np.isfinite(iou).all()
import numba
print('THREADS', before, torch.get_num_threads(), numba.threading_layer())
'''


def _run(mode: str) -> list:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(REPO))
    env.pop('NUMBA_THREADING_LAYER', None)
    env.pop('NUMBA_NUM_THREADS', None)
    proc = subprocess.run([sys.executable, '-c', SCRIPT, mode], cwd=REPO,
                          env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines()
            if ln.startswith('THREADS')][-1]
    return line.split()[1:]


def test_kitti_eval_keeps_torch_on_one_thread():
    before, after, layer = _run('patched')
    assert (before, after) == ('1', '1')
    assert layer == 'workqueue'


@pytest.mark.skipif((os.cpu_count() or 1) < 2,
                    reason='numba starts one thread on a one-core machine')
def test_without_the_patch_numba_resets_torch_threads():
    """What the patch prevents: numba's OpenMP pool sets the OpenMP thread
    count that torch reads to numba's (all cores)."""
    before, after, layer = _run('unpatched')
    assert layer == 'omp'
    assert before == '1' and int(after) == min(os.cpu_count(), int(after))
    assert int(after) > 1
