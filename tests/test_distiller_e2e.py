"""Distiller3D end to end: PointDistiller on the demo PointPillars pair
(tiny data, two iterations), checkpoint contents, export round trip, the
student-only test path and the build-time errors."""
import copy
import math
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader

from mmdet3d.registry import MODELS
from pointdistiller_mm.distillers import (TeacherCheckpointError,
                                          VoxelizationMismatchError)
from pointdistiller_mm.recorders import ModulePathError
from tests.conftest import FAST_OPTIONS, TEACHER, run_tool

DISTILL = 'configs/demo/pointpillars_4x_pointdistiller.py'
STUDENT = 'configs/demo/pointpillars_4x_student.py'


@pytest.fixture(scope='module')
def distilled(trained_teacher, tiny_kitti, tmp_path_factory):
    teacher_dir, _ = trained_teacher
    work = tmp_path_factory.mktemp('distill')
    proc = run_tool([
        'PYTHON', 'tools/train.py', DISTILL, '--work-dir',
        str(work), '--data-root',
        str(tiny_kitti), '--cfg-options', *FAST_OPTIONS,
        f'model.teacher.checkpoint={teacher_dir}',
        'model.distill_terms.pillars.loss.num_samples=500',
        'model.distill_terms.pillars.loss.k=16'
    ])
    return work, proc


def test_distillation_trains_with_finite_losses(distilled):
    _, proc = distilled
    log = proc.stdout + proc.stderr
    values = [float(v) for v in
              re.findall(r'distill\.loss_pillars: ([-+.\w]+)', log)]
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    assert all(v > 0 for v in values)
    student = re.findall(r'student\.loss_cls: ([-+.\w]+)', log)
    assert len(student) == 2
    assert 'distill_weight: 1.0000' in log
    assert 'Teacher loaded strictly from' in log


def test_checkpoint_holds_student_and_adapters_not_teacher(distilled):
    work, _ = distilled
    state = CheckpointLoader.load_checkpoint(
        str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    prefixes = {k.split('.')[0] for k in state}
    assert prefixes == {'student', 'distill_losses'}
    assert any('adapter' in k for k in state)


@pytest.fixture(autouse=True)
def mmdet3d_scope():
    init_default_scope('mmdet3d')  # as mmdet3d's APIs and the runner do


def _one_val_batch(cfg: Config):
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    return next(iter(loader))


def test_export_round_trip_gives_identical_predictions(
        distilled, tiny_kitti, tmp_path):
    work, _ = distilled
    out = tmp_path / 'student.pth'
    run_tool(['PYTHON', 'tools/export_student.py', DISTILL,
              str(work / 'epoch_1.pth'), str(out)])
    exported = torch.load(out, map_location='cpu', weights_only=False)
    assert not any(k.startswith(('student.', 'distill', 'teacher'))
                   for k in exported['state_dict'])

    from pointdistiller_mm.utils import load_config, replace_data_root
    student_cfg = load_config(STUDENT)
    replace_data_root(student_cfg, str(tiny_kitti))
    student = MODELS.build(student_cfg.model)
    student.load_state_dict(exported['state_dict'], strict=True)
    student.eval()

    distill_cfg = load_config(DISTILL)
    distill_cfg.model.teacher.checkpoint = None  # weights come from epoch_1
    distiller = MODELS.build(distill_cfg.model)
    distiller.load_state_dict(
        CheckpointLoader.load_checkpoint(
            str(work / 'epoch_1.pth'), map_location='cpu')['state_dict'],
        strict=True)
    distiller.eval()

    batch = _one_val_batch(student_cfg)
    with torch.no_grad():
        a = student.test_step(copy.deepcopy(batch))[0].pred_instances_3d
        b = distiller.test_step(copy.deepcopy(batch))[0].pred_instances_3d
    assert torch.equal(a.scores_3d, b.scores_3d)
    assert torch.equal(a.bboxes_3d.tensor, b.bboxes_3d.tensor)
    assert torch.equal(a.labels_3d, b.labels_3d)


def test_test_tool_evaluates_the_student(distilled, tiny_kitti, tmp_path):
    """The test tool runs the student alone: a teacher checkpoint that is
    not on this machine does not stop the evaluation."""
    work, _ = distilled
    absent = tmp_path / 'no_teacher_here.pth'
    proc = run_tool(['PYTHON', 'tools/test.py', DISTILL,
                     str(work / 'epoch_1.pth'), '--data-root',
                     str(tiny_kitti), '--work-dir',
                     str(work / 'test'), '--cfg-options', *FAST_OPTIONS,
                     f'model.teacher.checkpoint={absent}'])
    out = proc.stdout + proc.stderr
    assert f'the teacher checkpoint {absent} is not loaded' in out
    assert 'Car AP40@0.70, 0.70, 0.70' in out
    assert 'Overall_3D_AP40_moderate' in out


def _distill_model_cfg(teacher_dir):
    cfg = Config.fromfile(DISTILL)
    cfg.model.teacher.checkpoint = str(teacher_dir)
    return cfg.model


def test_teacher_checkpoint_that_does_not_fit(trained_teacher, distilled,
                                              tmp_path):
    work, _ = distilled
    model_cfg = _distill_model_cfg(trained_teacher[0])
    # the student's weights offered as the teacher's
    model_cfg.teacher.checkpoint = str(work / 'epoch_1.pth')
    with pytest.raises(TeacherCheckpointError) as err:
        MODELS.build(model_cfg)
    msg = str(err.value)
    assert 'shape mismatches' in msg
    assert 'backbone.blocks.0.0.weight (checkpoint (32, 32, 3, 3), ' \
        'model (64, 64, 3, 3))' in msg
    assert 'Set model.teacher.config' in msg


def test_missing_teacher_checkpoint(trained_teacher, tmp_path):
    model_cfg = _distill_model_cfg(trained_teacher[0])
    model_cfg.teacher.checkpoint = str(tmp_path / 'absent.pth')
    with pytest.raises(FileNotFoundError, match='Train the teacher first'):
        MODELS.build(model_cfg)


def test_teacher_with_other_voxelization_is_refused(trained_teacher):
    model_cfg = _distill_model_cfg(trained_teacher[0])
    teacher = Config.fromfile(TEACHER).model
    teacher.data_preprocessor.voxel_layer.voxel_size = [0.2, 0.2, 4]
    teacher.data_preprocessor.voxel_layer.max_num_points = 20
    model_cfg.teacher = dict(config=teacher, checkpoint=None)
    with pytest.raises(VoxelizationMismatchError) as err:
        MODELS.build(model_cfg)
    msg = str(err.value)
    student_size = Config.fromfile(TEACHER).voxel_size
    assert ('data_preprocessor.voxel_layer.voxel_size: student '
            f'{student_size}, teacher [0.2, 0.2, 4]') in msg
    assert 'data_preprocessor.voxel_layer.max_num_points' in msg


def test_wrong_recorder_path_lists_close_paths(trained_teacher):
    model_cfg = _distill_model_cfg(trained_teacher[0])
    model_cfg.student_recorders.pillars.source = 'voxel_encodr'
    with pytest.raises(ModulePathError) as err:
        MODELS.build(model_cfg)
    assert 'voxel_encoder' in str(err.value)


def _one_train_batch(cfg: Config):
    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.update(num_workers=0, persistent_workers=False)
    return next(iter(Runner.build_dataloader(loader_cfg)))


def test_teacher_forward_leaves_the_students_voxels_untouched(tiny_kitti):
    """mmdet3d's PillarFeatureNet (legacy=True) writes pillar-centre
    offsets into its input voxels; the teacher must not do that to the
    batch the student trains on."""
    from pointdistiller_mm.utils import load_config, replace_data_root
    cfg = load_config(DISTILL)
    replace_data_root(cfg, str(tiny_kitti))
    cfg.model.teacher.checkpoint = None
    distiller = MODELS.build(cfg.model)
    distiller.train()
    data = distiller.data_preprocessor(_one_train_batch(cfg), True)
    inputs = data['inputs']
    voxels = inputs['voxels']['voxels'].clone()
    distiller.run_teacher(inputs, data['data_samples'])
    assert torch.equal(inputs['voxels']['voxels'], voxels)
    # and the student's pillar features in the distillation step are the
    # ones the student computes on its own
    with torch.no_grad():
        alone = distiller.student.voxel_encoder(
            voxels.clone(), inputs['voxels']['num_points'],
            inputs['voxels']['coors'])
        with distiller.student_recorders:
            distiller.student.loss(inputs, data['data_samples'])
        recorded = distiller.student_recorders.get('pillars')
    assert torch.allclose(recorded, alone)
