"""The demo's comparison table: moderate AP40 per class, mAP, parameters,
FLOPs; rendered as text (terminal), Markdown and JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .logs import CLASSES

__all__ = ['ModelRow', 'build_row', 'markdown_table', 'text_table',
           'results_json', 'distill_gain']


@dataclass
class ModelRow:
    """One model of the comparison.

    Attributes:
        name: Row label (``teacher``, ``student``, ``student + KD``).
        config: Config path.
        ap: ``kitti_summary`` output (``Car_3D``, ..., ``mAP_3D``,
            ``mAP_BEV``), AP40 moderate, strict IoU.
        params_m: Parameters in millions (None if not measured).
        gflops: GMACs of one forward (None if not measured).
        train_s: Training wall time in seconds (None when reused).
        note: Free text (e.g. ``reused``).
    """
    name: str
    config: str
    ap: Dict[str, Optional[float]]
    params_m: Optional[float] = None
    gflops: Optional[float] = None
    train_s: Optional[float] = None
    note: str = ''
    extra: Dict[str, Any] = field(default_factory=dict)


def build_row(name: str, config: str, ap: Mapping[str, Optional[float]],
              complexity: Optional[Mapping[str, Any]] = None,
              train_s: Optional[float] = None, note: str = '') -> ModelRow:
    """A row from a KITTI summary and a ``model_complexity`` result."""
    params = gflops = None
    if complexity:
        params = complexity['params'] / 1e6
        gflops = complexity['flops'] / 1e9
    return ModelRow(name, config, dict(ap), params, gflops, train_s, note)


def _fmt(v: Optional[float], digits: int = 2) -> str:
    return '-' if v is None else f'{v:.{digits}f}'


def _columns(classes: Sequence[str]) -> List[tuple]:
    cols = [(f'{c} 3D', f'{c}_3D') for c in classes]
    cols += [(f'{c} BEV', f'{c}_BEV') for c in classes]
    cols += [('mAP 3D', 'mAP_3D'), ('mAP BEV', 'mAP_BEV')]
    return cols


def _cells(row: ModelRow, classes: Sequence[str]) -> List[str]:
    cells = [row.name]
    cells += [_fmt(row.ap.get(key)) for _, key in _columns(classes)]
    cells += [_fmt(row.params_m, 3), _fmt(row.gflops, 2)]
    return cells


def _header(classes: Sequence[str]) -> List[str]:
    return (['model'] + [h for h, _ in _columns(classes)] +
            ['params (M)', 'GFLOPs'])


def distill_gain(rows: Sequence[ModelRow], student: str = 'student',
                 distilled: str = 'student + KD') -> Dict[str, float]:
    """AP differences distilled minus student, per column (None skipped)."""
    by = {r.name: r for r in rows}
    if student not in by or distilled not in by:
        return {}
    a, b = by[student].ap, by[distilled].ap
    return {k: b[k] - a[k] for k in a
            if a.get(k) is not None and b.get(k) is not None}


def markdown_table(rows: Sequence[ModelRow],
                   classes: Sequence[str] = CLASSES) -> str:
    """GitHub Markdown table, with a ``KD gain`` row when both students
    are present."""
    header = _header(classes)
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join(['---'] + ['---:'] * (len(header) - 1)) + '|']
    for row in rows:
        lines.append('| ' + ' | '.join(_cells(row, classes)) + ' |')
    gain = distill_gain(rows)
    if gain:
        cells = ['KD gain'] + [
            '-' if key not in gain else f'{gain[key]:+.2f}'
            for _, key in _columns(classes)] + ['', '']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def text_table(rows: Sequence[ModelRow],
               classes: Sequence[str] = CLASSES) -> str:
    """Fixed-width table for the terminal."""
    header = _header(classes)
    body = [_cells(r, classes) for r in rows]
    gain = distill_gain(rows)
    if gain:
        body.append(['KD gain'] + [
            '-' if key not in gain else f'{gain[key]:+.2f}'
            for _, key in _columns(classes)] + ['', ''])
    widths = [max(len(str(x)) for x in col)
              for col in zip(header, *body)]
    fmt = lambda cells: '  '.join(  # noqa: E731
        str(c).ljust(w) if i == 0 else str(c).rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths)))
    sep = '-' * len(fmt(header))
    return '\n'.join([fmt(header), sep] + [fmt(c) for c in body])


def results_json(rows: Sequence[ModelRow], meta: Mapping[str, Any]) -> str:
    """JSON of the rows, the KD gain and run facts (``meta``)."""
    return json.dumps(dict(meta=dict(meta), rows=[asdict(r) for r in rows],
                           kd_gain=distill_gain(rows)), indent=2)
