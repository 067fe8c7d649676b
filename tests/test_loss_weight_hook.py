"""Tests of DistillLossWeightHook: schedule values, validation, a real
mmengine Runner (log line, model attribute) and exact resume."""
import glob
import math
import os.path as osp
import uuid

import pytest
import torch
import torch.nn as nn
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

from mmdet3d.registry import HOOKS
from pointdistiller_mm.hooks import (DistillLossWeightHook,
                                     DistillWeightSchedule)

# ----------------------------------------------------------------- schedule


def test_constant():
    s = DistillWeightSchedule(base_weight=2.5)
    assert [s.weight(i) for i in (0, 1, 1000)] == [2.5, 2.5, 2.5]


def test_linear_warmup_iters():
    s = DistillWeightSchedule(
        base_weight=2.0, warmup='linear', warmup_length=10, warmup_ratio=0.0)
    assert s.weight(0) == 0.0
    assert s.weight(5) == pytest.approx(1.0)
    assert s.weight(9) == pytest.approx(1.8)
    assert s.weight(10) == 2.0
    assert s.weight(50) == 2.0
    s = DistillWeightSchedule(
        warmup='linear', warmup_length=4, warmup_ratio=0.2)
    # 0.2 + 0.8 * t / 4
    assert [s.weight(i) for i in range(5)] == pytest.approx(
        [0.2, 0.4, 0.6, 0.8, 1.0])


def test_linear_warmup_epochs_is_fractional():
    s = DistillWeightSchedule(
        by_epoch=True, warmup='linear', warmup_length=2)
    # 4 iterations per epoch: iteration 6 is epoch 1.5 -> 1.5 / 2
    assert s.weight(6, iters_per_epoch=4) == pytest.approx(0.75)
    assert s.weight(8, iters_per_epoch=4) == 1.0


def test_cosine():
    s = DistillWeightSchedule(mode='cosine', end=100)
    assert s.weight(0) == 1.0
    assert s.weight(25) == pytest.approx((1 + math.cos(math.pi / 4)) / 2)
    assert s.weight(25) == pytest.approx(0.8535533906)
    assert s.weight(50) == pytest.approx(0.5)
    assert s.weight(100) == pytest.approx(0.0)
    assert s.weight(150) == pytest.approx(0.0)
    s = DistillWeightSchedule(
        mode='cosine', base_weight=3.0, begin=10, end=30, min_weight=1.0)
    assert s.weight(5) == 3.0
    assert s.weight(20) == pytest.approx(2.0)  # 1 + 2 * (1 + cos(pi/2)) / 2
    assert s.weight(40) == pytest.approx(1.0)


def test_step():
    s = DistillWeightSchedule(mode='step', milestones=[3, 6], gamma=0.5)
    assert [s.weight(i) for i in range(8)] == [1, 1, 1, .5, .5, .5, .25, .25]
    s = DistillWeightSchedule(mode='step', milestones=[2], by_epoch=True)
    assert s.weight(19, iters_per_epoch=10) == 1.0
    assert s.weight(20, iters_per_epoch=10) == pytest.approx(0.1)


def test_warmup_then_cosine():
    s = DistillWeightSchedule(
        mode='cosine', warmup='linear', warmup_length=10, end=30)
    assert s.cosine_begin == 10
    assert s.weight(5) == pytest.approx(0.5)   # warm-up, no decay yet
    assert s.weight(10) == pytest.approx(1.0)
    assert s.weight(20) == pytest.approx(0.5)  # half way from 10 to 30
    assert s.weight(30) == pytest.approx(0.0)


def test_warmup_then_step():
    s = DistillWeightSchedule(
        mode='step', warmup='linear', warmup_length=4, milestones=[6],
        gamma=0.5)
    assert [s.weight(i) for i in range(8)] == pytest.approx(
        [0, .25, .5, .75, 1, 1, .5, .5])


def test_stop_iter_and_stop_epoch():
    s = DistillWeightSchedule(stop_iter=3)
    assert [s.weight(i) for i in range(5)] == [1, 1, 1, 0, 0]
    s = DistillWeightSchedule(stop_epoch=2)
    assert s.weight(7, iters_per_epoch=4) == 1.0
    assert s.weight(8, iters_per_epoch=4) == 0.0
    s = DistillWeightSchedule(stop_iter=100, stop_epoch=2)  # first one wins
    assert s.weight(8, iters_per_epoch=4) == 0.0
    s = DistillWeightSchedule(
        mode='cosine', end=10, warmup='linear', warmup_length=2, stop_iter=6)
    assert s.weight(5) > 0 and s.weight(6) == 0.0


@pytest.mark.parametrize(
    'kwargs, message',
    [
        (dict(mode='linear'), "unknown mode 'linear'"),
        (dict(warmup='exp', warmup_length=2), "unknown warmup 'exp'"),
        (dict(base_weight=-1), 'base_weight must be a number >= 0'),
        (dict(warmup='linear', warmup_length=-3), 'warmup_length must be'),
        (dict(warmup='linear'), 'needs warmup_length > 0'),
        (dict(warmup_length=5), "set warmup='linear'"),
        (dict(warmup='linear', warmup_length=2, warmup_ratio=1.5),
         r'warmup_ratio must be in \[0, 1\]'),
        (dict(warmup='linear', warmup_length=10, stop_iter=10),
         'warm-up of 10 iterations does not end before distillation stops '
         r'\(stop_iter=10'),
        (dict(by_epoch=True, warmup='linear', warmup_length=3, stop_epoch=2),
         'warm-up of 3 epochs does not end'),
        (dict(stop_iter=0), 'stop_iter must be an int > 0'),
        (dict(stop_epoch=1.5), 'stop_epoch must be an int > 0'),
        (dict(mode='step'), "mode='step' needs milestones"),
        (dict(mode='step', milestones=[5, 3]), 'strictly increasing'),
        (dict(mode='step', milestones=[5], gamma=2.0),
         r'gamma must be in \(0, 1\]'),
        (dict(milestones=[5]), "milestones only applies to mode='step'"),
        (dict(mode='step', milestones=[1], end=5),
         "end only applies to mode='cosine'"),
        (dict(mode='cosine', begin=10, end=5), r'cosine end \(5\) must be'),
        (dict(mode='cosine', min_weight=2.0), r'min_weight \(2.0\) must not'),
    ])
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistillWeightSchedule(**kwargs)
    with pytest.raises(ValueError, match=message):
        DistillLossWeightHook(**kwargs)


def test_cross_unit_check_needs_run_length():
    s = DistillWeightSchedule(warmup='linear', warmup_length=50, stop_epoch=2)
    with pytest.raises(ValueError, match=r'stop_epoch=2, at 40 iterations'):
        s.with_run(max_iters=100, max_epochs=5, iters_per_epoch=20)
    assert s.with_run(max_iters=100, max_epochs=5, iters_per_epoch=30)


# ------------------------------------------------------------ real runner


class ToyDataset(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, idx):
        return dict(inputs=torch.full((2, ), float(idx)))


class ToyDistiller(BaseModel):
    """Consumes ``distill_loss_scale`` as the distiller does."""

    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.distill_loss_scale = 1.0
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.seen.append(self.distill_loss_scale)
        out = self.layer(inputs)
        return dict(
            loss_task=out.pow(2).mean(),
            loss_distill=self.distill_loss_scale * out.abs().mean())


class PlainModel(ToyDistiller):

    def __init__(self):
        super().__init__()
        del self.distill_loss_scale

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss_task=self.layer(inputs).pow(2).mean())


def make_runner(work_dir, hook_cfg, model=None, by_epoch=False,
                **kwargs) -> Runner:
    loop = dict(by_epoch=True, max_epochs=2) if by_epoch else dict(
        by_epoch=False, max_iters=4)
    return Runner(
        model=model if model is not None else ToyDistiller(),
        work_dir=str(work_dir),
        experiment_name=f'hook_test_{uuid.uuid4().hex}',
        train_dataloader=dict(
            dataset=ToyDataset(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=2,
            num_workers=0,
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=loop,
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(
                type='CheckpointHook', interval=1 if by_epoch else 2,
                by_epoch=by_epoch)),
        custom_hooks=[hook_cfg],
        log_processor=dict(by_epoch=by_epoch),
        default_scope='mmdet3d',
        **kwargs)


def read_log(work_dir) -> str:
    (path, ) = glob.glob(osp.join(str(work_dir), '*', '*.log'))
    with open(path) as f:
        return f.read()


def test_registered_in_mmdet3d_hooks():
    assert HOOKS.get('DistillLossWeightHook') is DistillLossWeightHook


def test_runner_sets_model_attribute_and_logs_weight(tmp_path):
    # 2 iterations per epoch, warm-up over 1 epoch: t = 0, .5, 1, 1.5
    hook = dict(
        type='DistillLossWeightHook', by_epoch=True, warmup='linear',
        warmup_length=1, warmup_ratio=0.2)
    runner = make_runner(tmp_path, hook, by_epoch=True)
    runner.train()
    assert runner.model.seen == pytest.approx([0.2, 0.6, 1.0, 1.0])
    log = read_log(tmp_path)
    assert 'distill_weight: 0.2000' in log
    assert 'distill_weight: 0.6000' in log
    assert log.count('distill_weight: 1.0000') == 2
    hub = runner.message_hub.get_scalar('train/distill_weight')
    assert hub.current() == 1.0


@pytest.mark.parametrize('by_epoch', [False, True])
def test_resume_continues_the_schedule(tmp_path, monkeypatch, by_epoch):
    # mmengine 0.10.7 calls torch.load without weights_only, and torch >= 2.6
    # then refuses mmengine's own checkpoints (message hub HistoryBuffer,
    # numpy arrays). Checkpoints written by this very test are trusted.
    monkeypatch.setenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
    if by_epoch:  # 2 iterations per epoch: t = 0, .5, 1, 1.5 -> 0, 1, .75, .25
        hook = dict(type='DistillLossWeightHook', by_epoch=True,
                    mode='cosine', warmup='linear', warmup_length=0.5)
        ckpt = 'epoch_1.pth'
    else:
        hook = dict(type='DistillLossWeightHook', warmup='linear',
                    warmup_length=4, mode='step', milestones=[3], gamma=0.5)
        ckpt = 'iter_2.pth'
    full = make_runner(tmp_path / 'full', hook, by_epoch=by_epoch)
    full.train()
    expected = full.model.seen
    assert len(set(expected)) == 4  # the schedule changes every iteration

    resumed = make_runner(
        tmp_path / 'resumed', hook, by_epoch=by_epoch,
        load_from=str(tmp_path / 'full' / ckpt), resume=True)
    resumed.train()
    assert resumed.model.seen == pytest.approx(expected[2:])
    log = read_log(tmp_path / 'resumed')
    assert f'distill_weight: {expected[2]:.4f}' in log


def test_model_without_scale_attribute_fails_early(tmp_path):
    runner = make_runner(
        tmp_path, dict(type='DistillLossWeightHook'), model=PlainModel())
    with pytest.raises(AttributeError, match="no attribute "
                       "'distill_loss_scale'"):
        runner.train()
