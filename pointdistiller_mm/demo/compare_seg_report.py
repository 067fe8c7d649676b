"""The segmentation KD comparison's report: a Table-1-style table (mIoU per
method, its change against the student without KD, overall accuracy,
per-class IoU and training time per iteration; mean and standard deviation
over seeds) as Markdown and CSV, plus a JSON dump.

The metrics come from the final validation of each run: mmdet3d's
``SegMetric`` logs ``miou``, ``acc``, ``acc_cls`` and one IoU per class
(keyed by the class name) as fractions; the report shows percentages.
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .compare_report import _cell, _mean_std
from .stages import format_seconds

__all__ = ['SEG_NON_CLASS_KEYS', 'seg_val_records', 'seg_summary',
           'SegRow', 'aggregate_seg', 'class_names', 'seg_markdown_table',
           'seg_csv_text', 'write_seg_comparison', 'OUT']

OUT = 'compare_seg'

#: Keys of a validation record of ``scalars.json`` that are not class IoUs.
SEG_NON_CLASS_KEYS = frozenset(
    ('miou', 'acc', 'acc_cls', 'step', 'epoch', 'iter', 'time', 'data_time',
     'lr', 'memory'))
#: Overall metrics of the table: (header, summary key).
OVERALL = (('mIoU', 'miou'), ('acc', 'acc'), ('mAcc', 'acc_cls'))


def seg_val_records(work_dir: str) -> List[dict]:
    """The segmentation validation records (those with ``miou`` and no
    ``iter``) of every ``*/vis_data/scalars.json`` of a work dir, oldest
    run first (a resumed run adds a timestamp folder)."""
    out: List[dict] = []
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                if 'miou' in rec and 'iter' not in rec:
                    out.append(rec)
    return out


def seg_summary(record: Mapping[str, Any]) -> Dict[str, float]:
    """``miou``, ``acc``, ``acc_cls`` and the IoU of each class (keyed by
    class name, in the record's order) of one validation record, in
    percent. Non-numeric values are left out."""
    out: Dict[str, float] = {}
    for key in ('miou', 'acc', 'acc_cls'):
        if isinstance(record.get(key), (int, float)):
            out[key] = 100.0 * float(record[key])
    for key, value in record.items():
        if key not in SEG_NON_CLASS_KEYS and isinstance(value, (int, float)):
            out[key] = 100.0 * float(value)
    return out


@dataclass
class SegRow:
    """One method over its seeds.

    Attributes:
        key: Method key; label: table label.
        seeds: Seeds with a result.
        mean / std: Per metric (``miou``, ``acc``, ``acc_cls``, class
            names), percent; std is None for a single seed.
        delta_miou: Mean mIoU minus the baseline's (None for the baseline
            or without one).
        s_per_iter / s_per_iter_std: Training time per iteration.
        train_s: Mean wall time of a training run.
    """
    key: str
    label: str
    seeds: List[int] = field(default_factory=list)
    mean: Dict[str, Optional[float]] = field(default_factory=dict)
    std: Dict[str, Optional[float]] = field(default_factory=dict)
    delta_miou: Optional[float] = None
    s_per_iter: Optional[float] = None
    s_per_iter_std: Optional[float] = None
    train_s: Optional[float] = None


def class_names(summaries: Sequence[Mapping[str, float]]) -> List[str]:
    """Class names of the summaries, in first-seen order."""
    names: List[str] = []
    for s in summaries:
        for k in s:
            if k not in SEG_NON_CLASS_KEYS and k not in names:
                names.append(k)
    return names


def aggregate_seg(key: str, label: str, runs: Sequence[Any],
                  summaries: Mapping[str, Mapping[str, float]],
                  classes: Sequence[str]) -> SegRow:
    """Mean and sample standard deviation over the runs (seeds) of one
    method. ``runs`` are :class:`~.compare.RunRecord`; ``summaries`` maps a
    run name to its :func:`seg_summary`; failed runs and runs without a
    validation are left out."""
    ok = [r for r in runs if r.status != 'failed' and summaries.get(r.name)]
    row = SegRow(key, label, seeds=[r.seed for r in ok])
    for metric in [k for _, k in OVERALL] + list(classes):
        row.mean[metric], row.std[metric] = _mean_std(
            [summaries[r.name].get(metric) for r in ok])
    row.s_per_iter, row.s_per_iter_std = _mean_std(
        [r.seconds_per_iter for r in ok])
    row.train_s, _ = _mean_std([r.seconds for r in ok])
    return row


def set_deltas(rows: Sequence[SegRow], baseline: str = 'nokd') -> None:
    """Fill ``delta_miou`` of every row but the baseline."""
    base = next((r for r in rows if r.key == baseline), None)
    a = base.mean.get('miou') if base else None
    for row in rows:
        b = row.mean.get('miou')
        row.delta_miou = None if row is base or a is None or b is None \
            else b - a


def seg_markdown_table(rows: Sequence[SegRow],
                       classes: Sequence[str]) -> str:
    """Method, mIoU, Δ mIoU against no KD, accuracies, per-class IoU,
    training time per iteration and number of seeds."""
    header = (['Method', 'mIoU', 'Δ mIoU'] + [h for h, _ in OVERALL[1:]] +
              list(classes) + ['s / iter', 'seeds'])
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|']
    for row in rows:
        cells = [row.label, _cell(row.mean.get('miou'), row.std.get('miou')),
                 '-' if row.delta_miou is None else f'{row.delta_miou:+.2f}']
        cells += [_cell(row.mean.get(k), row.std.get(k))
                  for _, k in OVERALL[1:]]
        cells += [_cell(row.mean.get(c), row.std.get(c), 1)
                  for c in classes]
        cells.append(_cell(row.s_per_iter, row.s_per_iter_std, 3))
        cells.append(str(len(row.seeds)))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def seg_csv_text(rows: Sequence[SegRow], classes: Sequence[str]) -> str:
    """One line per method: means and standard deviations of every metric
    (percent), Δ mIoU, time per iteration, seeds."""
    buf = io.StringIO()
    metrics = [k for _, k in OVERALL]
    fields = ['method', 'label', 'num_seeds', 'seeds']
    for k in metrics:
        fields += [f'{k}_mean', f'{k}_std']
    fields.append('delta_miou')
    for c in classes:
        fields += [f'iou_{c}_mean', f'iou_{c}_std']
    fields += ['s_per_iter_mean', 's_per_iter_std', 'train_s_mean']
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator='\n')
    writer.writeheader()

    def fmt(v: Optional[float]) -> str:
        return '' if v is None else f'{v:.4f}'

    for row in rows:
        line = dict(method=row.key, label=row.label,
                    num_seeds=len(row.seeds),
                    seeds=' '.join(str(s) for s in row.seeds),
                    delta_miou=fmt(row.delta_miou),
                    s_per_iter_mean=fmt(row.s_per_iter),
                    s_per_iter_std=fmt(row.s_per_iter_std),
                    train_s_mean=fmt(row.train_s))
        for k in metrics:
            line[f'{k}_mean'] = fmt(row.mean.get(k))
            line[f'{k}_std'] = fmt(row.std.get(k))
        for c in classes:
            line[f'iou_{c}_mean'] = fmt(row.mean.get(c))
            line[f'iou_{c}_std'] = fmt(row.std.get(c))
        writer.writerow(line)
    return buf.getvalue()


def _markdown(settings, rows, classes, runs, teacher_ckpt, facts,
              total_s) -> str:
    seeds = ' '.join(str(s) for s in settings.seeds)
    lines = [
        '# KD methods on the segmentation demo (PVD Table 1)', '',
        '0.5x Cylinder3D student on synthetic SemanticKITTI-format data, '
        'every method under the same schedule and seeds; mmdet3d '
        'SegMetric of the final validation of each run, in percent (mIoU: '
        'mean IoU over the classes; acc: point accuracy; mAcc: mean class '
        'accuracy). Cells are mean ± sample standard deviation over the '
        'seeds; "Δ mIoU" is against the student without KD; "s / iter" is '
        'the logged training time per iteration (data loading included).',
        '',
        f'Command: `{settings.command}`' if settings.command else '',
        f'Seeds: {seeds}', '', seg_markdown_table(rows, classes), '',
        f'Teacher checkpoint: `{teacher_ckpt}`', '',
        '## Schedule', '', f'`{settings.schedule}`', '']
    if settings.cfg_options:
        lines += ['Options of every run: `' +
                  ' '.join(settings.cfg_options) + '`', '']
    lines += ['## Runs', '']
    for run in runs:
        how = run.status if run.seconds is None else \
            f'{run.status}, {format_seconds(run.seconds)}'
        lines.append(f'- `{run.name}` ({run.config}): {how}, `'
                     f'{run.work_dir}`')
    lines += ['', f'Total time of this invocation: '
              f'{format_seconds(total_s)}. Machine: {facts}', '',
              f'Numbers: `{OUT}.csv`, `{OUT}.json`.']
    return '\n'.join(lines) + '\n'


def write_seg_comparison(settings, methods, runs,
                         summaries: Mapping[str, Mapping[str, float]],
                         teacher_ckpt: Optional[str],
                         facts: Mapping[str, Any], total_s: float,
                         echo: Callable[[str], None] = print) -> dict:
    """Aggregate the runs and write ``compare_seg.{md,csv,json}`` into the
    work dir; returns the JSON content."""
    work = Path(settings.work_dir)
    classes = class_names([summaries[r.name] for r in runs
                           if r.name in summaries])
    rows = [aggregate_seg(m.key, m.label,
                          [r for r in runs if r.method == m.key], summaries,
                          classes) for m in methods]
    set_deltas(rows)
    (work / f'{OUT}.md').write_text(_markdown(
        settings, rows, classes, runs, teacher_ckpt, facts, total_s))
    (work / f'{OUT}.csv').write_text(seg_csv_text(rows, classes))
    results = dict(
        settings=dict(work_dir=settings.work_dir,
                      data_root=settings.data_root,
                      seeds=list(settings.seeds),
                      methods=list(settings.methods),
                      schedule=asdict(settings.schedule),
                      cfg_options=list(settings.cfg_options),
                      command=settings.command, quick=settings.quick),
        teacher_checkpoint=teacher_ckpt, classes=classes,
        rows=[asdict(r) for r in rows],
        runs=[dict(name=r.name, method=r.method, seed=r.seed,
                   status=r.status, seconds=r.seconds,
                   seconds_per_iter=r.seconds_per_iter,
                   summary=dict(summaries.get(r.name, {})),
                   work_dir=r.work_dir, command=r.command) for r in runs],
        machine=dict(facts), total_seconds=total_s)
    (work / f'{OUT}.json').write_text(json.dumps(results, indent=2))
    echo('\n' + seg_markdown_table(rows, classes))
    echo(f'\nreport: {os.path.join(str(work), OUT)}.md / .csv / .json')
    return results
