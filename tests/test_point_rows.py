"""PointRows (PointRCNN FP-neck rows) and the point-row reweighting
phi = softmax(max_c G^T / tau), checked against hand-computed values."""
import math

import pytest
import torch

from pointdistiller_mm.distillers.rows import PointRows
from pointdistiller_mm.losses.pointdistiller_loss import PointDistillerLoss


def test_point_rows_layout_scores_and_coords():
    teacher = torch.tensor([[[1., 5., -2.], [3., 0., -1.]]])  # (1, 2, 3)
    student = torch.tensor([[[7., 8., 9.]]])  # (1, 1, 3)
    xyz = torch.arange(9.).view(1, 3, 3)
    out = PointRows()(dict(fp_features=student, fp_xyz=xyz),
                      dict(fp_features=teacher, fp_xyz=xyz), {}, {})
    assert out['teacher_feats'].tolist() == [[1., 3.], [5., 0.], [-2., -1.]]
    assert out['student_feats'].tolist() == [[7.], [8.], [9.]]
    assert out['scores'].tolist() == [3., 5., -1.]  # channel max per point
    assert out['batch_idx'].tolist() == [0, 0, 0]
    assert out['coords'].tolist() == xyz[0].tolist()
    plain = PointRows()(student, teacher, {}, {})  # tensors: no coords
    assert plain['coords'] is None and plain['batch_size'] == 1
    with pytest.raises(ValueError, match='same B and Np'):
        PointRows()(student[..., :2], teacher, {}, {})


def _identity_adapter(adapter, c):
    """EdgeConv weight [I, 0] on cat[z_i, z_j]: every edge is z_i."""
    with torch.no_grad():
        w = torch.zeros(c, 2 * c, 1, 1)
        w[:, :c, 0, 0] = torch.eye(c)
        adapter.conv.weight.copy_(w)
        if adapter.conv.bias is not None:
            adapter.conv.bias.zero_()


@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_teacher_graph_reweighting_hand_computed(tau):
    # one sample, 3 points, 2 channels; eval-mode BatchNorm with running
    # statistics (0, 1): G = relu(z_i) / sqrt(1 + eps) on both sides
    loss_fn = PointDistillerLoss(
        student_channels=2, teacher_channels=2, graph_channels=2,
        num_samples=3, k=2, aggregation='max', phi_source='teacher_graph',
        tau=tau, norm='mse', loss_weight=1.0).eval()
    _identity_adapter(loss_fn.teacher_adapter, 2)
    _identity_adapter(loss_fn.student_adapter, 2)
    t = torch.tensor([[1., 0.], [0., 2.], [3., -1.]])
    s = torch.tensor([[0., 0.], [1., 1.], [3., 0.]])
    loss = loss_fn(s, t, batch_idx=torch.zeros(3, dtype=torch.long),
                   scores=t.amax(1), batch_size=1)
    g = 1 / math.sqrt(1 + 1e-5)
    gt = [[1 * g, 0], [0, 2 * g], [3 * g, 0]]
    gs = [[0, 0], [1 * g, 1 * g], [3 * g, 0]]
    m = [max(r) for r in gt]  # max over channels of G^T: g, 2g, 3g
    e = [math.exp(v / tau) for v in m]
    phi = [3 * v / sum(e) for v in e]
    d = [sum((a - b) ** 2 for a, b in zip(rs, rt)) / 2
         for rs, rt in zip(gs, gt)]
    expected = sum(p * x for p, x in zip(phi, d)) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # the reweighting is applied: phi = 1 gives a different value
    loss_fn.reweight = False
    flat = loss_fn(s, t, batch_idx=torch.zeros(3, dtype=torch.long),
                   scores=t.amax(1), batch_size=1)
    assert flat.item() == pytest.approx(sum(d) / 3, rel=1e-5)
    assert abs(flat.item() - loss.item()) > 1e-3
