"""``PointSample`` on a scan with zero points.

mmdet3d 1.4's ``PointSample`` transform
(``mmdet3d/datasets/transforms/transforms_3d.py``, used by every PointRCNN
pipeline, and by ``IndoorPointSample``, its subclass) draws its sample with
``np.random.choice(range(len(points)), num_points, replace=True)``, which
raises ``ValueError: 'a' cannot be empty unless no samples are taken`` when
the scan is empty (a dropped LiDAR frame, or a frame whose points all fall
outside ``PointsRangeFilter``'s range). The data loader then stops training
or evaluation.

The patched ``PointSample._points_random_sampling`` returns the empty points
and an empty ``int64`` index array for an empty scan, without drawing random
numbers, so ``PointSample.transform`` leaves ``points`` (and
``pts_instance_mask`` / ``pts_semantic_mask``, indexed by the same empty
array) empty. A non-empty scan goes through mmdet3d's own code unchanged:
same random draws, same result.
"""
from typing import Optional, Tuple, Union

import numpy as np

from mmdet3d.datasets.transforms.transforms_3d import PointSample
from mmdet3d.structures.points import BasePoints

PATCH_NAME = 'empty_scan_point_sample'
_ORIGINAL = {}


def points_random_sampling(
    self: PointSample,
    points: BasePoints,
    num_samples: Union[int, float],
    sample_range: Optional[float] = None,
    replace: bool = False,
    return_choices: bool = False
) -> Union[Tuple[BasePoints, np.ndarray], BasePoints]:
    """``PointSample._points_random_sampling`` that accepts an empty scan:
    it returns the (empty) points and, with ``return_choices``, an empty
    index array."""
    if len(points) == 0:
        choices = np.zeros(0, dtype=np.int64)
        sampled = points[choices]
        return (sampled, choices) if return_choices else sampled
    return _ORIGINAL['sampling'](self, points, num_samples, sample_range,
                                 replace, return_choices)


def apply() -> list:
    """Install the patched method (idempotent). Returns the patch names."""
    if not _ORIGINAL:
        _ORIGINAL['sampling'] = PointSample._points_random_sampling
        PointSample._points_random_sampling = points_random_sampling
    return [PATCH_NAME]


def remove() -> None:
    """Restore mmdet3d's method."""
    if _ORIGINAL:
        PointSample._points_random_sampling = _ORIGINAL.pop('sampling')


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_ORIGINAL)
