"""Generate a synthetic KITTI-format data set and convert it with mmdet3d.

Writes simulated HDL-64E scans, KITTI labels, calibrations and images in the
KITTI layout, then runs mmdet3d's own KITTI converter (info files,
``velodyne_reduced``, GT database), exactly as
``tools/create_data.py kitti --root-path DIR --out-dir DIR --extra-tag kitti``.

Example::

    python tools/create_demo_data.py --out-dir data/demo_kitti \
        --num-train 64 --num-val 128 --seed 0
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
import time
from typing import Optional, Sequence

try:
    from pointdistiller_mm.datasets.synthetic_kitti import create_demo_kitti
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from pointdistiller_mm.datasets.synthetic_kitti import create_demo_kitti


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic KITTI-format data set and run '
        "mmdet3d's KITTI converter on it")
    parser.add_argument('--out-dir', default='data/demo_kitti')
    parser.add_argument('--num-train', type=int, default=64)
    parser.add_argument('--num-val', type=int, default=128)
    parser.add_argument(
        '--num-test',
        type=int,
        default=4,
        help='unlabelled testing/ frames (mmdet3d needs at least one)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--empty-frames',
        type=int,
        nargs='*',
        default=(),
        help='training-folder frame ids written with zero points')
    parser.add_argument(
        '--image-mode',
        choices=('points', 'blank'),
        default='points',
        help='image_2 content: projected points or a black image')
    parser.add_argument(
        '--no-convert',
        action='store_true',
        help="only write the KITTI files, skip mmdet3d's converter")
    parser.add_argument('--extra-tag', default='kitti')
    parser.add_argument('--overwrite',
                        action='store_true',
                        help='replace a data set already in --out-dir')
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    res = create_demo_kitti(out_dir=args.out_dir,
                            num_train=args.num_train,
                            num_val=args.num_val,
                            seed=args.seed,
                            num_test=args.num_test,
                            empty_frames=args.empty_frames,
                            image_mode=args.image_mode,
                            convert=not args.no_convert,
                            info_prefix=args.extra_tag,
                            overwrite=args.overwrite)
    total = time.perf_counter() - t0
    labels = ', '.join(f'{k} {v}' for k, v in res['labels'].items())
    print('\n=== synthetic KITTI data set ===')
    print(f"root:           {res['out_dir']}")
    print(f"frames:         {res['num_train']} train, {res['num_val']} val, "
          f"{res['num_test']} test (seed {args.seed})")
    print(f'labels (train+val): {labels}')
    front = res.get('mean_points_front')
    print(f"points per scan: {res['mean_points']:.0f} (360 deg)" +
          (f', {front:.0f} (camera view, velodyne_reduced)' if front else ''))
    if 'infos_train' in res:
        for key in ('infos_train', 'infos_val', 'infos_trainval', 'infos_test',
                    'dbinfos_train', 'gt_database', 'velodyne_reduced'):
            print(f'{key + ":":<16}{res[key]}')
    print(f"time:           {res['seconds_generate']:.1f} s generate, "
          f"{res.get('seconds_convert', 0.0):.1f} s convert, "
          f'{total:.1f} s total')
    return res


if __name__ == '__main__':
    main()
