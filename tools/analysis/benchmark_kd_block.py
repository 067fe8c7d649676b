"""Time and memory of one PointDistillerLoss forward + backward.

Random pillar-like rows (``--rows-min`` to ``--rows-max`` per sample, batch
``--batch``, student ``--cs`` / teacher ``--ct`` channels, geometric point
counts as scores) go through the loss in train mode; every configuration
runs in a fresh subprocess so that its memory figure is its own.

Time: median over ``--repeat`` steps of the wall time and of the process
CPU time (user + system, all threads); on a shared machine the CPU time is
the steadier figure.

Memory: peak resident set size during one warm forward + backward, minus the
resident size just before it (``VmHWM`` after ``/proc/self/clear_refs``),
with glibc's mmap threshold pinned at 128 KiB so that every tensor buffer
is its own mapping and goes back to the OS when freed: the figure is the
largest amount of memory the step held at once, not a high-water mark of a
heap that never shrinks. ``B/(N*K)`` is that peak per local-graph edge; the
table also lists the size of one (B x N x K x C_g) float32 edge tensor,
which a dense implementation holds several times over.

The measuring code lives in :mod:`pointdistiller_mm.analysis.kd_block`
(shared with ``tools/benchmark_distill.py --kd-sweep``, which runs the KD
block of a config's distillation term).

Usage::

    python tools/analysis/benchmark_kd_block.py                  # full grid
    python tools/analysis/benchmark_kd_block.py --ns 1000 6000 --ks 16 128
    python tools/analysis/benchmark_kd_block.py --dense-compare  # 6000 / 128
"""
import argparse
import json
import os.path as osp
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from pointdistiller_mm.analysis.kd_block import (MODES,  # noqa: E402
                                                 KDBlockCase, kd_table_header,
                                                 mode_kwargs, run_kd_cases)


def build_cases(args: argparse.Namespace) -> List[KDBlockCase]:
    """The configurations the command line asks for."""
    if args.dense_compare:
        jobs = [(m, a, 6000, 128) for m in ('cheap', 'dense')
                for a in ('none', 'max')]
        jobs += [('legacy', 'none', 6000, 128),
                 ('legacy-dense', 'none', 6000, 128)]
    else:
        jobs = [(m, a, n, k) for m in args.modes for a in args.aggregations
                for n in args.ns for k in args.ks]
    return [
        KDBlockCase(n=n, k=k, mode=m, loss_kwargs=mode_kwargs(m, a),
                    batch=args.batch, rows_min=args.rows_min,
                    rows_max=args.rows_max, cs=args.cs, ct=args.ct,
                    repeat=args.repeat, threads=args.threads)
        for m, a, n, k in jobs
    ]


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--ns', type=int, nargs='+',
                   default=[1000, 3000, 6000, 12000])
    p.add_argument('--ks', type=int, nargs='+', default=[16, 32, 64, 128, 256])
    p.add_argument('--modes', nargs='+', default=['cheap'],
                   choices=sorted(MODES))
    p.add_argument('--aggregations', nargs='+', default=['none', 'max'],
                   choices=['none', 'max', 'default'])
    p.add_argument('--dense-compare', action='store_true',
                   help='run cheap / dense / legacy / legacy-dense at '
                   'N 6000, K 128 (both aggregations for the paper modes)')
    p.add_argument('--batch', type=int, default=2)
    p.add_argument('--rows-min', type=int, default=12000)
    p.add_argument('--rows-max', type=int, default=16000)
    p.add_argument('--cs', type=int, default=32)
    p.add_argument('--ct', type=int, default=64)
    p.add_argument('--repeat', type=int, default=3)
    p.add_argument('--threads', type=int, default=1,
                   help='torch threads; 1 gives repeatable times on a '
                   'shared machine (OpenMP threads spin against other '
                   'processes)')
    p.add_argument('--max-edges', type=float, default=4e7,
                   help='skip configurations with more B x N x K edges')
    p.add_argument('--in-process', action='store_true',
                   help='run every configuration in this process (faster '
                   'start; memory figures may include leftovers)')
    p.add_argument('--json', help='also write the results here')
    args = p.parse_args(argv)

    print(kd_table_header(), flush=True)
    results = run_kd_cases(build_cases(args), isolate=not args.in_process,
                           max_edges=args.max_edges,
                           report=lambda line: print(line, flush=True))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == '__main__':
    main()
