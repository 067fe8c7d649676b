"""BackgroundCall and Distiller3D(concurrent_teacher=True): the teacher's
forward in a second thread gives the same losses and gradients, bit for
bit, as the teacher run first in the caller's thread."""
import threading

import pytest
import torch
from mmengine.registry import init_default_scope

from mmdet3d.registry import MODELS
from pointdistiller_mm.distillers.background import BackgroundCall
from tests.test_distiller_e2e import DISTILL, _one_train_batch


def test_runs_in_another_thread_and_joins_at_the_end():
    seen = []
    gate = threading.Event()

    def fn():
        gate.wait(10)
        seen.append(threading.current_thread().name)

    with BackgroundCall(fn, name='teacher-forward'):
        assert seen == []  # still waiting: the caller went on
        gate.set()
    assert seen == ['teacher-forward']


def test_disabled_runs_at_the_start_in_the_callers_thread():
    seen = []
    with BackgroundCall(lambda: seen.append(threading.current_thread()),
                        enabled=False):
        assert seen == [threading.current_thread()]
    assert len(seen) == 1


def test_the_threads_exception_is_raised_in_the_caller():

    def fn():
        raise ValueError('teacher failed')

    with pytest.raises(ValueError, match='teacher failed'):
        with BackgroundCall(fn):
            pass


def test_the_callers_exception_wins_and_the_thread_is_joined():
    done = threading.Event()

    def fn():
        done.wait(0.2)
        done.set()
        raise ValueError('teacher failed')

    with pytest.raises(KeyError):
        with BackgroundCall(fn):
            raise KeyError('student failed')
    assert done.is_set()


def test_grad_mode_autocast_and_threads_follow_the_caller():
    state = {}

    def fn():
        state['threads'] = torch.get_num_threads()
        state['grad'] = torch.is_grad_enabled()
        state['autocast'] = torch.is_autocast_enabled('cpu')
        state['dtype'] = torch.get_autocast_dtype('cpu')

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
            with BackgroundCall(fn):
                pass
    finally:
        torch.set_num_threads(threads)
    # intra-op threads: torch's setting, not the thread's OpenMP default
    assert state == dict(threads=1, grad=False, autocast=True,
                         dtype=torch.bfloat16)
    with BackgroundCall(fn):
        pass
    assert state['grad'] is True and state['autocast'] is False


def _losses_and_grads(distiller, data):
    distiller.zero_grad(set_to_none=True)
    losses = distiller.loss(data['inputs'], data['data_samples'])
    total, _ = distiller.parse_losses(losses)
    total.backward()
    grads = {n: p.grad.clone() for n, p in distiller.named_parameters()
             if p.grad is not None}
    return {k: v.detach().clone() if torch.is_tensor(v) else v
            for k, v in losses.items()}, grads


def test_distiller_losses_and_grads_equal_bit_for_bit(tiny_kitti):
    from pointdistiller_mm.utils import load_config, replace_data_root
    init_default_scope('mmdet3d')
    torch.manual_seed(0)
    cfg = load_config(DISTILL)
    replace_data_root(cfg, str(tiny_kitti))
    cfg.model.teacher.checkpoint = None
    distiller = MODELS.build(cfg.model)
    distiller.train()
    batch = _one_train_batch(cfg)

    def step(concurrent):
        distiller.concurrent_teacher = concurrent
        data = distiller.data_preprocessor(batch, True)
        return _losses_and_grads(distiller, data)

    step(False)  # the teacher's first forward counts calls (EarlyExit)
    assert distiller.teacher_exit.active is True
    losses_seq, grads_seq = step(False)
    losses_bg, grads_bg = step(True)
    assert any(k.startswith('distill.') for k in losses_bg)
    assert losses_seq.keys() == losses_bg.keys()
    for k in losses_seq:
        a, b = losses_seq[k], losses_bg[k]
        if torch.is_tensor(a):
            assert torch.equal(a, b), k
        else:
            assert all(torch.equal(x, y) for x, y in zip(a, b)), k
    assert grads_seq.keys() == grads_bg.keys() and grads_seq
    for n in grads_seq:
        assert torch.equal(grads_seq[n], grads_bg[n]), n
