"""PVD end to end: a checkpoint of the demo Cylinder3D teacher (freshly
initialised, saved as mmengine does), the demo PVD config distilling the
0.5x student from it for one iteration through tools/train.py, and
tools/test.py evaluating the student (mIoU) on one tiny synthetic
SemanticKITTI scan. (Each Cylinder3D iteration on 120k-point scans costs
tens of seconds on a 2-core CPU, hence one iteration and no validation.)"""
import math
import re
from pathlib import Path

import pytest
import torch

from tests.conftest import run_tool

TEACHER = 'configs/demo/cylinder3d_teacher.py'
PVD = 'projects/PVD/configs/pvd_cylinder3d_0.5x_demo.py'

# one epoch of the first 2 training scans at batch 2 = one iteration,
# no validation loop
SEG_OPTIONS = [
    'train_cfg.max_epochs=1', 'val_cfg=None', 'val_dataloader=None',
    'val_evaluator=None',
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'train_dataloader.dataset.indices=2',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]


def _train(config, work, data_root, *extra):
    return run_tool(['PYTHON', 'tools/train.py', config, '--work-dir',
                     str(work), '--data-root', str(data_root),
                     '--allow-new-keys', '--cfg-options', *SEG_OPTIONS,
                     *extra])


def _teacher_checkpoint(work: Path) -> Path:
    """The demo teacher built from its config and saved like mmengine's
    CheckpointHook (``state_dict`` + ``meta``, ``last_checkpoint``)."""
    import pointdistiller_mm  # noqa: F401
    from mmengine.config import Config
    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(TEACHER).model)
    path = work / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1)), path)
    (work / 'last_checkpoint').write_text(str(path))
    return path


@pytest.fixture(scope='module')
def pvd_run(tiny_semantickitti, tmp_path_factory):
    teacher_work = tmp_path_factory.mktemp('cyl_teacher')
    _teacher_checkpoint(teacher_work)
    work = tmp_path_factory.mktemp('pvd')
    proc = _train(PVD, work, tiny_semantickitti,
                  f'model.teacher.checkpoint={teacher_work}')
    return work, proc, teacher_work


def test_pvd_trains_all_terms(pvd_run):
    work, proc, teacher_work = pvd_run
    log = proc.stdout + proc.stderr
    assert 'Teacher loaded strictly from' in log and str(teacher_work) in log
    for term in ('out_p', 'out_v', 'aff_p', 'aff_v'):
        found = re.findall(rf'distill\.loss_{term}: ([-0-9.e+na]+)', log)
        assert found, f'distill.loss_{term} not logged\n{log[-3000:]}'
        value = float(found[-1])
        assert math.isfinite(value) and value >= 0
    # affinities of two differently initialised networks differ
    assert float(re.findall(r'distill\.loss_aff_v: ([0-9.e+-]+)', log)[-1]) > 0
    state = torch.load(work / 'epoch_1.pth', map_location='cpu',
                       weights_only=False)['state_dict']
    assert any(k.startswith('student.backbone') for k in state)
    assert not any(k.startswith('teacher.') for k in state)
    assert all(torch.isfinite(v).all() for v in state.values()
               if v.is_floating_point())


def test_pvd_student_tests_with_miou(pvd_run, tiny_semantickitti):
    work, _, teacher_work = pvd_run
    proc = run_tool(['PYTHON', 'tools/test.py', PVD,
                     str(work / 'epoch_1.pth'), '--data-root',
                     str(tiny_semantickitti), '--allow-new-keys',
                     '--cfg-options', 'test_dataloader.num_workers=0',
                     'test_dataloader.persistent_workers=False',
                     'test_dataloader.dataset.indices=1',
                     f'model.teacher.checkpoint={teacher_work}'])
    out = proc.stdout + proc.stderr
    miou = re.findall(r'miou: ([0-9.]+)', out)
    assert miou, out[-3000:]
    assert 0.0 <= float(miou[-1]) <= 1.0
    assert 'Traceback' not in out


def test_pvd_refuses_teacher_with_other_grid(tiny_semantickitti, tmp_path):
    proc = run_tool(['PYTHON', 'tools/train.py', PVD, '--work-dir',
                     str(tmp_path), '--data-root', str(tiny_semantickitti),
                     '--cfg-options', 'model.teacher.checkpoint=',
                     'model.student.data_preprocessor.voxel_layer.'
                     'grid_shape=[60,90,16]'], check=False)
    assert proc.returncode != 0
    assert 'voxelize differently' in proc.stderr
    assert 'grid_shape' in proc.stderr


@pytest.mark.parametrize('config', [
    'pvd_cylinder3d_0.5x_demo.py', 'pvd_cylinder3d_0.5x_demo_aff-p-only.py',
    'kd_cylinder3d_0.5x_demo.py', 'cd_cylinder3d_0.5x_demo.py',
    'ifv_cylinder3d_0.5x_demo.py', 'skd_cylinder3d_0.5x_demo.py',
    'ka_cylinder3d_0.5x_demo.py'])
def test_config_terms_on_cylinder3d(config):
    """Each project config's distill terms on mmdet3d's Cylinder3D teacher
    (width 32) and 0.5x student (width 16), at a small grid on two random
    scans: finite losses, gradients in the student, none in the teacher."""
    import copy

    import pointdistiller_mm  # noqa: F401
    import projects.PVD.pvd  # noqa: F401
    from mmengine.config import Config
    from mmdet3d.registry import MODELS
    from mmdet3d.structures import Det3DDataSample, PointData
    from mmdet3d.utils import register_all_modules
    register_all_modules()
    grid = [48, 36, 8]
    teacher = copy.deepcopy(Config.fromfile(TEACHER).model)
    teacher.data_preprocessor.voxel_layer.grid_shape = grid
    teacher.voxel_encoder.grid_shape = grid
    teacher.backbone.grid_size = grid
    student = copy.deepcopy(teacher)
    student.backbone.base_channels = 16
    student.decode_head.channels = 64
    cfg = Config.fromfile(f'projects/PVD/configs/{config}').model
    torch.manual_seed(0)
    model = MODELS.build(dict(
        type='Distiller3D', student=student,
        teacher=dict(config=teacher, checkpoint=None),
        teacher_forward=cfg.teacher_forward,
        student_recorders=cfg.student_recorders,
        teacher_recorders=cfg.teacher_recorders,
        distill_terms=cfg.distill_terms))
    points, samples = [], []
    for _ in range(2):
        n = 3000
        points.append(torch.cat([torch.rand(n, 2) * 60 - 30,
                                 torch.rand(n, 1) * 4 - 3,
                                 torch.rand(n, 1)], 1))
        sample = Det3DDataSample()
        sample.gt_pts_seg = PointData(
            pts_semantic_mask=torch.randint(0, 20, (n, )))
        samples.append(sample)
    batch = model.data_preprocessor(
        dict(inputs=dict(points=points), data_samples=samples), training=True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    distill = {k: v for k, v in losses.items() if k.startswith('distill.')}
    assert set(distill) == {f'distill.loss_{n}' for n in cfg.distill_terms}
    assert all(torch.isfinite(v) and v > 0 for v in distill.values())
    sum(distill.values()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.student.backbone.parameters())
    assert all(p.grad is None for p in model.teacher.parameters())
