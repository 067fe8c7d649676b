"""The PointDistiller KD block alone: one ``PointDistillerLoss`` forward +
backward on random pillar-like rows, its time and peak memory.

Rows: ``batch`` samples of ``rows_min`` to ``rows_max`` rows each (a uniform
draw per sample), student ``cs`` / teacher ``ct`` channels of Gaussian
noise, geometric point counts (about a third of the rows with one point) as
importance scores. The loss runs in train mode (BatchNorm statistics move).

Time: one cold step, then the median (and mean) over ``repeat`` steps of the
wall time and of the process CPU time (user + system, all threads; on a
shared machine the steadier figure). Memory: :class:`~pointdistiller_mm.
analysis.memory.PeakMemory` around the first warm step (CPU: peak RSS above
the RSS before it, with glibc's mmap threshold pinned so that freed tensors
go back to the OS). ``bytes_per_edge`` divides that peak by the number of
local-graph edges, (rows sampled over the batch) x K: a block whose memory
grows with N x K keeps it roughly constant as N and K grow, one that
grows with N x (all rows) does not.

:func:`measure_kd_block` runs a case in this process;
:func:`measure_kd_block_isolated` in a fresh ``python -m
pointdistiller_mm.analysis.kd_block CASE_JSON`` process, so that nothing
left by earlier cases is in its memory figure.
"""
from __future__ import annotations

import json
import os
import os.path as osp
import resource
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional

import torch

from .memory import PeakMemory

__all__ = [
    'MODES', 'KDBlockCase', 'mode_kwargs', 'kd_block_rows',
    'measure_kd_block', 'measure_kd_block_isolated', 'run_kd_cases',
    'kd_table_header', 'kd_table_row'
]

#: Named PointDistillerLoss variants of tools/analysis/benchmark_kd_block.py.
MODES: Dict[str, Dict[str, Any]] = {
    # paper form: per-sample top-N, neighbours among the sampled rows
    'cheap': dict(),
    # same computation, dense edge tensor + real conv
    'dense': dict(dense=True),
    # official behaviour (batch-global top-N, KNN over all batch rows)
    'legacy': dict(legacy=True),
    'legacy-dense': dict(legacy=True, dense=True),
}


@dataclass
class KDBlockCase:
    """One KD-block configuration.

    Attributes:
        n: top-N rows per sample (``num_samples``).
        k: graph size K.
        mode: a label for the table (``MODES`` key or ``'config'``).
        loss_kwargs: further ``PointDistillerLoss`` arguments.
        batch: samples B.
        rows_min / rows_max: rows (voxels) per sample.
        cs / ct: student / teacher channels.
        repeat: timed steps.
        threads: torch threads (None: leave as is).
        device: ``'cpu'`` or a CUDA device.
        seed: seed of the random rows.
    """
    n: int
    k: int
    mode: str = 'cheap'
    loss_kwargs: Dict[str, Any] = field(default_factory=dict)
    batch: int = 2
    rows_min: int = 12000
    rows_max: int = 16000
    cs: int = 32
    ct: int = 64
    repeat: int = 3
    threads: Optional[int] = 1
    device: str = 'cpu'
    seed: int = 0

    @property
    def groups(self) -> int:
        """Top-N groups: 1 for the batch-global legacy mode, else B."""
        return 1 if self.loss_kwargs.get('legacy') else self.batch


def mode_kwargs(mode: str, aggregation: str = 'default') -> Dict[str, Any]:
    """``PointDistillerLoss`` arguments of a named mode; ``aggregation``
    ``'default'`` keeps the mode's own."""
    kw = dict(MODES[mode])
    if aggregation != 'default':
        kw['aggregation'] = aggregation
    return kw


def kd_block_rows(case: KDBlockCase) -> Dict[str, Any]:
    """Random rows of a case: ``student`` (leaf, requires grad),
    ``teacher``, ``batch_idx``, ``scores`` and the per-sample ``sizes``."""
    g = torch.Generator().manual_seed(case.seed)
    sizes = torch.randint(case.rows_min, case.rows_max + 1, (case.batch, ),
                          generator=g).tolist()
    m = sum(sizes)
    batch_idx = torch.cat(
        [torch.full((s, ), i, dtype=torch.long) for i, s in enumerate(sizes)])
    # geometric point counts: P(1) = 0.3, mean 3.3 (pillars of a KITTI scan)
    u = torch.rand(m, generator=g).clamp_(min=1e-12)
    scores = torch.floor(torch.log(u) / torch.log(torch.tensor(0.7))) + 1
    dev = torch.device(case.device)
    student = torch.randn(m, case.cs, generator=g).to(dev).requires_grad_()
    teacher = torch.randn(m, case.ct, generator=g).to(dev)
    return dict(student=student, teacher=teacher, batch_idx=batch_idx.to(dev),
                scores=scores.to(dev), sizes=sizes)


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _cpu_time() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _median(values: List[float]) -> float:
    s = sorted(values)
    return s[len(s) // 2]


def measure_kd_block(case: KDBlockCase) -> Dict[str, Any]:
    """Run one case in this process; returns its result dict (see the
    module docstring). Pins glibc's mmap threshold for the rest of the
    process on CPU (:mod:`~pointdistiller_mm.analysis.memory`)."""
    from ..losses import PointDistillerLoss

    threads_before = torch.get_num_threads()
    if case.threads:
        torch.set_num_threads(case.threads)
    try:
        dev = torch.device(case.device)
        rows = kd_block_rows(case)
        loss_fn = PointDistillerLoss(
            case.cs, case.ct, num_samples=case.n, k=case.k,
            **case.loss_kwargs).to(dev).train()
        student = rows['student']

        def step() -> None:
            student.grad = None
            loss_fn.zero_grad(set_to_none=True)
            loss = loss_fn(student, rows['teacher'], rows['batch_idx'],
                           rows['scores'], batch_size=case.batch)
            loss.backward()

        t0 = time.perf_counter()
        step()  # cold: one-time allocations and thread start-up
        _sync(dev)
        cold = time.perf_counter() - t0
        times, cpus = [], []
        peak = PeakMemory(case.device)
        for i in range(max(1, case.repeat)):
            if i == 0:
                peak.__enter__()
            t0, c0 = time.perf_counter(), _cpu_time()
            step()
            _sync(dev)
            times.append(time.perf_counter() - t0)
            cpus.append(_cpu_time() - c0)
            if i == 0:
                peak.__exit__(None, None, None)
    finally:
        torch.set_num_threads(threads_before)
    sizes = rows['sizes']
    m = sum(sizes)
    if case.loss_kwargs.get('legacy'):
        sampled = min(case.n, m)
    else:
        sampled = sum(min(case.n, s) for s in sizes)
    edges = sampled * case.k
    return dict(
        mode=case.mode,
        aggregation=loss_fn.aggregation,
        n=case.n,
        k=case.k,
        batch=case.batch,
        rows=m,
        rows_per_sample=m / max(1, case.batch),
        groups=case.groups,
        sampled=sampled,
        threads=case.threads or threads_before,
        cold_s=cold,
        time_s=_median(times),
        mean_time_s=sum(times) / len(times),
        cpu_s=_median(cpus),
        peak_mib=peak.peak_mib,
        bytes_per_edge=peak.peak_bytes / max(1, edges),
        memory_method=peak.method,
        edge_mib=edges * loss_fn.graph_channels * 4 / 2**20)


def measure_kd_block_isolated(case: KDBlockCase) -> Dict[str, Any]:
    """Run one case in a fresh Python process (see the module docstring)."""
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (repo, env.get('PYTHONPATH')) if p)
    cmd = [sys.executable, '-m', 'pointdistiller_mm.analysis.kd_block',
           json.dumps(asdict(case))]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        tail = out.stderr.strip().splitlines()[-1:] or ['(no message)']
        raise RuntimeError(f'KD block case N {case.n} K {case.k} failed: '
                           f'{tail[0]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_kd_cases(cases: Iterable[KDBlockCase],
                 isolate: bool = False,
                 max_edges: Optional[float] = None,
                 report: Optional[Callable[[str], None]] = None
                 ) -> List[Dict[str, Any]]:
    """Measure the cases one after the other; ``report`` (e.g. ``print``)
    gets one table line per case as it finishes. Cases with more than
    ``max_edges`` B x N x K edges are skipped, failed cases reported and
    left out."""
    results = []
    for case in cases:
        label = f'{case.mode:<13}{case.n:>6}{case.k:>5}'
        if max_edges is not None and \
                case.groups * case.n * case.k > max_edges:
            if report:
                report(f'{label}  skipped (B x N x K > max edges '
                       f'{max_edges:.0e})')
            continue
        try:
            r = (measure_kd_block_isolated(case) if isolate else
                 measure_kd_block(case))
        except RuntimeError as err:
            if report:
                report(f'{label}  failed: {err}')
            continue
        results.append(r)
        if report:
            report(kd_table_row(r))
    return results


def kd_table_header() -> str:
    """Column titles of :func:`kd_table_row`."""
    return (f"{'mode':<13}{'agg':<6}{'N':>6}{'K':>5}{'rows/smp':>9}"
            f"{'sampled':>9}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}"
            f"{'B/(N*K)':>9}{'edge MiB':>10}")


def kd_table_row(r: Dict[str, Any]) -> str:
    """One result as a table line (``B/(N*K)``: peak bytes per edge of the
    sampled rows' local graphs; ``edge MiB``: one float32 (sampled x K x
    C_g) edge tensor, which a dense implementation holds several times)."""
    return (f"{r['mode']:<13}{r['aggregation']:<6}{r['n']:>6}{r['k']:>5}"
            f"{r['rows_per_sample']:>9.0f}{r['sampled']:>9}"
            f"{r['time_s']:>8.3f}{r['cpu_s']:>8.3f}{r['peak_mib']:>10.1f}"
            f"{r['bytes_per_edge']:>9.1f}{r['edge_mib']:>10.1f}")


def _main(argv: List[str]) -> None:
    """``python -m pointdistiller_mm.analysis.kd_block CASE_JSON``: print
    the result of one case as JSON (used by the isolated runner)."""
    import pointdistiller_mm  # noqa: F401  (registers the loss, patches)
    case = KDBlockCase(**json.loads(argv[0]))
    print(json.dumps(measure_kd_block(case)))


if __name__ == '__main__':
    _main(sys.argv[1:])
