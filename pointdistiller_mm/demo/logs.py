"""Parsing mmengine training output: log lines, ``scalars.json`` records and
the KITTI metric keys written by mmdet3d's ``KittiMetric``."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = [
    'TrainLine', 'ValLine', 'parse_train_line', 'parse_val_line',
    'read_scalars', 'find_scalars', 'kitti_key', 'kitti_summary',
    'last_checkpoint', 'CLASSES'
]

#: Classes of the demo configs, in the order of the table.
CLASSES = ('Car', 'Pedestrian', 'Cyclist')

_TRAIN = re.compile(r'Epoch\(train\)\s*\[(\d+)\]\s*\[\s*(\d+)/(\d+)\]')
_VAL = re.compile(r'Epoch\(val\)\s*\[(\d+)\]\s*\[\s*(\d+)/(\d+)\]')
_ITER_TRAIN = re.compile(r'Iter\(train\)\s*\[\s*(\d+)/(\d+)\]')
_PAIR = re.compile(r'([A-Za-z_][\w./ ]*?):\s+(-?[\d.]+(?:e[-+]?\d+)?|nan|inf)'
                   r'(?=\s{2}|\s*$)')
_ETA = re.compile(r'eta:\s+((?:\d+ days?, )?\d+:\d{2}:\d{2})')


@dataclass
class TrainLine:
    """One mmengine training log line.

    Attributes:
        epoch: 1-based epoch (0 for iteration-based loops).
        iter: Iteration inside the epoch (the global one for iteration-based
            loops).
        iters: Iterations per epoch (total for iteration-based loops).
        eta: Remaining time as printed (``H:MM:SS``), or ''.
        values: Every ``name: number`` pair of the line (``loss``,
            ``time``, ``distill.loss_pillars``, ...).
    """
    epoch: int
    iter: int
    iters: int
    eta: str = ''
    values: Dict[str, float] = field(default_factory=dict)

    @property
    def loss(self) -> Optional[float]:
        """The total loss, or None."""
        return self.values.get('loss')

    @property
    def distill_loss(self) -> Optional[float]:
        """Sum of the ``distill.*`` losses, or None without any."""
        terms = [v for k, v in self.values.items()
                 if k.startswith('distill.loss')]
        return sum(terms) if terms else None


@dataclass
class ValLine:
    """An mmengine validation log line: progress, or the final metrics."""
    epoch: int
    iter: int
    iters: int
    values: Dict[str, float] = field(default_factory=dict)


def _pairs(text: str) -> Dict[str, float]:
    out = {}
    for name, value in _PAIR.findall(text):
        try:
            out[name.strip()] = float(value)
        except ValueError:
            continue
    return out


def parse_train_line(line: str) -> Optional[TrainLine]:
    """Parse an ``Epoch(train) [e][i/n] ...`` or ``Iter(train) [i/n]``
    line; None for any other line."""
    m = _TRAIN.search(line)
    if m:
        epoch, it, iters = (int(g) for g in m.groups())
        rest = line[m.end():]
    else:
        m = _ITER_TRAIN.search(line)
        if not m:
            return None
        epoch, (it, iters) = 0, (int(g) for g in m.groups())
        rest = line[m.end():]
    eta = _ETA.search(rest)
    rest_no_eta = _ETA.sub('', rest)
    return TrainLine(epoch, it, iters, eta.group(1) if eta else '',
                     _pairs(rest_no_eta))


def parse_val_line(line: str) -> Optional[ValLine]:
    """Parse an ``Epoch(val) [e][i/n] ...`` line; None otherwise."""
    m = _VAL.search(line)
    if not m:
        return None
    epoch, it, iters = (int(g) for g in m.groups())
    return ValLine(epoch, it, iters, _pairs(line[m.end():]))


def find_scalars(work_dir: str) -> Optional[Path]:
    """``scalars.json`` of the newest run (timestamp folder) in a work dir."""
    runs = sorted(Path(work_dir).glob('*/vis_data/scalars.json'))
    return runs[-1] if runs else None


def read_scalars(path: str) -> Tuple[List[dict], List[dict]]:
    """Split an mmengine ``scalars.json`` into training and validation
    records (one JSON object per line; validation records carry metric
    keys and ``step`` = epoch, training ones carry ``iter``)."""
    train, val = [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            rec = json.loads(line)
            if any('/' in k for k in rec) and 'iter' not in rec:
                val.append(rec)
            elif 'iter' in rec:
                train.append(rec)
    return train, val


def kitti_key(cls: str, kind: str = '3D', difficulty: str = 'moderate',
              ap: str = 'AP40',
              prefix: str = 'Kitti metric/pred_instances_3d') -> str:
    """mmdet3d's metric key, e.g. ``Kitti metric/pred_instances_3d/KITTI/
    Car_3D_AP40_moderate_strict`` (strict: IoU 0.7 cars, 0.5 others, the
    paper's protocol); ``cls='Overall'`` gives the class mean."""
    tail = '' if cls == 'Overall' else '_strict'
    return f'{prefix}/KITTI/{cls}_{kind}_{ap}_{difficulty}{tail}'


def kitti_summary(metrics: Mapping[str, float],
                  classes: Sequence[str] = CLASSES,
                  difficulty: str = 'moderate',
                  ap: str = 'AP40') -> Dict[str, Optional[float]]:
    """Per-class and mean 3D / BEV AP of one difficulty.

    Returns ``{'Car_3D': .., 'Car_BEV': .., ..., 'mAP_3D': .., 'mAP_BEV':
    ..}``; the means are over ``classes`` (None when a class is missing).
    Keys are matched on their ``KITTI/...`` tail, whatever the prefix.
    """
    by_tail = {k.split('KITTI/', 1)[-1]: float(v) for k, v in metrics.items()
               if 'KITTI/' in k}
    out: Dict[str, Optional[float]] = {}
    for kind in ('3D', 'BEV'):
        vals = []
        for cls in classes:
            v = by_tail.get(f'{cls}_{kind}_{ap}_{difficulty}_strict')
            out[f'{cls}_{kind}'] = v
            vals.append(v)
        out[f'mAP_{kind}'] = (sum(vals) / len(vals)
                              if vals and None not in vals else None)
    return out


def last_checkpoint(work_dir: str) -> Optional[str]:
    """The checkpoint named in ``work_dir/last_checkpoint``, if it exists."""
    marker = Path(work_dir) / 'last_checkpoint'
    if not marker.is_file():
        return None
    path = Path(marker.read_text().strip())
    if not path.is_file():  # relative, or a work dir that was moved
        path = Path(work_dir) / path.name
    return str(path) if path.is_file() else None
