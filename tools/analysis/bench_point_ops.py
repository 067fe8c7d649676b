"""Time the CPU point ops (``pointdistiller_mm.compat.point_ops_cpu``) on the
shapes of one demo PointRCNN training step, or whole training steps by part.

    python tools/analysis/bench_point_ops.py [--data-root data/demo_kitti]
        [--num-points 4096] [--rois 64] [--roi-points 128] [--repeat 3]
        [--threads 1] [--baseline OLD_point_ops_cpu.py] [--json OUT]
    python tools/analysis/bench_point_ops.py --step CONFIG [--steps 3]
        [--test-scans 0] [--threads 1] [--baseline OLD_point_ops_cpu.py]
        [--cfg-options k=v ...] [--without-patch pfn_layer_cpu]
        [--heap-reuse] [--json OUT]

With ``--step CONFIG``: one warm-up and ``--steps`` training steps of
CONFIG (a PointRCNN config or a distiller of PointRCNNs) on its own train
data at batch 2, and ``--test-scans`` test scans, with the CPU time of the
step, forward, backward, and of each model part and point op
(:mod:`pointdistiller_mm.analysis.step_profile`); ``--baseline FILE`` runs
them on FILE's point ops instead, and ``--without-patch NAME`` lifts the
named CPU patches of :mod:`pointdistiller_mm.compat` (for example
``pfn_layer_cpu``) while they run; ``--heap-reuse`` runs them with
``MallocTrimHook(reuse_freed=True)``'s allocator settings. CPU time is the
figure to compare on a shared machine (wall time grows with the load).

Each case runs ``--repeat`` times (after one warm-up) and the median CPU
time (seconds, all threads of the process) is printed for:

* ``current``: the module as installed (BEV grid pair search on large inputs);
* ``every-pair``: the same module with the grid search off
  (``WINDOW_MIN_PAIRS`` raised), i.e. every (centre or box, point) pair
  tested, for ball query, points-in-boxes and RoI pooling;
* ``baseline``: with ``--baseline FILE``, another version of the module
  loaded from FILE (e.g. ``git show REV:pointdistiller_mm/compat/
  point_ops_cpu.py > /tmp/old.py``), and whether its outputs equal the
  current ones.

Shapes (batch 2 scans): the backbone's four SA levels (FPS, ball query and
grouping on ``num_points`` / 4 / 16 / 64 centres), the FP neck's three-NN
and interpolation, ``PointRPNHead``'s points-in-boxes of every point against
every proposal (one per point), RoI point pooling of ``--rois`` boxes and the
RoI head's first SA level on ``--roi-points`` pooled points per RoI. Points
come from the first two scans of ``--data-root`` (KITTI-format
``velodyne_reduced``), sampled to ``--num-points`` in the demo's range;
proposals are car-sized boxes around sampled points with random yaw.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import importlib
import importlib.util
import json
import os
import os.path as osp
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from mmengine.config import DictAction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from pointdistiller_mm.compat import point_ops_cpu as K  # noqa: E402

DEMO_RANGE = (0.0, -20.48, -3.0, 40.96, 20.48, 1.0)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data-root', default='data/demo_kitti',
                   help='KITTI-format root (random points when missing)')
    p.add_argument('--num-points', type=int, default=4096,
                   help='points per scan (the demo pipeline\'s PointSample)')
    p.add_argument('--rois', type=int, default=64,
                   help='RoIs per batch in the RoI head (2 x the sampler\'s '
                   'num, the demo\'s roi_samples)')
    p.add_argument('--roi-points', type=int, default=128,
                   help='points pooled per RoI (the demo\'s roi_points; '
                   'the RoI head samples half of them as SA centres)')
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--baseline', help='another point_ops_cpu.py to compare')
    p.add_argument('--only', nargs='+', help='run only these cases')
    p.add_argument('--json', help='write the table here')
    g = p.add_argument_group('training steps')
    g.add_argument('--step', metavar='CONFIG',
                   help='profile training steps of CONFIG instead')
    g.add_argument('--steps', type=int, default=3, help='timed steps')
    g.add_argument('--test-scans', type=int, default=0,
                   help='timed test scans after the steps')
    g.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    g.add_argument('--heap-reuse', action='store_true',
                   help="serve large blocks from glibc's heap and keep freed "
                   'memory during the steps (MallocTrimHook(reuse_freed='
                   'True))')
    g.add_argument('--without-patch', nargs='+', default=[], metavar='NAME',
                   help='lift these CPU patches (modules of '
                   'pointdistiller_mm.compat, e.g. pfn_layer_cpu) for the '
                   'steps')
    return p.parse_args(argv)


def load_scans(root: str, num_points: int, seed: int = 0) -> torch.Tensor:
    """(2, num_points, 3) points of the first two scans in the demo range."""
    rng = np.random.default_rng(seed)
    files = sorted(glob.glob(osp.join(root, 'training', 'velodyne_reduced',
                                      '*.bin')))[:2]
    x0, y0, z0, x1, y1, z1 = DEMO_RANGE
    scans = []
    for i in range(2):
        if i < len(files):
            pts = np.fromfile(files[i], dtype=np.float32).reshape(-1, 4)[:, :3]
            keep = ((pts[:, 0] > x0) & (pts[:, 0] < x1) & (pts[:, 1] > y0) &
                    (pts[:, 1] < y1) & (pts[:, 2] > z0) & (pts[:, 2] < z1))
            pts = pts[keep]
        else:
            pts = rng.uniform(DEMO_RANGE[:3], DEMO_RANGE[3:],
                              (num_points, 3)).astype(np.float32)
        choice = rng.choice(len(pts), num_points,
                            replace=len(pts) < num_points)
        scans.append(pts[choice])
    return torch.from_numpy(np.stack(scans)).contiguous()


def proposals(points: torch.Tensor, num: int, seed: int = 1) -> torch.Tensor:
    """(B, num, 7) car-sized boxes (bottom centre) around sampled points."""
    g = torch.Generator().manual_seed(seed)
    B, N, _ = points.shape
    idx = torch.randint(0, N, (B, num), generator=g)
    centre = points.gather(1, idx.unsqueeze(-1).expand(-1, -1, 3))
    centre = centre + torch.randn(B, num, 3, generator=g) * 0.5
    size = torch.tensor([3.9, 1.6, 1.56]) * torch.exp(
        torch.randn(B, num, 3, generator=g) * 0.2)
    yaw = (torch.rand(B, num, 1, generator=g) - 0.5) * 2 * np.pi
    centre[..., 2] -= size[..., 2] / 2
    return torch.cat([centre, size, yaw], -1).contiguous()


def roi_points(rois: int, n: int, seed: int = 2) -> torch.Tensor:
    """(rois, n, 3) canonical pooled points: a car's surface and ground."""
    g = torch.Generator().manual_seed(seed)
    half = torch.tensor([2.0, 0.85, 0.8])
    pts = (torch.rand(rois, n, 3, generator=g) * 2 - 1) * half
    face = torch.randint(0, 3, (rois, n), generator=g)
    pts[face == 0, 0] = half[0] * torch.sign(pts[face == 0, 0])
    pts[face == 1, 1] = half[1] * torch.sign(pts[face == 1, 1])
    return pts.contiguous()


def cases(args: argparse.Namespace) -> List[Tuple[str, Callable, tuple]]:
    """(name, function name in point_ops_cpu, arguments)."""
    g = torch.Generator().manual_seed(3)
    pts = load_scans(args.data_root, args.num_points)
    n = args.num_points
    lv = [pts]
    for m in (n // 4, n // 16, n // 64):  # FPS centres of the SA levels
        lv.append(lv[-1][:, :m].contiguous())
    out = [('fps L1 %d->%d' % (n, n // 4), 'furthest_point_sample',
            (pts, n // 4)),
           ('fps L2 %d->%d' % (n // 4, n // 16), 'furthest_point_sample',
            (lv[1], n // 16))]
    radii = ((0.1, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0))
    for level in range(2):
        for r, ns in zip(radii[level], (16, 32)):
            out.append(('ball_query L%d r%.1f ns%d' % (level + 1, r, ns),
                        'ball_query', (0.0, r, ns, lv[level], lv[level + 1])))
    feats = torch.randn(2, 64, n // 4, generator=g)
    gidx = K.ball_query(0.0, 1.0, 32, lv[1], lv[2])
    out.append(('group_points L2 C64', 'group_points', (feats, gidx)))
    grad = torch.randn(2, 64, *gidx.shape[1:], generator=g)
    out.append(('group_points_backward L2 C64', 'group_points_backward',
                (grad, gidx, n // 4)))
    out.append(('three_nn %d<-%d' % (n, n // 4), 'three_nn', (pts, lv[1])))
    d2, nidx = K.three_nn(pts, lv[1])
    w = torch.rand(2, n, 3, generator=g)
    f = torch.randn(2, 256, n // 4, generator=g)
    out.append(('three_interpolate C256', 'three_interpolate', (f, nidx, w)))
    out.append(('three_interpolate_backward C256',
                'three_interpolate_backward',
                (torch.randn(2, 256, n, generator=g), nidx, w, n // 4)))
    boxes = proposals(pts, n)
    out.append(('points_in_boxes_part %d x %d' % (n, n),
                'points_in_boxes_part', (pts, boxes)))
    rois = proposals(pts, args.rois // 2, seed=4)
    pf = torch.randn(2, n, 130, generator=g)
    out.append(('roipoint_pool3d %d rois x %d' % (args.rois, args.roi_points),
                'roipoint_pool3d', (pts, pf, rois, args.roi_points)))
    rp = roi_points(args.rois, args.roi_points)
    half = args.roi_points // 2
    out.append(('fps RoI %dx%d->%d' % (args.rois, args.roi_points, half),
                'furthest_point_sample', (rp, half)))
    out.append(('ball_query RoI r0.2 ns16', 'ball_query',
                (0.0, 0.2, 16, rp, rp[:, :half].contiguous())))
    rf = torch.randn(args.rois, 128, args.roi_points, generator=g)
    ridx = K.ball_query(0.0, 0.2, 16, rp, rp[:, :half].contiguous())
    out.append(('group_points RoI C128', 'group_points', (rf, ridx)))
    out.append(('group_points_backward RoI C128', 'group_points_backward',
                (torch.randn(args.rois, 128, half, 16, generator=g), ridx,
                 args.roi_points)))
    if args.only:
        out = [c for c in out if any(o in c[0] for o in args.only)]
    return out


def load_module(path: str) -> Any:
    spec = importlib.util.spec_from_file_location('baseline_point_ops', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(fn: Callable, fargs: tuple, repeat: int) -> Tuple[float, Any]:
    """Median CPU seconds of the process (all threads) over ``repeat``
    calls after a warm-up: on a shared machine wall time grows with the
    load, CPU time much less."""
    out = fn(*fargs)  # warm-up
    times = []
    for _ in range(repeat):
        t = time.process_time()
        out = fn(*fargs)
        times.append(time.process_time() - t)
    return statistics.median(times), out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, (tuple, list)):
        return all(same(x, y) for x, y in zip(a, b))
    return a.shape == b.shape and bool(torch.equal(a, b))


def compat_module(name: str) -> Any:
    """The CPU patch module ``pointdistiller_mm.compat.<name>``; a name
    that is not one fails with the list of patch modules."""
    from pointdistiller_mm.compat import PATCH_MODULES
    if name not in PATCH_MODULES:
        raise SystemExit(f'--without-patch: no CPU patch module {name!r}; '
                         'pointdistiller_mm.compat has: '
                         f'{", ".join(PATCH_MODULES)}')
    return importlib.import_module(f'pointdistiller_mm.compat.{name}')


def profile_config(args: argparse.Namespace) -> Dict[str, Any]:
    """``--step``: training steps of a config by part."""
    from mmengine.registry import init_default_scope

    import pointdistiller_mm  # noqa: F401  (CPU patches)
    from pointdistiller_mm.analysis.step_profile import (
        format_profile, profile_steps)
    from pointdistiller_mm.hooks.malloc_trim_hook import set_heap_reuse
    from pointdistiller_mm.utils import check_cfg_options, load_config
    cfg = load_config(args.step)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    saved = {}
    if args.baseline:
        base = load_module(args.baseline)
        saved = {n: getattr(K, n) for n in base.__all__ if hasattr(K, n)}
        for n in saved:
            setattr(K, n, getattr(base, n))
    try:
        with contextlib.ExitStack() as lifted:
            for name in args.without_patch:
                lifted.enter_context(compat_module(name).unpatched())
            if args.heap_reuse:
                set_heap_reuse(True)
                lifted.callback(set_heap_reuse, False)
            result = profile_steps(cfg, steps=args.steps,
                                   test_scans=args.test_scans)
    finally:
        for n, f in saved.items():
            setattr(K, n, f)
    result.update(config=args.step, threads=args.threads,
                  baseline=args.baseline, cfg_options=args.cfg_options,
                  without_patch=args.without_patch,
                  heap_reuse=args.heap_reuse)
    print(format_profile(result, '%s (%d thread(s)%s%s%s)' % (
        args.step, args.threads,
        ', point ops of ' + args.baseline if args.baseline else '',
        ', heap reuse' if args.heap_reuse else '',
        ', without ' + ' '.join(args.without_patch)
        if args.without_patch else '')))
    return result


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.step:
        result = profile_config(args)
        if args.json:
            os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
            with open(args.json, 'w') as f:
                json.dump(result, f, indent=1, default=str)
        return result
    base = load_module(args.baseline) if args.baseline else None
    rows = []
    head = '%-36s %10s %10s' % ('case', 'current s', 'every-pair')
    if base:
        head += ' %10s %8s %6s' % ('baseline', 'speedup', 'equal')
    print(head)
    for name, fname, fargs in cases(args):
        cur, out = timed(getattr(K, fname), fargs, args.repeat)
        row = dict(case=name, current_s=cur)
        saved = K.WINDOW_MIN_PAIRS
        if fname in ('ball_query', 'points_in_boxes_part', 'roipoint_pool3d'):
            K.WINDOW_MIN_PAIRS = 1 << 62
            try:
                row['every_pair_s'], dense = timed(getattr(K, fname), fargs,
                                                   args.repeat)
            finally:
                K.WINDOW_MIN_PAIRS = saved
            row['every_pair_equal'] = same(out, dense)
        line = '%-36s %10.4f %10s' % (name, cur, '%.4f' % row[
            'every_pair_s'] if 'every_pair_s' in row else '-')
        if base:
            row['baseline_s'], old = timed(getattr(base, fname), fargs,
                                           args.repeat)
            row['baseline_equal'] = same(out, old)
            line += ' %10.4f %7.1fx %6s' % (row['baseline_s'],
                                            row['baseline_s'] / cur,
                                            row['baseline_equal'])
        if not row.get('every_pair_equal', True):
            line += '  (grid and every-pair results differ!)'
        print(line, flush=True)
        rows.append(row)
    result = dict(threads=args.threads, num_points=args.num_points,
                  rois=args.rois, roi_points=args.roi_points, rows=rows)
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == '__main__':
    main()
