"""PointDistiller on nuScenes PointPillars end to end: the 2x student of
the nuScenes demo distilled through FPN level 0 from the demo teacher (its
initial weights, saved as a checkpoint) for one epoch on the tiny synthetic
nuScenes data with tools/train.py, then tested with NuScenesMetric (the
devkit's detection evaluation) through tools/test.py."""
import math
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader

from tests.conftest import FAST_OPTIONS, run_tool

TEACHER = 'configs/demo/pointpillars_nus_teacher.py'
DISTILL = 'configs/demo/pointpillars_nus_2x_pointdistiller.py'
SUMMARY = ('mAP', 'NDS', 'mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE')


@pytest.fixture(scope='module')
def nus_distilled(tiny_nuscenes, tmp_path_factory):
    import pointdistiller_mm  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    teacher = MODELS.build(Config.fromfile(TEACHER).model)
    ckpt = tmp_path_factory.mktemp('nus_teacher') / 'teacher.pth'
    torch.save(dict(state_dict=teacher.state_dict(), meta=dict()), ckpt)
    work = tmp_path_factory.mktemp('nus_distill')
    # val_begin 2: no validation after the single epoch (tools/test.py
    # below evaluates the checkpoint)
    proc = run_tool(['PYTHON', 'tools/train.py', DISTILL, '--work-dir',
                     str(work), '--data-root', str(tiny_nuscenes),
                     '--cfg-options', *FAST_OPTIONS, 'train_cfg.val_begin=2',
                     f'model.teacher.checkpoint={ckpt}'])
    return work, proc, ckpt


def test_distillation_on_fpn_level0_trains(nus_distilled):
    work, proc, _ = nus_distilled
    log = proc.stdout + proc.stderr
    values = [float(v) for v in
              re.findall(r'distill\.loss_fpn0: ([-+.\w]+)', log)]
    # 8 training samples, batch 2: one epoch is 4 iterations
    assert len(values) == 4, log[-3000:]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert len(re.findall(r'student\.loss_cls: ([-+.\w]+)', log)) == 4
    assert 'Teacher loaded strictly from' in log
    state = CheckpointLoader.load_checkpoint(
        str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    assert {k.split('.')[0] for k in state} == {'student', 'distill_losses'}
    # the 2x student's FPN is 182 channels wide
    assert state['student.pts_neck.fpn_convs.0.conv.weight'].shape[0] == 182


def test_test_tool_prints_map_nds_and_tp_errors(nus_distilled,
                                                tiny_nuscenes):
    work, _, ckpt = nus_distilled
    # an epoch-1 model scores below the config's 0.05 threshold and the
    # devkit refuses a result file without any box: keep every box of the
    # top 100 per level (fewer than the config's 1000, for speed)
    proc = run_tool([
        'PYTHON', 'tools/test.py', DISTILL,
        str(work / 'epoch_1.pth'), '--work-dir',
        str(work / 'test'), '--data-root',
        str(tiny_nuscenes), '--cfg-options', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False',
        'model.student.test_cfg.pts.score_thr=0.0',
        'model.student.test_cfg.pts.nms_pre=100',
        'model.student.test_cfg.pts.max_num=50',
        f'model.teacher.checkpoint={ckpt}'
    ])
    out = proc.stdout
    line = re.search(r'nuScenes summary \(pred_instances_3d\): (.*)', out)
    assert line, out[-3000:]
    vals = dict(re.findall(r'(\w+) ([-+.\d]+)', line.group(1)))
    assert tuple(vals) == SUMMARY
    # mAP and NDS are fractions; the TP errors are in their own units
    # (metres, 1 - IoU, radians, m/s, 1 - accuracy) and only NDS clips them
    # at 1: an untrained model's mATE or mAOE may exceed 1
    for name in ('mAP', 'NDS'):
        assert 0.0 <= float(vals[name]) <= 1.0, name
    for name in SUMMARY[2:]:
        assert float(vals[name]) >= 0.0, name
    # the devkit's own summary is printed as well
    assert 'NDS:' in out and 'Per-class results:' in out


@pytest.mark.parametrize('ratio,widths', [
    (2, dict(pfn=46, backbone=[46, 91, 182], fpn=182)),
    (4, dict(pfn=32, backbone=[32, 64, 128], fpn=128)),
])
def test_nuscenes_students_divide_widths_by_sqrt_ratio(ratio, widths):
    """Teacher 64 / [64, 128, 256] / 256 over sqrt(ratio) (rounded up), and
    the parameter count falls by about the ratio."""
    import pointdistiller_mm  # noqa: F401
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    teacher = Config.fromfile(
        'configs/pointdistiller/teachers/'
        'pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py').model
    student = Config.fromfile(
        f'configs/students/pointpillars_{ratio}x_nus-3d.py').model
    recipe = Config.fromfile(
        f'configs/pointdistiller/pointpillars_nus_{ratio}x.py').model
    for t, s in ((teacher.pts_voxel_encoder.feat_channels[-1],
                  widths['pfn']),
                 (teacher.pts_neck.out_channels, widths['fpn'])):
        assert s == math.ceil(t / math.sqrt(ratio))
    assert student.pts_backbone.out_channels == widths['backbone']
    assert student.pts_neck.out_channels == widths['fpn']
    assert student.pts_bbox_head.in_channels == widths['fpn']
    loss = recipe.distill_terms.fpn0.loss
    assert (loss.student_channels, loss.teacher_channels) == (widths['fpn'],
                                                              256)
    assert (loss.num_samples, loss.k) == (256, 128)
    n = [sum(p.numel() for p in MODELS.build(c).parameters())
         for c in (teacher, student)]
    assert 0.7 / ratio < n[1] / n[0] < 1.3 / ratio
