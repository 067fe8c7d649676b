"""The demo's outputs: comparison table (terminal, Markdown, JSON) and the
pictures (loss curves, mAP curves, importance scores)."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from dataclasses import asdict
from typing import Any, Dict, Iterator, List, Mapping, Sequence

from .logs import kitti_summary
from .plots import plot_loss_curves, plot_map_curves
from .stages import format_command, format_seconds
from .table import build_row, distill_gain, markdown_table, text_table

__all__ = ['write_report', 'LABELS']

#: Row labels of the three runs.
LABELS = {'teacher': 'teacher', 'student': 'student',
          'distill': 'student + KD'}


@contextlib.contextmanager
def quiet_mmengine() -> Iterator[None]:
    """Silence mmengine's INFO logs and Python warnings (data set summaries,
    deprecation notes) of the in-process measurements."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            yield
    finally:
        logger.setLevel(level)


def _complexity(config: str, data_root: str, num_scans: int) -> dict:
    from ..analysis import config_complexity
    from ..utils import load_config, replace_data_root
    cfg = load_config(config)
    replace_data_root(cfg, data_root)
    with quiet_mmengine():
        return config_complexity(cfg, num_scans)


def flops_footnote(teacher_cx: Mapping[str, Any], num_scans: int,
                   configs: Sequence[str]) -> str:
    """How the FLOPs were counted, the grid they were counted on and the
    paper's figures for the same networks on KITTI's full range."""
    from ..analysis import PAPER_TABLE1, match_paper_key
    text = ('GFLOPs: multiply-accumulates of one forward (mmcv counter '
            f'rules, as in the paper), mean over {num_scans} val scans')
    pcr = teacher_cx.get('point_cloud_range')
    if pcr:
        text += (f', point-cloud range {pcr[3] - pcr[0]:.2f} m x '
                 f'{pcr[4] - pcr[1]:.2f} m')
    paper = [(c, PAPER_TABLE1[k]) for c in configs
             if (k := match_paper_key(c)) in PAPER_TABLE1]
    if paper:
        figures = ', '.join(f'{f:.1f} G / {p:.1f} M' for _, (f, p) in paper)
        text += (f'. The paper (Table 1) reports {figures} for these '
                 'networks on the full KITTI range; dense BEV FLOPs scale '
                 'with the grid area')
    return text + '.'


def _markdown(rows, runs, meta: Mapping[str, Any], pictures: Sequence[str],
              flops_note: str) -> str:
    lines = ['# PointDistiller demo results', '',
             'Synthetic KITTI-format data, moderate difficulty, AP40 with '
             'strict IoU (0.7 Car, 0.5 Pedestrian / Cyclist), the paper\'s '
             'protocol; mAP is the mean over the three classes. Metrics are '
             'the final validation of each run on the val split.', '',
             markdown_table(rows), '', flops_note, '', '## Runs', '']
    for run in runs:
        how = 'reused' if run.reused else (
            f'trained in {format_seconds(run.seconds or 0)}')
        lines.append(f'- **{LABELS.get(run.name, run.name)}** '
                     f'(`{os.path.relpath(run.config)}`), {how}, checkpoint '
                     f'`{run.checkpoint}`')
        if run.options:
            lines.append(f'  - `--cfg-options {" ".join(run.options)}`')
    lines += ['', '## Stage times', '']
    for name, sec in meta['stage_seconds'].items():
        lines.append(f'- {name}: {format_seconds(sec)}')
    lines.append(f'- total (with the report): '
                 f'{format_seconds(meta["total_seconds"])}')
    lines += ['', f'Machine: {meta["machine"]}', '', '## Pictures', '']
    lines += [f'- `{p}`' for p in pictures]
    return '\n'.join(lines) + '\n'


def write_report(demo, runs: List, facts: Mapping[str, Any],
                 started: float) -> Dict[str, Any]:
    """Measure complexity, build the table, draw the pictures, write
    ``demo_results.md`` / ``.json``; returns the results dict.

    ``started`` is the ``time.perf_counter()`` of the demo's start.
    """
    s = demo.s
    echo = demo.echo
    work = demo.work
    data_root = demo._abs(s.data_root)
    by = {r.name: r for r in runs}

    echo('[report] parameters and FLOPs (mode=tensor forward on '
         f'{s.flops_scans} val scans)')
    cx_teacher = _complexity(by['teacher'].config, data_root, s.flops_scans)
    cx_student = _complexity(by['student'].config, data_root, s.flops_scans)
    complexity = {'teacher': cx_teacher, 'student': cx_student,
                  'distill': cx_student}

    rows = []
    for run in runs:
        metrics = run.final_metrics
        ap = kitti_summary(metrics)
        rows.append(build_row(LABELS[run.name], run.config, ap,
                              complexity[run.name], run.seconds,
                              'reused' if run.reused else ''))
    flops_note = flops_footnote(complexity['teacher'], s.flops_scans,
                                [by['teacher'].config, by['student'].config])
    echo('')
    echo(text_table(rows))
    echo('')
    echo(flops_note)

    pictures = []
    loss_png = work / 'loss_curves.png'
    plot_loss_curves({LABELS[r.name]: r.train_records for r in runs},
                     str(loss_png), title='PointPillars on synthetic KITTI')
    pictures.append(str(loss_png))
    map_png = work / 'map_curves.png'
    map_points = plot_map_curves(
        {LABELS[r.name]: r.val_records for r in runs}, str(map_png),
        title='validation during training')
    pictures.append(str(map_png))
    from ..utils import load_config, replace_data_root
    from .importance_view import importance_figure_from_config
    imp_png = work / 'importance_bev.png'
    cfg = load_config(by['distill'].config)
    replace_data_root(cfg, data_root)
    with quiet_mmengine():
        imp = importance_figure_from_config(
            cfg, str(imp_png), index=s.importance_scan,
            title=f'importance scores (PointDistiller, Figure 6), val scan '
            f'{s.importance_scan}')
    pictures.append(str(imp_png))
    for p in pictures:
        echo(f'[report] wrote {p}')

    meta = dict(settings=asdict(s), machine=dict(facts),
                stage_seconds=dict(demo.stage_seconds),
                total_seconds=time.perf_counter() - started,
                importance=imp, map_curves=map_points,
                test_commands={
                    r.name: format_command([
                        'python', 'tools/test.py', os.path.relpath(r.config),
                        r.checkpoint, '--data-root', s.data_root])
                    for r in runs})
    md_file = work / 'demo_results.md'
    md_file.write_text(_markdown(rows, runs, meta, pictures, flops_note))
    json_file = work / 'demo_results.json'
    results = dict(meta=meta, rows=[asdict(r) for r in rows],
                   kd_gain=distill_gain(rows), pictures=pictures,
                   markdown=str(md_file), json=str(json_file))
    json_file.write_text(json.dumps(results, indent=2, default=str))
    echo(f'[report] wrote {md_file} and {json_file.name}')
    return results
