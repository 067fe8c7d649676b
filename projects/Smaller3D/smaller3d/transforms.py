"""Data transforms of the Smaller3D demo."""
from __future__ import annotations

from mmdet3d.datasets.transforms import PointsRangeFilter
from mmdet3d.registry import TRANSFORMS

__all__ = ['SegPointsRangeFilter']


@TRANSFORMS.register_module()
class SegPointsRangeFilter(PointsRangeFilter):
    """``PointsRangeFilter`` that also filters the evaluation labels.

    mmdet3d's ``PointsRangeFilter`` drops the points outside
    ``point_cloud_range`` and their ``pts_semantic_mask`` /
    ``pts_instance_mask`` entries, but leaves ``eval_ann_info`` (the labels
    ``SegMetric`` scores against) whole, so a test pipeline with it would pair
    predictions and labels of different points. This transform filters the
    per-point arrays of ``eval_ann_info`` with the same mask, so that a model
    trained on a range crop can be evaluated on the same crop.

    Args:
        point_cloud_range: ``[x_min, y_min, z_min, x_max, y_max, z_max]``.
    """

    EVAL_KEYS = ('pts_semantic_mask', 'pts_instance_mask')

    def transform(self, input_dict: dict) -> dict:
        """Filter points, their masks and their evaluation labels."""
        points = input_dict['points']
        num_points = len(points)
        mask = points.in_range_3d(self.pcd_range).numpy()
        input_dict = super().transform(input_dict)
        eval_info = input_dict.get('eval_ann_info')
        if eval_info:
            for key in self.EVAL_KEYS:
                value = eval_info.get(key)
                if value is None:
                    continue
                if len(value) != num_points:
                    raise ValueError(
                        f'eval_ann_info[{key!r}] has {len(value)} entries '
                        f'for {num_points} points; put SegPointsRangeFilter '
                        'before any transform that drops or adds points')
                eval_info[key] = value[mask]
        return input_dict
