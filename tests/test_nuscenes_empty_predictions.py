"""nuScenes evaluation of a model that predicts no box at all
(pointdistiller_mm.compat.nuscenes_empty_predictions): mmdet3d's
NuScenesMetric on the synthetic nuScenes val split, every sample without a
prediction, gives the devkit's values for "no detections" instead of
raising "Invalid box type: None"."""
import math
import os.path as osp

import pytest

# TP metrics the devkit leaves undefined (NaN) for a class
# (nuscenes/eval/detection/evaluate.py, DetectionEval.evaluate)
UNDEFINED = {('traffic_cone', 'attr_err'), ('traffic_cone', 'vel_err'),
             ('traffic_cone', 'orient_err'), ('barrier', 'attr_err'),
             ('barrier', 'vel_err')}
TP = ('trans_err', 'scale_err', 'orient_err', 'vel_err', 'attr_err')


def test_devkit_class_field_of_empty_samples():
    """The devkit's own function raises on samples without boxes; the
    patched one answers and warns."""
    import pointdistiller_mm  # noqa: F401  (applies the patch)
    from nuscenes.eval.common import loaders
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.detection.data_classes import DetectionBox
    from pointdistiller_mm.compat import nuscenes_empty_predictions as patch
    assert patch.is_applied()
    boxes = EvalBoxes()
    boxes.add_boxes('sample_a', [])
    boxes.add_boxes('sample_b', [])
    patch.remove()
    try:
        with pytest.raises(Exception, match='Invalid box type: None'):
            loaders._get_box_class_field(boxes)
    finally:
        patch.apply()
    with pytest.warns(UserWarning, match='none of the 2 samples'):
        assert loaders._get_box_class_field(boxes) == 'detection_name'
    boxes.add_boxes('sample_c', [DetectionBox(sample_token='sample_c')])
    assert loaders._get_box_class_field(boxes) == 'detection_name'


def test_nuscenes_metric_without_any_prediction(tiny_nuscenes):
    import mmengine
    import torch
    from mmengine.structures import InstanceData

    import pointdistiller_mm  # noqa: F401
    from mmdet3d.evaluation.metrics import NuScenesMetric
    from mmdet3d.structures import LiDARInstance3DBoxes
    ann = osp.join(str(tiny_nuscenes), 'nuscenes_infos_val.pkl')
    infos = mmengine.load(ann)
    categories = infos['metainfo']['categories']
    classes = [c for c in sorted(categories, key=categories.get)
               if categories[c] >= 0]
    metric = NuScenesMetric(data_root=str(tiny_nuscenes) + '/',
                            ann_file=ann, metric='bbox')
    metric.dataset_meta = dict(classes=classes,
                               version=infos['metainfo']['version'])
    results = []
    for i, _ in enumerate(infos['data_list']):
        pred = InstanceData()
        pred.bboxes_3d = LiDARInstance3DBoxes(torch.zeros((0, 9)), box_dim=9)
        pred.scores_3d = torch.zeros(0)
        pred.labels_3d = torch.zeros(0, dtype=torch.long)
        results.append(dict(pred_instances_3d=pred,
                            pred_instances=InstanceData(), sample_idx=i))
    assert results and sum(len(x['instances'])
                           for x in infos['data_list']) > 0
    with pytest.warns(UserWarning, match='holds a box'):
        out = metric.compute_metrics(results)
    key = 'pred_instances_3d_NuScenes/'
    assert out[key + 'mAP'] == 0.0
    assert out[key + 'NDS'] == 0.0
    for err in ('mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE'):
        assert out[key + err] == 1.0
    assert len(classes) == 10
    for name in classes:
        for dist in ('0.5', '1.0', '2.0', '4.0'):
            assert out[f'{key}{name}_AP_dist_{dist}'] == 0.0
        for err in TP:
            value = out[f'{key}{name}_{err}']
            if (name, err) in UNDEFINED:
                assert math.isnan(value)
            else:
                assert value == 1.0
