"""MallocTrimHook: glibc's malloc_trim every `interval` training iterations
and after validation / test; registered for configs."""
import subprocess
import sys
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


def test_reuse_freed_sets_and_restores_mallopt(monkeypatch):
    calls, trims = [], []
    monkeypatch.setattr(malloc_trim_hook, '_MALLOPT',
                        lambda param, value: calls.append((param, value)) or 1)
    monkeypatch.setattr(malloc_trim_hook, 'malloc_trim',
                        lambda: trims.append(1) or True)
    hook = MallocTrimHook(interval=50, reuse_freed=True)
    hook.before_run(None)
    # M_MMAP_MAX (-4) 0: no mmap; M_TRIM_THRESHOLD (-1) INT_MAX: keep freed
    assert calls == [(-4, 0), (-1, 2**31 - 1)]
    hook.after_run(None)
    # glibc's defaults back: 65536 mmaps, 128 KB trim threshold; one trim
    assert calls[2:] == [(-4, 65536), (-1, 131072)]
    assert trims == [1]
    calls.clear()
    plain = MallocTrimHook()
    plain.before_run(None)
    plain.after_run(None)
    assert calls == []


_FAULTS_SCRIPT = """
import resource, torch
from pointdistiller_mm.hooks import malloc_trim_hook as m

def faults_per_block():
    # 64 MB: above glibc's largest mmap threshold (32 MB); warm up first
    for _ in range(4):
        torch.ones(16 * 2**20)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        torch.ones(16 * 2**20)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 4

default = faults_per_block()
assert m.set_heap_reuse(True)
reused = faults_per_block()
print(default, reused)
"""


def test_heap_reuse_stops_page_faults_of_large_blocks():
    # in a fresh process: a long-lived test process's heap holds pages that
    # earlier trims gave back, which the first reused blocks fault in again
    pytest.importorskip('resource')
    if malloc_trim_hook._MALLOPT is None:
        pytest.skip('no glibc mallopt here')
    out = subprocess.run([sys.executable, '-c', _FAULTS_SCRIPT],
                         capture_output=True, text=True, check=True,
                         timeout=120).stdout.split()
    default, reused = float(out[-2]), float(out[-1])
    # 64 MB of fresh 4 KB pages is 16,384 faults per block by default
    assert default > 8000
    assert reused < 500


def test_demo_configs_reuse_the_heap():
    for path in ('configs/demo/pointpillars_teacher.py',
                 'configs/demo/pointpillars_4x_pointdistiller_bev.py',
                 'configs/demo/pointpillars_nus_2x_pointdistiller.py',
                 'configs/demo/second_4x_pointdistiller.py'):
        heap = Config.fromfile(path).default_hooks.heap
        assert heap.type == 'MallocTrimHook' and heap.reuse_freed, path
