"""PointRCNN students, recipes and demo configs: widths are the teacher's
over sqrt(ratio) (rounded), the FP neck gives 45 / 32 channels, parameter
counts are the paper's, and the recipes distil the FP-neck points of
mmdet3d's stock PointRCNN with its published checkpoint."""
import math
from pathlib import Path

import mmdet3d
import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import pointdistiller_mm  # noqa: F401
from mmdet3d.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
TEACHER = 'configs/pointdistiller/teachers/point-rcnn_8xb2_kitti-3d-3class.py'
STUDENTS = {8: 'configs/students/pointrcnn_8x_kitti-3d-3class.py',
            16: 'configs/students/pointrcnn_16x_kitti-3d-3class.py'}
FP_OUT = {8: 45, 16: 32}
PAPER_PARAMS_M = {8: 0.5, 16: 0.3}
# output widths fixed by the task: classes and box codes of both heads
FIXED_OUT = ('rpn_head.cls_layers.6', 'rpn_head.reg_layers.6',
             'roi_head.bbox_head.conv_cls', 'roi_head.bbox_head.conv_reg')


def load(path):
    return Config.fromfile(str(REPO / path))


def build(path):
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    return MODELS.build(load(path).model)


def layer_widths(model: nn.Module):
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            out[name] = (m.in_channels, m.out_channels)
        elif isinstance(m, nn.Linear):
            out[name] = (m.in_features, m.out_features)
    return out


@pytest.fixture(scope='module')
def teacher():
    return build(TEACHER)


@pytest.mark.parametrize('ratio', [8, 16])
def test_student_widths_and_parameters(teacher, ratio):
    student = build(STUDENTS[ratio])
    t, s = layer_widths(teacher), layer_widths(student)
    assert set(t) == set(s)  # same layers: same depth and architecture
    scale = math.sqrt(ratio)
    for name, (_, t_out) in t.items():
        want = t_out if name in FIXED_OUT else round(t_out / scale)
        assert s[name][1] == want, name
    assert student.neck.FP_modules[-1].mlps[-1].conv.out_channels == \
        FP_OUT[ratio]
    params_m = sum(p.numel() for p in student.parameters()) / 1e6
    assert abs(params_m - PAPER_PARAMS_M[ratio]) < 0.1
    t_params = sum(p.numel() for p in teacher.parameters()) / 1e6
    assert abs(t_params - 4.1) < 0.1


@pytest.mark.parametrize('ratio', [8, 16])
def test_recipe_wiring(ratio):
    cfg = load(f'configs/pointdistiller/pointrcnn_{ratio}x.py').model
    assert cfg.type == 'Distiller3D' and cfg.teacher.config == TEACHER
    meta = yaml.safe_load(
        (Path(mmdet3d.__file__).parent / '.mim/configs/point_rcnn/'
         'metafile.yml').read_text())
    assert cfg.teacher.checkpoint == meta['Models'][0]['Weights']
    term = cfg.distill_terms.points
    assert term.rows.type == 'PointRows'
    assert cfg.student_recorders.points.source == 'neck'
    assert cfg.teacher_recorders.points.source == 'neck'
    loss = term.loss
    assert (loss.student_channels, loss.teacher_channels) == (FP_OUT[ratio],
                                                              128)
    assert loss.phi_source == 'teacher_graph' and loss.reweight
    assert (loss.num_samples, loss.k, loss.aggregation) == (6000, 128, 'max')
    student = load(STUDENTS[ratio]).model
    assert cfg.student.neck.fp_channels == student.neck.fp_channels


def test_demo_configs_share_the_student_and_teacher_widths():
    demo = load('configs/demo/pointrcnn_8x_student.py').model
    real = load(STUDENTS[8]).model
    assert demo.backbone.sa_channels == real.backbone.sa_channels
    assert demo.neck == real.neck and demo.rpn_head == real.rpn_head
    # the RoI head: same layers, fewer SA centres per RoI (a demo field)
    demo_head = demo.roi_head.bbox_head.to_dict()
    real_head = real.roi_head.bbox_head.to_dict()
    assert demo_head.pop('num_points') == (64, 16, -1)
    assert real_head.pop('num_points') == (128, 32, -1)
    assert demo_head == real_head
    kd = load('configs/demo/pointrcnn_8x_pointdistiller.py').model
    assert kd.teacher.config == 'configs/demo/pointrcnn_teacher.py'
    assert kd.distill_terms.points.loss.student_channels == 45


def test_demo_base_fields_reach_the_model():
    """The demo's point, proposal and RoI counts are config fields that
    set the model; the real-KITTI configs keep the stock values."""
    for path in ('configs/demo/pointrcnn_teacher.py',
                 'configs/demo/pointrcnn_8x_student.py'):
        cfg = load(path)
        model = cfg.model
        assert model.backbone.num_points == cfg.sa_num_points
        assert model.roi_head.bbox_head.num_points == cfg.roi_sa_points
        assert model.roi_head.bbox_roi_extractor.roi_layer.\
            num_sampled_points == cfg.roi_points
        proposal = model.train_cfg.rpn.rpn_proposal
        assert (proposal.nms_pre, proposal.nms_post) == (cfg.rpn_nms_pre,
                                                         cfg.train_rois)
        assert model.train_cfg.rcnn.sampler.num == cfg.roi_samples
        nms = model.test_cfg.rpn.nms_cfg
        assert (nms.nms_pre, nms.nms_post) == (cfg.rpn_nms_pre,
                                               cfg.test_rois)
        assert cfg.train_rois <= cfg.rpn_nms_pre
        assert cfg.roi_sa_points[0] <= cfg.roi_points
        assert cfg.train_cfg.max_epochs == cfg.epoch_num
        assert cfg.train_cfg.val_interval == cfg.val_interval
        assert cfg.train_dataloader.dataset.times == cfg.repeat_times
    for path in (TEACHER, *STUDENTS.values()):
        model = load(path).model
        assert model.roi_head.bbox_head.num_points == (128, 32, -1)
        assert model.roi_head.bbox_roi_extractor.roi_layer.\
            num_sampled_points == 512
        assert model.train_cfg.rcnn.sampler.num == 128
        assert model.train_cfg.rpn.rpn_proposal.nms_pre == 9000


def test_demo_schedule_never_exceeds_base_lr():
    """The demo schedule warms up to the optimizer's lr and decays from it;
    no scheduler multiplies it (mmdet3d's cyclic schedule peaks at ten times
    lr, which made the short demo runs diverge)."""
    cfg = load('configs/demo/pointrcnn_teacher.py')
    assert cfg.optim_wrapper.optimizer.lr == cfg.lr
    warmup, cosine = cfg.param_scheduler
    assert warmup.type == 'LinearLR' and warmup.start_factor < 1
    assert (warmup.begin, warmup.end) == (0, cfg.warmup_iters)
    assert warmup.by_epoch is False
    assert cosine.type == 'CosineAnnealingLR'
    assert cosine.eta_min < cfg.lr
    assert (cosine.begin, cosine.end) == (0, cfg.epoch_num)
    steps_per_epoch = cfg.repeat_times * 64 // cfg.batch_size
    assert cfg.warmup_iters < steps_per_epoch * cfg.epoch_num // 4
