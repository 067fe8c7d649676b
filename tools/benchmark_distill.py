"""Cost of distillation: student step, teacher forward, distillation step.

    python tools/benchmark_distill.py CONFIG [--iters 10] [--warmup 2]
        [--batch-size 2] [--threads T] [--data-root DIR] [--random-teacher]
        [--kd-sweep | --quick] [--no-steps] [--json OUT]

Part 1 (the training step), on one fixed batch of CONFIG (a Distiller3D
config): the student-only training step, the teacher's forward as the
distiller runs it (up to the last module its recorders read), the teacher's
whole forward and the full distillation step are run in rotating order,
``--warmup`` rounds then ``--iters`` timed rounds; the tool prints their
median / mean wall time, median CPU time and peak memory, and

    overhead_ratio = distill_step / (student_step + teacher_forward)
    full_teacher_ratio = distill_step / (student_step + teacher_full)

(medians): an overhead ratio of 1.00 means the distillation terms cost
nothing beyond running the student and the teacher layers they read; the
second ratio compares the step with running both networks whole. The
paper's target for PointPillars 4x (N 6000, K 128) is an overhead of at
most 1.10.

* Data: by default synthetic KITTI-like scans made in this process (a
  ray-cast HDL-64E on sampled street scenes, front camera view, the config's
  range and classes; about 16-17k points and 4-5k pillars per scan on KITTI's
  range; no augmentation or GT sampling). ``--data-root DIR`` reads the
  first batch of the config's train dataloader from DIR instead (its
  pipeline, augmentations and GT sampling included).
* Batch size: 2 by default (short runs on CPU; the per-sample top-N keeps
  the ratio close to that of larger batches); ``--batch-size 0`` uses the
  config's train batch size.
* Teacher: its checkpoint is loaded when it is a local file or work dir;
  otherwise (the real-KITTI configs name mmdet3d's model-zoo URL) the
  teacher keeps random weights, which gives valid timings but meaningless
  losses; the benchmark never downloads. ``--random-teacher`` forces random
  weights, ``--teacher-checkpoint`` names another file.
* Memory: measured after the timings, one more run per phase. On CPU the
  peak resident set size above the resident size before the phase (with
  glibc's mmap threshold pinned so that freed tensors return to the OS);
  on CUDA ``torch.cuda.max_memory_allocated`` above the allocation before.

Part 2 (``--kd-sweep``, or ``--quick`` for a small grid): the config's
PointDistillerLoss alone, forward + backward on random pillar-like rows
(batch 2, 12,000-16,000 rows per sample), for N in 1000-12000 and K in
16-256, with time, peak memory and peak memory per edge ``B/(N*K)``; and a
check at the paper's N and K that memory does not grow with the number of
rows (voxels) per sample. ``--no-steps`` runs part 2 only.

If the overhead ratio exceeds the target (or with ``--profile always``),
the KD block is profiled on the rows of a real step (``torch.profiler``,
one thread) and its top operators are printed.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import os.path as osp
import platform
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402
from mmengine.config import DictAction  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401  (registers modules, CPU patches)
from pointdistiller_mm.analysis.bench_data import (  # noqa: E402
    batch_summary, dataloader_batch, synthetic_batch)
from pointdistiller_mm.analysis.distill_bench import (  # noqa: E402
    PHASES, StepBenchmark, build_distiller, judged_ratio, overhead_ratio)
from pointdistiller_mm.analysis.kd_block import (  # noqa: E402
    KDBlockCase, kd_table_header, run_kd_cases)
from pointdistiller_mm.analysis.kd_profile import (  # noqa: E402
    capture_kd_inputs, profile_kd_block)
from pointdistiller_mm.analysis.memory import (  # noqa: E402
    memory_method_note, release_freed_memory)
from pointdistiller_mm.utils import (ConfigError,  # noqa: E402
                                     check_cfg_options, load_config,
                                     replace_data_root)

TARGET_RATIO = 1.10
FULL_NS = [1000, 3000, 6000, 12000]
FULL_KS = [16, 32, 64, 128, 256]
QUICK_NS = [500, 1000]
QUICK_KS = [8, 16]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='a Distiller3D config')
    g = p.add_argument_group('training step')
    g.add_argument('--iters', type=int, default=10, help='timed rounds')
    g.add_argument('--warmup', type=int, default=2, help='warm-up rounds')
    g.add_argument('--batch-size', type=int, default=2,
                   help="samples per batch; 0: the config's train batch "
                   'size (default 2)')
    g.add_argument('--data-root',
                   help="read the batch from the config's train dataloader "
                   'on this KITTI-format data root (default: synthetic '
                   'scans made in this process)')
    g.add_argument('--seed', type=int, default=0,
                   help='seed of the synthetic scans and of torch')
    g.add_argument('--random-teacher', action='store_true',
                   help='teacher with random weights (default when its '
                   'checkpoint is not a local file)')
    g.add_argument('--teacher-checkpoint',
                   help='local teacher checkpoint file or work dir')
    g.add_argument('--no-steps', action='store_true',
                   help='skip the training-step benchmark (KD sweep only)')
    g.add_argument('--profile', choices=['auto', 'always', 'never'],
                   default='auto',
                   help='profile the KD block on the rows of a real step: '
                   f'auto = when overhead_ratio > {TARGET_RATIO}')
    g.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value (keys must '
                   'exist)')
    k = p.add_argument_group('KD block sweep')
    k.add_argument('--kd-sweep', '--sweep', action='store_true',
                   dest='kd_sweep',
                   help='also time the KD block alone over N x K')
    k.add_argument('--quick', action='store_true',
                   help=f'KD sweep on a small grid (N {QUICK_NS}, K '
                   f'{QUICK_KS}, 2,000-3,000 rows per sample, 2 repeats)')
    k.add_argument('--ns', type=int, nargs='+',
                   help=f'N values of the sweep (default {FULL_NS})')
    k.add_argument('--ks', type=int, nargs='+',
                   help=f'K values of the sweep (default {FULL_KS})')
    k.add_argument('--kd-batch', type=int, default=2)
    k.add_argument('--kd-rows', type=int, nargs=2, metavar=('MIN', 'MAX'),
                   help='rows per sample (default 12000 16000; --quick '
                   '2000 3000)')
    k.add_argument('--kd-repeat', type=int,
                   help='timed steps per case (default 3; --quick 2)')
    k.add_argument('--kd-term',
                   help='distillation term to sweep (default: the first '
                   'PointDistillerLoss term)')
    k.add_argument('--kd-isolate', action='store_true',
                   help='run every sweep case in a fresh process')
    p.add_argument('--threads', type=int,
                   help="torch threads (default: torch's default, "
                   f'{torch.get_num_threads()} here)')
    p.add_argument('--device', default=None,
                   help='cpu or cuda[:i] (default: cuda when available)')
    p.add_argument('--json', help='also write the results here')
    return p.parse_args(argv)


# --------------------------------------------------------------------- setup
def load(args: argparse.Namespace):
    """The config with the command line's changes."""
    cfg = load_config(args.config)
    if args.cfg_options:
        check_cfg_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    if args.data_root:
        replace_data_root(cfg, args.data_root)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    return cfg


def make_batch(cfg: Any, args: argparse.Namespace,
               batch_size: int) -> Tuple[Dict, str]:
    """The benchmark batch and a description of where it comes from."""
    if args.data_root:
        return (dataloader_batch(cfg, batch_size),
                f"first train batch from {args.data_root} (the config's "
                'pipeline, with its augmentations and GT sampling)')
    return (synthetic_batch(cfg, batch_size, args.seed),
            'synthetic HDL-64E-like scans made in this process (front '
            "camera view, the config's point_cloud_range and classes; no "
            'augmentation, no GT sampling)')


def kd_term(cfg: Any, name: Optional[str]) -> Tuple[str, Dict[str, Any]]:
    """``(name, loss config)`` of the PointDistillerLoss term to sweep: the
    term ``name``, else the first one."""
    terms = cfg.model.get('distill_terms', {})
    pd_terms = [t for t, term in terms.items()
                if term.get('loss', {}).get('type') == 'PointDistillerLoss']
    chosen = name if name in pd_terms else (
        pd_terms[0] if pd_terms and name is None else None)
    if chosen is None:
        what = f"'{name}'" if name else 'term'
        raise ConfigError(
            f'the config has no PointDistillerLoss {what} to sweep '
            f'(distillation terms: {list(terms)}, with PointDistillerLoss: '
            f'{pd_terms}); pass --kd-term NAME')
    loss = terms[chosen]['loss']
    plain = loss.to_dict() if hasattr(loss, 'to_dict') else dict(loss)
    return chosen, json.loads(json.dumps(plain))


# ------------------------------------------------------------ training step
def run_steps(cfg: Any, args: argparse.Namespace, device: str,
              log) -> Dict[str, Any]:
    """Part 1: times and memory of the three phases (plus the profile)."""
    from mmengine.optim import build_optim_wrapper
    batch_size = args.batch_size or int(cfg.train_dataloader.batch_size)
    torch.manual_seed(args.seed)
    try:
        model, teacher = build_distiller(
            cfg, random_teacher=True if args.random_teacher else None,
            checkpoint=args.teacher_checkpoint)
    except (ValueError, FileNotFoundError) as err:
        raise ConfigError(str(err)) from err
    model.to(device)
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    batch, source = make_batch(cfg, args, batch_size)
    bench = StepBenchmark(model, optim, batch, device)
    log(f"teacher:    {'RANDOM weights: ' if teacher['random'] else ''}"
        f"{teacher['reason']}" + ('; timings are valid, loss values are not'
                                  if teacher['random'] else ''))
    log(f'data:       {source}')
    log(f'timing:     {args.warmup} warm-up + {args.iters} timed rounds '
        '(phases in rotating order)')
    times = bench.time(args.warmup, args.iters,
                       report=lambda s: print(s, file=sys.stderr, flush=True))
    stats = bench.batch_stats()
    memory = bench.memory()
    med = {p: times[p]['median_s'] for p in PHASES}
    cpu = {p: times[p]['cpu_median_s'] for p in PHASES}
    result: Dict[str, Any] = dict(
        teacher=teacher,
        data=dict(source='data_root' if args.data_root else 'synthetic',
                  description=source, **batch_summary(batch), **{
                      k: v for k, v in stats.items()
                      if k != 'distill_terms'}),
        distill_terms=stats['distill_terms'],
        warmup=args.warmup, iters=args.iters,
        steps={p: dict(times[p], **memory[p]) for p in PHASES},
        overhead_ratio=overhead_ratio(med['distill_step'],
                                      med['student_step'],
                                      med['teacher_forward']),
        overhead_ratio_mean=overhead_ratio(
            times['distill_step']['mean_s'], times['student_step']['mean_s'],
            times['teacher_forward']['mean_s']),
        overhead_ratio_cpu=overhead_ratio(cpu['distill_step'],
                                          cpu['student_step'],
                                          cpu['teacher_forward']),
        full_teacher_ratio=overhead_ratio(med['distill_step'],
                                          med['student_step'],
                                          med['teacher_full']),
        kd_overhead_s=med['distill_step'] - med['student_step'] -
        med['teacher_forward'],
        memory_method=memory['distill_step']['method'],
        target_ratio=TARGET_RATIO,
        concurrent_teacher=bool(getattr(model, 'concurrent_teacher', False)))
    if args.profile == 'always' or (args.profile == 'auto' and
                                    judged_ratio(result) > TARGET_RATIO):
        result['profile'] = profile_terms(model, batch)
    bench.close()
    return result


def profile_terms(model: Any, batch: Dict) -> Dict[str, Any]:
    """Profile every distillation term on the rows of one real step."""
    captured = capture_kd_inputs(model, batch)
    return {name: profile_kd_block(model.distill_losses[name], kwargs)
            for name, kwargs in captured.items()}


# ------------------------------------------------------------------ KD sweep
def kd_cases(cfg: Any, args: argparse.Namespace,
             device: str) -> Tuple[Dict[str, Any], List[KDBlockCase],
                                   List[KDBlockCase]]:
    """Sweep settings, the N x K cases and the rows-per-sample check."""
    name, loss = kd_term(cfg, args.kd_term)
    cs, ct = int(loss.pop('student_channels')), int(
        loss.pop('teacher_channels'))
    n0, k0 = int(loss.pop('num_samples', 6000)), int(loss.pop('k', 128))
    loss.pop('type', None)
    ns = args.ns or (QUICK_NS if args.quick else FULL_NS)
    ks = args.ks or (QUICK_KS if args.quick else FULL_KS)
    rows = args.kd_rows or ((2000, 3000) if args.quick else (12000, 16000))
    repeat = args.kd_repeat or (2 if args.quick else 3)
    common = dict(mode='config', loss_kwargs=loss, batch=args.kd_batch, cs=cs,
                  ct=ct, repeat=repeat, threads=args.threads, device=device,
                  seed=args.seed)
    grid = [KDBlockCase(n=n, k=k, rows_min=rows[0], rows_max=rows[1],
                        **common) for n in ns for k in ks]
    # memory at the config's N, K must not grow with the rows per sample
    n_chk, k_chk = (min(ns), min(ks)) if args.quick else (n0, k0)
    check = [KDBlockCase(n=n_chk, k=k_chk, rows_min=m, rows_max=m, **common)
             for m in (n_chk * 4 // 3, n_chk * 8 // 3, n_chk * 16 // 3)]
    settings = dict(term=name, student_channels=cs, teacher_channels=ct,
                    config_num_samples=n0, config_k=k0, loss_kwargs=loss,
                    batch=args.kd_batch, rows_per_sample=list(rows),
                    repeat=repeat, isolated=bool(args.kd_isolate))
    return settings, grid, check


def run_sweep(cfg: Any, args: argparse.Namespace, device: str,
              log) -> Dict[str, Any]:
    """Part 2: the KD block alone over N x K, and the rows check."""
    settings, grid, check = kd_cases(cfg, args, device)
    loss = settings['loss_kwargs']
    log('')
    log(f"KD block alone: PointDistillerLoss of term '{settings['term']}' "
        f"(C_S {settings['student_channels']}, C_T "
        f"{settings['teacher_channels']}, "
        + ', '.join(f'{k}={v}' for k, v in loss.items()) + ')')
    log(f"  forward + backward, batch {settings['batch']}, "
        f"{settings['rows_per_sample'][0]}-{settings['rows_per_sample'][1]} "
        f"random rows per sample, median of {settings['repeat']} steps "
        'after 1 cold step; '
        + ('one process per case' if args.kd_isolate else 'in this process'))
    log('  B/(N*K): peak bytes per local-graph edge (sampled rows x K); '
        'edge MiB: one float32 (sampled x K x C_g) tensor, for scale')
    log(kd_table_header())
    results = run_kd_cases(grid, isolate=args.kd_isolate, report=log)
    log('')
    log(f'Rows per sample at N {check[0].n}, K {check[0].k} (peak memory must '
        'stay flat: it grows with N x K, never with N x all voxels)')
    log(kd_table_header())
    rows_check = run_kd_cases(check, isolate=args.kd_isolate, report=log)
    if len(rows_check) > 1:
        lo, hi = rows_check[0], rows_check[-1]
        log(f"  rows per sample x{hi['rows'] / lo['rows']:.1f} -> peak "
            f"memory x{hi['peak_mib'] / max(lo['peak_mib'], 1e-9):.2f}")
    method = (results or rows_check or [{}])[0].get('memory_method', '')
    if method:
        log(f'  memory: {memory_method_note(method)}')
    return dict(settings=settings, results=results, rows_check=rows_check)


# ------------------------------------------------------------------ output
def format_steps(r: Dict[str, Any]) -> List[str]:
    """The training-step table and summary lines."""
    d = r['data']
    lines = [
        f"batch:      {d['batch_size']} samples; per sample "
        f"{d['points_per_sample']:,.0f} points, "
        f"{d.get('voxels_per_sample', float('nan')):,.0f} voxels, "
        f"{d['gt_boxes_per_sample']:.1f} GT boxes"
    ]
    for name, t in r['distill_terms'].items():
        parts = [f"{t['type']}"]
        if 'num_samples' in t:
            parts.append(f"N {t['num_samples']}")
        if 'sampled_per_sample' in t:
            parts.append(f"({t['sampled_per_sample']:,.0f} rows sampled per "
                         'sample)')
        if 'k' in t:
            parts.append(f"K {t['k']}")
        if 'aggregation' in t:
            parts.append(f"aggregation {t['aggregation']}")
        lines.append(f'KD term:    {name}: ' + ' '.join(parts))
    lines += ['', f"{'phase':<20}{'median s':>10}{'mean s':>10}{'min s':>10}"
              f"{'cpu s':>10}{'peak MiB':>10}"]
    for p in PHASES:
        s = r['steps'][p]
        lines.append(f"{p:<20}{s['median_s']:>10.3f}{s['mean_s']:>10.3f}"
                     f"{s['min_s']:>10.3f}{s['cpu_median_s']:>10.3f}"
                     f"{s['peak_mib']:>10.1f}")
    kd_fwd = r['steps']['distill_step'].get('kd_forward_median_s')
    lines.append(f"{'KD overhead':<20}{r['kd_overhead_s']:>10.3f}"
                 f"{'':>30}" + (f'  (distill - student - teacher; KD loss '
                                f'forward alone {kd_fwd:.3f} s)'
                                if kd_fwd is not None else ''))
    met = 'met' if judged_ratio(r) <= r['target_ratio'] else 'NOT met'
    judged = 'CPU time' if r.get('concurrent_teacher') else 'medians'
    mem = {p: r['steps'][p]['peak_mib'] for p in PHASES}
    lines += [
        '',
        f"overhead_ratio = distill_step / (student_step + teacher_forward) "
        f"= {r['overhead_ratio']:.3f}  (target <= {r['target_ratio']:.2f}: "
        f'{met} on {judged}; from means {r["overhead_ratio_mean"]:.3f}, '
        f'from CPU time {r["overhead_ratio_cpu"]:.3f})',
        f"full_teacher_ratio = distill_step / (student_step + teacher_full) "
        f"= {r['full_teacher_ratio']:.3f}  (the teacher's layers after the "
        'last recorded module are skipped in training)',
        f"peak_memory_mib: student_step {mem['student_step']:.1f}, "
        f"teacher_forward {mem['teacher_forward']:.1f}, distill_step "
        f"{mem['distill_step']:.1f} (distill - student "
        f"{mem['distill_step'] - mem['student_step']:+.1f})",
        f"memory:     {memory_method_note(r['memory_method'])}",
    ]
    if r.get('concurrent_teacher'):
        lines.append(
            'concurrent teacher: the distillation step runs the teacher in '
            'a second thread, so its wall time (the medians) uses a second '
            'core; the target is judged on CPU time')
    return lines


def format_profile(profile: Dict[str, Any]) -> List[str]:
    """Top operators of each profiled term."""
    lines = []
    for name, p in profile.items():
        lines += ['', f"KD block profile, term '{name}' (forward + backward "
                  f"on the rows of a real step, {p['threads']} thread, "
                  f"{p['total_s']:.3f} s of op self time):",
                  f"  {'op':<44}{'self s':>9}{'share':>8}{'total s':>9}"
                  f"{'calls':>7}"]
        for op in p['top']:
            lines.append(f"  {op['name'][:44]:<44}{op['self_s']:>9.4f}"
                         f"{100 * op['share']:>7.1f}%{op['total_s']:>9.4f}"
                         f"{op['calls']:>7}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    if args.iters < 1 or args.warmup < 0 or args.batch_size < 0:
        sys.exit('error: --iters must be >= 1, --warmup and --batch-size '
                 '>= 0')
    if args.quick:
        args.kd_sweep = True
    device = args.device or ('cuda' if torch.cuda.is_available() else 'cpu')
    if args.threads:
        torch.set_num_threads(args.threads)

    def log(line: str = '') -> None:
        print(line, flush=True)

    try:
        cfg = load(args)
    except ConfigError as err:
        sys.exit(f'error: {err}')
    result: Dict[str, Any] = dict(
        config=args.config, device=device,
        threads=torch.get_num_threads(), torch=torch.__version__,
        platform=platform.platform())
    log(f'config:     {args.config}')
    log(f'device:     {device}; torch threads: {torch.get_num_threads()}')
    if not args.no_steps:
        try:
            steps = run_steps(cfg, args, device, log)
        except ConfigError as err:
            sys.exit(f'error: {err}')
        result.update(steps)
        for line in format_steps(steps):
            log(line)
        if 'profile' in steps:
            for line in format_profile(steps['profile']):
                log(line)
        gc.collect()
        release_freed_memory()
    if args.kd_sweep:
        try:
            result['kd_sweep'] = run_sweep(cfg, args, device, log)
        except ConfigError as err:
            sys.exit(f'error: {err}')
    if args.json:
        if osp.dirname(args.json):
            os.makedirs(osp.dirname(args.json), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1, default=str)
        log(f'\nwrote {args.json}')
    return result


if __name__ == '__main__':
    main()
