"""Sanity check of mmdet3d's ``KittiMetric`` on a KITTI-format info file:
the ground-truth boxes are fed back as predictions (score 1), optionally
shifted in x and y, and the moderate AP40 per class is read off.

Perfect predictions do not always give 100. The KITTI devkit's AP (ported
unchanged to ``mmdet3d/evaluation/functional/kitti_utils/eval.py``) picks
score thresholds with ``get_thresholds``, which adds at most one threshold
per true positive, and writes the precision at the ``i``-th threshold into
recall sample point ``i`` of 41. A class with ``N <= 40`` valid (here:
moderate) GT objects therefore fills only ``N`` of the 41 points, and even a
perfect detector scores ``AP40 = (N - 1) / 40`` (AP11: ``ceil(N / 4) / 11``).
:func:`ap40_cap` gives that ceiling; :func:`check_kitti_metric` also
evaluates the frames repeated until every class has at least 41 moderate GT
objects, which lifts the ceiling without changing precision or recall.

Example::

    from pointdistiller_mm.analysis.metric_check import check_kitti_metric
    for row in check_kitti_metric('data/demo_kitti/kitti_infos_val.pkl',
                                  shift=0.01):
        print(row)
"""
from __future__ import annotations

import contextlib
import copy
import logging
import math
import os
import pickle
import tempfile
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Sequence
from unittest import mock

import numpy as np
import torch

__all__ = [
    'KITTI_EVAL_CLASSES', 'NUM_SAMPLE_PTS', 'ClassCheck', 'ap40_cap',
    'moderate_gt_counts', 'gt_as_predictions', 'evaluate_gt_as_predictions',
    'check_kitti_metric'
]

#: The classes mmdet3d's ``kitti_eval`` knows, in the KITTI label order.
KITTI_EVAL_CLASSES = ('Pedestrian', 'Cyclist', 'Car')
#: Recall sample points of the KITTI devkit (AP40 uses points 1..40).
NUM_SAMPLE_PTS = 41
#: ``pcd_limit_range`` of mmdet3d's KITTI configs.
KITTI_PCD_LIMIT_RANGE = (0.0, -40.0, -3.0, 70.4, 40.0, 0.0)
# Moderate difficulty in kitti_utils/eval.py ``clean_data``.
_MODERATE = dict(max_occluded=1, max_truncated=0.3, min_height=25.0)


@dataclass
class ClassCheck:
    """Moderate 3D AP40 (strict IoU) of one class with GT as predictions.

    Attributes:
        name: Class name.
        num_moderate_gt: Moderate GT objects of the class in the info file.
        ap40: AP40 on the info file as it is.
        ap40_cap: The most any detector can score with ``num_moderate_gt``
            GT objects (:func:`ap40_cap`); NaN without GT.
        ap40_repeated: AP40 with the frames repeated ``repeat`` times.
        repeat: How often the frames were repeated for ``ap40_repeated``.
    """
    name: str
    num_moderate_gt: int
    ap40: float
    ap40_cap: float
    ap40_repeated: float
    repeat: int


def ap40_cap(num_gt: int) -> float:
    """Highest moderate AP40 (in %) the KITTI devkit can give a class with
    ``num_gt`` valid GT objects: ``get_thresholds`` yields at most
    ``min(num_gt, 41)`` thresholds and AP40 averages sample points 1..40.
    NaN for ``num_gt == 0``."""
    if num_gt <= 0:
        return float('nan')
    return 100.0 * (min(int(num_gt), NUM_SAMPLE_PTS) - 1) / (
        NUM_SAMPLE_PTS - 1)


def _label2cat(info_data: dict) -> Dict[int, str]:
    return {v: k for k, v in info_data['metainfo']['categories'].items()}


def moderate_gt_counts(info_data: dict,
                       classes: Sequence[str] = KITTI_EVAL_CLASSES
                       ) -> Dict[str, int]:
    """Number of GT objects per class that ``kitti_eval`` counts at moderate
    difficulty (occluded <= 1, truncated <= 0.3, 2D box height > 25 px), from
    the ``bbox_label`` / ``bbox`` fields of an info file's instances."""
    label2cat = _label2cat(info_data)
    counts = {c: 0 for c in classes}
    for info in info_data['data_list']:
        for ins in info['instances']:
            name = label2cat.get(ins['bbox_label'])
            height = ins['bbox'][3] - ins['bbox'][1]
            if (name in counts and ins['occluded'] <= _MODERATE['max_occluded']
                    and ins['truncated'] <= _MODERATE['max_truncated']
                    and height > _MODERATE['min_height']):
                counts[name] += 1
    return counts


def gt_as_predictions(info_data: dict,
                      classes: Sequence[str] = KITTI_EVAL_CLASSES,
                      shift: float = 0.0) -> List[dict]:
    """``KittiMetric.process`` samples that predict every GT box of
    ``classes`` (score 1, label = index in ``classes``).

    Boxes go from the camera frame of the labels to the LiDAR frame with the
    frame's ``CAM2`` ``lidar2cam``, as a LiDAR detector would output them;
    ``shift`` (m) is added to their LiDAR x and y (identical boxes hit a
    coincident-edge case of the rotated IoU). ``sample_idx`` is the position
    in ``data_list``, which is how ``KittiMetric`` indexes its GT.
    """
    from mmdet3d.structures import (Box3DMode, CameraInstance3DBoxes,
                                    LiDARInstance3DBoxes)
    label2cat = _label2cat(info_data)
    index = {c: i for i, c in enumerate(classes)}
    samples = []
    for pos, info in enumerate(info_data['data_list']):
        ins = [
            i for i in info['instances']
            if label2cat.get(i['bbox_label_3d']) in index
        ]
        if ins:
            l2c = np.array(info['images']['CAM2']['lidar2cam'],
                           dtype=np.float32)
            cam = CameraInstance3DBoxes(
                np.array([i['bbox_3d'] for i in ins], dtype=np.float32))
            boxes = cam.convert_to(Box3DMode.LIDAR, np.linalg.inv(l2c))
            boxes.tensor[:, :2] += float(shift)
        else:
            boxes = LiDARInstance3DBoxes(torch.zeros(0, 7))
        labels = torch.tensor(
            [index[label2cat[i['bbox_label_3d']]] for i in ins],
            dtype=torch.long)
        pred = dict(bboxes_3d=boxes,
                    scores_3d=torch.ones(len(ins)),
                    labels_3d=labels)
        samples.append(
            dict(pred_instances_3d=pred, pred_instances=dict(),
                 sample_idx=pos))
    return samples


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence ``KittiMetric``'s prints, progress bar and result table."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        # the progress bar holds the sys.stdout of import time
        with open(os.devnull, 'w') as devnull, \
                contextlib.redirect_stdout(devnull), \
                mock.patch('mmengine.track_iter_progress',
                           lambda tasks, *args, **kwargs: tasks):
            yield
    finally:
        logger.setLevel(level)


def evaluate_gt_as_predictions(
        info_file: str,
        shift: float = 0.0,
        classes: Sequence[str] = KITTI_EVAL_CLASSES,
        repeat: int = 1,
        pcd_limit_range: Sequence[float] = KITTI_PCD_LIMIT_RANGE,
        verbose: bool = False) -> Dict[str, Dict[str, float]]:
    """Run ``KittiMetric`` with the GT of ``info_file`` as predictions.

    Args:
        info_file: A ``kitti_infos_*.pkl`` (mmdet3d v2 info format).
        shift: Metres added to the predicted boxes' LiDAR x and y.
        classes: Classes to evaluate (a subset of
            :data:`KITTI_EVAL_CLASSES`).
        repeat: Evaluate the frames repeated this many times (GT and
            predictions alike; see the module docstring).
        pcd_limit_range: ``KittiMetric``'s range filter of the predictions.
        verbose: Let ``KittiMetric`` print its progress and result table.

    Returns:
        ``{class: {'3D': ap, 'BEV': ap, '2D': ap}}``: moderate AP40 in %
        at the strict IoU thresholds (0.7 car, 0.5 pedestrian / cyclist).
    """
    import pointdistiller_mm  # noqa: F401  stack and CPU patches
    from mmdet3d.evaluation.metrics import KittiMetric
    with open(info_file, 'rb') as f:
        data = pickle.load(f)
    if repeat < 1:
        raise ValueError(f'repeat must be >= 1, got {repeat}')
    data['data_list'] = [
        copy.deepcopy(info) for _ in range(int(repeat))
        for info in data['data_list']
    ]
    with tempfile.TemporaryDirectory() as tmp:
        # KittiMetric reads its GT from a file and indexes it by sample_idx
        ann_file = os.path.join(tmp, 'infos.pkl')
        with open(ann_file, 'wb') as f:
            pickle.dump(data, f)
        metric = KittiMetric(ann_file=ann_file,
                             metric='bbox',
                             pcd_limit_range=list(pcd_limit_range))
        metric.dataset_meta = dict(classes=list(classes))
        metric.process([], gt_as_predictions(data, classes, shift))
        quiet = contextlib.nullcontext() if verbose else _quiet()
        with quiet:
            res = metric.compute_metrics(metric.results)
    prefix = 'pred_instances_3d/KITTI'
    return {
        c: {
            kind: float(res[f'{prefix}/{c}_{kind}_AP40_moderate_strict'])
            for kind in ('3D', 'BEV', '2D')
        }
        for c in classes
    }


def check_kitti_metric(info_file: str,
                       shift: float = 0.01,
                       classes: Sequence[str] = KITTI_EVAL_CLASSES,
                       repeat: Optional[int] = None,
                       pcd_limit_range: Sequence[
                           float] = KITTI_PCD_LIMIT_RANGE) -> List[ClassCheck]:
    """GT-as-prediction check of ``info_file``: moderate 3D AP40 per class
    as is, its devkit ceiling, and with the frames repeated.

    ``repeat=None`` picks the smallest repetition that gives every class
    with moderate GT at least 41 moderate GT objects (then a consistent data
    set and metric give 100 for each); ``repeat=1`` skips the second run.
    """
    with open(info_file, 'rb') as f:
        counts = moderate_gt_counts(pickle.load(f), classes)
    if repeat is None:
        present = [n for n in counts.values() if n > 0]
        repeat = max([math.ceil(NUM_SAMPLE_PTS / n) for n in present] or [1])
    kw = dict(shift=shift, classes=classes, pcd_limit_range=pcd_limit_range)
    raw = evaluate_gt_as_predictions(info_file, **kw)
    rep = raw if repeat == 1 else evaluate_gt_as_predictions(
        info_file, repeat=repeat, **kw)
    return [
        ClassCheck(c, counts[c], raw[c]['3D'], ap40_cap(counts[c]),
                   rep[c]['3D'], repeat) for c in classes
    ]
