"""nuScenes detection evaluation of a model that predicts no box at all.

mmdet3d 1.4's ``NuScenesMetric`` writes the predictions to a results JSON
and runs nuscenes-devkit 1.2's ``NuScenesEval`` on it. When no sample of the
evaluation has a single predicted box (an early or under-trained model, a
score threshold above every score), the devkit's
``nuscenes.eval.common.loaders.filter_eval_boxes`` asks
``_get_box_class_field`` which field holds the class, and that function
finds no box to look at and raises ``Exception: Error: Invalid box type:
None``, so validation stops the training run.

The patched ``_get_box_class_field`` warns and answers ``'detection_name'``
when every sample's box list is empty (the field is then never read: there
is no box to filter). Everything else is the devkit's own code: every class
accumulates the devkit's "no predictions" data, so each AP is 0, each TP
error is 1.0 (the devkit's value when nothing matches; NaN where the devkit
leaves a TP metric undefined for a class, e.g. traffic-cone orientation),
mAP and NDS are 0. A set with at least one box, or with no sample at all
(the devkit's own assertion), goes to the original function.
"""
import warnings
from typing import Any

try:
    import nuscenes.eval.common.loaders as loaders
except ImportError:  # nuscenes-devkit not installed: nothing to mend
    loaders = None

PATCH_NAME = 'nuscenes_eval_no_predictions'
_ORIGINAL = {}


def get_box_class_field(eval_boxes: Any) -> str:
    """The devkit's ``_get_box_class_field`` for an ``EvalBoxes``, which
    also accepts samples that all hold zero boxes (it warns and answers
    ``'detection_name'``)."""
    if eval_boxes.boxes and not any(
            len(boxes) for boxes in eval_boxes.boxes.values()):
        warnings.warn(
            f'nuScenes evaluation: none of the {len(eval_boxes.boxes)} '
            'samples holds a box (predictions of a model that detects '
            'nothing?); every AP, mAP and NDS is 0 and the TP errors are 1.')
        return 'detection_name'
    return _ORIGINAL['field'](eval_boxes)


def apply() -> list:
    """Install the patched function (idempotent). Returns the patch
    names (none without nuscenes-devkit)."""
    if loaders is None:
        return []
    if not _ORIGINAL:
        _ORIGINAL['field'] = loaders._get_box_class_field
        loaders._get_box_class_field = get_box_class_field
    return [PATCH_NAME]


def remove() -> None:
    """Restore the devkit's function."""
    if _ORIGINAL:
        loaders._get_box_class_field = _ORIGINAL.pop('field')


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_ORIGINAL)
