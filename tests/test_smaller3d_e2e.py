"""Smaller3D end to end: the Distiller3D wrapper on MinkUNet (alpha scaling
of the task loss, the KD / feature terms on real recorded maps), the
W32 / W16 / W8 channel plans and parameter ratios, and a few iterations of
the demo distillation config through tools/train.py and tools/test.py."""
import re

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config

import pointdistiller_mm  # noqa: F401
import projects.Smaller3D.smaller3d  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.structures import Det3DDataSample, PointData
from mmdet3d.utils import register_all_modules

from .conftest import FAST_OPTIONS, run_tool

CFG = 'projects/Smaller3D/configs'
DEMO = f'{CFG}/demo'


def _batch(seed=0, num_points=(4000, 3000)):
    gen = torch.Generator().manual_seed(seed)
    points, samples = [], []
    for n in num_points:
        points.append(torch.rand(n, 4, generator=gen) * torch.tensor(
            [16.0, 16.0, 4.0, 1.0]) - torch.tensor([8.0, 8.0, 2.0, 0.0]))
        s = Det3DDataSample()
        s.gt_pts_seg = PointData(
            pts_semantic_mask=torch.randint(0, 20, (n, ), generator=gen))
        samples.append(s)
    return dict(inputs=dict(points=points), data_samples=samples)


def _distiller(config):
    register_all_modules()
    cfg = Config.fromfile(config)
    cfg.model.teacher.checkpoint = None  # random teacher: wiring only
    torch.manual_seed(0)
    return MODELS.build(cfg.model)


def test_wrapper_terms_and_alpha_scaling():
    model = _distiller(f'{DEMO}/smaller3d_w8_a05_enc-dec_demo.py')
    model.train()
    data = model.data_preprocessor(_batch(), training=True)
    inputs, samples = data['inputs'], data['data_samples']
    losses = model.loss(inputs, samples)
    assert set(losses) == {'student.loss_sem_seg', 'distill.loss_kd',
                           'distill.loss_encoder', 'distill.loss_decoder'}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    # alpha = 0.5 scales the student's own loss (same weights, same batch)
    plain = model.student.loss(inputs, samples)['loss_sem_seg']
    assert losses['student.loss_sem_seg'].item() == pytest.approx(
        0.5 * plain.item(), rel=1e-5)
    # the KD term against a direct computation on both models' logits
    with torch.no_grad():
        s_logits = model.student._forward(inputs)
        t_logits = model.teacher._forward(inputs)
    log_p_t = F.log_softmax(t_logits, -1)
    kl = (log_p_t.exp() * (log_p_t - F.log_softmax(s_logits, -1))).sum(-1)
    assert losses['distill.loss_kd'].item() == pytest.approx(
        0.5 * kl.mean().item(), rel=1e-4)
    # gradients reach the student and the connectors, never the teacher
    sum(losses.values()).backward()
    for name in ('encoder', 'decoder'):
        w = model.distill_losses[name].connector.linear.weight
        assert w.grad is not None and w.grad.abs().sum() > 0
    assert model.student.backbone.conv_input[0][0].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    # checkpoints hold student + connectors, not the teacher
    keys = model.state_dict().keys()
    assert any(k.startswith('distill_losses.encoder.connector') for k in keys)
    assert not any(k.startswith('teacher') for k in keys)
    # distillation switched off: the student's loss is not scaled
    model.distill_loss_scale = 0.0
    off = model.loss(inputs, samples)
    assert set(off) == {'student.loss_sem_seg'}
    assert off['student.loss_sem_seg'].item() == pytest.approx(plain.item(),
                                                               rel=1e-5)


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_channel_plans_and_parameter_ratios():
    register_all_modules()
    nets = {}
    for width in ('w32', 'w16', 'w8'):
        cfg = Config.fromfile(
            f'{CFG}/minkunet34_{width}_spconv_8xb2-laser-polar-mix-3x_'
            'semantickitti.py')
        nets[width] = (cfg.model, _params(MODELS.build(cfg.model)))
    t = nets['w32'][0]
    for width, div in (('w16', 2), ('w8', 4)):
        s = nets[width][0]
        assert s.backbone.base_channels * div == t.backbone.base_channels
        assert [c * div for c in s.backbone.encoder_channels] == \
            t.backbone.encoder_channels
        assert [c * div for c in s.backbone.decoder_channels] == \
            t.backbone.decoder_channels
        assert s.decode_head.channels * div == t.decode_head.channels
        assert s.backbone.encoder_blocks == t.backbone.encoder_blocks
    ratio16 = nets['w32'][1] / nets['w16'][1]
    ratio8 = nets['w32'][1] / nets['w8'][1]
    assert 3.8 < ratio16 < 4.1 and 14.5 < ratio8 < 16.5, (ratio16, ratio8)


@pytest.mark.parametrize('config', [
    'smaller3d_w16_a1_semantickitti.py', 'smaller3d_w16_a05_semantickitti.py',
    'smaller3d_w16_a05_dec_semantickitti.py',
    'smaller3d_w16_a05_enc-dec_semantickitti.py',
    'smaller3d_w16_official_enc-dec_semantickitti.py',
    'smaller3d_w8_a1_semantickitti.py',
    'smaller3d_w8_a05_enc-dec_semantickitti.py'
])
def test_real_configs_build_their_terms(config):
    """Every real-SemanticKITTI recipe builds (random teacher) and its
    feature losses fit the student / teacher widths."""
    model = _distiller(f'{CFG}/{config}')
    for name, loss in model.distill_losses.items():
        if name in ('encoder', 'decoder'):
            stage = model.student.backbone.encoder[3] if name == 'encoder' \
                else model.student.backbone.decoder[3][1]
            assert loss.student_channels in {
                p.shape[0] for p in stage.parameters()}
    kd = model.distill_losses['kd']
    paper = Config.fromfile(f'{CFG}/{config}').model.distill_terms.kd.loss
    assert kd.task_loss_weight == (paper.alpha if paper.form == 'paper'
                                   else 0.0)


def test_demo_distillation_train_and_test(tiny_semantickitti, tmp_path):
    """Demo teacher (2 iterations), then the full W16 recipe (KD + encoder +
    decoder, 2 iterations) from it through tools/train.py, then
    tools/test.py on the distilled student, which prints mIoU."""
    teacher = tmp_path / 'teacher'
    # one epoch (2 steps), at most 4,000 voxels per training scan (mmdet3d's
    # random voxel subsampling). One OpenMP thread: spconv's CPU kernels slow
    # down by an order of magnitude with two threads on a busy 2-core machine.
    fast = [o for o in FAST_OPTIONS if 'times' not in o] + [
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=1']
    run_tool(['PYTHON', 'tools/train.py',
              f'{DEMO}/minkunet34_w32_teacher_demo.py', '--work-dir',
              str(teacher), '--data-root', str(tiny_semantickitti),
              '--cfg-options', 'model.data_preprocessor.max_voxels=4000',
              *fast], threads=1)
    student = tmp_path / 'student'
    recipe = f'{DEMO}/smaller3d_w16_a05_enc-dec_demo.py'
    proc = run_tool([
        'PYTHON', 'tools/train.py', recipe, '--work-dir', str(student),
        '--data-root', str(tiny_semantickitti),
        '--cfg-options', f'model.teacher.checkpoint={teacher}',
        'model.student.data_preprocessor.max_voxels=4000', *fast],
        threads=1)
    log = proc.stdout + proc.stderr
    assert 'Teacher loaded strictly' in log
    for key in ('student.loss_sem_seg', 'distill.loss_kd',
                'distill.loss_encoder', 'distill.loss_decoder'):
        assert re.search(rf'{re.escape(key)}: [0-9.]+', log), key
    ckpt = student / 'epoch_1.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert not any(k.startswith('teacher') for k in state['state_dict'])
    test = run_tool([
        'PYTHON', 'tools/test.py', recipe, str(ckpt), '--data-root',
        str(tiny_semantickitti), '--cfg-options',
        f'model.teacher.checkpoint={teacher}', 'test_dataloader.num_workers=0',
        'test_dataloader.persistent_workers=False'], threads=1)
    out = test.stdout + test.stderr
    match = re.search(r'miou: ([0-9.]+)', out)
    assert match, out[-3000:]
    assert 0.0 <= float(match.group(1)) <= 1.0
