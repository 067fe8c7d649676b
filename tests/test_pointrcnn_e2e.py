"""PointRCNN on CPU end to end: the demo teacher trains and is tested
(KITTI table) through tools/train.py / tools/test.py, then the demo
PointDistiller recipe (8x student, FP-neck point rows) trains a few
iterations from that teacher. Point counts are cut further by
--cfg-options so that each run takes a minute or two."""
import math
import re

import pytest

from .conftest import FAST_OPTIONS, run_tool

TEACHER = 'configs/demo/pointrcnn_teacher.py'
DISTILL = 'configs/demo/pointrcnn_8x_pointdistiller.py'


def _small(prefix: str):
    """Fewer SA points, RoIs and pooled points (the model keeps its
    widths and depth)."""
    return [
        f'{prefix}backbone.num_points=[256,64,16,8]',
        f'{prefix}roi_head.bbox_roi_extractor.roi_layer.'
        'num_sampled_points=32',
        f'{prefix}train_cfg.rcnn.sampler.num=16',
        f'{prefix}train_cfg.rpn.rpn_proposal.nms_pre=128',
        f'{prefix}train_cfg.rpn.rpn_proposal.nms_post=32',
        f'{prefix}test_cfg.rpn.nms_cfg.nms_pre=128',
        f'{prefix}test_cfg.rpn.nms_cfg.nms_post=16',
    ]


@pytest.fixture(scope='module')
def point_kitti(tmp_path_factory):
    """tiny_kitti's frames (seed 4) without its empty scans: mmdet3d's
    PointSample (every PointRCNN pipeline) cannot sample from a scan with
    zero points, on any device."""
    from pointdistiller_mm.datasets import create_demo_kitti
    root = tmp_path_factory.mktemp('data') / 'point_kitti'
    create_demo_kitti(str(root), num_train=4, num_val=2, num_test=1, seed=4,
                      verbose=False)
    return root


@pytest.fixture(scope='module')
def pointrcnn_teacher(point_kitti, tmp_path_factory):
    work = tmp_path_factory.mktemp('pointrcnn_teacher')
    proc = run_tool(['PYTHON', 'tools/train.py', TEACHER, '--work-dir',
                     str(work), '--data-root', str(point_kitti),
                     '--cfg-options', *FAST_OPTIONS, *_small('model.')])
    return work, proc


def _losses(log: str, key: str):
    return [float(v) for v in re.findall(rf'{re.escape(key)}: ([-\d.e+]+)',
                                         log)]


def test_pointrcnn_trains_and_tests_on_cpu(pointrcnn_teacher, point_kitti):
    work, proc = pointrcnn_teacher
    log = proc.stdout + proc.stderr
    for key in ('rpn_bbox_loss', 'rpn_semantic_loss', 'loss_cls'):
        values = _losses(log, key)
        assert len(values) == 2 and all(math.isfinite(v) for v in values)
    assert (work / 'epoch_1.pth').is_file()
    test = run_tool(['PYTHON', 'tools/test.py', TEACHER,
                     str(work / 'epoch_1.pth'), '--work-dir',
                     str(work / 'test'), '--data-root', str(point_kitti),
                     '--cfg-options', 'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False',
                     *_small('model.')])
    out = test.stdout + test.stderr
    assert 'Car AP40@0.70, 0.70, 0.70' in out
    assert re.search(r'Overall AP40@easy, moderate, hard:\s*\nbbox AP40:', out)


def test_pointrcnn_pointdistiller_trains(pointrcnn_teacher, point_kitti,
                                         tmp_path):
    teacher_work, _ = pointrcnn_teacher
    proc = run_tool([
        'PYTHON', 'tools/train.py', DISTILL, '--work-dir', str(tmp_path),
        '--data-root', str(point_kitti), '--cfg-options', *FAST_OPTIONS,
        *_small('model.student.'),
        f'model.teacher.checkpoint={teacher_work / "epoch_1.pth"}',
        'model.distill_terms.points.loss.num_samples=512',
        'model.distill_terms.points.loss.k=16'
    ])
    log = proc.stdout + proc.stderr
    distill = _losses(log, 'distill.loss_points')
    assert len(distill) == 2
    assert all(math.isfinite(v) and v > 0 for v in distill)
    assert _losses(log, 'student.rpn_semantic_loss')
    assert (tmp_path / 'epoch_1.pth').is_file()
