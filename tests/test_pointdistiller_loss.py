"""PointDistillerLoss against hand-computed values and the official formula."""
import math

import pytest
import torch
import torch.nn.functional as F

from pointdistiller_mm.losses import PointDistillerLoss, bev_rows


def _set_adapter(adapter, w):
    """Set the EdgeConv 1x1 weight (C_out, 2 C_in); BN identity in eval."""
    with torch.no_grad():
        adapter.conv.weight.copy_(w.view(*w.shape, 1, 1))


def _eye2():
    return torch.eye(2)


def test_loss_by_hand_self_edge_reweighted():
    # k=1: the graph is the row itself; weight [I, 0] on cat[z_i, z_i] and an
    # identity BatchNorm (eval, running stats 0 / 1, eps 0): G_i = relu(z_i).
    loss = PointDistillerLoss(2, 2, num_samples=10, k=1, tau=1.0,
                              bn_eps=0.0).eval()
    w = torch.cat([_eye2(), torch.zeros(2, 2)], 1)
    _set_adapter(loss.student_adapter, w)
    _set_adapter(loss.teacher_adapter, w)
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    t = torch.tensor([[1.0, 1.0], [0.0, 0.0], [2.0, 4.0]])
    scores = torch.tensor([1.0, 2.0, 3.0])
    out = loss(s, t, torch.zeros(3, dtype=torch.long), scores)
    z = sum(math.exp(v) for v in (1, 2, 3))
    phi = [3 * math.exp(v) / z for v in (1, 2, 3)]
    d = [0.5, 0.5, 2.0]  # mean over channels of squared differences
    expected = sum(p * x for p, x in zip(phi, d)) / 3
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # l2 and l1 norms.
    loss.norm = 'l2'
    expected = sum(p * x for p, x in zip(phi, [1.0, 1.0, 2.0])) / 3
    assert loss(s, t, torch.zeros(3, dtype=torch.long),
                scores).item() == pytest.approx(expected, rel=1e-6)
    loss.norm = 'l1'
    expected = sum(p * x for p, x in zip(phi, [0.5, 0.5, 1.0])) / 3
    assert loss(s, t, torch.zeros(3, dtype=torch.long),
                scores).item() == pytest.approx(expected, rel=1e-6)


def test_loss_by_hand_neighbours_feature_and_coord_space():
    # Weight [0, I]: G_ik = z_{j(i,k)}, the neighbour's row.
    t = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    s = torch.tensor([[1.0, 0.0], [1.0, 2.0], [10.0, 3.0]])
    e = [0.5, 2.0, 4.5]  # per-row mean squared difference
    batch = torch.zeros(3, dtype=torch.long)
    scores = torch.tensor([3.0, 2.0, 1.0])
    w = torch.cat([torch.zeros(2, 2), _eye2()], 1)

    def build(space):
        loss = PointDistillerLoss(2, 2, num_samples=10, k=2,
                                  aggregation='none', reweight=False,
                                  knn_space=space, bn_eps=0.0).eval()
        _set_adapter(loss.student_adapter, w)
        _set_adapter(loss.teacher_adapter, w)
        return loss

    # Teacher features: 0 <-> 1, 2 -> 1.
    out = build('feature')(s, t, batch, scores)
    expected = ((e[0] + e[1]) / 2 * 2 + (e[2] + e[1]) / 2) / 3
    assert out.item() == pytest.approx(expected, rel=1e-6)
    # Coordinates: 0 -> 2, 1 -> 2, 2 -> 0.
    coords = torch.tensor([[0.0], [5.0], [1.0]])
    out = build('coord')(s, t, batch, scores, coords=coords)
    expected = ((e[0] + e[2]) / 2 + (e[1] + e[2]) / 2 +
                (e[2] + e[0]) / 2) / 3
    assert out.item() == pytest.approx(expected, rel=1e-6)


def test_reweighting_only_ablation_by_hand():
    loss = PointDistillerLoss(2, 2, num_samples=10, local_distill=False,
                              tau=1.0)
    with torch.no_grad():
        loss.student_adapter.linear.weight.copy_(2 * _eye2())
        loss.student_adapter.linear.bias.zero_()
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    out = loss(s, t, torch.zeros(2, dtype=torch.long),
               torch.tensor([1.0, 2.0]))
    e = math.e
    phi = [2 / (1 + e), 2 * e / (1 + e)]
    assert out.item() == pytest.approx((phi[0] * 0 + phi[1] * 2.0) / 2)


def _random_batch(seed=0, cs=4, ct=6, sizes=(40, 25)):
    g = torch.Generator().manual_seed(seed)
    M = sum(sizes)
    batch = torch.cat([torch.full((n, ), i) for i, n in enumerate(sizes)])
    s = torch.randn(M, cs, generator=g)
    t = torch.randn(M, ct, generator=g)
    scores = torch.randint(1, 30, (M, ), generator=g).float()
    return s, t, batch, scores


@pytest.mark.parametrize('aggregation', ['max', 'none'])
@pytest.mark.parametrize('norm', ['mse', 'l2', 'l1'])
def test_zero_when_student_equals_teacher(aggregation, norm):
    s, _, batch, scores = _random_batch(cs=4, ct=4)
    s.requires_grad_(True)
    loss = PointDistillerLoss(4, 4, num_samples=20, k=5, norm=norm,
                              aggregation=aggregation)
    loss.student_adapter.load_state_dict(loss.teacher_adapter.state_dict())
    out = loss(s, s.detach().clone(), batch, scores)
    assert out.item() == 0.0
    out.backward()  # the norms' gradients at zero stay finite
    assert torch.isfinite(s.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters())


def test_empty_samples():
    s, t, batch, scores = _random_batch(sizes=(30, ))
    loss = PointDistillerLoss(4, 6, num_samples=10, k=4).eval()
    one = loss(s, t, batch, scores)
    # Same rows with two extra empty samples: mean over B = 3 samples.
    three = loss(s, t, batch, scores, batch_size=3)
    assert three.item() == pytest.approx(one.item() / 3, rel=1e-6)
    # Empty first sample.
    first = loss(s, t, batch + 1, scores)
    assert first.item() == pytest.approx(one.item() / 2, rel=1e-6)
    # All-empty batch: a zero with a grad path, no NaN.
    loss.train()
    se = torch.zeros(0, 4, requires_grad=True)
    out = loss(se, torch.zeros(0, 6), torch.zeros(0, dtype=torch.long),
               torch.zeros(0), batch_size=2)
    assert out.item() == 0.0
    out.backward()
    assert se.grad is not None
    assert all(torch.isfinite(p.grad).all() for p in loss.parameters())


def test_tiny_sample_fewer_rows_than_k():
    s, t, batch, scores = _random_batch(sizes=(3, 1))
    s.requires_grad_(True)
    for agg in ('max', 'none'):
        out = PointDistillerLoss(4, 6, num_samples=10, k=8,
                                 aggregation=agg)(s, t, batch, scores)
        out.backward()
        assert torch.isfinite(out) and torch.isfinite(s.grad).all()


@pytest.mark.parametrize('kwargs', [
    dict(),
    dict(aggregation='none', edge_mode='diff'),
    dict(local_distill=False, connector_mode='both'),
    dict(phi_source='teacher_graph', norm='l2'),
    dict(neighbour_pool='all'),
])
def test_gradients_reach_student_and_adapters_not_teacher(kwargs):
    s, t, batch, scores = _random_batch()
    s.requires_grad_(True)
    t.requires_grad_(True)
    loss = PointDistillerLoss(4, 6, num_samples=20, k=5, **kwargs)
    out = loss(s, t, batch, scores)
    out.backward()
    assert out.item() > 0
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    for side in (loss.student_adapter, loss.teacher_adapter):
        grads = [p.grad for p in side.parameters()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_freeze_teacher_adapter():
    s, t, batch, scores = _random_batch()
    s.requires_grad_(True)
    loss = PointDistillerLoss(4, 6, num_samples=20, k=5,
                              freeze_teacher_adapter=True)
    loss(s, t, batch, scores).backward()
    assert all(p.grad is None for p in loss.teacher_adapter.parameters())
    assert loss.student_adapter.conv.weight.grad.abs().sum() > 0


def test_weight_override_and_stats():
    s, t, batch, scores = _random_batch()
    loss = PointDistillerLoss(4, 6, num_samples=20, k=5, reweight=False)
    base = loss(s, t, batch, scores)
    doubled = loss(s, t, batch, scores,
                   weight_override=torch.full((s.shape[0], ), 2.0))
    assert doubled.item() == pytest.approx(2 * base.item(), rel=1e-5)
    assert loss.last_stats['num_sampled'].item() == 20


def test_legacy_matches_official_formula():
    torch.manual_seed(3)
    s, t, batch, scores = _random_batch(seed=3, cs=4, ct=6, sizes=(50, 30))
    N, K = 24, 6
    loss = PointDistillerLoss(4, 6, num_samples=N, k=K, legacy=True,
                              loss_weight=1.0)
    assert loss.tau == 0.01 and loss.aggregation == 'none'
    out = loss(s, t, batch, scores)

    # The official computation, written out densely: top-N over the batch,
    # KNN among all rows of the batch, cat[z_i, z_j], conv + BN + ReLU,
    # softmax(count / 0.01) * N, (MSE * w).mean() * 2.
    q = torch.topk(scores, N).indices
    nbr = torch.topk(torch.cdist(t[q], t), K, largest=False).indices

    def side(feats, ad):
        e = torch.cat([feats[q][:, None].expand(-1, K, -1), feats[nbr]], -1)
        y = F.conv2d(e.permute(2, 0, 1)[None], ad.conv.weight)
        y = F.batch_norm(y, None, None, ad.bn.weight, ad.bn.bias,
                         training=True, eps=ad.bn.eps)
        return F.relu(y)[0].permute(1, 0, 2)  # (N, C, K)

    g_t = side(t, loss.teacher_adapter)
    g_s = side(s, loss.student_adapter)
    w = F.softmax(scores[q] / 0.01, dim=-1) * N
    ref = (F.mse_loss(g_t, g_s, reduction='none') * w[:, None, None]).mean()
    assert out.item() == pytest.approx(2 * ref.item(), rel=1e-5)
    # Argmax-like weights: only the maximal counts carry weight.
    top = scores[q] == scores.max()
    assert torch.allclose(w[~top], torch.zeros(1), atol=1e-6)


def test_bev_rows_layout_and_loss():
    fmap = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2)
    rows, batch, coords = bev_rows(fmap)
    assert rows.shape == (8, 3)
    assert rows[5].tolist() == fmap[1, :, 0, 1].tolist()
    assert batch.tolist() == [0] * 4 + [1] * 4
    assert coords[:4].tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    s = torch.randn(2, 4, 5, 5, requires_grad=True)
    t = torch.randn(2, 6, 5, 5)
    rs, b, c = bev_rows(s)
    rt, _, _ = bev_rows(t)
    loss = PointDistillerLoss(4, 6, num_samples=8, k=4, knn_space='coord')
    out = loss(rs, rt, b, rt.amax(1), coords=c)
    out.backward()
    assert s.grad.abs().sum() > 0


def test_invalid_arguments():
    with pytest.raises(ValueError, match='aligned'):
        PointDistillerLoss(2, 2)(torch.zeros(3, 2), torch.zeros(2, 2),
                                 torch.zeros(3, dtype=torch.long),
                                 torch.zeros(3))
    with pytest.raises(ValueError, match='coords'):
        PointDistillerLoss(2, 2, knn_space='coord')(
            torch.zeros(3, 2), torch.zeros(3, 2),
            torch.zeros(3, dtype=torch.long), torch.ones(3))
    with pytest.raises(ValueError, match='legacy'):
        PointDistillerLoss(2, 2, legacy=True, aggregation='max')
    with pytest.raises(ValueError, match='norm'):
        PointDistillerLoss(2, 2, norm='l3')


@pytest.mark.parametrize('kwargs', [
    dict(aggregation='max'),
    dict(aggregation='none', norm='l2', phi_source='teacher_graph'),
    dict(aggregation='none', edge_mode='diff', neighbour_pool='all'),
    dict(legacy=True),
])
def test_cheap_loss_equals_dense_loss(kwargs):
    s, t, batch, scores = _random_batch(seed=5, sizes=(30, 3))
    s, t = s.double(), t.double()
    cheap = PointDistillerLoss(4, 6, num_samples=12, k=5, edge_chunk_size=4,
                               **kwargs).double()
    dense = PointDistillerLoss(4, 6, num_samples=12, k=5, dense=True,
                               **kwargs).double()
    dense.load_state_dict(cheap.state_dict())
    results = []
    for loss in (cheap, dense):
        x = s.clone().requires_grad_(True)
        out = loss(x, t, batch, scores)
        out.backward()
        results.append((out, x.grad, [p.grad for p in loss.parameters()]))
    (a, ga, pa), (b, gb, pb) = results
    assert torch.allclose(a, b, rtol=1e-9)
    assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12)
    for u, v in zip(pa, pb):
        assert torch.allclose(u, v, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize('kwargs', [
    dict(aggregation='max'),
    dict(aggregation='none', norm='l1'),
    dict(aggregation='max', neighbour_pool='all'),
])
def test_fast_paths_equal_dense_loss_with_masks(kwargs):
    # Groups large enough for the thresholded KNN selection, a padded
    # group and one smaller than k; values, gradients of the student rows
    # and of both adapters, and the BatchNorm running statistics.
    s, t, batch, scores = _random_batch(seed=9, sizes=(110, 80, 3))
    s, t = s.double(), t.double()
    cheap = PointDistillerLoss(4, 6, num_samples=90, k=6, edge_chunk_size=16,
                               **kwargs).double()
    dense = PointDistillerLoss(4, 6, num_samples=90, k=6, dense=True,
                               **kwargs).double()
    dense.load_state_dict(cheap.state_dict())
    results = []
    for loss in (cheap, dense):
        x = s.clone().requires_grad_(True)
        out = loss(x, t, batch, scores)
        out.backward()
        results.append((out, x.grad, [p.grad for p in loss.parameters()]))
    (a, ga, pa), (b, gb, pb) = results
    assert torch.allclose(a, b, rtol=1e-9)
    assert torch.allclose(ga, gb, rtol=1e-8, atol=1e-12)
    assert len(pa) == 6
    for u, v in zip(pa, pb):
        assert torch.allclose(u, v, rtol=1e-8, atol=1e-12)
    for (n, u), (_, v) in zip(cheap.named_buffers(), dense.named_buffers()):
        assert torch.allclose(u.double(), v.double(), rtol=1e-9), n
