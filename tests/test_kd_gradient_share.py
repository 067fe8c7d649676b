"""tools/analysis/kd_gradient_share.py: loss split, gradient norms by hand,
and the tool on the tiny data set."""
import re

import pytest
import torch

from pointdistiller_mm.analysis.gradient_share import grad_norm, split_losses
from tests.conftest import run_tool

DISTILL = 'configs/demo/pointpillars_4x_pointdistiller.py'


def test_split_losses_sums_task_losses_and_keeps_terms():
    a, b, c = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(0.5)
    task, terms = split_losses({
        'student.loss_cls': [a, b], 'student.loss_bbox': c,
        'distill.loss_pillars': torch.tensor(0.25), 'distill_weight': 1.0,
        'student.acc': torch.tensor(9.0)})
    assert float(task) == 3.5
    assert list(terms) == ['loss_pillars'] and float(terms['loss_pillars']) \
        == 0.25
    with pytest.raises(ValueError, match='Distiller3D'):
        split_losses({'loss_cls': a})


def test_grad_norm_by_hand():
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    v = torch.nn.Parameter(torch.tensor([0.5]))
    loss = (w * torch.tensor([3.0, 4.0])).sum() + 0 * v.sum()
    assert grad_norm(loss, [w]) == pytest.approx(5.0)
    # d/dw of sum(w^2) = 2w = (2, -4); with v (gradient 0): sqrt(20)
    assert grad_norm((w ** 2).sum() + 0 * v.sum(), [w, v]) == \
        pytest.approx(20 ** 0.5)


def test_tool_reports_the_share_of_each_term(trained_teacher, tiny_kitti):
    teacher_dir, _ = trained_teacher
    proc = run_tool([
        'PYTHON', 'tools/analysis/kd_gradient_share.py', DISTILL,
        '--data-root', str(tiny_kitti), '--batches', '1', '--cfg-options',
        f'model.teacher.checkpoint={teacher_dir}',
        'model.distill_terms.pillars.loss.num_samples=500',
        'model.distill_terms.pillars.loss.k=16'])
    share = re.search(r'mean share of loss_pillars: ([\d.]+) %', proc.stdout)
    assert share, proc.stdout
    assert 0.0 < float(share.group(1)) < 1e4
    assert re.search(r'batch 0: task loss [\d.e+]+ \|grad\| [\d.e+]+',
                     proc.stdout)
