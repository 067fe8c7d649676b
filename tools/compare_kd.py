"""Compare KD methods on the demo benchmark (PointDistiller's Table 3).

Trains the 4x PointPillars demo student without KD, with each baseline KD
method (FitNets, AT, SE-SSD consistency, SP, CRD, OFD, FKD, Hinton KD) and
with PointDistiller, under one shared schedule, evaluates each with the
KITTI metric and writes ``WORK/compare_kd.{md,csv,json,png}``: per class
moderate 3D and BEV AP, mAP and training time per iteration, as mean and
standard deviation over the seeds.

    python tools/compare_kd.py [--quick] [--seeds 0 1 2]
        [--methods nokd fitnets ... pointdistiller] [--epochs E]
        [--work-dir DIR] [--data-root DIR] [--teacher-checkpoint PATH]

Rerunning the same command skips finished runs and resumes interrupted
ones from their last checkpoint. ``--quick`` uses a tiny data set and two
epochs (same code path).
"""
from __future__ import annotations

import argparse
import os.path as osp
import shlex
import sys
import warnings
from typing import Optional, Sequence

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from pointdistiller_mm.demo.compare import (METHOD_KEYS,  # noqa: E402
                                            compare_settings,
                                            run_comparison)
from pointdistiller_mm.demo.stages import StageError  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='4x PointPillars student: no KD, baseline KD methods '
        'and PointDistiller under one schedule')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and 2 epochs')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds of the student runs (mean and std '
                        'over them)')
    parser.add_argument('--methods', nargs='+', choices=METHOD_KEYS,
                        default=list(METHOD_KEYS),
                        help='methods to run (default: all)')
    parser.add_argument('--epochs', type=int,
                        help='epochs of every run (default: the schedule\'s)')
    parser.add_argument('--work-dir', help='default work_dirs/compare_kd '
                        '(work_dirs/compare_kd_quick with --quick)')
    parser.add_argument('--data-root', help='default data/demo_kitti '
                        '(data/demo_kitti_quick with --quick); created when '
                        'its info files are missing')
    parser.add_argument('--teacher-checkpoint',
                        help='teacher to distil from; default: train the '
                        'demo teacher under the same schedule')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    methods = tuple(k for k in METHOD_KEYS if k in args.methods)
    settings = compare_settings(
        quick=args.quick, epochs=args.epochs, work_dir=args.work_dir,
        data_root=args.data_root, seeds=tuple(args.seeds), methods=methods,
        teacher_checkpoint=args.teacher_checkpoint,
        command=' '.join(['python tools/compare_kd.py'] +
                         [shlex.quote(a) for a in shown]))
    try:
        return run_comparison(settings)
    except StageError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
