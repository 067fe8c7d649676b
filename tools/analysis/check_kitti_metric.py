"""Feed a KITTI-format data set's GT boxes back to mmdet3d's ``KittiMetric``
as predictions and print the moderate 3D AP40 per class.

Columns: moderate GT objects, AP40 on the split as is, the most the KITTI
devkit can give with that many GT objects (``(N - 1) / 40`` for N <= 40),
and AP40 with the frames repeated until every class has >= 41 moderate GT
(see :mod:`pointdistiller_mm.analysis.metric_check`). Exits with status 1
when a class with moderate GT stays below ``--min-ap`` after repetition.

Example::

    python tools/analysis/check_kitti_metric.py --data-root data/demo_kitti \
        --shift 0.01
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import List, Optional, Sequence

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..', '..'))

from pointdistiller_mm.analysis.metric_check import (  # noqa: E402
    KITTI_EVAL_CLASSES, ClassCheck, check_kitti_metric)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--data-root', required=True,
                        help='folder with kitti_infos_<split>.pkl')
    parser.add_argument('--split', default='val',
                        help='info file split (default: val)')
    parser.add_argument('--info-prefix', default='kitti')
    parser.add_argument('--shift', type=float, default=0.01,
                        help='metres added to predicted LiDAR x and y '
                        '(identical boxes hit a coincident-edge case of the '
                        'rotated IoU; default 0.01)')
    parser.add_argument('--classes', nargs='+',
                        default=list(KITTI_EVAL_CLASSES))
    parser.add_argument('--repeat', type=int, default=None,
                        help='repetitions of the frames for the last column '
                        '(default: enough for >= 41 moderate GT per class)')
    parser.add_argument('--min-ap', type=float, default=99.0,
                        help='fail below this repeated AP40 (default 99)')
    return parser.parse_args(argv)


def format_table(rows: List[ClassCheck]) -> str:
    """The result as a plain-text table."""
    rep = rows[0].repeat if rows else 1
    head = (f'{"class":<12}{"mod. GT":>8}{"AP40 3D":>10}{"cap":>8}'
            f'{f"x{rep} AP40 3D":>14}')
    lines = [head, '-' * len(head)]
    for r in rows:
        cap = '-' if r.num_moderate_gt == 0 else f'{r.ap40_cap:.2f}'
        lines.append(f'{r.name:<12}{r.num_moderate_gt:>8}{r.ap40:>10.2f}'
                     f'{cap:>8}{r.ap40_repeated:>14.2f}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    info = osp.join(args.data_root,
                    f'{args.info_prefix}_infos_{args.split}.pkl')
    rows = check_kitti_metric(info, shift=args.shift, classes=args.classes,
                              repeat=args.repeat)
    print(f'{info}: GT as predictions, shift {args.shift} m, '
          'moderate AP40 (strict IoU)')
    print(format_table(rows))
    bad = [r.name for r in rows
           if r.num_moderate_gt > 0 and r.ap40_repeated < args.min_ap]
    if bad:
        print(f'below {args.min_ap}: {", ".join(bad)}')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
