"""KNN, edge features and the EdgeConv adapter (cheap path == dense path)."""
import copy

import pytest
import torch
import torch.nn.functional as F

from pointdistiller_mm.adapters import (Conv1x1Connector, LinearConnector,
                                        LocalGraphAdapter, edge_features,
                                        knn_indices)
from pointdistiller_mm.adapters.local_graph import (FactoredEdges, _gather,
                                                    paired_edge_distance)

# p0 (0,0), p1 (1,0), p2 (0,2), p3 (5,5), p4 (5,6)
PTS = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0],
                     [5.0, 6.0]]])


def test_knn_known_neighbours_self_first():
    idx = knn_indices(PTS, 3)
    assert idx[0, 0].tolist() == [0, 1, 2]
    assert idx[0, 1].tolist() == [1, 0, 2]  # d(p1,p0)=1, d(p1,p2)=5
    assert idx[0, 3].tolist() == [3, 4, 2]  # d(p3,p2)=34 < d(p3,p1)=41
    assert idx[0, 4].tolist() == [4, 3, 2]


def test_knn_masked_rows_never_chosen():
    mask = torch.tensor([[True, False, True, True, True]])
    idx, emask = knn_indices(PTS, 3, mask, return_mask=True)
    assert idx[0, 0].tolist() == [0, 2, 3]  # p3 (50) before p4 (61)
    valid_rows = idx[0][mask[0]]
    assert not (valid_rows == 1).any()
    assert idx[0, 1].tolist() == [0, 0, 0] and not emask[0, 1].any()
    assert emask[0][mask[0]].all()


def test_knn_fewer_rows_than_k():
    mask = torch.tensor([[True, True, False, False, False]])
    idx, emask = knn_indices(PTS, 4, mask, return_mask=True)
    assert idx[0, 0].tolist() == [0, 1, 0, 0]
    assert emask[0, 0].tolist() == [True, True, False, False]
    # k larger than the whole padded group.
    idx, emask = knn_indices(PTS, 7, return_mask=True)
    assert idx.shape == (1, 5, 7)
    assert emask.sum(-1).tolist() == [[5] * 5]
    assert idx[0, 0, 5:].tolist() == [0, 0]


def test_knn_chunked_equals_unchunked_and_groups_separate():
    torch.manual_seed(0)
    x = torch.randn(2, 61, 6)
    mask = torch.rand(2, 61) > 0.2
    a = knn_indices(x, 9, mask, chunk_size=7)
    b = knn_indices(x, 9, mask, chunk_size=4096)
    assert torch.equal(a, b)
    brute = torch.cdist(x[1:], x[1:])[0]
    brute[:, ~mask[1]] = float('inf')
    i = int(mask[1].nonzero()[0])
    ref = torch.topk(brute[i], 9, largest=False).indices
    assert a[1, i].tolist() == ref.tolist()


def test_knn_explicit_keys_and_self_index():
    keys = PTS
    q = PTS[:, [3, 0]]
    idx = knn_indices(q, 2, keys=keys, self_index=torch.tensor([[3, 0]]))
    assert idx[0].tolist() == [[3, 4], [0, 1]]


def test_edge_features_by_hand():
    x = torch.tensor([[[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]]])
    idx = torch.tensor([[[0, 2], [1, 0], [2, 1]]])
    cat = edge_features(x, idx, edge_mode='cat')
    assert cat.shape == (1, 3, 2, 4)
    assert cat[0, 0, 1].tolist() == [1.0, 0.0, 3.0, 3.0]  # [z0, z2]
    assert cat[0, 1, 1].tolist() == [0.0, 2.0, 1.0, 0.0]  # [z1, z0]
    assert cat[0, 2, 1].tolist() == [3.0, 3.0, 0.0, 2.0]  # [z2, z1]
    diff = edge_features(x, idx, edge_mode='diff')
    assert diff[0, 0, 1].tolist() == [2.0, 3.0, 1.0, 0.0]  # [z2-z0, z0]
    assert diff[0, 1, 1].tolist() == [1.0, -2.0, 0.0, 2.0]  # [z0-z1, z1]
    assert diff[0, 2, 0].tolist() == [0.0, 0.0, 3.0, 3.0]  # self edge


def test_adapter_by_hand_eval():
    # 1 channel, weight [1, -1] on cat[z_i, z_j]: y = z_i - z_j.
    ad = LocalGraphAdapter(1, 1, aggregation='max', bn_eps=0.0).eval()
    with torch.no_grad():
        ad.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
    x = torch.tensor([[[1.0], [0.0], [3.0]]])
    idx = torch.tensor([[[0, 1], [1, 0], [2, 1]]])
    out = ad(x, idx)
    assert out.flatten().tolist() == [1.0, 0.0, 3.0]
    ad.aggregation = 'none'
    assert ad(x, idx)[0, :, :, 0].tolist() == [[0.0, 1.0], [0.0, 0.0],
                                               [0.0, 3.0]]
    # A masked edge never wins the max, even with the largest value.
    ad.aggregation = 'max'
    with torch.no_grad():
        ad.conv.weight.copy_(torch.tensor([0.0, 1.0]).view(1, 2, 1, 1))
    emask = torch.tensor([[[True, False], [True, True], [True, True]]])
    for dense in (False, True):
        ad.dense = dense
        out = ad(x, torch.tensor([[[0, 2], [1, 0], [2, 1]]]), edge_mask=emask)
        assert out.flatten().tolist() == [1.0, 1.0, 3.0]


@pytest.mark.parametrize('edge_mode', ['cat', 'diff'])
@pytest.mark.parametrize('aggregation', ['max', 'none'])
@pytest.mark.parametrize('train', [True, False])
def test_cheap_equals_dense(edge_mode, aggregation, train):
    torch.manual_seed(1)
    B, N, M, C, Co, K = 2, 23, 31, 5, 4, 6
    # float64 so that equality holds to rounding (bias grads are ~0).
    cheap = LocalGraphAdapter(C, Co, edge_mode, aggregation,
                              bias=True).double()
    with torch.no_grad():
        cheap.bn.weight.uniform_(0.5, 1.5)
        cheap.bn.bias.uniform_(-0.2, 0.2)
        cheap.bn.running_mean.uniform_(-0.5, 0.5)
        cheap.bn.running_var.uniform_(0.5, 2.0)
    cheap.train(train)
    dense = copy.deepcopy(cheap)
    dense.dense = True
    mask = torch.rand(B, N) > 0.2
    key_mask = torch.rand(B, M) > 0.1
    x0 = torch.randn(B, N, C, dtype=torch.float64)
    k0 = torch.randn(B, M, C, dtype=torch.float64)
    idx, emask = knn_indices(
        x0, K, mask, keys=k0, key_mask=key_mask, return_mask=True)
    mask[0, 0] = True
    emask[0, 0, 1] = False  # a masked edge to a real neighbour

    def run(mod):
        x = x0.clone().requires_grad_(True)
        k = k0.clone().requires_grad_(True)
        out = mod(x, idx, mask, keys=k, edge_mask=emask)
        w = torch.linspace(-1, 1, out.numel(), dtype=out.dtype)
        (out * w.view_as(out)).sum().backward()
        return out, x.grad, k.grad

    out_c, gx_c, gk_c = run(cheap)
    out_d, gx_d, gk_d = run(dense)
    tol = dict(atol=1e-10, rtol=1e-8)
    assert torch.allclose(out_c, out_d, **tol)
    assert torch.allclose(gx_c, gx_d, **tol)
    assert torch.allclose(gk_c, gk_d, **tol)
    for (n, pc), (_, pd) in zip(cheap.named_parameters(),
                                dense.named_parameters()):
        assert torch.allclose(pc.grad, pd.grad, **tol), n
    assert torch.allclose(cheap.bn.running_mean, dense.bn.running_mean, **tol)
    assert torch.allclose(cheap.bn.running_var, dense.bn.running_var, **tol)
    assert out_c.abs().sum() > 0


def test_padded_rows_do_not_change_bn_statistics():
    torch.manual_seed(2)
    ad = LocalGraphAdapter(3, 4, aggregation='none')
    x = torch.randn(1, 6, 3)
    idx = knn_indices(x, 3)
    ref = ad(x, idx)
    # Append 4 padded rows of garbage.
    xp = torch.cat([x, 100 * torch.randn(1, 4, 3)], 1)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    idxp = knn_indices(xp, 3, mask)
    out = ad(xp, idxp, mask)
    assert torch.allclose(out[:, :6], ref, atol=1e-5)
    assert out[:, 6:].abs().sum() == 0


def test_adapter_single_edge_in_train_mode():
    ad = LocalGraphAdapter(2, 2, aggregation='max')
    with torch.no_grad():
        ad.bn.bias.copy_(torch.tensor([0.5, -0.5]))
    x = torch.randn(1, 3, 2, requires_grad=True)
    mask = torch.tensor([[True, False, False]])
    idx, emask = knn_indices(x, 1, mask, return_mask=True)
    out = ad(x, idx, mask, edge_mask=emask)
    assert out[0, 0].tolist() == [0.5, 0.0]  # relu(beta)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_connectors():
    lin = LinearConnector(3, 5)
    assert lin(torch.randn(2, 7, 3)).shape == (2, 7, 5)
    conv = Conv1x1Connector(3, 5, norm=True)
    assert conv.conv.bias is None
    assert conv(torch.randn(2, 3, 4, 4)).shape == (2, 5, 4, 4)
    from mmdet3d.registry import MODELS

    # module_dict: checks registration without importing all of mmdet3d.
    for cls in (LocalGraphAdapter, LinearConnector, Conv1x1Connector):
        assert MODELS.module_dict[cls.__name__] is cls


def test_paired_edge_distance_matches_materialized():
    torch.manual_seed(4)
    B, N, M, C, K = 2, 13, 17, 3, 4
    idx = torch.randint(0, M, (B, N, K))
    mask = torch.rand(B, N, K) > 0.2
    leaves = [torch.randn(*s, dtype=torch.float64, requires_grad=True)
              for s in ((B, N, C), (B, M, C), (B, N, C), (B, M, C))]
    g_s = FactoredEdges(leaves[0], leaves[1], idx, mask)
    g_t = FactoredEdges(leaves[2], leaves[3], idx, mask)
    for norm in ('mse', 'l1', 'l2'):
        d = paired_edge_distance(g_s, g_t, norm, chunk_size=5)
        grads = torch.autograd.grad(d.sum(), leaves)
        diff = g_s.materialize() - g_t.materialize()
        count = (mask.sum(-1) * C).clamp(min=1)
        if norm == 'mse':
            ref = diff.pow(2).sum((2, 3)) / count
        elif norm == 'l1':
            ref = diff.abs().sum((2, 3)) / count
        else:
            ref = diff.pow(2).sum((2, 3)).sqrt()
        ref_grads = torch.autograd.grad(ref.sum(), leaves)
        assert torch.allclose(d, ref)
        for a, b in zip(grads, ref_grads):
            assert torch.allclose(a, b)
    # Materialized edges by hand: relu(node_i + nbr_j), zero when masked.
    e = g_s.materialize()
    assert torch.allclose(
        e[1, 2, 3], (leaves[0][1, 2] + leaves[1][1, idx[1, 2, 3]]).relu() *
        mask[1, 2, 3])


# -- fast paths against plain references --------------------------------------
def _ref_knn(x, k, mask, keys=None, key_mask=None, self_index=None):
    """The plain algorithm: one topk over each full row of distances."""
    B, N, _ = x.shape
    if keys is None:
        keys, key_mask = x, mask
        self_index = torch.arange(N).expand(B, N)
    M = keys.shape[1]
    key_sq = (keys * keys).sum(-1).masked_fill(~key_mask, float('inf'))
    d = torch.baddbmm(key_sq[:, None].expand(B, N, M), x,
                      keys.transpose(1, 2), alpha=-2.0)
    if self_index is not None:
        d.scatter_(2, self_index[..., None], float('-inf'))
    dist, idx = torch.topk(d, min(k, M), dim=2, largest=False, sorted=True)
    ok = (dist != float('inf')) & mask[..., None]
    return torch.where(ok, idx, idx[..., :1]) * mask[..., None], ok, dist


def _check_knn_sets(got, ref):
    """Same self column, same valid neighbour sets, masked columns repeat
    column 0 (their position may differ in unsorted output)."""
    (idx, emask), (ridx, rmask, _) = got, ref
    assert torch.equal(idx[..., 0], ridx[..., 0])
    assert torch.equal(emask[..., 0], rmask[..., 0])
    assert torch.equal(emask.sum(-1), rmask.sum(-1))
    assert torch.equal(idx.masked_fill(~emask, -1).sort(-1).values,
                       ridx.masked_fill(~rmask, -1).sort(-1).values)
    assert torch.equal(idx[~emask], idx[..., :1].expand_as(idx)[~emask])


@pytest.mark.parametrize('sort', [True, False])
def test_k_smallest_same_entries_as_topk(sort):
    from pointdistiller_mm.adapters.local_graph import _k_smallest
    g = torch.Generator().manual_seed(0)
    R, M, k = 40, 400, 7
    # Small integers: many exact ties, also at the k-th value.
    d = torch.randint(0, 60, (R, M), generator=g).float()
    d[0] = 5.0  # one value everywhere: too many candidates
    d[1, 4:] = float('inf')  # fewer than k finite entries
    d[2, :] = float('inf')
    d[3, 10] = float('-inf')
    d[4, 200:] = float('inf')
    vals, cols = _k_smallest(d, k, sort)
    rv, rc = torch.topk(d, k, dim=1, largest=False, sorted=True)
    assert torch.equal(cols.sort(1).values, rc.sort(1).values)
    assert torch.equal(d.gather(1, cols), vals)
    if sort:
        assert torch.equal(vals, rv)
    else:
        assert torch.equal(vals.sort(1).values, rv)


@pytest.mark.parametrize('sort', [True, False])
def test_knn_fast_selection_matches_full_topk(sort):
    g = torch.Generator().manual_seed(3)
    B, N, C, k = 2, 330, 3, 9
    # Integer coordinates: exact distances with many ties.
    x = torch.randint(-6, 7, (B, N, C), generator=g).float()
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 250:] = False  # padded rows of a smaller group
    for chunk in (64, 1024):
        got = knn_indices(x, k, mask, chunk_size=chunk, return_mask=True,
                          sort=sort)
        _check_knn_sets(got, _ref_knn(x, k, mask))
        if sort:
            q_sq = (x * x).sum(-1, keepdim=True)
            d = q_sq - 2 * torch.einsum('bnc,bnkc->bnk', x,
                                        _gather(x, got[0]))
            d = d + (_gather(x, got[0]) ** 2).sum(-1)
            assert (d[..., 2:] >= d[..., 1:-1]).all()
    # Explicit keys, self index and invalid keys.
    keys = torch.randint(-6, 7, (B, 400, C), generator=g).float()
    key_mask = torch.rand(B, 400, generator=g) > 0.1
    self_index = torch.randint(0, 400, (B, N), generator=g)
    key_mask.scatter_(1, self_index, True)
    keys.scatter_(1, self_index[..., None].expand(B, N, C), x)
    got = knn_indices(x, k, mask, keys=keys, key_mask=key_mask,
                      self_index=self_index, return_mask=True, sort=sort)
    _check_knn_sets(got, _ref_knn(x, k, mask, keys, key_mask, self_index))


def test_knn_fast_selection_small_groups():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(3, 200, 4, generator=g)
    mask = torch.zeros(3, 200, dtype=torch.bool)
    mask[0] = True
    mask[1, :5] = True  # fewer valid rows than k
    # mask[2]: an empty group
    for sort in (True, False):
        got = knn_indices(x, 12, mask, return_mask=True, sort=sort)
        _check_knn_sets(got, _ref_knn(x, 12, mask))
        idx, emask = got
        assert emask[1, :5].sum(-1).tolist() == [5] * 5
        assert (idx[1, :5][~emask[1, :5]] == idx[1, :5, :1].expand(
            5, 12)[~emask[1, :5]]).all()
        assert not emask[2].any() and not idx[2].any()


def _dense_adjacency(idx, valid, M):
    B, N, K = idx.shape
    A = torch.zeros(B * N, B * M, dtype=torch.float64)
    rows = torch.arange(B * N).repeat_interleave(K)
    cols = (idx + torch.arange(B).view(B, 1, 1) * M).reshape(-1)
    A.index_put_((rows, cols), valid.reshape(-1).double(), accumulate=True)
    return A


def test_edge_graph_sums_match_dense_adjacency():
    from pointdistiller_mm.adapters.local_graph import EdgeGraph
    g = torch.Generator().manual_seed(5)
    B, N, M, K, C = 2, 11, 13, 6, 3
    idx = torch.randint(0, M, (B, N, K), generator=g)
    for valid in (torch.rand(B, N, K, generator=g) > 0.3,
                  torch.ones(B, N, K, dtype=torch.bool)):
        graph = EdgeGraph(idx, valid, M)
        A = _dense_adjacency(idx, valid, M)
        v = torch.randn(B * M, C, dtype=torch.float64, generator=g)
        u = torch.randn(B * N, C, dtype=torch.float64, generator=g)
        assert torch.allclose(graph.gather_sum(v), A @ v)
        assert torch.allclose(graph.scatter_sum(u), A.t() @ u)
        assert torch.equal(graph.row_count.view(-1).double(), A.sum(1))
        assert torch.equal(graph.in_degree.view(-1).double(), A.sum(0))
        assert graph.num_edges == int(valid.sum())


def test_bag_max_matches_embedding_bag():
    from pointdistiller_mm.adapters.local_graph import _BagMax
    g = torch.Generator().manual_seed(6)
    R, M, K, C = 300, 50, 7, 5  # more rows than one gather block
    flat = torch.randint(0, M, (R, K), generator=g)
    v0 = torch.randn(M, C, dtype=torch.float64, generator=g)
    v0[3] = v0[4]  # ties between rows: the first edge wins
    w = torch.randn(R, C, dtype=torch.float64, generator=g)
    grads = []
    for fn in (lambda v: _BagMax.apply(v, flat),
               lambda v: F.embedding_bag(flat, v, mode='max')):
        v = v0.clone().requires_grad_(True)
        out = fn(v)
        (out * w).sum().backward()
        grads.append((out, v.grad))
    assert torch.equal(grads[0][0], grads[1][0])
    assert torch.equal(grads[0][1], grads[1][1])


@pytest.mark.parametrize('aggregation', ['max', 'none'])
def test_shared_graph_and_no_input_grad_equal_dense(aggregation):
    from pointdistiller_mm.adapters.local_graph import EdgeGraph
    torch.manual_seed(7)
    B, N, C, Co, K = 2, 90, 3, 4, 12
    ad = LocalGraphAdapter(C, Co, aggregation=aggregation).double()
    dense = copy.deepcopy(ad)
    dense.dense = True
    x = torch.randn(B, N, C, dtype=torch.float64)
    mask = torch.ones(B, N, dtype=torch.bool)
    mask[1, 7:] = False  # a group smaller than k
    idx, emask = knn_indices(x, K, mask, return_mask=True)
    graph = EdgeGraph(idx, emask & mask[..., None], N)
    f = ad.factored(x, idx, mask, edge_mask=emask, graph=graph)
    out = f.max() if aggregation == 'max' else f.materialize()
    ref = dense(x, idx, mask, edge_mask=emask)
    w = torch.randn_like(ref)
    (out * w).sum().backward()
    (ref * w).sum().backward()
    assert torch.allclose(out, ref, atol=1e-10)
    for (n, p), (_, q) in zip(ad.named_parameters(),
                              dense.named_parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-8, atol=1e-10), n


def test_entries_at_most_matches_nonzero():
    from pointdistiller_mm.adapters.local_graph import (_entries_at_most,
                                                        _Workspace)
    g = torch.Generator().manual_seed(8)
    ws = _Workspace(torch.device('cpu'))  # reused: stale content ignored
    for R, M in ((7, 61), (5, 64), (1, 3), (0, 9), (3, 5)):
        d = torch.rand(R, M, generator=g)
        t = torch.rand(R, generator=g) * 0.3
        t[:1] = 2.0  # a full row
        flat = _entries_at_most(d, t, ws)
        ref = (d <= t.unsqueeze(1)).view(-1).nonzero().squeeze(1)
        assert torch.equal(flat, ref)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_order_bits_sort_like_floats(dtype):
    from pointdistiller_mm.adapters.local_graph import (_flip_order_bits,
                                                        _int_view)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(500, generator=g, dtype=dtype) * 1e3
    x[:6] = torch.tensor([float('inf'), float('-inf'), 0.0, 1e-40, -1e-40,
                          3.5], dtype=dtype)
    key = _flip_order_bits(_int_view(x.clone()))
    assert torch.equal(x[key.argsort()], x.sort().values)
    assert torch.equal(_flip_order_bits(key.clone()).view(dtype), x)


def test_rank_distances_match_one_product():
    from pointdistiller_mm.adapters.local_graph import _rank_distances
    g = torch.Generator().manual_seed(10)
    B, n, M, C = 2, 150, 300, 16
    q = torch.randn(B, n, C, generator=g)
    keys = torch.randn(B, M, C, generator=g)
    key_sq = (keys * keys).sum(-1)
    ref = torch.baddbmm(key_sq[:, None].expand(B, n, M), q,
                        keys.transpose(1, 2), alpha=-2.0)
    out = _rank_distances(torch.empty(B, n, M), q, keys.transpose(1, 2),
                          key_sq)
    assert torch.equal(out, ref)  # bit for bit
