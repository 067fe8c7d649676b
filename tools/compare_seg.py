"""Compare KD methods on the segmentation demo (PVD's Table 1).

Trains the 0.5x Cylinder3D demo student without KD, with each baseline KD
method (KD, CD, IFV, SKD, KA) and with PVD, under one shared schedule,
evaluates each with mmdet3d's SegMetric and writes
``WORK/compare_seg.{md,csv,json}``: mIoU and its change against no KD,
accuracy, per-class IoU and training time per iteration, as mean and
standard deviation over the seeds. The distilled runs use the demo
Cylinder3D teacher (``python tools/train.py configs/demo/cylinder3d_teacher.py
--work-dir work_dirs/demo/cylinder3d_teacher``) or ``--teacher-checkpoint``.

    python tools/compare_seg.py [--quick] [--seeds 0 1 2]
        [--methods nokd kd cd ifv skd ka pvd] [--epochs E]
        [--work-dir DIR] [--data-root DIR] [--teacher-checkpoint PATH]
        [--cfg-options KEY=VALUE ...]

Rerunning the same command skips finished runs and resumes interrupted
ones from their last checkpoint. ``--quick`` uses a tiny data set and one
epoch (same code path).
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

from pointdistiller_mm.demo.compare_seg import (  # noqa: E402
    SEG_METHOD_KEYS, TEACHER_CHECKPOINT, run_seg_comparison,
    seg_compare_settings)
from pointdistiller_mm.demo.stages import StageError  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='0.5x Cylinder3D student: no KD, baseline KD methods '
        'and PVD under one schedule (mIoU per method)')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and 1 epoch')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0],
                        help='seeds of the student runs (mean and std '
                        'over them)')
    parser.add_argument('--methods', nargs='+', choices=SEG_METHOD_KEYS,
                        default=list(SEG_METHOD_KEYS),
                        help='methods to run (default: all)')
    parser.add_argument('--epochs', type=int,
                        help='epochs of every run (default: the schedule\'s)')
    parser.add_argument('--work-dir', help='default work_dirs/compare_seg '
                        '(work_dirs/compare_seg_quick with --quick)')
    parser.add_argument('--data-root', help='default data/demo_semantickitti'
                        ' (data/demo_semantickitti_quick with --quick); '
                        'created when its info files are missing')
    parser.add_argument('--teacher-checkpoint',
                        help='teacher to distil from (a .pth or a work dir); '
                        f'default {TEACHER_CHECKPOINT}')
    parser.add_argument('--cfg-options', nargs='+', default=[],
                        metavar='KEY=VALUE',
                        help='config overrides passed to every run (keys '
                        'must exist in the configs)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    shown = sys.argv[1:] if argv is None else list(argv)
    bad = [o for o in args.cfg_options if '=' not in o]
    if bad:
        sys.exit(f'error: --cfg-options takes KEY=VALUE entries, got {bad}')
    methods = tuple(k for k in SEG_METHOD_KEYS if k in args.methods)
    settings = seg_compare_settings(
        quick=args.quick, epochs=args.epochs, work_dir=args.work_dir,
        data_root=args.data_root, seeds=tuple(args.seeds), methods=methods,
        teacher_checkpoint=args.teacher_checkpoint,
        cfg_options=tuple(args.cfg_options),
        command=' '.join(['python tools/compare_seg.py'] +
                         [shlex.quote(a) for a in shown]))
    try:
        return run_seg_comparison(settings)
    except StageError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
