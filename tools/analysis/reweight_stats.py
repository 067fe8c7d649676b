"""How peaked PointDistiller's reweighting is for a config's voxelization.

Voxelizes scans of a KITTI-format split with CONFIG's voxel layer (mmcv's
``Voxelization``, training-mode ``max_voxels``), keeps the top-N voxels per
scan by point count and prints, per softmax temperature tau, the mean over
scans of the largest weight phi_max, the share of rows with phi > 1 and the
effective number of rows ``1 / sum(p^2)`` (``p = phi / N``) as a fraction
of N. phi_max near 1 and eff. rows/N near 1 mean little reweighting; a
phi_max in the hundreds means a few voxels get all the weight. The config's
own tau is marked with ``*`` (see
:mod:`pointdistiller_mm.analysis.reweight_stats`).

Example::

    python tools/analysis/reweight_stats.py \\
        configs/demo/pointpillars_4x_pointdistiller.py \\
        --data-root data/demo_kitti --num-scans 16 --taus 1 5 10 100
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import sys
import warnings
from typing import Optional, Sequence

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from pointdistiller_mm.analysis.reweight_stats import (  # noqa: E402
    DEFAULT_TAUS, format_table, reweight_stats)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='detector or Distiller3D config')
    p.add_argument('--data-root', required=True,
                   help='KITTI-format root with kitti_infos_<split>.pkl')
    p.add_argument('--split', default='val',
                   help='info file split (default: val)')
    p.add_argument('--num-scans', type=int, default=16,
                   help='first scans of the split (default: 16; 0: all)')
    p.add_argument('--num-samples', type=int, default=None,
                   help='top-N rows per scan (default: the config\'s '
                   'PointDistillerLoss num_samples, else 6000)')
    p.add_argument('--taus', type=float, nargs='+',
                   default=list(DEFAULT_TAUS),
                   help='softmax temperatures (default: %(default)s)')
    p.add_argument('--per-scan', action='store_true',
                   help='also print one row per scan')
    p.add_argument('--json', default=None, metavar='PATH',
                   help='write the full result as JSON')
    args = p.parse_args(argv)
    if any(t <= 0 for t in args.taus):
        p.error('--taus must be > 0')
    if args.num_samples is not None and args.num_samples <= 0:
        p.error('--num-samples must be > 0')
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    stats = reweight_stats(args.config, args.data_root, split=args.split,
                           num_scans=args.num_scans or None,
                           num_samples=args.num_samples, taus=args.taus)
    print(format_table(stats, per_scan=args.per_scan))
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(stats.to_dict(), f, indent=2)
        print(f'\nwrote {args.json}')


if __name__ == '__main__':
    main()
