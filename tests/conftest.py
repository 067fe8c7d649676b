"""Shared fixtures: a tiny synthetic KITTI-format dataset and CLI runners."""
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest

REPO = Path(__file__).resolve().parents[1]

# Overrides that make the demo configs run a few iterations on tiny data.
FAST_OPTIONS = [
    'train_cfg.max_epochs=1', 'train_dataloader.batch_size=2',
    'train_dataloader.num_workers=0',
    'train_dataloader.persistent_workers=False',
    'train_dataloader.dataset.times=1', 'val_dataloader.num_workers=0',
    'val_dataloader.persistent_workers=False',
    'test_dataloader.num_workers=0',
    'test_dataloader.persistent_workers=False',
    'default_hooks.logger.interval=1'
]


def run_tool(args: List[str], timeout: int = 600, check: bool = True,
             threads: int = 2) -> subprocess.CompletedProcess:
    """Run a command from the repository root with this interpreter, with
    ``threads`` OpenMP / torch threads."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads),
               PYTHON=sys.executable)
    cmd = [sys.executable if a == 'PYTHON' else a for a in args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f'{" ".join(cmd)} exited {proc.returncode}\n'
            f'--- stdout ---\n{proc.stdout[-6000:]}\n'
            f'--- stderr ---\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def tiny_kitti(tmp_path_factory) -> Path:
    """4 train + 2 val + 1 test synthetic KITTI frames, converted by
    mmdet3d's converter; train frame 1 and val frame 5 have zero points.
    Seed 4 puts all three classes into the 4 training frames (the GT
    database sampler needs every class)."""
    from pointdistiller_mm.datasets import create_demo_kitti
    root = tmp_path_factory.mktemp('data') / 'tiny_kitti'
    create_demo_kitti(str(root), num_train=4, num_val=2, num_test=1, seed=4,
                      empty_frames=(1, 5), verbose=False)
    return root


@pytest.fixture(scope='session')
def tiny_semantickitti(tmp_path_factory) -> Path:
    """3 train (sequences 00-02) + 2 val (sequence 08) synthetic
    SemanticKITTI frames (360 deg scans, about 120k points each), converted
    by mmdet3d's converter: ``semantickitti_infos_{train,val,test}.pkl``
    (test empty). Use it as ``data_root`` of the SemanticKITTI configs."""
    from pointdistiller_mm.datasets.synthetic_semantickitti import \
        create_demo_semantickitti
    root = tmp_path_factory.mktemp('data') / 'tiny_semantickitti'
    create_demo_semantickitti(str(root), num_train=3, num_val=2, seed=0,
                              verbose=False)
    return root


@pytest.fixture(scope='session')
def tiny_nuscenes(tmp_path_factory) -> Path:
    """Synthetic nuScenes v1.0-mini: 2 train + 2 val scenes of 4 samples
    (2 Hz) with one LiDAR sweep between samples, converted by mmdet3d's
    nuScenes converter (``nuscenes_infos_{train,val}.pkl``, GT database).
    Use it as ``data_root`` of the nuScenes configs."""
    from pointdistiller_mm.datasets.synthetic_nuscenes import \
        create_demo_nuscenes
    root = tmp_path_factory.mktemp('data') / 'tiny_nuscenes'
    create_demo_nuscenes(str(root), num_train_scenes=2, num_val_scenes=2,
                         samples_per_scene=4, sweeps_per_sample=1, seed=0,
                         images=False, verbose=False)
    return root


TEACHER = 'configs/demo/pointpillars_teacher.py'


@pytest.fixture(scope='session')
def trained_teacher(tiny_kitti, tmp_path_factory):
    """The demo teacher trained for one epoch (2 iterations) on tiny_kitti:
    ``(work_dir, completed process)``."""
    work = tmp_path_factory.mktemp('teacher')
    proc = run_tool(['PYTHON', 'tools/train.py', TEACHER, '--work-dir',
                     str(work), '--data-root', str(tiny_kitti),
                     '--cfg-options', *FAST_OPTIONS])
    return work, proc
