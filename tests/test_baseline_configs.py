"""Baseline KD configs (PointDistiller Table 3): every config loads and
builds, differs from its PointDistiller config only in the distillation
recipe, runs one loss step on a batch; two methods train end to end."""
import copy
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import CheckpointLoader
from mmengine.structures import InstanceData

import pointdistiller_mm  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes
from tests.conftest import FAST_OPTIONS, run_tool

REPO = Path(__file__).resolve().parents[1]
METHODS = {
    'fitnets': 'FitNetsLoss',
    'at': 'ATLoss',
    'sp': 'SPLoss',
    'ofd': 'OFDLoss',
    'crd': 'CRDLoss',
    'fkd': 'FKDLoss',
    'sessd': 'SESSDConsistencyLoss',
    'kd': 'LogitKDLoss',
}
BASES = {
    'demo': 'configs/demo/pointpillars_4x_pointdistiller.py',
    'baselines': 'configs/pointdistiller/pointpillars_4x.py',
}
CONFIGS = [(kind, m) for kind in BASES for m in METHODS]
RECIPE_KEYS = ('student_recorders', 'teacher_recorders', 'distill_terms',
               'teacher_forward')


@pytest.fixture(autouse=True)
def mmdet3d_scope():
    init_default_scope('mmdet3d')


def _path(kind: str, method: str) -> str:
    return f'configs/{kind}/{method}_pointpillars_4x.py'


def _build(path: str):
    cfg = Config.fromfile(str(REPO / path))
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.teacher = dict(model_cfg.teacher, checkpoint=None)
    torch.manual_seed(0)
    return cfg, MODELS.build(model_cfg)


def _without_recipe(cfg: Config) -> dict:
    d = cfg.to_dict()
    for key in RECIPE_KEYS:
        d['model'].pop(key, None)
    return d


@pytest.mark.parametrize('kind,method', CONFIGS)
def test_config_builds_and_changes_only_the_recipe(kind, method):
    cfg, model = _build(_path(kind, method))
    assert 'pointdistiller_mm' in cfg.custom_imports['imports']
    assert type(model).__name__ == 'Distiller3D'
    (term, ) = model.distill_losses.keys()
    assert type(model.distill_losses[term]).__name__ == METHODS[method]
    assert 'teacher' not in dict(model.named_children())
    base = Config.fromfile(str(REPO / BASES[kind]))
    assert _without_recipe(cfg) == _without_recipe(base)


def _batch(cfg: Config, n_points: int = 4000, batch: int = 2) -> dict:
    """Random points in the config's range with one car per sample."""
    layer = cfg.model.student.data_preprocessor.voxel_layer
    lo, hi = np.split(np.array(layer.point_cloud_range, dtype=np.float32), 2)
    gen = torch.Generator().manual_seed(0)
    points, samples = [], []
    for _ in range(batch):
        xyz = torch.from_numpy(lo) + torch.rand(
            n_points, 3, generator=gen) * torch.from_numpy(hi - lo)
        points.append(torch.cat([xyz, torch.rand(n_points, 1,
                                                 generator=gen)], 1))
        sample = Det3DDataSample()
        sample.gt_instances_3d = InstanceData(
            bboxes_3d=LiDARInstance3DBoxes(
                torch.tensor([[15.0, 2.0, -1.7, 3.9, 1.6, 1.56, 0.3]])),
            labels_3d=torch.tensor([2]))
        samples.append(sample)
    return dict(inputs=dict(points=points), data_samples=samples)


@pytest.mark.parametrize('method', sorted(METHODS))
def test_demo_config_loss_step(method):
    """One training step: a finite distill term whose gradients reach the
    student and the distillation modules, never the teacher."""
    cfg, model = _build(_path('demo', method))
    model.init_weights()
    model.train()
    if method == 'sessd':  # a random teacher is confident nowhere
        model.distill_losses['sessd'].score_thr = 0.0
    data = model.data_preprocessor(_batch(cfg), True)
    losses = model.loss(**data)
    key = f'distill.loss_{method}'
    assert key in losses
    value = losses[key]
    assert torch.isfinite(value) and value.requires_grad
    total = sum(sum(v) if isinstance(v, list) else v
                for k, v in losses.items() if 'loss' in k)
    total.backward()
    student_grads = [p.grad for p in model.student.parameters()
                     if p.requires_grad]
    assert all(g is not None for g in student_grads)
    for name, p in model.distill_losses.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
    assert all(p.grad is None for p in model.teacher.parameters())


def test_losses_get_the_batch_data_samples():
    cfg, model = _build(_path('demo', 'fitnets'))
    model.train()
    loss = model.distill_losses['fitnets']
    assert model.distill_takes_samples['fitnets']
    seen = {}
    forward = loss.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return forward(*args, **kwargs)

    loss.forward = spy
    batch = _batch(cfg)
    data = model.data_preprocessor(batch, True)
    model.loss(**data)
    assert seen['data_samples'] is data['data_samples']


def test_ofd_margin_follows_the_teacher_bn():
    _, model = _build(_path('demo', 'ofd'))
    bn = model.teacher.backbone.blocks[0][10]
    from pointdistiller_mm.losses.baselines import bn_margin
    assert torch.allclose(model.distill_losses['ofd'].margin,
                          bn_margin(bn.weight, bn.bias))
    # the margin is saved with the distiller, the teacher is not
    state = model.state_dict()
    assert 'distill_losses.ofd.margin' in state
    assert not any(k.startswith('teacher') for k in state)


# ------------------------------------------------------------ end to end
@pytest.fixture(scope='module', params=['ofd', 'sessd'])
def trained(request, trained_teacher, tiny_kitti, tmp_path_factory):
    teacher_dir, _ = trained_teacher
    method = request.param
    work = tmp_path_factory.mktemp(f'{method}_e2e')
    proc = run_tool([
        'PYTHON', 'tools/train.py', _path('demo', method), '--work-dir',
        str(work), '--data-root', str(tiny_kitti), '--cfg-options',
        *FAST_OPTIONS, f'model.teacher.checkpoint={teacher_dir}'
    ])
    return method, work, proc


def test_baseline_trains_two_iterations(trained):
    method, work, proc = trained
    log = proc.stdout + proc.stderr
    values = [float(v) for v in re.findall(
        rf'distill\.loss_{method}: ([-+.\w]+)', log)]
    assert len(values) == 2 and all(math.isfinite(v) for v in values)
    assert 'Teacher loaded strictly from' in log
    state = CheckpointLoader.load_checkpoint(
        str(work / 'epoch_1.pth'), map_location='cpu')['state_dict']
    assert {k.split('.')[0] for k in state} <= {'student', 'distill_losses'}
    if method == 'ofd':
        assert 'distill_losses.ofd.margin' in state
        assert any(k.startswith('distill_losses.ofd.connector')
                   for k in state)
