"""PointDistiller on SECOND end to end: the demo SECOND teacher trained for
one epoch (2 iterations) on the tiny data, then the 4x SECOND PointDistiller
recipe for 2 iterations with that teacher, distilling both backbone BEV maps.

Validation is switched off in both runs: it adds nothing to what is checked
here, costs a full SECOND forward per frame on the CPU, and the tiny set's
empty validation frame is a batch without voxels, which mmdet3d's sparse
encoder (spconv) cannot process."""
import math
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet3d.registry import MODELS
from tests.conftest import FAST_OPTIONS, run_tool

SECOND_TEACHER = 'configs/demo/second_teacher.py'
SECOND_DISTILL = 'configs/demo/second_4x_pointdistiller.py'
SECOND_STUDENT = 'configs/demo/second_4x_student.py'
NO_VAL = ['val_dataloader=None', 'val_cfg=None', 'val_evaluator=None']
NUMBER = r'([-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|nan|inf))'


@pytest.fixture(scope='module')
def second_teacher(tiny_kitti, tmp_path_factory):
    work = tmp_path_factory.mktemp('second_teacher')
    proc = run_tool(['PYTHON', 'tools/train.py', SECOND_TEACHER, '--work-dir',
                     str(work), '--data-root', str(tiny_kitti),
                     '--cfg-options', *FAST_OPTIONS, *NO_VAL])
    return work, proc


@pytest.fixture(scope='module')
def second_distilled(second_teacher, tiny_kitti, tmp_path_factory):
    teacher_dir, _ = second_teacher
    work = tmp_path_factory.mktemp('second_distill')
    proc = run_tool(['PYTHON', 'tools/train.py', SECOND_DISTILL, '--work-dir',
                     str(work), '--data-root', str(tiny_kitti),
                     '--cfg-options', *FAST_OPTIONS, *NO_VAL,
                     f'model.teacher.checkpoint={teacher_dir}'])
    return work, proc


def _values(log: str, key: str):
    return [float(v) for v in re.findall(re.escape(key) + ': ' + NUMBER, log)]


def test_second_teacher_trains_two_iterations(second_teacher):
    work, proc = second_teacher
    log = proc.stdout + proc.stderr
    assert 'Epoch(train) [1][2/2]' in log
    losses = _values(log, 'loss_bbox')
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert (work / 'epoch_1.pth').is_file()


def test_second_distillation_gives_both_stage_losses(second_distilled):
    _, proc = second_distilled
    log = proc.stdout + proc.stderr
    assert 'Teacher loaded strictly from' in log
    for term in ('bev0', 'bev1'):
        values = _values(log, f'distill.loss_{term}')
        assert len(values) == 2, (term, values)
        assert all(math.isfinite(v) and v > 0 for v in values), (term, values)
    student = _values(log, 'student.loss_cls')
    assert len(student) == 2 and all(math.isfinite(v) for v in student)


def test_second_distiller_checkpoint_has_both_stage_adapters(
        second_distilled):
    work, _ = second_distilled
    state = CheckpointLoader.load_checkpoint(
        str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    assert {k.split('.')[0] for k in state} == {'student', 'distill_losses'}
    # EdgeConv 1x1 convs over cat[z_i, z_j] (2 C inputs) to the graph
    # width, which defaults to the student's width of the stage
    expected = {
        'bev0': dict(student=(64, 128, 1, 1), teacher=(64, 256, 1, 1)),
        'bev1': dict(student=(128, 256, 1, 1), teacher=(128, 512, 1, 1)),
    }
    for term, sides in expected.items():
        for side, shape in sides.items():
            key = f'distill_losses.{term}.{side}_adapter.conv.weight'
            assert tuple(state[key].shape) == shape, key


def test_second_student_export_loads_into_the_stock_student(
        second_distilled, tmp_path):
    """Sparse-conv kernels survive the export: the exported file loads
    strictly into the standalone student and gives the distiller's
    student weights back."""
    work, _ = second_distilled
    out = tmp_path / 'second_student.pth'
    run_tool(['PYTHON', 'tools/export_student.py', SECOND_DISTILL,
              str(work / 'epoch_1.pth'), str(out)])
    init_default_scope('mmdet3d')
    student = MODELS.build(Config.fromfile(SECOND_STUDENT).model)
    load_checkpoint(student, str(out), map_location='cpu', strict=True)
    trained = CheckpointLoader.load_checkpoint(
        str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    # spconv 2 kernel layout: (out, k, k, k, in)
    key = 'middle_encoder.conv_input.0.weight'
    assert tuple(student.state_dict()[key].shape) == (8, 3, 3, 3, 4)
    assert torch.equal(student.state_dict()[key], trained[f'student.{key}'])
