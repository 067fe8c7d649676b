"""Time the CPU rotated IoU that replaces mmdet3d's CUDA kernel.

Prints seconds for:

* the first call (numba compilation or cache load),
* an ``N x N`` IoU matrix of KITTI-like BEV boxes, per criterion,
* a full ``mmdet3d`` ``kitti_eval`` (bbox, BEV, 3D) over synthetic frames,
* with ``--cudasim``, mmdet3d's kernel through numba's CUDA simulator on a
  ``M x M`` subset (in a subprocess), and whether both results are identical.

Example::

    python tools/analysis/benchmark_kitti_iou.py --num-boxes 3000 \
        --eval-frames 400 --cudasim
"""
from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Tuple

import numpy as np

CLASS_DIMS = {  # KITTI camera-frame (l, h, w)
    'Car': (3.9, 1.56, 1.6),
    'Pedestrian': (0.8, 1.75, 0.6),
    'Cyclist': (1.76, 1.73, 0.6),
}

_SIM_SCRIPT = r'''
import importlib.util, os, pickle, sys, time
import numpy as np
np.seterr(all='ignore')
root = importlib.util.find_spec('mmdet3d').submodule_search_locations[0]
path = os.path.join(root, 'evaluation', 'functional', 'kitti_utils',
                    'rotate_iou.py')
spec = importlib.util.spec_from_file_location('cudasim_rotate_iou', path)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
mod.__dict__.setdefault('__warningregistry__', {})
with open(sys.argv[1], 'rb') as f:
    job = pickle.load(f)
start = time.perf_counter()
iou = mod.rotate_iou_gpu_eval(job['boxes'], job['query'], job['criterion'])
seconds = time.perf_counter() - start
with open(sys.argv[2], 'wb') as f:
    pickle.dump(dict(iou=iou, seconds=seconds), f)
'''


def kitti_like_boxes(num: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """BEV boxes ``(x, z, l, w, ry)`` and noisy copies (as detections)."""
    rng = np.random.default_rng(seed)
    boxes = np.stack([
        rng.uniform(-40, 40, num),
        rng.uniform(0, 70, num),
        rng.uniform(0.5, 5.0, num),
        rng.uniform(0.5, 2.5, num),
        rng.uniform(-np.pi, np.pi, num),
    ], axis=1).astype(np.float32)
    query = boxes + rng.normal(0, 0.2, boxes.shape).astype(np.float32)
    return boxes, query


def synthetic_annos(num_frames: int, per_frame: int,
                    seed: int) -> Tuple[List[Dict], List[Dict]]:
    """KITTI-format ground truth and noisy detections of it."""
    rng = np.random.default_rng(seed)
    names_all = list(CLASS_DIMS)
    gts, dts = [], []
    for _ in range(num_frames):
        n = per_frame
        names = rng.choice(names_all, n)
        dims = np.array([CLASS_DIMS[c] for c in names])
        dims = dims * rng.uniform(0.9, 1.1, (n, 3))
        loc = np.stack([rng.uniform(-15, 15, n), rng.uniform(1.4, 1.8, n),
                        rng.uniform(5, 50, n)], axis=1)
        rot = rng.uniform(-np.pi, np.pi, n)
        x1, y1 = rng.uniform(0, 1100, n), rng.uniform(100, 200, n)
        height = rng.uniform(20, 160, n)
        bbox = np.stack([x1, y1, x1 + height, y1 + height], axis=1)
        gts.append(dict(name=names, truncated=np.zeros(n),
                        occluded=rng.integers(0, 3, n),
                        alpha=rng.uniform(-3, 3, n), bbox=bbox,
                        dimensions=dims, location=loc, rotation_y=rot))
        err = rng.normal(0, 1, (n, 3))
        dts.append(dict(name=names, truncated=np.zeros(n),
                        occluded=np.zeros(n, dtype=np.int64),
                        alpha=rng.uniform(-3, 3, n),
                        bbox=bbox + rng.normal(0, 2, (n, 4)),
                        dimensions=dims * rng.uniform(0.93, 1.07, (n, 3)),
                        location=loc + err * dims * 0.06,
                        rotation_y=rot + rng.normal(0, 0.08, n),
                        score=1.0 / (1.0 + np.abs(err).sum(1))))
    return gts, dts


def run_cudasim(boxes: np.ndarray, query: np.ndarray,
                criterion: int) -> Tuple[np.ndarray, float]:
    """mmdet3d's kernel under ``NUMBA_ENABLE_CUDASIM=1`` in a subprocess."""
    with tempfile.TemporaryDirectory() as tmp:
        job, out = os.path.join(tmp, 'job.pkl'), os.path.join(tmp, 'out.pkl')
        with open(job, 'wb') as f:
            pickle.dump(dict(boxes=boxes, query=query, criterion=criterion),
                        f)
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM='1')
        subprocess.run([sys.executable, '-c', _SIM_SCRIPT, job, out],
                       env=env, check=True)
        with open(out, 'rb') as f:
            res = pickle.load(f)
    return res['iou'], res['seconds']


def _time(fn, repeat: int) -> float:
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-boxes', type=int, default=3000,
                        help='N of the N x N IoU matrix')
    parser.add_argument('--repeat', type=int, default=3,
                        help='timed repetitions (best is reported)')
    parser.add_argument('--eval-frames', type=int, default=400,
                        help='frames of the kitti_eval run (0 skips it)')
    parser.add_argument('--boxes-per-frame', type=int, default=8)
    parser.add_argument('--cudasim', action='store_true',
                        help='also time the CUDA simulator on a subset')
    parser.add_argument('--cudasim-boxes', type=int, default=64,
                        help='M of the M x M simulator subset')
    parser.add_argument('--threads', type=int, default=0,
                        help='numba threads (0: numba default)')
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
    import numba

    from pointdistiller_mm.compat import kitti_rotate_iou
    from pointdistiller_mm.compat.kitti_rotate_iou import rotate_iou_cpu_eval
    if args.threads:
        numba.set_num_threads(args.threads)
    print(f'numba threads: {numba.get_num_threads()}')

    start = time.perf_counter()
    kitti_rotate_iou.warmup()
    print(f'first call (compile or cache load): '
          f'{time.perf_counter() - start:.3f} s')

    boxes, query = kitti_like_boxes(args.num_boxes, args.seed)
    pairs = args.num_boxes * args.num_boxes
    for criterion in (-1, 2):
        seconds = _time(lambda: rotate_iou_cpu_eval(boxes, query, criterion),
                        args.repeat)
        print(f'cpu {args.num_boxes}x{args.num_boxes} criterion {criterion}:'
              f' {seconds:.3f} s ({seconds / pairs * 1e9:.0f} ns/pair)')

    if args.eval_frames > 0:
        kitti_rotate_iou.apply(force=True)
        from mmdet3d.evaluation.functional import kitti_eval
        iou_time = [0.0, 0]

        def timed_iou(*iou_args, **iou_kwargs):
            start = time.perf_counter()
            result = rotate_iou_cpu_eval(*iou_args, **iou_kwargs)
            iou_time[0] += time.perf_counter() - start
            iou_time[1] += 1
            return result

        # eval.py imports the function on every call: route it via a timer.
        iou_module = sys.modules[kitti_rotate_iou.ROTATE_IOU_MODULE]
        iou_module.rotate_iou_gpu_eval = timed_iou
        gts, dts = synthetic_annos(args.eval_frames, args.boxes_per_frame,
                                   args.seed)
        classes = list(CLASS_DIMS)
        num = args.eval_frames * args.boxes_per_frame
        for label in ('first (incl. mmdet3d numba compile)', 'second'):
            iou_time[:] = [0.0, 0]
            start = time.perf_counter()
            _, ap = kitti_eval(gts, dts, classes,
                               eval_types=['bbox', 'bev', '3d'])
            print(f'kitti_eval {args.eval_frames} frames, {num} gt / {num} '
                  f'dt boxes, {label}: {time.perf_counter() - start:.3f} s, '
                  f'of which rotated IoU {iou_time[0]:.3f} s '
                  f'({iou_time[1]} calls)')
        iou_module.rotate_iou_gpu_eval = rotate_iou_cpu_eval
        print(f"  Car 3D AP40 moderate: "
              f"{ap['KITTI/Car_3D_AP40_moderate_strict']:.2f}")

    if args.cudasim:
        m = args.cudasim_boxes
        sub_b, sub_q = boxes[:m], query[:m]
        ref, seconds = run_cudasim(sub_b, sub_q, -1)
        mine = rotate_iou_cpu_eval(sub_b, sub_q, -1)
        cpu_seconds = _time(lambda: rotate_iou_cpu_eval(sub_b, sub_q, -1),
                            args.repeat)
        print(f'cudasim {m}x{m}: {seconds:.3f} s '
              f'({seconds / (m * m) * 1e6:.0f} us/pair); cpu on the same: '
              f'{cpu_seconds * 1e3:.3f} ms; identical: '
              f'{np.array_equal(mine, ref)}')


if __name__ == '__main__':
    main()
