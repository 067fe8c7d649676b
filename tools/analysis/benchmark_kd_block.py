"""Time and memory of one PointDistillerLoss forward + backward.

Random pillar-like rows (``--rows-min`` to ``--rows-max`` per sample, batch
``--batch``, student ``--cs`` / teacher ``--ct`` channels, geometric point
counts as scores) go through the loss in train mode; every configuration
runs in a fresh subprocess so that its memory figure is its own.

Time: median over ``--repeat`` steps of the wall time and of the process
CPU time (user + system, all threads); on a shared machine the CPU time is
the steadier figure.

Memory: peak resident set size of that subprocess during one warm
forward + backward (the second step), minus its resident size just before
it: the peak is reset through ``/proc/self/clear_refs`` and read from
``VmHWM``. The parent runs each subprocess with glibc's
``MALLOC_MMAP_THRESHOLD_`` fixed at 128 KiB, so every tensor buffer is its
own mapping and goes back to the OS when freed: the figure is then the
largest amount of memory the step held at once (live tensors plus small
allocator overhead), not a high-water mark of a heap that never shrinks.
The table also lists the size of one (B x N x K x C_g) float32 edge tensor,
which a dense implementation holds several times over.

Usage::

    python tools/analysis/benchmark_kd_block.py                  # full grid
    python tools/analysis/benchmark_kd_block.py --ns 1000 6000 --ks 16 128
    python tools/analysis/benchmark_kd_block.py --dense-compare  # 6000 / 128
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time
from typing import Dict, List

MODES = {
    # paper form: per-sample top-N, neighbours among the sampled rows
    'cheap': dict(),
    # same computation, dense edge tensor + real conv
    'dense': dict(dense=True),
    # official behaviour (batch-global top-N, KNN over all batch rows)
    'legacy': dict(legacy=True),
    'legacy-dense': dict(legacy=True, dense=True),
}


def _status_bytes(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak_rss() -> None:
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def run_one(args: argparse.Namespace) -> Dict:
    """One configuration, in this process; returns a result dict."""
    import torch

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))
    from pointdistiller_mm.losses import PointDistillerLoss

    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    sizes = torch.randint(args.rows_min, args.rows_max + 1, (args.batch, ),
                          generator=g).tolist()
    M = sum(sizes)
    batch_idx = torch.cat(
        [torch.full((n, ), i, dtype=torch.long) for i, n in enumerate(sizes)])
    # Geometric point counts (~ a third of pillars with one point).
    counts = torch.distributions.Geometric(probs=torch.tensor(0.3)).sample(
        (M, )) + 1
    student = torch.randn(M, args.cs, generator=g, requires_grad=True)
    teacher = torch.randn(M, args.ct, generator=g)
    kw = dict(MODES[args.mode])
    if args.aggregation != 'default':
        kw['aggregation'] = args.aggregation
    loss_fn = PointDistillerLoss(
        args.cs, args.ct, num_samples=args.n, k=args.k, **kw).train()

    def step():
        student.grad = None
        loss_fn.zero_grad(set_to_none=True)
        loss = loss_fn(student, teacher, batch_idx, counts)
        loss.backward()
        return loss

    def cpu_time():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t0 = time.perf_counter()
    step()  # warm-up: one-time allocations and thread start-up
    cold = time.perf_counter() - t0
    times, cpus = [], []
    for i in range(args.repeat):
        if i == 0:
            base = _status_bytes('VmRSS')
            _reset_peak_rss()
        t0, c0 = time.perf_counter(), cpu_time()
        step()
        times.append(time.perf_counter() - t0)
        cpus.append(cpu_time() - c0)
        if i == 0:
            peak = _status_bytes('VmHWM') - base
    times.sort()
    cpus.sort()
    groups = 1 if kw.get('legacy') else args.batch
    n_rows = min(args.n, M) if kw.get('legacy') else sum(
        min(args.n, s) for s in sizes)
    return dict(
        mode=args.mode,
        aggregation=loss_fn.aggregation,
        n=args.n,
        k=args.k,
        rows=M,
        groups=groups,
        sampled=n_rows,
        cold_s=cold,
        time_s=times[len(times) // 2],
        cpu_s=cpus[len(cpus) // 2],
        peak_mib=peak / 2**20,
        edge_mib=n_rows * args.k * loss_fn.graph_channels * 4 / 2**20)


def main(argv: List[str] = None) -> None:
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
    p.add_argument('--json', help='also write the results here')
    # internal: run one configuration in this process
    p.add_argument('--single', action='store_true', help=argparse.SUPPRESS)
    p.add_argument('--n', type=int, help=argparse.SUPPRESS)
    p.add_argument('--k', type=int, help=argparse.SUPPRESS)
    p.add_argument('--mode', default='cheap', help=argparse.SUPPRESS)
    p.add_argument('--aggregation', default='none', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.single:
        print(json.dumps(run_one(args)))
        return

    if args.dense_compare:
        jobs = [(m, a, 6000, 128) for m in ('cheap', 'dense')
                for a in ('none', 'max')]
        jobs += [('legacy', 'none', 6000, 128),
                 ('legacy-dense', 'none', 6000, 128)]
    else:
        jobs = [(m, a, n, k) for m in args.modes for a in args.aggregations
                for n in args.ns for k in args.ks]
    common = [
        '--batch', str(args.batch), '--rows-min', str(args.rows_min),
        '--rows-max', str(args.rows_max), '--cs', str(args.cs), '--ct',
        str(args.ct), '--repeat', str(args.repeat), '--threads',
        str(args.threads)
    ]
    results = []
    header = (f"{'mode':<13}{'agg':<6}{'N':>6}{'K':>5}{'sampled':>9}"
              f"{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}{'edge MiB':>10}")
    print(header, flush=True)
    for mode, agg, n, k in jobs:
        groups = 1 if mode.startswith('legacy') else args.batch
        if groups * n * k > args.max_edges:
            print(f'{mode:<13}{agg:<6}{n:>6}{k:>5}  skipped (edges > '
                  f'--max-edges {args.max_edges:.0e})', flush=True)
            continue
        cmd = [
            sys.executable, __file__, '--single', '--n', str(n), '--k',
            str(k), '--mode', mode, '--aggregation', agg
        ] + common
        env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
        out = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if out.returncode != 0:
            print(f'{mode:<13}{agg:<6}{n:>6}{k:>5}  failed: '
                  f'{out.stderr.strip().splitlines()[-1:]}', flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"{r['mode']:<13}{r['aggregation']:<6}{n:>6}{k:>5}"
              f"{r['sampled']:>9}{r['time_s']:>8.2f}{r['cpu_s']:>8.2f}"
              f"{r['peak_mib']:>10.0f}"
              f"{r['edge_mib']:>10.1f}", flush=True)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(results, f, indent=1)


if __name__ == '__main__':
    main()
