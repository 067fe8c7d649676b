"""CPU point ops (pointdistiller_mm.compat.point_ops_cpu / mmcv_point_ops)
against plain loop references written from mmcv's CUDA kernels."""
import math

import numpy as np
import pytest
import torch

import pointdistiller_mm  # noqa: F401  (applies the patch on CPU)
from pointdistiller_mm.compat import mmcv_point_ops
from pointdistiller_mm.compat import point_ops_cpu as K

pytestmark = pytest.mark.skipif(torch.cuda.is_available(),
                                reason='CPU paths of CUDA-only ops')

f32 = np.float32


def count_grid_calls(monkeypatch):
    """Count calls of the grid search (list of one int)."""
    calls = [0]
    grid = K._grid_pairs

    def counted(*args):
        calls[0] += 1
        return grid(*args)

    monkeypatch.setattr(K, '_grid_pairs', counted)
    return calls


@pytest.fixture(params=['every_pair', 'grid'])
def search(request, monkeypatch):
    """Run a test with every pair tested and with the grid search."""
    monkeypatch.setattr(K, 'WINDOW_MIN_PAIRS',
                        0 if request.param == 'grid' else 1 << 62)
    monkeypatch.setattr(K, 'WINDOW_MIN_POINTS', 0)
    return request.param


# ------------------------------------------------------------ references
def ref_fps(xyz, m, dist=None):
    """furthest_point_sampling_forward_cuda_kernel (or the with-dist kernel
    when ``dist`` (B, N, N) is given), simulated thread by thread: strided
    per-thread scan, then the block's tree reduction."""
    B, n = xyz.shape[:2]
    block = max(min(1 << int(math.log(n) / math.log(2.0)), 1024), 1)
    out = np.zeros((B, m), np.int32)
    for b in range(B):
        data = xyz[b].astype(f32)
        temp = np.full(n, 1e10, f32)
        old = 0
        for j in range(1, m):
            dists = [f32(-1)] * block
            idxs = [0] * block
            for tid in range(block):
                best, besti = f32(-1), 0
                for k in range(tid, n, block):
                    if dist is not None:
                        d = f32(dist[b, old, k])
                    else:
                        dx = f32(data[k, 0] - data[old, 0])
                        dy = f32(data[k, 1] - data[old, 1])
                        dz = f32(data[k, 2] - data[old, 2])
                        d = f32(f32(f32(dx * dx) + f32(dy * dy)) +
                                f32(dz * dz))
                    d2 = min(d, temp[k])
                    temp[k] = d2
                    if d2 > best:
                        best, besti = d2, k
                dists[tid], idxs[tid] = best, besti
            thres = block
            while thres >= 2:
                half = thres // 2
                for tid in range(half):
                    v1, v2 = dists[tid], dists[tid + half]
                    i1, i2 = idxs[tid], idxs[tid + half]
                    dists[tid] = max(v1, v2)
                    idxs[tid] = i2 if v2 > v1 else i1
                thres //= 2
            old = idxs[0]
            out[b, j] = old
    return out


def ref_ball_query(rmin, rmax, ns, xyz, centers):
    B, n, _ = xyz.shape
    m = centers.shape[1]
    out = np.zeros((B, m, ns), np.int32)
    r2max = f32(f32(rmax) * f32(rmax))
    r2min = f32(f32(rmin) * f32(rmin))
    for b in range(B):
        for i in range(m):
            cnt = 0
            for k in range(n):
                d = centers[b, i] - xyz[b, k]
                d2 = f32(f32(d[0] * d[0]) + f32(d[1] * d[1]))
                d2 = f32(d2 + f32(d[2] * d[2]))
                if d2 == 0 or (d2 >= r2min and d2 < r2max):
                    if cnt == 0:
                        out[b, i, :] = k
                    out[b, i, cnt] = k
                    cnt += 1
                    if cnt >= ns:
                        break
    return out


def ref_three_nn(target, source):
    B, n, _ = target.shape
    m = source.shape[1]
    dist = np.zeros((B, n, 3), f32)
    idx = np.zeros((B, n, 3), np.int32)
    for b in range(B):
        for i in range(n):
            best = [1e40, 1e40, 1e40]
            besti = [0, 0, 0]
            for k in range(m):
                d = target[b, i] - source[b, k]
                d = f32(f32(f32(d[0] * d[0]) + f32(d[1] * d[1])) +
                        f32(d[2] * d[2]))
                if d < best[0]:
                    best = [d, best[0], best[1]]
                    besti = [k, besti[0], besti[1]]
                elif d < best[1]:
                    best = [best[0], d, best[1]]
                    besti = [besti[0], k, besti[1]]
                elif d < best[2]:
                    best[2], besti[2] = d, k
            dist[b, i] = np.array(best, dtype=np.float64).astype(f32)
            idx[b, i] = besti
    return dist, idx


def ref_roipoint_pool(points, feats, boxes, S):
    from mmcv.ops.points_in_boxes import points_in_boxes_cpu
    B, N, _ = points.shape
    M = boxes.shape[1]
    C = feats.shape[2]
    flags = points_in_boxes_cpu(points, boxes)  # (B, N, M), mmcv's CPU kernel
    pooled = torch.zeros(B, M, S, 3 + C)
    empty = torch.zeros(B, M, dtype=torch.int32)
    for b in range(B):
        for j in range(M):
            sel = [k for k in range(N) if flags[b, k, j]][:S]
            if not sel:
                empty[b, j] = 1
                continue
            sel = [sel[k % len(sel)] for k in range(S)]
            for s, k in enumerate(sel):
                pooled[b, j, s, :3] = points[b, k]
                pooled[b, j, s, 3:] = feats[b, k]
    return pooled, empty


# ------------------------------------------------------------------ FPS
def test_fps_block_size_matches_launcher():
    assert [K.fps_block_size(n) for n in (1, 2, 3, 7, 8, 1000, 1024, 5000)] \
        == [1, 2, 2, 4, 8, 512, 1024, 1024]


@pytest.mark.parametrize('n,m', [(37, 9), (64, 20), (5, 8), (1100, 12)])
def test_fps_matches_thread_simulation(n, m):
    g = torch.Generator().manual_seed(n)
    xyz = torch.randn(2, n, 3, generator=g)
    xyz[0, 4] = xyz[0, 3]  # duplicates: exact ties of the maximum
    xyz[1, 1:4] = xyz[1, 10 % n]
    out = K.furthest_point_sample(xyz, m)
    assert out.dtype == torch.int32 and out.shape == (2, m)
    np.testing.assert_array_equal(out.numpy(), ref_fps(xyz.numpy(), m))


def test_fps_ties_follow_block_reduction():
    # 8 points on a grid, all at distance 1 from point 0: the kernel picks
    # among equal maxima by bit-reversed thread id (block 8: 4 before 1).
    xyz = torch.zeros(1, 8, 3)
    xyz[0, 1:, 0] = 1.0
    xyz[0, 1:, 1] = torch.arange(7).float() * 0  # all identical
    out = K.furthest_point_sample(xyz, 3)
    np.testing.assert_array_equal(out.numpy(), ref_fps(xyz.numpy(), 3))
    assert out[0, 1].item() == 4


def test_fps_with_dist_matches_reference():
    g = torch.Generator().manual_seed(1)
    xyz = torch.randn(2, 30, 3, generator=g)
    d = torch.cdist(xyz, xyz).pow(2).contiguous()
    d[:, :, 5] = d[:, :, 6]  # equal columns: ties
    out = K.furthest_point_sample_with_dist(d, 10)
    ref = ref_fps(xyz.numpy(), 10, dist=d.numpy())
    np.testing.assert_array_equal(out.numpy(), ref)


# ------------------------------------------------------------ ball query
def test_ball_query_matches_reference(search):
    g = torch.Generator().manual_seed(2)
    xyz = torch.rand(2, 60, 3, generator=g) * 2
    centers = torch.cat([xyz[:, :5], torch.rand(2, 5, 3, generator=g) * 2,
                         torch.full((2, 1, 3), 50.0)], 1).contiguous()
    for rmin, rmax, ns in ((0.0, 0.5, 8), (0.3, 0.9, 5), (0.0, 3.0, 70)):
        out = K.ball_query(rmin, rmax, ns, xyz, centers)
        np.testing.assert_array_equal(
            out.numpy(), ref_ball_query(rmin, rmax, ns, xyz.numpy(),
                                        centers.numpy()))
    # the far centre finds nothing: all zeros; a centre on a point with
    # min_radius > 0 still takes the point itself (d2 == 0)
    out = K.ball_query(0.3, 0.9, 5, xyz, centers)
    assert (out[:, -1] == 0).all()
    assert (out[:, :5] == torch.arange(5).view(1, 5, 1).int()).any(-1).all()


def test_ball_query_grid_on_scan_sized_input(monkeypatch):
    # clustered points, centres among them, points exactly on the sphere
    # along x (d2 == r^2: outside) and just inside: the grid search must
    # give the reference's result
    g = torch.Generator().manual_seed(11)
    xyz = torch.cat([torch.rand(2, 400, 3, generator=g) * 4,
                     torch.randn(2, 200, 3, generator=g) * 0.3 + 2], 1)
    centers = xyz[:, ::7].clone()
    xyz[:, 1, :] = centers[:, 3] + torch.tensor([0.5, 0.0, 0.0])
    xyz[:, 2, :] = centers[:, 3] - torch.tensor([0.4999, 0.0, 0.0])
    xyz, centers = xyz.contiguous(), centers.contiguous()
    assert 2 * xyz.shape[1] * centers.shape[1] >= K.WINDOW_MIN_PAIRS
    assert xyz.shape[1] >= K.WINDOW_MIN_POINTS
    calls = count_grid_calls(monkeypatch)
    for rmin, rmax, ns in ((0.0, 0.5, 16), (0.2, 1.0, 32)):
        out = K.ball_query(rmin, rmax, ns, xyz, centers)
        np.testing.assert_array_equal(
            out.numpy(), ref_ball_query(rmin, rmax, ns, xyz.numpy(),
                                        centers.numpy()))
    assert calls == [2]  # the grid search ran
    # a NaN coordinate makes the op test every pair (same result as before)
    xyz[0, 5, 0] = float('nan')
    out = K.ball_query(0.0, 0.5, 16, xyz, centers)
    monkeypatch.setattr(K, 'WINDOW_MIN_PAIRS', 1 << 62)
    np.testing.assert_array_equal(out.numpy(),
                                  K.ball_query(0.0, 0.5, 16, xyz,
                                               centers).numpy())


# ------------------------------------------------------- group / gather
def test_group_and_gather_forward_match_loops():
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(2, 4, 10, generator=g)
    idx = torch.randint(0, 10, (2, 3, 5), generator=g, dtype=torch.int32)
    out = K.group_points(feats, idx)
    for b in range(2):
        for c in range(4):
            for i in range(3):
                for s in range(5):
                    assert out[b, c, i, s] == feats[b, c, idx[b, i, s]]
    gidx = torch.randint(0, 10, (2, 6), generator=g, dtype=torch.int32)
    out = K.gather_points(feats, gidx)
    for b in range(2):
        for c in range(4):
            for i in range(6):
                assert out[b, c, i] == feats[b, c, gidx[b, i]]


def test_grouping_gather_interpolate_gradcheck_through_mmcv():
    from mmcv.ops import gather_points, grouping_operation, three_interpolate
    g = torch.Generator().manual_seed(4)
    feats = torch.randn(2, 3, 7, generator=g, dtype=torch.float64,
                        requires_grad=True)
    idx = torch.randint(0, 7, (2, 4, 5), generator=g, dtype=torch.int32)
    assert torch.autograd.gradcheck(lambda f: grouping_operation(f, idx),
                                    (feats, ))
    gidx = torch.randint(0, 7, (2, 9), generator=g, dtype=torch.int32)
    assert torch.autograd.gradcheck(lambda f: gather_points(f, gidx),
                                    (feats, ))
    tidx = torch.randint(0, 7, (2, 6, 3), generator=g, dtype=torch.int32)
    w = torch.rand(2, 6, 3, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: three_interpolate(f, tidx, w),
                                    (feats, ))


# ------------------------------------------------------------- three NN
def test_three_nn_matches_reference_with_ties():
    g = torch.Generator().manual_seed(5)
    source = torch.randint(0, 4, (2, 12, 3), generator=g).float()  # ties
    target = torch.randint(0, 4, (2, 9, 3), generator=g).float()
    dist2, idx = K.three_nn(target, source)
    rd, ri = ref_three_nn(target.numpy(), source.numpy())
    np.testing.assert_array_equal(idx.numpy(), ri)
    np.testing.assert_array_equal(dist2.numpy(), rd)
    # mmcv's ThreeNN returns sqrt of the squared distances
    from mmcv.ops import three_nn
    d, i = three_nn(target, source)
    np.testing.assert_array_equal(i.numpy(), ri)
    torch.testing.assert_close(d, torch.sqrt(torch.from_numpy(rd)))


def test_three_nn_random_with_duplicate_sources():
    # float coordinates (the fast top-k path) plus duplicated sources and
    # targets on sources (exact ties, redone with (distance, index) keys)
    g = torch.Generator().manual_seed(13)
    source = torch.rand(2, 150, 3, generator=g) * 5
    source[:, 100:120] = source[:, 10:30]
    target = torch.cat([torch.rand(2, 120, 3, generator=g) * 5,
                        source[:, 5:35]], 1).contiguous()
    dist2, idx = K.three_nn(target, source)
    rd, ri = ref_three_nn(target.numpy(), source.numpy())
    np.testing.assert_array_equal(idx.numpy(), ri)
    np.testing.assert_array_equal(dist2.numpy(), rd)


def test_three_nn_fewer_than_three_sources():
    target = torch.zeros(1, 2, 3)
    source = torch.tensor([[[1.0, 0, 0], [0, 2.0, 0]]])
    dist2, idx = K.three_nn(target, source)
    assert idx[0, 0].tolist() == [0, 1, 0]
    assert dist2[0, 0, :2].tolist() == [1.0, 4.0]
    assert math.isinf(dist2[0, 0, 2].item())


def test_three_interpolate_matches_loop():
    g = torch.Generator().manual_seed(6)
    feats = torch.randn(1, 2, 5, generator=g)
    idx = torch.randint(0, 5, (1, 4, 3), generator=g, dtype=torch.int32)
    w = torch.rand(1, 4, 3, generator=g)
    out = K.three_interpolate(feats, idx, w)
    for c in range(2):
        for n in range(4):
            v = f32(0)
            for s in range(3):
                term = f32(w[0, n, s].item()) * f32(feats[0, c, idx[0, n,
                                                                    s]].item())
                v = f32(term) if s == 0 else f32(v + f32(term))
            assert out[0, c, n].item() == v


# ------------------------------------------------------ points in boxes
def _boxes_and_points(seed):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.cat([torch.rand(2, 6, 3, generator=g) * 6,
                       torch.rand(2, 6, 3, generator=g) * 3 + 0.5,
                       (torch.rand(2, 6, 1, generator=g) - 0.5) * 6], -1)
    # box 0 axis-aligned with exact float32 faces (boundary points below)
    boxes[:, 0] = torch.tensor([2.0, 3.0, 0.5, 2.0, 1.0, 1.5, 0.0])
    pts = torch.rand(2, 300, 3, generator=g) * 8 - 1
    b = boxes[:, 0]
    edge = torch.stack([
        b[:, :3] + torch.stack([b[:, 3] / 2, 0 * b[:, 3], b[:, 5] / 2], -1),
        b[:, :3] + torch.stack([0 * b[:, 3], b[:, 4] / 2, b[:, 5] / 2], -1),
        b[:, :3] + torch.stack([0 * b[:, 3], 0 * b[:, 3], b[:, 5]], -1),
        b[:, :3] + torch.stack([0 * b[:, 3], 0 * b[:, 3], 0 * b[:, 5]], -1),
    ], 1)  # on the x face, the y face, the top and the bottom
    return torch.cat([pts, edge], 1).contiguous(), boxes.contiguous()


def test_points_in_boxes_match_mmcv_cpu_kernel(search):
    from mmcv.ops.points_in_boxes import points_in_boxes_cpu
    from mmcv.ops import points_in_boxes_all, points_in_boxes_part
    pts, boxes = _boxes_and_points(7)
    ref = points_in_boxes_cpu(pts, boxes)  # mmcv's C++ CPU kernel
    assert ref.sum() > 20
    all_ = points_in_boxes_all(pts, boxes)  # patched mmcv entry point
    np.testing.assert_array_equal(all_.numpy(), ref.numpy())
    # side faces are outside, top and bottom faces inside
    assert all_[:, -4:, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1]]
    part = points_in_boxes_part(pts, boxes)
    first = torch.where(ref.any(-1), ref.argmax(-1), torch.tensor(-1))
    np.testing.assert_array_equal(part.numpy(), first.numpy())
    assert part.dtype == torch.int32


def test_points_in_boxes_grid_on_proposal_sized_input(monkeypatch):
    # one car-sized box per point (PointRPNHead's proposals), random yaw,
    # with mmcv's C++ CPU kernel as the reference
    from mmcv.ops.points_in_boxes import points_in_boxes_cpu
    g = torch.Generator().manual_seed(12)
    pts = torch.rand(2, 400, 3, generator=g) * torch.tensor([20., 20., 3.])
    centre = pts + torch.randn(2, 400, 3, generator=g) * 0.5
    size = torch.tensor([3.9, 1.6, 1.56]) * torch.exp(
        torch.randn(2, 400, 3, generator=g) * 0.2)
    yaw = (torch.rand(2, 400, 1, generator=g) - 0.5) * 7
    boxes = torch.cat([centre, size, yaw], -1).contiguous()
    assert 2 * 400 * 400 >= K.WINDOW_MIN_PAIRS
    assert 400 < K.WINDOW_MIN_POINTS
    monkeypatch.setattr(K, 'WINDOW_MIN_POINTS', 400)  # the grid search
    ref = points_in_boxes_cpu(pts, boxes)
    assert ref.sum() > 500
    calls = count_grid_calls(monkeypatch)
    np.testing.assert_array_equal(K.points_in_boxes_all(pts, boxes).numpy(),
                                  ref.numpy())
    first = torch.where(ref.any(-1), ref.argmax(-1), torch.tensor(-1))
    np.testing.assert_array_equal(
        K.points_in_boxes_part(pts, boxes).numpy(), first.numpy())
    assert calls == [2]  # the grid search ran


def test_box_structures_use_cpu_points_in_boxes():
    from mmdet3d.structures import LiDARInstance3DBoxes
    pts, boxes = _boxes_and_points(8)
    b = LiDARInstance3DBoxes(boxes[0])
    assert b.points_in_boxes_part(pts[0]).shape == (pts.shape[1], )
    assert b.points_in_boxes_all(pts[0]).shape == (pts.shape[1], 6)


# ----------------------------------------------------- roipoint pool3d
def test_roipoint_pool3d_matches_reference(search):
    from mmcv.ops import RoIPointPool3d
    pts, boxes = _boxes_and_points(9)
    boxes = torch.cat([boxes, torch.tensor([[[90., 90, 0, 1, 1, 1, 0]]] *
                                           2)], 1)  # an empty box
    g = torch.Generator().manual_seed(10)
    feats = torch.randn(2, pts.shape[1], 4, generator=g)
    pooled, empty = RoIPointPool3d(num_sampled_points=16)(pts, feats, boxes)
    rp, re = ref_roipoint_pool(pts, feats, boxes, 16)
    assert re[:, -1].tolist() == [1, 1] and (re[:, :-1] == 0).any()
    np.testing.assert_array_equal(empty.numpy(), re.numpy())
    torch.testing.assert_close(pooled, rp, rtol=0, atol=0)


# --------------------------------------------------------------- patch
def test_patch_is_idempotent_and_removable():
    from mmcv.ops import furthest_point_sample
    from mmcv.ops.furthest_point_sample import FurthestPointSampling
    import mmdet3d.structures.bbox_3d.base_box3d as base_box3d
    assert mmcv_point_ops.is_applied()
    assert mmcv_point_ops.apply() is True
    xyz = torch.randn(1, 20, 3)
    with mmcv_point_ops.unpatched():
        assert not hasattr(FurthestPointSampling.forward, '__wrapped__')
        assert not hasattr(base_box3d.points_in_boxes_part, '__wrapped__')
        with pytest.raises((AssertionError, RuntimeError, TypeError)):
            furthest_point_sample(xyz, 4)
    assert hasattr(FurthestPointSampling.forward, '__wrapped__')
    assert hasattr(base_box3d.points_in_boxes_part, '__wrapped__')
    np.testing.assert_array_equal(
        furthest_point_sample(xyz, 4).numpy(), ref_fps(xyz.numpy(), 4))


def test_stacked_ball_query_refused_with_clear_message():
    from mmcv.ops import ball_query
    xyz = torch.rand(5, 3)
    cnt = torch.tensor([5], dtype=torch.int)
    with pytest.raises(NotImplementedError, match='CUDA device'):
        ball_query(0, 1, 4, xyz, xyz, cnt, cnt)
