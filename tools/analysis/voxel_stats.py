"""Per-voxel point statistics of KITTI-format scans, beside real KITTI.

Voxelizes the ``training/velodyne_reduced`` scans (front camera view, as the
models read them) of a split with mmcv's ``Voxelization`` op, using the stock
PointPillars and SECOND KITTI settings, and prints the number of voxels, the
share of voxels holding one point and at most two points, and the mean number
of points per voxel, next to the figures of a real KITTI frame.

Example::

    python tools/analysis/voxel_stats.py data/demo_kitti --split val --num 16
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class VoxelSetting:
    """A hard-voxelization setting as in an mmdet3d model config."""
    name: str
    voxel_size: Sequence[float]
    point_cloud_range: Sequence[float]
    max_num_points: int
    max_voxels: int


SETTINGS = (
    VoxelSetting('PointPillars 0.16x0.16x4', (0.16, 0.16, 4.0),
                 (0.0, -39.68, -3.0, 69.12, 39.68, 1.0), 32, 40000),
    VoxelSetting('SECOND 0.05x0.05x0.1', (0.05, 0.05, 0.1),
                 (0.0, -40.0, -3.0, 70.4, 40.0, 1.0), 5, 40000),
)

# One real KITTI frame (front camera view, 17,238 points).
REAL_KITTI = {
    'points':
    17238,
    'PointPillars 0.16x0.16x4':
    dict(voxels=3945, share_1=0.37, share_le2=0.55, mean=3.98),
    'SECOND 0.05x0.05x0.1':
    dict(voxels=13092, share_1=0.80, share_le2=0.94, mean=1.28),
}


def voxel_stats(points: np.ndarray, setting: VoxelSetting) -> Dict[str, float]:
    """Voxel count, share of 1-point and <=2-point voxels, mean points per
    voxel of one scan under ``setting`` (mmcv hard voxelization, CPU)."""
    from mmcv.ops import Voxelization
    layer = Voxelization(voxel_size=list(setting.voxel_size),
                         point_cloud_range=list(setting.point_cloud_range),
                         max_num_points=setting.max_num_points,
                         max_voxels=setting.max_voxels).eval()
    if len(points) == 0:
        return dict(voxels=0, share_1=0.0, share_le2=0.0, mean=0.0)
    with torch.no_grad():
        _, _, num = layer(torch.from_numpy(np.ascontiguousarray(points)))
    num = num.numpy()
    if len(num) == 0:
        return dict(voxels=0, share_1=0.0, share_le2=0.0, mean=0.0)
    return dict(voxels=int(len(num)),
                share_1=float((num == 1).mean()),
                share_le2=float((num <= 2).mean()),
                mean=float(num.mean()))


def split_ids(data_dir: Path, split: str) -> List[int]:
    """Frame ids listed in ``ImageSets/<split>.txt``."""
    lines = (data_dir / 'ImageSets' / f'{split}.txt').read_text().split()
    return [int(x) for x in lines]


def dataset_voxel_stats(
        data_dir: str,
        split: str = 'val',
        num: Optional[int] = None,
        folder: str = 'training/velodyne_reduced') -> Dict[str, object]:
    """Mean per-scan figures over the first ``num`` frames of ``split``.

    Scans with no points are counted in ``empty_scans`` and left out of the
    means.
    """
    root = Path(data_dir)
    ids = split_ids(root, split)[:num]
    if not ids:
        raise ValueError(f'no frames in {root}/ImageSets/{split}.txt')
    per: Dict[str, List[Dict[str, float]]] = {s.name: [] for s in SETTINGS}
    n_points: List[int] = []
    empty = 0
    for i in ids:
        path = root / folder / f'{i:06d}.bin'
        if not path.exists():
            raise FileNotFoundError(
                f'{path} is missing; run mmdet3d\'s KITTI converter (or '
                'tools/create_demo_data.py) first')
        pts = np.fromfile(str(path), dtype=np.float32).reshape(-1, 4)
        if len(pts) == 0:
            empty += 1
            continue
        n_points.append(len(pts))
        for s in SETTINGS:
            per[s.name].append(voxel_stats(pts, s))
    out: Dict[str, object] = dict(
        frames=len(ids),
        empty_scans=empty,
        points=float(np.mean(n_points)) if n_points else 0.0)
    for name, rows in per.items():
        out[name] = {
            k: float(np.mean([r[k] for r in rows])) if rows else 0.0
            for k in ('voxels', 'share_1', 'share_le2', 'mean')
        }
    return out


def format_table(stats: Dict[str, object]) -> str:
    """Synthetic figures beside the real KITTI frame, with relative gaps."""
    lines = [
        f"{'figure':<44}{'synthetic':>12}{'real KITTI':>12}{'diff':>9}",
        '-' * 77
    ]

    def row(label: str, syn: float, real: float, share: bool) -> None:
        if share:
            diff = f'{100 * (syn - real):+.1f}pt'
            lines.append(f'{label:<44}{syn:>12.2f}{real:>12.2f}{diff:>9}')
        else:
            diff = f'{100 * (syn / real - 1):+.0f}%'
            lines.append(f'{label:<44}{syn:>12.2f}{real:>12.2f}{diff:>9}')

    row('points per front-view scan', float(stats['points']),
        REAL_KITTI['points'], False)
    for s in SETTINGS:
        syn, real = stats[s.name], REAL_KITTI[s.name]
        row(f'{s.name}: voxels', syn['voxels'], real['voxels'], False)
        row(f'{s.name}: share with 1 point', syn['share_1'], real['share_1'],
            True)
        row(f'{s.name}: share with <=2 points', syn['share_le2'],
            real['share_le2'], True)
        row(f'{s.name}: mean points per voxel', syn['mean'], real['mean'],
            False)
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('data_dir', help='KITTI-format data root')
    parser.add_argument('--split', default='val', help='ImageSets split')
    parser.add_argument('--num',
                        type=int,
                        default=None,
                        help='first N frames only')
    parser.add_argument('--folder',
                        default='training/velodyne_reduced',
                        help='scan folder under the data root')
    args = parser.parse_args(argv)
    stats = dataset_voxel_stats(args.data_dir, args.split, args.num,
                                args.folder)
    print(f"{stats['frames']} frames of '{args.split}' from "
          f'{args.data_dir}/{args.folder} (means per scan; '
          f"{stats['empty_scans']} empty scans left out)")
    print(format_table(stats))


if __name__ == '__main__':
    main()
