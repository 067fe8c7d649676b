"""Sweep one distillation setting on the demo benchmark.

Trains a distillation config once per value of a config key (plus optional
extra runs, e.g. the plain student) under the demo's schedule and seed,
evaluates each with the KITTI metric and writes a table of moderate AP40
(per class 3D / BEV, mAP) to ``WORK/sweep.md`` and ``sweep.json``. Finished
runs with the same config, options and data are reused, so an interrupted
sweep continues where it stopped.

    python tools/analysis/sweep_distill.py \\
        configs/demo/pointpillars_4x_pointdistiller.py \\
        --teacher-checkpoint work_dirs/demo/teacher \\
        --key model.distill_terms.pillars.loss.tau --values 1 10 100 \\
        --run 'phi=1:model.distill_terms.pillars.loss.reweight=False' \\
        --baseline configs/demo/pointpillars_4x_student.py \\
        --work-dir work_dirs/tau_sweep
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import warnings
from typing import List, Optional, Sequence, Tuple

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from pointdistiller_mm.demo import demo_settings  # noqa: E402
from pointdistiller_mm.demo.logs import kitti_summary  # noqa: E402
from pointdistiller_mm.demo.pipeline import Demo  # noqa: E402
from pointdistiller_mm.demo.table import build_row, markdown_table  # noqa


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='distillation config')
    p.add_argument('--teacher-checkpoint', required=True,
                   help='teacher checkpoint file or work dir')
    p.add_argument('--key', help='config key to sweep, e.g. '
                   'model.distill_terms.pillars.loss.tau')
    p.add_argument('--values', nargs='*', default=[],
                   help='values of --key, one run each')
    p.add_argument('--run', action='append', default=[],
                   metavar='NAME:KEY=VAL[,KEY=VAL]',
                   help='an extra run of the config with these options')
    p.add_argument('--baseline', help='a config trained as is (the plain '
                   'student), listed first')
    p.add_argument('--work-dir', default='work_dirs/sweep')
    p.add_argument('--data-root', default='data/demo_kitti')
    p.add_argument('--seed', type=int, default=0)
    return p.parse_args(argv)


def planned_runs(args: argparse.Namespace) -> List[Tuple[str, List[str]]]:
    """``(name, options)`` of every distillation run."""
    runs = []
    if args.values and not args.key:
        raise SystemExit('error: --values needs --key')
    short = (args.key or '').rsplit('.', 1)[-1]
    for v in args.values:
        runs.append((f'{short}={v}', [f'{args.key}={v}']))
    for spec in args.run:
        name, _, opts = spec.partition(':')
        if not opts:
            raise SystemExit(f'error: --run {spec!r}: expected '
                             'NAME:KEY=VAL[,KEY=VAL]')
        runs.append((name, opts.split(',')))
    return runs


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    settings = demo_settings(work_dir=args.work_dir,
                             data_root=args.data_root, seed=args.seed)
    demo = Demo(settings)
    demo.work.mkdir(parents=True, exist_ok=True)
    teacher = f'model.teacher.checkpoint={args.teacher_checkpoint}'
    rows, table = [], []
    todo = [(n, None, o) for n, o in planned_runs(args)]
    if args.baseline:
        todo.insert(0, ('no KD', args.baseline, []))
    for name, config, opts in todo:
        demo.banner(name)
        run_dir = name.replace('=', '_').replace(' ', '_')
        extra = list(opts) if config else [teacher] + list(opts)
        run = demo.train(run_dir, config or args.config, extra=extra,
                         reuse=True)
        ap = kitti_summary(run.final_metrics)
        rows.append(build_row(name, run.config, ap, train_s=run.seconds))
        table.append(dict(name=name, options=extra, ap=ap,
                          seconds=run.seconds, work_dir=run.work_dir))
    md = markdown_table(rows)
    print('\n' + md)
    (demo.work / 'sweep.md').write_text(
        f'Config: `{args.config}`, seed {args.seed}, data '
        f'`{args.data_root}`, moderate AP40 of the last validation.\n\n' +
        md + '\n')
    out = dict(config=args.config, seed=args.seed, runs=table)
    (demo.work / 'sweep.json').write_text(json.dumps(out, indent=2))
    print(f'wrote {demo.work / "sweep.md"} and sweep.json')
    return out


if __name__ == '__main__':
    main()
