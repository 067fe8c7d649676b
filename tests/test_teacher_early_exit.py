"""EarlyExit: the teacher's forward stops once every recorder has its data,
only where that is exact (each recorded module called once)."""
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from torch import nn

from mmdet3d.registry import MODELS
from pointdistiller_mm.distillers.distiller3d import _clone_tensors
from pointdistiller_mm.distillers.early_exit import EarlyExit
from pointdistiller_mm.recorders import RecorderManager
from tests.test_distiller_e2e import DISTILL, _one_train_batch


class _Counted(nn.Module):
    """A linear layer that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.lin(x)


class _Chain(nn.Module):
    """a -> b -> c; with ``repeat_b`` b runs twice."""

    def __init__(self, repeat_b: bool = False) -> None:
        super().__init__()
        self.a, self.b, self.c = _Counted(), _Counted(), _Counted()
        self.repeat_b = repeat_b

    def forward(self, x):
        x = self.b(self.a(x))
        if self.repeat_b:
            x = self.b(x)
        return self.c(x)


def _run(model, recorders, exit_, x):
    with torch.no_grad(), recorders:
        exit_(lambda: model(x))


def test_stops_after_the_last_recorded_module_from_the_second_forward():
    torch.manual_seed(0)
    model, x = _Chain(), torch.randn(2, 3)
    recorders = RecorderManager(
        dict(first=dict(source='a'), second=dict(source='b')), model)
    exit_ = EarlyExit(model, recorders)
    assert exit_.active is None
    _run(model, recorders, exit_, x)  # counting forward: runs to the end
    assert exit_.active is True and exit_.calls == dict(first=1, second=1)
    assert (model.a.calls, model.b.calls, model.c.calls) == (1, 1, 1)
    full = recorders.get('second').clone()
    _run(model, recorders, exit_, x)
    assert (model.a.calls, model.b.calls, model.c.calls) == (2, 2, 1)
    assert torch.equal(recorders.get('second'), full)
    assert torch.equal(recorders.get('first'), model.a.lin(x).detach())


def test_input_recorder_stops_before_its_module_runs():
    model, x = _Chain(), torch.randn(2, 3)
    recorders = RecorderManager(
        dict(into_c=dict(source='c', record='input', index=0)), model)
    exit_ = EarlyExit(model, recorders)
    _run(model, recorders, exit_, x)
    _run(model, recorders, exit_, x)
    assert (model.a.calls, model.b.calls, model.c.calls) == (2, 2, 1)
    with torch.no_grad():
        expected = model.b(model.a(x))
    assert torch.equal(recorders.get('into_c'), expected)


def test_module_called_twice_keeps_the_full_forward():
    """A recorder keeps the last call: stopping at the first would record
    the wrong one, so early exit stays off."""
    model, x = _Chain(repeat_b=True), torch.randn(2, 3)
    recorders = RecorderManager(dict(mid=dict(source='b')), model)
    exit_ = EarlyExit(model, recorders)
    for _ in range(2):
        _run(model, recorders, exit_, x)
    assert exit_.active is False and exit_.calls == dict(mid=2)
    assert model.c.calls == 2
    with torch.no_grad():
        expected = model.b(model.b(model.a(x)))
    assert torch.equal(recorders.get('mid'), expected)


@pytest.mark.parametrize('kwargs,recorder', [
    (dict(enabled=False), dict(source='a')),
    (dict(), dict(source='a', keep_all=True)),
])
def test_disabled_or_keep_all_runs_everything(kwargs, recorder):
    model, x = _Chain(), torch.randn(2, 3)
    recorders = RecorderManager(dict(r=recorder), model)
    exit_ = EarlyExit(model, recorders, **kwargs)
    for _ in range(3):
        _run(model, recorders, exit_, x)
    assert model.c.calls == 3 and exit_.active is False


def test_distiller_loss_is_the_same_with_and_without_early_exit(tiny_kitti):
    """PointPillars PointDistiller: the teacher stops after its pillar
    encoder, and the losses equal those of the full teacher forward."""
    from pointdistiller_mm.utils import load_config, replace_data_root
    init_default_scope('mmdet3d')
    cfg = load_config(DISTILL)
    replace_data_root(cfg, str(tiny_kitti))
    cfg.model.teacher.checkpoint = None
    cfg.model.distill_terms.pillars.loss.update(num_samples=300, k=8)
    batch = _one_train_batch(cfg)
    losses = {}
    for early in (True, False):
        torch.manual_seed(0)
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.teacher_early_exit = early
        distiller = MODELS.build(model_cfg)
        distiller.train()
        teacher = distiller.teacher
        backbone_calls = []
        teacher.backbone.register_forward_hook(
            lambda *a: backbone_calls.append(1))
        data = distiller.data_preprocessor(copy.copy(batch), True)
        for _ in range(2):  # the first forward counts calls, runs in full
            torch.manual_seed(1)
            out = distiller.loss(_clone_tensors(data['inputs']),
                                 data['data_samples'])
        losses[early] = out
        assert len(backbone_calls) == (1 if early else 2)
        assert distiller.teacher_exit.active is early
    assert losses[True].keys() == losses[False].keys()
    for key, value in losses[True].items():
        other = losses[False][key]
        if isinstance(value, (list, tuple)):
            assert all(torch.equal(a, b) for a, b in zip(value, other)), key
        else:
            assert torch.equal(value, other), key
