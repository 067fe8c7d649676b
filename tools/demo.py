"""PointDistiller demo on synthetic KITTI-format data.

Creates the data set if needed, trains the PointPillars teacher (or reuses
a finished run), trains the 4x student alone and with PointDistiller under
the same schedule and seed, and writes a comparison table
(``WORK/demo_results.md`` / ``.json``) and pictures (``loss_curves.png``,
``map_curves.png``, ``importance_bev.png``) into the work directory.

    python tools/demo.py [--quick] [--work-dir DIR] [--data-root DIR]
        [--seed S] [--retrain-teacher] [--sequential]

The teacher trains on all cores; then the plain and the distilled student,
which need only the teacher, train side by side on half the cores each
(with one thread, the distilled run computes its teacher's forward in a
second thread; ``--sequential``: one after the other on all cores).
``--quick`` runs the same stages on a tiny data set for a couple of epochs
(a few minutes). See README.md for the measured times.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import warnings
from typing import Optional, Sequence

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from pointdistiller_mm.demo import demo_settings, run_demo  # noqa: E402
from pointdistiller_mm.demo.stages import StageError  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Teacher, 4x student and PointDistiller student on '
        'synthetic KITTI-format data')
    parser.add_argument('--quick', action='store_true',
                        help='tiny data and 2 epochs (same code path)')
    parser.add_argument('--work-dir', help='default work_dirs/demo '
                        '(work_dirs/demo_quick with --quick)')
    parser.add_argument('--data-root', help='default data/demo_kitti '
                        '(data/demo_kitti_quick with --quick); created '
                        'when its info files are missing')
    parser.add_argument('--seed', type=int, default=0,
                        help='random seed of all three runs')
    parser.add_argument('--retrain-teacher', action='store_true',
                        help='train the teacher even if a finished run of '
                        'the same config exists')
    parser.add_argument('--sequential', action='store_true',
                        help='train the two students one after the other on '
                        'all cores (default: side by side on half the cores '
                        'each)')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    settings = demo_settings(quick=args.quick, work_dir=args.work_dir,
                             data_root=args.data_root, seed=args.seed,
                             retrain_teacher=args.retrain_teacher,
                             parallel=False if args.sequential else None)
    try:
        return run_demo(settings)
    except StageError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
