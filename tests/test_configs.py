"""Every config under configs/ loads and builds; students have the widths of
the paper (every width divided by sqrt(compression)); distillation configs
are wired to the right features and teacher checkpoints.

Distillation configs are built with a random teacher
(``model.teacher.checkpoint=None``), so nothing is downloaded."""
import copy
import functools
import math
from pathlib import Path
from typing import Dict, Tuple

import mmdet3d
import numpy as np
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import nn

import pointdistiller_mm  # noqa: F401  (registers Distiller3D & co.)
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, LiDARInstance3DBoxes

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    str(p.relative_to(REPO)) for p in (REPO / 'configs').rglob('*.py')
    if '_base_' not in p.parts)
MMDET3D_CONFIGS = Path(mmdet3d.__file__).parent / '.mim' / 'configs'

PP_TEACHER = ('configs/pointdistiller/teachers/'
              'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py')
SECOND_TEACHER = ('configs/pointdistiller/teachers/'
                  'second_hv_secfpn_8xb6-80e_kitti-3d-3class.py')

# (student, its teacher, compression ratio): every width of the student is
# the teacher's divided by sqrt(ratio)
PAIRS = [
    ('configs/students/pointpillars_4x_kitti-3d-3class.py', PP_TEACHER, 4),
    ('configs/students/pointpillars_16x_kitti-3d-3class.py', PP_TEACHER, 16),
    ('configs/students/second_4x_kitti-3d-3class.py', SECOND_TEACHER, 4),
    ('configs/students/second_16x_kitti-3d-3class.py', SECOND_TEACHER, 16),
    ('configs/demo/pointpillars_4x_student.py',
     'configs/demo/pointpillars_teacher.py', 4),
    ('configs/demo/pointpillars_16x_student.py',
     'configs/demo/pointpillars_teacher.py', 16),
    ('configs/demo/second_4x_student.py', 'configs/demo/second_teacher.py',
     4),
]

# Layers whose width is fixed by the data or the task, not by the model
# size: the raw point features entering the first layer (4 for SECOND's
# sparse encoder, 10 for the pillar encoder) and the head's outputs.
FIXED_IN = ('voxel_encoder.pfn_layers.0.linear', 'middle_encoder.conv_input.0')
FIXED_OUT = ('bbox_head.conv_cls', 'bbox_head.conv_reg',
             'bbox_head.conv_dir_cls')

# Parameter counts of the paper (millions, rounded to 0.1 M)
PAPER_PARAMS_M = {
    PP_TEACHER: 4.8,
    'configs/students/pointpillars_4x_kitti-3d-3class.py': 1.3,
    'configs/students/pointpillars_16x_kitti-3d-3class.py': 0.3,
    SECOND_TEACHER: 5.3,
    'configs/students/second_4x_kitti-3d-3class.py': 1.4,
    'configs/students/second_16x_kitti-3d-3class.py': 0.4,
}

# PointDistiller recipes on KITTI: (teacher config, mmdet3d model-zoo name)
RECIPES = {
    'configs/pointdistiller/pointpillars_4x.py':
    (PP_TEACHER, 'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class'),
    'configs/pointdistiller/pointpillars_16x.py':
    (PP_TEACHER, 'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class'),
    'configs/pointdistiller/second_4x.py':
    (SECOND_TEACHER, 'second_hv_secfpn_8xb6-80e_kitti-3d-3class'),
    'configs/pointdistiller/second_16x.py':
    (SECOND_TEACHER, 'second_hv_secfpn_8xb6-80e_kitti-3d-3class'),
}


@pytest.fixture(autouse=True)
def mmdet3d_scope():
    init_default_scope('mmdet3d')


@functools.lru_cache(maxsize=None)
def load(path: str) -> Config:
    return Config.fromfile(str(REPO / path))


def model_cfg(path: str):
    # building changes the config in place (heads get train_cfg): a copy
    cfg = copy.deepcopy(load(path).model)
    if cfg.type == 'Distiller3D':
        cfg.teacher = dict(cfg.teacher, checkpoint=None)
    return cfg


@functools.lru_cache(maxsize=None)
def build(path: str) -> nn.Module:
    torch.manual_seed(0)
    return MODELS.build(model_cfg(path))


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def widths(model: nn.Module) -> Dict[str, Tuple[int, int]]:
    """(in, out) width of every conv / linear / norm layer, by name."""
    out = {}
    for name, m in model.named_modules():
        if hasattr(m, 'in_channels') and hasattr(m, 'out_channels') and \
                hasattr(m, 'weight'):
            out[name] = (m.in_channels, m.out_channels)
        elif isinstance(m, nn.Linear):
            out[name] = (m.in_features, m.out_features)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            out[name] = (m.num_features, m.num_features)
    return out


def test_config_list_is_complete():
    names = set(CONFIGS)
    for student, teacher, _ in PAIRS:
        assert {student, teacher} <= names
    assert set(RECIPES) <= names
    assert {'configs/demo/second_4x_pointdistiller.py',
            'configs/demo/pointpillars_16x_pointdistiller.py'} <= names


@pytest.mark.parametrize('path', CONFIGS)
def test_config_loads_and_model_builds(path):
    cfg = load(path)
    assert 'pointdistiller_mm' in cfg.custom_imports['imports']
    model = build(path)
    if cfg.model.type == 'Distiller3D':
        # the teacher is kept out of the distiller's modules
        assert 'teacher' not in dict(model.named_children())
        assert num_params(model.student) > 0
    else:
        assert num_params(model) > 0


@pytest.mark.parametrize('student,teacher,ratio', PAIRS)
def test_student_widths_are_teacher_widths_over_sqrt_ratio(
        student, teacher, ratio):
    s, t = widths(build(student)), widths(build(teacher))
    assert set(s) == set(t)  # same architecture, same layer names
    div = math.isqrt(ratio)
    for name, (t_in, t_out) in t.items():
        s_in, s_out = s[name]
        want_in = t_in if name in FIXED_IN else t_in // div
        want_out = t_out if name.startswith(FIXED_OUT) else t_out // div
        assert (s_in, s_out) == (want_in, want_out), name
    # and so the parameter count falls by about the ratio
    got = num_params(build(teacher)) / num_params(build(student))
    assert abs(got - ratio) / ratio < 0.05


@pytest.mark.parametrize('path,paper_m', sorted(PAPER_PARAMS_M.items()))
def test_parameter_counts_match_the_paper(path, paper_m):
    assert abs(num_params(build(path)) / 1e6 - paper_m) < 0.1


@pytest.mark.parametrize('path', sorted(RECIPES))
def test_recipe_teacher_is_the_stock_model_with_its_checkpoint(path):
    teacher_path, zoo_name = RECIPES[path]
    cfg = load(path)
    assert cfg.model.teacher.config == teacher_path
    stock = get_config(f'mmdet3d::{zoo_name.split("_")[0]}/{zoo_name}.py')
    ours = load(teacher_path).model.to_dict()
    ours.pop('_scope_', None)  # added when inheriting across packages
    assert ours == stock.model.to_dict()
    meta = yaml.safe_load(
        (MMDET3D_CONFIGS / zoo_name.split('_')[0] /
         'metafile.yml').read_text())
    weights = {m['Name']: m.get('Weights') for m in meta['Models']}
    assert cfg.model.teacher.checkpoint == weights[zoo_name]


@pytest.mark.parametrize('path', [
    'configs/pointdistiller/pointpillars_4x.py',
    'configs/pointdistiller/pointpillars_16x.py',
    'configs/pointdistiller/second_4x.py',
    'configs/pointdistiller/second_16x.py',
    'configs/demo/pointpillars_16x_pointdistiller.py',
    'configs/demo/second_4x_pointdistiller.py',
])
def test_distiller_student_matches_student_config(path):
    cfg = load(path)
    student = MODELS.build(copy.deepcopy(cfg.model.student))
    assert num_params(build(path).student) == num_params(student)


def _sparse_shape(pc_range, voxel_size):
    grid = np.round((np.array(pc_range[3:]) - np.array(pc_range[:3])) /
                    np.array(voxel_size)).astype(int)
    return [int(grid[2]) + 1, int(grid[1]), int(grid[0])]  # (z + 1, y, x)


def test_second_demo_grid_is_consistent():
    cfg = load('configs/demo/second_teacher.py').model
    layer = cfg.data_preprocessor.voxel_layer
    assert layer.point_cloud_range == [0, -20, -3, 40, 20, 1]
    assert layer.voxel_size == [0.05, 0.05, 0.1]
    # 40 m / 0.05 m = 800 cells in x and y, 4 m / 0.1 m = 40 in z (+1)
    assert cfg.middle_encoder.sparse_shape == [41, 800, 800]
    assert _sparse_shape(layer.point_cloud_range,
                         layer.voxel_size) == [41, 800, 800]
    for r in cfg.bbox_head.anchor_generator.ranges:
        assert [r[0], r[1], r[3], r[4]] == [0, -20, 40, 20]


@pytest.mark.parametrize('path', [p for p in CONFIGS if 'second' in p])
def test_second_sparse_shape_matches_voxel_grid(path):
    model = load(path).model
    model = model.student if model.type == 'Distiller3D' else model
    layer = model.data_preprocessor.voxel_layer
    assert model.middle_encoder.sparse_shape == _sparse_shape(
        layer.point_cloud_range, layer.voxel_size)


def _batch(path: str, n_points: int = 3000, batch: int = 2):
    """A random batch inside the config's point-cloud range, one car each."""
    model = load(path).model
    student = model.student if model.type == 'Distiller3D' else model
    lo, hi = np.split(
        np.array(student.data_preprocessor.voxel_layer.point_cloud_range,
                 dtype=np.float32), 2)
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


@pytest.mark.parametrize('path', [
    'configs/demo/pointpillars_16x_pointdistiller.py',
    'configs/demo/second_4x_pointdistiller.py',
])
def test_distiller_loss_runs_on_a_batch(path):
    """Recorded features fit the loss widths and every term is finite."""
    model = build(path)
    model.train()
    data = model.data_preprocessor(_batch(path), True)
    losses = model.loss(**data)
    terms = set(load(path).model.distill_terms)
    assert {f'distill.loss_{t}' for t in terms} <= set(losses)
    for term in terms:
        value = losses[f'distill.loss_{term}']
        assert torch.isfinite(value) and value.item() > 0, term
        assert value.requires_grad


def _recorded_width(model_cfg, recorder):
    """Channels of what a recorder picks up, for the sources these configs
    distil (pillar encoder output, backbone BEV maps); None for others."""
    if recorder.source == 'voxel_encoder' and recorder.get('index') is None:
        return model_cfg.voxel_encoder.feat_channels[-1]
    if recorder.source == 'backbone' and isinstance(recorder.get('index'),
                                                    int):
        return model_cfg.backbone.out_channels[recorder.index]
    return None


@pytest.mark.parametrize(
    'path', [p for p in CONFIGS if load(p).model.type == 'Distiller3D'])
def test_distill_term_widths_match_recorded_features(path):
    model = load(path).model
    teacher = load(model.teacher.config).model
    checked = 0
    for name, term in model.distill_terms.items():
        s_width = _recorded_width(model.student,
                                  model.student_recorders[term.student])
        t_width = _recorded_width(teacher,
                                  model.teacher_recorders[term.teacher])
        if s_width is None or t_width is None or \
                'student_channels' not in term.loss:
            continue
        assert term.loss.student_channels == s_width, name
        assert term.loss.teacher_channels == t_width, name
        checked += 1
    if not checked:
        pytest.skip('no term on a pillar-encoder or backbone-map feature')
