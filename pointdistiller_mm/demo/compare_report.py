"""The KD comparison's report: a Table-3-style table (per class moderate 3D
and BEV AP, mAP, training time per iteration; mean and standard deviation
over seeds) as Markdown and CSV, a JSON dump and a bar chart."""
from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from .logs import CLASSES
from .stages import format_seconds

__all__ = ['MethodRow', 'aggregate', 'markdown_table', 'csv_text',
           'plot_bars', 'write_comparison', 'METRICS']

#: Table columns: (header, summary key).
METRICS = tuple([(f'{c} 3D', f'{c}_3D') for c in CLASSES] +
                [('mAP 3D', 'mAP_3D')] +
                [(f'{c} BEV', f'{c}_BEV') for c in CLASSES] +
                [('mAP BEV', 'mAP_BEV')])
OUT = 'compare_kd'


@dataclass
class MethodRow:
    """One method over its seeds.

    Attributes:
        key: Method key; label: table label.
        seeds: Seeds with a result.
        mean / std: Per metric (std is None for a single seed).
        s_per_iter / s_per_iter_std: Training time per iteration.
        train_s: Mean wall time of a training run.
    """
    key: str
    label: str
    seeds: List[int] = field(default_factory=list)
    mean: Dict[str, Optional[float]] = field(default_factory=dict)
    std: Dict[str, Optional[float]] = field(default_factory=dict)
    s_per_iter: Optional[float] = None
    s_per_iter_std: Optional[float] = None
    train_s: Optional[float] = None


def _mean_std(values: Sequence[Optional[float]]):
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, None
    var = sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)
    return mean, math.sqrt(var)


def aggregate(key: str, label: str, runs: Sequence[Any]) -> MethodRow:
    """Mean and sample standard deviation over the runs (seeds) of one
    method; failed runs are left out."""
    ok = [r for r in runs if r.status != 'failed' and r.summary]
    row = MethodRow(key, label, seeds=[r.seed for r in ok])
    for _, metric in METRICS:
        row.mean[metric], row.std[metric] = _mean_std(
            [r.summary.get(metric) for r in ok])
    row.s_per_iter, row.s_per_iter_std = _mean_std(
        [r.seconds_per_iter for r in ok])
    row.train_s, _ = _mean_std([r.seconds for r in ok])
    return row


def _cell(mean: Optional[float], std: Optional[float],
          digits: int = 2) -> str:
    if mean is None:
        return '-'
    return f'{mean:.{digits}f}' if std is None else \
        f'{mean:.{digits}f} ± {std:.{digits}f}'


def markdown_table(rows: Sequence[MethodRow],
                   baseline: str = 'nokd') -> str:
    """Table 3 layout plus the mAP change against ``baseline`` (no KD)
    and the training time per iteration."""
    header = (['Method'] + [h for h, _ in METRICS] +
              ['Δ mAP 3D', 'Δ mAP BEV', 's / iter', 'seeds'])
    lines = ['| ' + ' | '.join(header) + ' |',
             '|' + '|'.join([':---'] + ['---:'] * (len(header) - 1)) + '|']
    base = next((r for r in rows if r.key == baseline), None)
    for row in rows:
        cells = [row.label]
        cells += [_cell(row.mean.get(k), row.std.get(k)) for _, k in METRICS]
        for k in ('mAP_3D', 'mAP_BEV'):
            a = base.mean.get(k) if base else None
            b = row.mean.get(k)
            cells.append('-' if a is None or b is None or row is base else
                         f'{b - a:+.2f}')
        cells.append(_cell(row.s_per_iter, row.s_per_iter_std, 3))
        cells.append(str(len(row.seeds)))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def versus_table(rows: Sequence[MethodRow],
                 ours: str = 'pointdistiller') -> str:
    """PointDistiller's mean mAP minus each other method's, with the
    larger of the two standard deviations for scale."""
    me = next((r for r in rows if r.key == ours), None)
    if me is None or me.mean.get('mAP_3D') is None:
        return ''
    lines = [f'| {me.label.lstrip("+ ")} vs | Δ mAP 3D | Δ mAP BEV | '
             'larger std 3D |',
             '|:---|---:|---:|---:|']
    for row in rows:
        if row is me or row.mean.get('mAP_3D') is None:
            continue
        d3 = me.mean['mAP_3D'] - row.mean['mAP_3D']
        bev = (me.mean.get('mAP_BEV'), row.mean.get('mAP_BEV'))
        db = '-' if None in bev else f'{bev[0] - bev[1]:+.2f}'
        stds = [s for s in (me.std.get('mAP_3D'), row.std.get('mAP_3D'))
                if s is not None]
        spread = f'{max(stds):.2f}' if stds else '-'
        lines.append(f'| {row.label} | {d3:+.2f} | {db} | {spread} |')
    return '\n'.join(lines)


def csv_text(rows: Sequence[MethodRow]) -> str:
    """One line per method: means and standard deviations of every
    metric, time per iteration, seeds."""
    buf = io.StringIO()
    fields = ['method', 'label', 'num_seeds', 'seeds']
    for _, k in METRICS:
        fields += [f'{k}_mean', f'{k}_std']
    fields += ['s_per_iter_mean', 's_per_iter_std', 'train_s_mean']
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator='\n')
    writer.writeheader()

    def fmt(v: Optional[float]) -> str:
        return '' if v is None else f'{v:.4f}'

    for row in rows:
        line = dict(method=row.key, label=row.label,
                    num_seeds=len(row.seeds),
                    seeds=' '.join(str(s) for s in row.seeds))
        for _, k in METRICS:
            line[f'{k}_mean'] = fmt(row.mean.get(k))
            line[f'{k}_std'] = fmt(row.std.get(k))
        line['s_per_iter_mean'] = fmt(row.s_per_iter)
        line['s_per_iter_std'] = fmt(row.s_per_iter_std)
        line['train_s_mean'] = fmt(row.train_s)
        writer.writerow(line)
    return buf.getvalue()


def plot_bars(rows: Sequence[MethodRow], out_file: str,
              title: str = '') -> None:
    """Grouped bars of moderate mAP 3D and BEV per method, with the
    standard deviation over seeds as error bars; dashed lines mark the
    student without KD."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    shown = [r for r in rows if r.mean.get('mAP_3D') is not None]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(shown) + 2), 4.8))
    width = 0.38
    for j, (key, name, color) in enumerate(
            (('mAP_3D', 'mAP 3D', 'tab:blue'),
             ('mAP_BEV', 'mAP BEV', 'tab:orange'))):
        xs = [i + (j - 0.5) * width for i in range(len(shown))]
        ys = [r.mean.get(key) or 0.0 for r in shown]
        err = [r.std.get(key) or 0.0 for r in shown]
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=name, color=color)
        base = next((r for r in shown if r.key == 'nokd'), None)
        if base is not None and base.mean.get(key) is not None:
            ax.axhline(base.mean[key], color=color, ls='--', lw=1)
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels([r.label.lstrip('+ ') for r in shown], rotation=30,
                       ha='right', fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel('moderate AP40 (%), mean over classes')
    ax.set_title(title or 'KD methods on the 4x PointPillars student')
    ax.grid(axis='y', alpha=0.3)
    ax.legend(loc='lower right', framealpha=0.9)
    fig.tight_layout()
    fig.savefig(out_file, dpi=110)
    plt.close(fig)


def _markdown(settings, rows, runs, teacher, teacher_ckpt, facts,
              total_s) -> str:
    seeds = ' '.join(str(s) for s in settings.seeds)
    lines = [
        '# KD methods on the demo benchmark (PointDistiller Table 3)', '',
        '4x PointPillars student on synthetic KITTI-format data, every '
        'method under the same schedule and seeds; moderate AP40 with '
        'strict IoU (0.7 Car, 0.5 Pedestrian / Cyclist), the final '
        'validation of each run; mAP is the mean over the three classes. '
        'Cells are mean ± sample standard deviation over the seeds; '
        '"s / iter" is the logged training time per iteration (data '
        'loading included).', '',
        f'Command: `{settings.command}`' if settings.command else '',
        f'Seeds: {seeds}', '', markdown_table(rows), '']
    for row in rows:
        if not row.key.startswith('pointdistiller'):
            continue
        vs = versus_table(rows, ours=row.key)
        if vs:
            lines += [f'## {row.label.lstrip("+ ")} against each method', '',
                      vs, '']
    if teacher is not None and teacher.summary:
        s = teacher.summary
        lines += [f'Teacher (seed {teacher.seed}): mAP 3D '
                  f'{_cell(s.get("mAP_3D"), None)}, mAP BEV '
                  f'{_cell(s.get("mAP_BEV"), None)}.', '']
    lines += [f'Teacher checkpoint: `{teacher_ckpt}`', '',
              '## Schedule', '', f'`{settings.schedule}`', '', '## Runs', '']
    for run in runs:
        how = run.status if run.seconds is None else \
            f'{run.status}, {format_seconds(run.seconds)}'
        lines.append(f'- `{run.name}` ({run.config}): {how}, `'
                     f'{run.work_dir}`')
    lines += ['', f'Total time of this invocation: '
              f'{format_seconds(total_s)}. Machine: {facts}', '',
              f'Chart: `{OUT}.png`; numbers: `{OUT}.csv`, `{OUT}.json`.']
    return '\n'.join(lines) + '\n'


def write_comparison(settings, methods, runs, teacher, teacher_ckpt,
                     facts: Mapping[str, Any], total_s: float,
                     echo: Callable[[str], None] = print) -> dict:
    """Aggregate the runs and write ``compare_kd.{md,csv,json,png}`` into
    the work dir; returns the JSON content."""
    work = Path(settings.work_dir)
    rows = [aggregate(m.key, m.label, [r for r in runs if r.method == m.key])
            for m in methods]
    md = _markdown(settings, rows, runs, teacher, teacher_ckpt, facts,
                   total_s)
    (work / f'{OUT}.md').write_text(md)
    (work / f'{OUT}.csv').write_text(csv_text(rows))
    plot_bars(rows, str(work / f'{OUT}.png'),
              title=f'KD methods, 4x PointPillars student, seeds '
              f'{" ".join(str(s) for s in settings.seeds)}')
    results = dict(
        settings=dict(work_dir=settings.work_dir,
                      data_root=settings.data_root,
                      seeds=list(settings.seeds),
                      methods=list(settings.methods),
                      schedule=asdict(settings.schedule),
                      command=settings.command, quick=settings.quick),
        teacher_checkpoint=teacher_ckpt,
        rows=[asdict(r) for r in rows],
        runs=[dict(name=r.name, method=r.method, seed=r.seed,
                   status=r.status, seconds=r.seconds,
                   seconds_per_iter=r.seconds_per_iter, summary=r.summary,
                   work_dir=r.work_dir, command=r.command) for r in runs],
        machine=dict(facts), total_seconds=total_s)
    (work / f'{OUT}.json').write_text(json.dumps(results, indent=2))
    echo('\n' + markdown_table(rows))
    echo(f'\nreport: {os.path.join(str(work), OUT)}.md / .csv / .json / '
         '.png')
    return results
