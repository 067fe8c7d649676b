"""The README's demo: teacher, 4x student and PointDistiller student on
synthetic KITTI-format data, compared in a table with pictures.

Run it with ``python tools/demo.py [--quick]``; the pieces (stage runner,
log parsers, table, plots, importance picture) are usable on their own.
"""
from .importance_view import (CellImportance, PillarImportance,
                              bev_cell_importance,
                              importance_figure_from_config,
                              pillar_importance, render_importance_bev)
from .logs import (kitti_summary, parse_train_line, parse_val_line,
                   read_scalars)
from .pipeline import run_demo
from .settings import DemoSettings, Schedule, demo_settings
from .stages import StageError, StageResult, run_stage
from .table import ModelRow, build_row, markdown_table, text_table

__all__ = [
    'CellImportance', 'PillarImportance', 'bev_cell_importance',
    'importance_figure_from_config', 'pillar_importance',
    'render_importance_bev', 'kitti_summary', 'parse_train_line',
    'parse_val_line', 'read_scalars', 'run_demo', 'DemoSettings', 'Schedule',
    'demo_settings', 'StageError', 'StageResult', 'run_stage', 'ModelRow',
    'build_row', 'markdown_table', 'text_table'
]
