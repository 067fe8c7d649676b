"""Evaluate finished training runs again, on another (e.g. larger) val set.

Each run is a work dir written by ``tools/train.py``: the config mmengine
dumped there and the checkpoint named in ``last_checkpoint``. Every run goes
through ``tools/test.py`` with ``--data-root`` in a subprocess (the command a
user would type); the metrics mmengine writes (``<stamp>/<stamp>.json``) are
read back and summarised as moderate AP40 per class, 3D and BEV.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from ..demo.logs import kitti_summary, last_checkpoint
from ..demo.pipeline import REPO_ROOT

__all__ = ['RunSpec', 'parse_run_spec', 'run_config', 'latest_test_metrics',
           'evaluate_run']


@dataclass(frozen=True)
class RunSpec:
    """A run to evaluate: table name and training work dir."""
    name: str
    work_dir: Path


def parse_run_spec(spec: str) -> RunSpec:
    """``NAME=WORK_DIR`` or ``WORK_DIR`` (named after the folder)."""
    name, sep, path = spec.partition('=')
    if not sep:
        name, path = Path(spec).name, spec
    if not name or not path:
        raise ValueError(f'run {spec!r}: expected NAME=WORK_DIR or WORK_DIR')
    return RunSpec(name, Path(path))


def run_config(work_dir: Path) -> Path:
    """The config mmengine dumped into ``work_dir`` (the only ``*.py``)."""
    configs = sorted(work_dir.glob('*.py'))
    if len(configs) != 1:
        raise FileNotFoundError(
            f'{work_dir}: expected the one config tools/train.py dumps '
            f'there, found {[c.name for c in configs] or "none"}; is it a '
            'training work dir?')
    return configs[0]


def latest_test_metrics(work_dir: Path) -> Optional[Dict[str, float]]:
    """Metrics of the newest ``tools/test.py`` run logged in ``work_dir``."""
    stamps = sorted(p for p in work_dir.glob('*/*.json')
                    if p.stem == p.parent.name)
    for path in reversed(stamps):
        data = json.loads(path.read_text())
        if any('KITTI/' in k for k in data):
            return data
    return None


def evaluate_run(run: RunSpec,
                 data_root: str,
                 out_dir: Path,
                 python: str = sys.executable,
                 reuse: bool = True) -> Dict[str, Optional[float]]:
    """Test the run's last checkpoint on ``data_root``; moderate AP40.

    Results land in ``out_dir/<name>``; with ``reuse`` a previous result
    for the same checkpoint and data root is returned without testing.
    """
    ckpt = last_checkpoint(str(run.work_dir))
    if ckpt is None:
        raise FileNotFoundError(
            f'{run.work_dir}: no last_checkpoint; train the run first')
    work = out_dir / (re.sub(r'[^A-Za-z0-9.+-]+', '_', run.name).strip('_')
                      or 'run')
    marker = work / 'evaluated.json'
    key = dict(checkpoint=str(Path(ckpt).resolve()),
               data_root=str(Path(data_root).resolve()))
    if reuse and marker.is_file():
        done = json.loads(marker.read_text())
        if done.get('key') == key:
            return done['ap']
    work.mkdir(parents=True, exist_ok=True)
    cmd = [python, str(Path(REPO_ROOT) / 'tools' / 'test.py'),
           str(run_config(run.work_dir)), ckpt, '--work-dir', str(work),
           '--data-root', data_root]
    print('$ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO_ROOT)
    metrics = latest_test_metrics(work)
    if metrics is None:
        raise RuntimeError(f'{work}: tools/test.py wrote no KITTI metrics')
    ap = kitti_summary(metrics)
    marker.write_text(json.dumps(dict(key=key, ap=ap), indent=2))
    return ap
