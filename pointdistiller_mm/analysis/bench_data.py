"""Training batches for benchmarks: synthetic KITTI-like scans made in this
process, or the first batch of a config's train dataloader.

Synthetic scans come from :mod:`pointdistiller_mm.datasets` (an HDL-64E
ray-casting simulator on sampled street scenes, real KITTI calibration).
Each is cut as the KITTI models see it: the front camera's view
(``velodyne_reduced``), the config's ``point_cloud_range`` (points and box
centres, as ``PointsRangeFilter`` / ``ObjectRangeFilter``), boxes of the
config's classes only. No augmentation and no GT sampling: the batch is
what a plain scan gives (about 17k points and, on KITTI's range, about 4k
pillars per scan). Both sources return the dataloader's format,
``dict(inputs=dict(points=[...]), data_samples=[Det3DDataSample, ...])``.
"""
from __future__ import annotations

import copy
from typing import Any, Dict, List, Sequence

import numpy as np
import torch

__all__ = ['synthetic_scan_sample', 'synthetic_batch', 'dataloader_batch',
           'batch_summary']


def synthetic_scan_sample(rng: np.random.Generator,
                          class_names: Sequence[str],
                          point_cloud_range: Sequence[float],
                          simulator: Any = None,
                          calib: Any = None,
                          sample_idx: int = 0) -> Dict[str, Any]:
    """One synthetic front-view scan with its boxes.

    Returns:
        dict: ``points`` (P, 4) float32 tensor (x, y, z, intensity) and
        ``data_sample`` (``Det3DDataSample`` with ``gt_instances_3d``).
    """
    from mmdet3d.structures import (Box3DMode, Det3DDataSample,
                                    LiDARInstance3DBoxes)
    from mmengine.structures import InstanceData

    from ..datasets import KittiCalibration, LidarSimulator, simulate_frame
    calib = calib or KittiCalibration()
    scene, scan, labels = simulate_frame(
        rng, calib=calib, simulator=simulator or LidarSimulator())
    x0, y0, z0, x1, y1, z1 = [float(v) for v in point_cloud_range]
    pts = scan.points
    keep = calib.in_image(pts[:, :3]) if len(pts) else np.zeros(0, bool)
    pts = pts[keep]
    keep = ((pts[:, 0] > x0) & (pts[:, 1] > y0) & (pts[:, 2] > z0) &
            (pts[:, 0] < x1) & (pts[:, 1] < y1) & (pts[:, 2] < z1))
    pts = np.ascontiguousarray(pts[keep], dtype=np.float32)

    labelled = {lab.owner for lab in labels if lab.name != 'DontCare'}
    boxes, classes = [], []
    for obj in scene.objects:
        if obj.owner not in labelled or obj.name not in class_names:
            continue
        x, y = float(obj.box[0]), float(obj.box[1])
        if not (x0 < x < x1 and y0 < y < y1):
            continue
        boxes.append(np.asarray(obj.box, dtype=np.float32))
        classes.append(list(class_names).index(obj.name))
    box_t = torch.from_numpy(np.stack(boxes)) if boxes else torch.zeros(
        (0, 7))
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(box_t, box_dim=7)
    gt.bboxes_3d.limit_yaw(offset=0.5, period=2 * np.pi)
    gt.labels_3d = torch.tensor(classes, dtype=torch.long)
    sample = Det3DDataSample(metainfo=dict(
        sample_idx=sample_idx, box_type_3d=LiDARInstance3DBoxes,
        box_mode_3d=Box3DMode.LIDAR, num_pts_feats=4))
    sample.gt_instances_3d = gt
    return dict(points=torch.from_numpy(pts), data_sample=sample)


def _class_names(cfg: Any) -> List[str]:
    names = cfg.get('class_names') or cfg.get('metainfo', {}).get('classes')
    if not names:
        raise ValueError('the config defines neither class_names nor '
                         'metainfo.classes')
    return list(names)


def _point_cloud_range(cfg: Any) -> List[float]:
    pcr = cfg.get('point_cloud_range')
    if pcr is None:
        model = cfg.model.get('student', cfg.model)
        pcr = model['data_preprocessor']['voxel_layer']['point_cloud_range']
    return [float(v) for v in pcr]


def synthetic_batch(cfg: Any, batch_size: int, seed: int = 0) -> Dict:
    """A batch of ``batch_size`` synthetic scans cut for ``cfg`` (sample
    ``i`` depends only on ``(seed, i)``)."""
    from ..datasets import KittiCalibration, LidarSimulator
    sim, calib = LidarSimulator(), KittiCalibration()
    names, pcr = _class_names(cfg), _point_cloud_range(cfg)
    samples = [
        synthetic_scan_sample(
            np.random.default_rng(np.random.SeedSequence([seed, i])), names,
            pcr, sim, calib, sample_idx=i) for i in range(batch_size)
    ]
    return dict(inputs=dict(points=[s['points'] for s in samples]),
                data_samples=[s['data_sample'] for s in samples])


def dataloader_batch(cfg: Any, batch_size: int) -> Dict:
    """The first batch of ``cfg.train_dataloader`` (its pipeline, random
    augmentations and GT sampling included), ``batch_size`` samples, read in
    this process."""
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(batch_size=batch_size, num_workers=0,
                      persistent_workers=False)
    loader_cfg.pop('prefetch_factor', None)
    return next(iter(Runner.build_dataloader(loader_cfg, seed=0)))


def batch_summary(batch: Dict) -> Dict[str, float]:
    """Mean points and ground-truth boxes per sample of a batch."""
    points = batch['inputs']['points']
    samples = batch['data_samples']
    boxes = [len(s.gt_instances_3d.labels_3d) for s in samples]
    return dict(batch_size=len(points),
                points_per_sample=float(np.mean([len(p) for p in points])),
                gt_boxes_per_sample=float(np.mean(boxes)))
