"""MallocTrimHook: glibc's malloc_trim every `interval` training iterations
and after validation / test; registered for configs."""
from types import SimpleNamespace

import pytest
from mmengine.config import Config

import pointdistiller_mm  # noqa: F401
from pointdistiller_mm.hooks import MallocTrimHook
from pointdistiller_mm.hooks import malloc_trim_hook


def test_calls_every_interval(monkeypatch):
    calls = []
    monkeypatch.setattr(malloc_trim_hook, 'malloc_trim',
                        lambda: calls.append(1) or True)
    hook = MallocTrimHook(interval=3)
    for it in range(10):  # runner.iter is the index of the finished step
        hook.after_train_iter(SimpleNamespace(iter=it), batch_idx=it)
    assert len(calls) == 3  # after steps 3, 6 and 9
    hook.after_val_epoch(SimpleNamespace(iter=10))
    hook.after_test_epoch(SimpleNamespace(iter=10))
    assert len(calls) == 5


def test_bad_interval():
    with pytest.raises(ValueError, match='interval must be >= 1'):
        MallocTrimHook(interval=0)


def test_malloc_trim_runs_here():
    # glibc on Linux: a real call; elsewhere it reports False
    assert malloc_trim_hook.malloc_trim() in (True, False)


def test_registered_and_in_pointrcnn_demo_configs():
    from mmdet3d.registry import HOOKS
    assert isinstance(HOOKS.build(dict(type='MallocTrimHook')),
                      MallocTrimHook)
    for path in ('configs/demo/pointrcnn_teacher.py',
                 'configs/demo/pointrcnn_8x_student.py',
                 'configs/demo/pointrcnn_8x_pointdistiller.py'):
        types = [h['type'] for h in Config.fromfile(path).custom_hooks]
        assert 'MallocTrimHook' in types, path
