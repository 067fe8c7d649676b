"""PointRCNN on a batch holding scans with zero points.

After ``PointSample`` (see :mod:`.empty_point_sample`) every scan of a
PointRCNN batch has ``num_points`` points, except an empty scan, which stays
empty. mmdet3d 1.4's ``PointRCNN.extract_feat`` stacks the batch's point
clouds (``torch.stack``: a batch mixing sizes raises "stack expects each
tensor to be equal size"), and its PointNet++ backbone cannot sample from a
cloud of zero points (furthest point sampling returns index 0, out of
bounds). A point-based detector has nothing to compute on an empty scan, so
the patched methods leave such scans out:

* ``extract_feat`` stacks the non-empty scans only (the teacher of a
  distiller, which calls it directly, then sees the same scans as the
  student's ``loss``);
* ``predict`` runs mmdet3d's code on the non-empty scans and gives each
  empty scan an empty prediction (no box, the sample's ``box_type_3d``);
* ``loss`` runs mmdet3d's code on the non-empty scans (an empty scan has no
  point to assign a target to, so it adds no term). A training batch of
  empty scans only gives one zero loss, ``loss_empty_batch``, connected to
  every parameter.

A batch without an empty scan runs mmdet3d's methods unchanged.
"""
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from mmdet3d.models.detectors import PointRCNN
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.structures import InstanceData

PATCH_NAME = 'empty_scan_pointrcnn'
_METHODS = ('extract_feat', 'predict', 'loss')
_MISSING = object()
_ORIGINAL: Dict[str, object] = {}


def _split(batch_inputs_dict: dict) -> Tuple[List[int], dict]:
    """Indices of the non-empty scans and the inputs restricted to them."""
    points = batch_inputs_dict['points']
    keep = [i for i, p in enumerate(points) if len(p) > 0]
    return keep, dict(batch_inputs_dict, points=[points[i] for i in keep])


def _call_original(self: PointRCNN, name: str, *args, **kwargs):
    original = _ORIGINAL[name]
    if original is _MISSING:  # inherited: look it up past PointRCNN
        return getattr(super(PointRCNN, self), name)(*args, **kwargs)
    return original(self, *args, **kwargs)


def pointrcnn_extract_feat(self: PointRCNN, batch_inputs_dict: dict) -> dict:
    """``PointRCNN.extract_feat`` on the non-empty scans of the batch."""
    keep, inputs = _split(batch_inputs_dict)
    if not keep:
        raise ValueError(
            'PointRCNN.extract_feat: every scan of the batch has zero '
            'points; there is nothing to extract features from.')
    return _call_original(self, 'extract_feat', inputs)


def _empty_prediction(sample, like: Tensor) -> InstanceData:
    box_type = sample.metainfo.get('box_type_3d', LiDARInstance3DBoxes)
    pred = InstanceData()
    pred.bboxes_3d = box_type(like.new_zeros((0, 7)), box_dim=7)
    pred.scores_3d = like.new_zeros((0, ))
    pred.labels_3d = like.new_zeros((0, ), dtype=torch.long)
    return pred


def pointrcnn_predict(self: PointRCNN, batch_inputs_dict: dict,
                      batch_data_samples: list, **kwargs) -> list:
    """``PointRCNN.predict``; an empty scan gets an empty prediction."""
    points = batch_inputs_dict['points']
    keep, inputs = _split(batch_inputs_dict)
    if len(keep) == len(points):
        return _call_original(self, 'predict', batch_inputs_dict,
                              batch_data_samples, **kwargs)
    if keep:
        _call_original(self, 'predict', inputs,
                       [batch_data_samples[i] for i in keep], **kwargs)
    for i, sample in enumerate(batch_data_samples):
        if i not in keep:
            sample.pred_instances_3d = _empty_prediction(sample, points[i])
            sample.pred_instances = InstanceData()
    return batch_data_samples


def pointrcnn_loss(self: PointRCNN, batch_inputs_dict: dict,
                   batch_data_samples: list, **kwargs) -> Dict[str, Tensor]:
    """``PointRCNN.loss`` on the non-empty scans of the batch."""
    points = batch_inputs_dict['points']
    keep, inputs = _split(batch_inputs_dict)
    if len(keep) == len(points):
        return _call_original(self, 'loss', batch_inputs_dict,
                              batch_data_samples, **kwargs)
    if not keep:
        zero = sum(p.sum() * 0 for p in self.parameters())
        return dict(loss_empty_batch=zero)
    return _call_original(self, 'loss', inputs,
                          [batch_data_samples[i] for i in keep], **kwargs)


_PATCHED = dict(extract_feat=pointrcnn_extract_feat,
                predict=pointrcnn_predict, loss=pointrcnn_loss)


def apply() -> list:
    """Install the patched methods (idempotent). Returns the patch names."""
    if not _ORIGINAL:
        for name in _METHODS:
            _ORIGINAL[name] = PointRCNN.__dict__.get(name, _MISSING)
            setattr(PointRCNN, name, _PATCHED[name])
    return [PATCH_NAME]


def remove() -> None:
    """Restore mmdet3d's methods."""
    for name, original in _ORIGINAL.items():
        if original is _MISSING:
            delattr(PointRCNN, name)
        else:
            setattr(PointRCNN, name, original)
    _ORIGINAL.clear()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_ORIGINAL)
