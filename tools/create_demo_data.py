"""Generate a synthetic KITTI- or SemanticKITTI-format data set and convert
it with mmdet3d.

``--dataset kitti`` (default) writes simulated HDL-64E scans, KITTI labels,
calibrations and images in the KITTI layout, then runs mmdet3d's own KITTI
converter (info files, ``velodyne_reduced``, GT database), exactly as
``tools/create_data.py kitti --root-path DIR --out-dir DIR --extra-tag kitti``.

``--dataset semantickitti`` writes 360 deg scans with point-wise labels in
the SemanticKITTI layout (``sequences/XX/{velodyne,labels}``) and runs
mmdet3d's own SemanticKITTI converter (``semantickitti_infos_*.pkl``).

``--dataset nuscenes`` writes scenes scanned by a simulated HDL-32E (2 Hz
keyframes plus LiDAR sweeps, ego motion, instance tracks) as nuScenes
v1.0-mini tables and files, then runs mmdet3d's own nuScenes converter
(``nuscenes_infos_{train,val}.pkl``, GT database); ``--num-train`` /
``--num-val`` count scenes there.

Examples::

    python tools/create_demo_data.py --out-dir data/demo_kitti \
        --num-train 64 --num-val 128 --seed 0
    python tools/create_demo_data.py --dataset semantickitti \
        --num-train 40 --num-val 16 --seed 0
    python tools/create_demo_data.py --dataset nuscenes \
        --num-train 6 --num-val 2 --samples-per-scene 10 --seed 0
"""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import time
from typing import Optional, Sequence

try:
    from pointdistiller_mm.datasets.synthetic_kitti import create_demo_kitti
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
    from pointdistiller_mm.datasets.synthetic_kitti import create_demo_kitti

# per --dataset: default --out-dir, --num-train, --num-val, --num-test
DEFAULTS = {
    'kitti': ('data/demo_kitti', 64, 128, 4),
    'semantickitti': ('data/demo_semantickitti', 40, 16, 0),
    'nuscenes': ('data/demo_nuscenes', 6, 2, 0),
}


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Generate a synthetic KITTI- or SemanticKITTI-format '
        "data set and run mmdet3d's converter on it")
    parser.add_argument(
        '--dataset',
        choices=tuple(DEFAULTS),
        default='kitti',
        help='kitti: 3D detection (KITTI layout); semantickitti: point-wise '
        'segmentation (SemanticKITTI layout)')
    parser.add_argument(
        '--out-dir',
        default=None,
        help='default: data/demo_kitti or data/demo_semantickitti')
    parser.add_argument('--num-train',
                        type=int,
                        default=None,
                        help='default: 64 (kitti), 40 (semantickitti)')
    parser.add_argument('--num-val',
                        type=int,
                        default=None,
                        help='default: 128 (kitti), 16 (semantickitti)')
    parser.add_argument(
        '--num-test',
        type=int,
        default=None,
        help='unlabelled frames: kitti testing/ (default 4, mmdet3d needs at '
        'least one); semantickitti test sequences 11-21 (default 0)')
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
    parser.add_argument('--extra-tag',
                        default=None,
                        help='info file prefix (default: the --dataset name)')
    parser.add_argument('--overwrite',
                        action='store_true',
                        help='replace a data set already in --out-dir')
    parser.add_argument('--workers',
                        type=int,
                        default=None,
                        help='--dataset kitti: processes that simulate the '
                        'frames (default: the number of CPUs; the files do '
                        'not depend on it)')
    nus = parser.add_argument_group('--dataset nuscenes')
    nus.add_argument('--samples-per-scene', type=int, default=10,
                     help='keyframes (2 Hz) per scene')
    nus.add_argument('--sweeps-per-sample', type=int, default=9,
                     help='LiDAR sweeps between keyframes (nuScenes: 9, '
                     'a 20 Hz LiDAR)')
    nus.add_argument('--version', default='v1.0-mini',
                     choices=('v1.0-mini', 'v1.0-trainval'),
                     help='table version; scenes take official scene names '
                     "of its train / val split")
    nus.add_argument('--no-images', action='store_true',
                     help='skip the blank camera JPGs')
    args = parser.parse_args(argv)
    out_dir, num_train, num_val, num_test = DEFAULTS[args.dataset]
    for key, value in (('out_dir', out_dir), ('num_train', num_train),
                       ('num_val', num_val), ('num_test', num_test),
                       ('extra_tag', args.dataset)):
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.dataset == 'semantickitti':
        given = [f for f, v in (('--empty-frames', args.empty_frames),
                                ('--image-mode',
                                 args.image_mode != 'points')) if v]
        if given:
            parser.error(f'{", ".join(given)} only apply to --dataset kitti')
    if args.dataset == 'nuscenes':
        given = [f for f, v in (('--empty-frames', args.empty_frames),
                                ('--image-mode',
                                 args.image_mode != 'points'),
                                ('--num-test', args.num_test)) if v]
        if given:
            parser.error(f'{", ".join(given)} do not apply to --dataset '
                         'nuscenes')
    return args


def main_nuscenes(args: argparse.Namespace) -> dict:
    """``--dataset nuscenes``: generate, convert, print a summary."""
    from pointdistiller_mm.datasets.synthetic_nuscenes import \
        create_demo_nuscenes
    t0 = time.perf_counter()
    res = create_demo_nuscenes(out_dir=args.out_dir,
                               num_train_scenes=args.num_train,
                               num_val_scenes=args.num_val,
                               samples_per_scene=args.samples_per_scene,
                               sweeps_per_sample=args.sweeps_per_sample,
                               seed=args.seed,
                               version=args.version,
                               images=not args.no_images,
                               convert=not args.no_convert,
                               info_prefix=args.extra_tag,
                               overwrite=args.overwrite)
    total = time.perf_counter() - t0
    print('\n=== synthetic nuScenes data set ===')
    print(f"root:             {res['out_dir']} ({res['version']})")
    print(f"scenes:           {res['num_train_scenes']} train, "
          f"{res['num_val_scenes']} val; {res['num_samples']} samples, "
          f"{res['num_sweeps']} sweeps (seed {args.seed})")
    print(f"points per scan:  {res['points_key']:.0f} (keyframes), "
          f"{res['points_sweep']:.0f} (sweeps)")
    print(f"annotations:      {res['num_annotations']}; boxes with points "
          'per sample:')
    for name, n in res['boxes_per_sample'].items():
        print(f'  {name:<22}{n:6.2f}')
    for key in ('infos_train', 'infos_val', 'dbinfos_train', 'gt_database'):
        if key in res:
            print(f'{key + ":":<18}{res[key]}')
    print(f"time:             {res['seconds_generate']:.1f} s generate, "
          f"{res.get('seconds_convert', 0.0):.1f} s convert, "
          f'{total:.1f} s total')
    return res


def main_semantickitti(args: argparse.Namespace) -> dict:
    """``--dataset semantickitti``: generate, convert, print a summary."""
    from pointdistiller_mm.datasets.synthetic_semantickitti import \
        create_demo_semantickitti
    t0 = time.perf_counter()
    res = create_demo_semantickitti(out_dir=args.out_dir,
                                    num_train=args.num_train,
                                    num_val=args.num_val,
                                    seed=args.seed,
                                    num_test=args.num_test,
                                    convert=not args.no_convert,
                                    info_prefix=args.extra_tag,
                                    overwrite=args.overwrite)
    total = time.perf_counter() - t0
    seqs = {
        k: ' '.join(f'{s:02d}' for s in v)
        for k, v in res['sequences'].items()
    }
    print('\n=== synthetic SemanticKITTI data set ===')
    print(f"root:            {res['out_dir']}")
    print(f"frames:          {res['num_train']} train (sequences "
          f"{seqs['train']}), {res['num_val']} val ({seqs['val']}), "
          f"{res['num_test']} test ({seqs['test'] or '-'}) "
          f'(seed {args.seed})')
    print(f"points per scan: {res['mean_points']:.0f} (360 deg)")
    print('points per class (train + val, raw SemanticKITTI labels):')
    for name, n in sorted(res['class_points'].items(),
                          key=lambda kv: -kv[1]):
        print(f"  {name:<14}{n:>12d}  {100 * res['class_share'][name]:7.3f} %")
    for key in ('infos_train', 'infos_val', 'infos_test'):
        if key in res:
            print(f'{key + ":":<17}{res[key]}')
    print(f"time:            {res['seconds_generate']:.1f} s generate, "
          f"{res.get('seconds_convert', 0.0):.1f} s convert, "
          f'{total:.1f} s total')
    return res


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    if args.dataset == 'semantickitti':
        return main_semantickitti(args)
    if args.dataset == 'nuscenes':
        return main_nuscenes(args)
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
                            overwrite=args.overwrite,
                            workers=args.workers or os.cpu_count() or 1)
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
