"""tools/analysis/sweep_distill.py: the runs it plans from its arguments."""
import importlib.util
from pathlib import Path

import pytest

TOOL = Path(__file__).resolve().parents[1] / 'tools' / 'analysis' / \
    'sweep_distill.py'


def _tool():
    spec = importlib.util.spec_from_file_location('sweep_distill', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_planned_runs_from_values_and_extra_runs():
    tool = _tool()
    args = tool.parse_args([
        'cfg.py', '--teacher-checkpoint', 'ckpt.pth', '--key',
        'model.distill_terms.pillars.loss.tau', '--values', '1', '10',
        '--run', 'phi=1:model.distill_terms.pillars.loss.reweight=False,'
        'model.x=2'
    ])
    assert tool.planned_runs(args) == [
        ('tau=1', ['model.distill_terms.pillars.loss.tau=1']),
        ('tau=10', ['model.distill_terms.pillars.loss.tau=10']),
        ('phi=1', ['model.distill_terms.pillars.loss.reweight=False',
                   'model.x=2']),
    ]


@pytest.mark.parametrize('argv', [
    ['cfg.py', '--teacher-checkpoint', 'c', '--values', '1'],
    ['cfg.py', '--teacher-checkpoint', 'c', '--run', 'no_options'],
])
def test_bad_arguments_say_what_is_expected(argv):
    tool = _tool()
    with pytest.raises(SystemExit, match='--'):
        tool.planned_runs(tool.parse_args(argv))
