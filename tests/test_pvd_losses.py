"""PVD losses, supervoxel sampling and comparison losses on tiny tensors,
checked against hand-computed values and plain reference code."""
import math

import pytest
import torch

import pointdistiller_mm  # noqa: F401
from projects.PVD.pvd import (ChannelWiseKDLoss, Cylinder3DRows, IFVLoss,
                              KAAdaptationLoss, PairwiseAffinityLoss,
                              PointAffinityLoss, PointOutputKDLoss,
                              SupervoxelSampler, VoxelAffinityLoss,
                              VoxelOutputKDLoss, cosine_matrix, f_class,
                              f_dist, voxel_majority_labels)


def kl_rows(t, s, temp=1.0):
    """Plain reference: KL(p_t || p_s) per row with explicit sums."""
    out = []
    for tr, sr in zip(t, s):
        pt = torch.exp(tr / temp) / torch.exp(tr / temp).sum()
        ps = torch.exp(sr / temp) / torch.exp(sr / temp).sum()
        out.append(sum(pt[k] * math.log(pt[k] / ps[k])
                       for k in range(len(pt))))
    return torch.tensor(out)


def test_point_kl_hand_value():
    # teacher p = (0.5, 0.5); student logits (ln 3, 0): q = (0.75, 0.25)
    s = torch.tensor([[math.log(3.0), 0.0]])
    t = torch.tensor([[0.0, 0.0]])
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    loss = PointOutputKDLoss(loss_weight=1.0)(s, t)
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_point_kl_weights_voxels_by_points_and_temperature():
    torch.manual_seed(0)
    s, t = torch.randn(3, 4), torch.randn(3, 4)
    p2v = torch.tensor([0, 0, 0, 1, 2, 2])  # 3, 1, 2 points
    ref = kl_rows(t[p2v], s[p2v], temp=2.0).mean() * 4 * 0.1
    loss = PointOutputKDLoss(temperature=2.0, loss_weight=0.1)(
        s, t, point2voxel=p2v)
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)


def test_voxel_kl_counts_each_voxel_once_and_pools_coarser_voxels():
    torch.manual_seed(1)
    s, t = torch.randn(3, 4), torch.randn(3, 4)
    p2v = torch.tensor([0, 0, 0, 1, 2, 2])
    coors = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 4, 0, 0]])
    loss = VoxelOutputKDLoss(loss_weight=1.0)(s, t, coors, p2v)
    assert loss.item() == pytest.approx(kl_rows(t, s).mean().item(),
                                        rel=1e-5)
    # KD voxels of 2 rho cells: voxels 0, 1 merge, mean of their 4 points'
    # logits = (3 * z0 + z1) / 4
    pooled = VoxelOutputKDLoss(voxel_size=(2, 1, 1), loss_weight=1.0)
    loss2 = pooled(s, t, coors, p2v)
    s_m = torch.stack([(3 * s[0] + s[1]) / 4, s[2]])
    t_m = torch.stack([(3 * t[0] + t[1]) / 4, t[2]])
    assert loss2.item() == pytest.approx(kl_rows(t_m, s_m).mean().item(),
                                         rel=1e-5)


@pytest.mark.parametrize('loss', [
    PointOutputKDLoss(), VoxelOutputKDLoss(), ChannelWiseKDLoss()])
def test_output_losses_zero_when_equal_and_grad_to_student_only(loss):
    torch.manual_seed(2)
    z = torch.randn(5, 3)
    coors = torch.tensor([[0, i, 0, 0] for i in range(5)])
    p2v = torch.arange(5)
    assert loss(z, z.clone(), voxel_coors=coors,
                point2voxel=p2v).abs().item() < 1e-6
    s = torch.randn(5, 3, requires_grad=True)
    t = torch.randn(5, 3, requires_grad=True)
    loss(s, t, voxel_coors=coors, point2voxel=p2v).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_cosine_matrix_hand_value():
    f = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    r = 1 / math.sqrt(2)
    expected = torch.tensor([[1, r, 0], [r, 1, r], [0, r, 1]])
    assert torch.allclose(cosine_matrix(f), expected, atol=1e-6)


def test_f_class_and_f_dist_values():
    n = torch.tensor([0, 1, 2])
    # inverse count (default): 5 exp(-2 / n) + 1, 1 without minority points
    got = f_class(n, torch.tensor([4, 4, 4]))
    assert got.tolist() == pytest.approx(
        [1.0, 5 * math.exp(-2) + 1, 5 * math.exp(-1) + 1])
    got = f_class(n, torch.tensor([4, 4, 4]), a=3, b=0.5, measure='count')
    assert got.tolist() == pytest.approx([4.0, 3 * math.exp(0.5) + 1,
                                          3 * math.exp(1) + 1])
    got = f_class(n, torch.tensor([4, 4, 4]), a=1, b=1, measure='share')
    assert got.tolist() == pytest.approx([2.0, math.exp(.25) + 1,
                                          math.exp(.5) + 1])
    d = f_dist(torch.tensor([0.0, 25.0, 80.0]), max_range=50.0, coef=1.0)
    assert d.tolist() == pytest.approx([1.0, 1.5, 2.0])
    with pytest.raises(ValueError, match='b < 0'):
        f_class(n, n, b=1.0)


def scene():
    """Two scans; scan 0 has 3 supervoxels (size 2 in rho), scan 1 one."""
    coors = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0],   # sv A (scan 0)
                          [0, 2, 0, 0],                 # sv B
                          [0, 5, 0, 0],                 # sv C
                          [1, 0, 0, 0], [1, 1, 0, 0]])  # sv D (scan 1)
    p2v = torch.tensor([0, 1, 1, 2, 3, 3, 4, 5])
    rng = torch.tensor([0.0, 0.0, 0.0, 50.0, 25.0, 25.0, 10.0, 10.0])
    labels = torch.tensor([8, 1, 5, 8, 8, 8, 8, 8])   # sv A: 2 minority
    return coors, p2v, rng, labels


def test_sampling_probabilities():
    coors, p2v, rng, labels = scene()
    sampler = SupervoxelSampler(supervoxel_size=(2, 1, 1), num_samples=2,
                                minority_classes=(1, 5), max_range=50.0)
    sv = sampler(coors, p2v, rng, labels)
    w_a = (5 * math.exp(-2 / 2) + 1) * 1.0           # 2 minority, range 0
    w_b = 1.0 * (1 + 50 / 50)                        # 0 minority, range 50
    w_c = 1.0 * (1 + 25 / 50)
    total = w_a + w_b + w_c
    assert sv.prob.tolist() == pytest.approx(
        [w_a / total, w_b / total, w_c / total, 1.0], rel=1e-5)
    assert len(sv.voxels) == 3  # 2 in scan 0, the only one in scan 1
    groups = {tuple(v.tolist()) for v in sv.voxels}
    assert (4, 5) in groups and len(groups) == 3
    for v, p in zip(sv.voxels, sv.points):
        assert set(p2v[p].tolist()) == set(v.tolist())


def test_sampling_frequency_follows_probabilities():
    coors, p2v, rng, labels = scene()
    sampler = SupervoxelSampler(supervoxel_size=(2, 1, 1), num_samples=1,
                                minority_classes=(1, 5))
    torch.manual_seed(0)
    hits = torch.zeros(3)
    for _ in range(3000):
        sv = sampler(coors[:4], p2v[:6], rng[:6], labels[:6])
        first = int(sv.voxels[0][0])
        hits[{0: 0, 1: 0, 2: 1, 3: 2}[first]] += 1
    prob = sampler(coors[:4], p2v[:6], rng[:6], labels[:6]).prob
    assert torch.allclose(hits / 3000, prob, atol=0.03)


def test_voxel_affinity_matches_reference():
    torch.manual_seed(3)
    coors, p2v, rng, labels = scene()
    s, t = torch.randn(6, 4), torch.randn(6, 8)
    loss = VoxelAffinityLoss(
        sampler=dict(type='SupervoxelSampler', supervoxel_size=(2, 1, 1),
                     num_samples=10), loss_weight=0.25)
    got = loss(s, t, coors, p2v, rng)
    # every supervoxel sampled; those with >= 2 voxels: {0, 1}, {4, 5}
    ref = [((cosine_matrix(s[r]) - cosine_matrix(t[r]))**2).mean()
           for r in ([0, 1], [4, 5])]
    assert got.item() == pytest.approx(0.25 * torch.stack(ref).mean().item(),
                                       rel=1e-5)


def test_point_affinity_uses_each_points_voxel_feature():
    torch.manual_seed(4)
    coors, p2v, rng, labels = scene()
    s, t = torch.randn(6, 4), torch.randn(6, 8)
    loss = PointAffinityLoss(
        sampler=dict(type='SupervoxelSampler', supervoxel_size=(2, 1, 1),
                     num_samples=10), loss_weight=1.0)
    got = loss(s, t, coors, p2v, rng)
    groups = [[0, 1, 2], [4, 5], [3], [6, 7]]  # points per supervoxel
    ref = [((cosine_matrix(s[p2v[g]]) - cosine_matrix(t[p2v[g]]))**2).mean()
           for g in groups if len(g) > 1]
    assert got.item() == pytest.approx(torch.stack(ref).mean().item(),
                                       rel=1e-5)


@pytest.mark.parametrize('cls', [PointAffinityLoss, VoxelAffinityLoss])
def test_affinity_zero_for_scaled_teacher_and_grads(cls):
    coors, p2v, rng, labels = scene()
    torch.manual_seed(5)
    f = torch.randn(6, 4)
    loss = cls(sampler=dict(type='SupervoxelSampler',
                            supervoxel_size=(2, 1, 1)))
    # cosine similarities ignore a positive scale of the features
    assert loss(f, 3 * f, coors, p2v, rng).item() < 1e-10
    s = torch.randn(6, 4, requires_grad=True)
    t = torch.randn(6, 8, requires_grad=True)
    loss(s, t, coors, p2v, rng).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None


def test_channel_wise_kd_hand_value():
    # one scan, one channel, two voxels: teacher (0, 0) -> (.5, .5),
    # student (ln 3, 0) -> (.75, .25); T = 1
    s = torch.tensor([[math.log(3.0)], [0.0]])
    t = torch.zeros(2, 1)
    expected = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    got = ChannelWiseKDLoss(temperature=1.0, loss_weight=1.0)(s, t)
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_ifv_hand_value_and_majority_labels():
    p2v = torch.tensor([0, 0, 1, 2, 2, 2])
    labels = torch.tensor([3, 3, 1, 19, 19, 3])
    vl = voxel_majority_labels(p2v, labels, 3, 19)
    assert vl.tolist() == [3, 1, 19]
    # class 0: rows (1,0), (0,1): prototype (.5,.5), cos = 1/sqrt2 each;
    # student rows (1,0), (1,0): prototype (1,0), cos = 1
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    got = IFVLoss(num_classes=19, loss_weight=1.0)(
        s, t, voxel_labels=torch.tensor([0, 0]))
    assert got.item() == pytest.approx((1 - 1 / math.sqrt(2))**2, rel=1e-6)


def test_pairwise_affinity_pools_nodes():
    coors = torch.tensor([[0, 0, 0, 0], [0, 1, 0, 0], [0, 4, 0, 0]])
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = PairwiseAffinityLoss(node_size=(2, 1, 1), loss_weight=1.0)(
        s, t, coors)
    # nodes: s (.5,.5), (1,1) -> cos 1; t (1,0), (0,1) -> cos 0
    assert got.item() == pytest.approx(2 * 1.0 / 4, rel=1e-6)


def test_ka_adaptation_trains_autoencoder_and_student():
    torch.manual_seed(6)
    loss = KAAdaptationLoss(student_channels=4, teacher_channels=8,
                            code_channels=3)
    s = torch.randn(5, 4, requires_grad=True)
    t = torch.randn(5, 8, requires_grad=True)
    loss(s, t).backward()
    assert s.grad.abs().sum() > 0 and t.grad is None
    assert loss.encoder[0].weight.grad.abs().sum() > 0


class FakeSparse:
    """Stands in for a recorded SparseConvTensor (features + indices)."""

    def __init__(self, features, indices):
        self.features, self.indices = features, indices


def test_rows_match_by_coordinates():
    idx = torch.tensor([[0, 1, 2, 0], [0, 0, 0, 0], [1, 3, 1, 1]])
    s = FakeSparse(torch.tensor([[1.0], [2.0], [3.0]]), idx)
    perm = torch.tensor([2, 0, 1])
    t = FakeSparse(torch.tensor([[10.0], [20.0], [30.0]])[perm], idx[perm])
    inputs = dict(points=[torch.tensor([[3.0, 4.0, 0, 0], [1.0, 0, 0, 0]]),
                          torch.tensor([[0.0, 2.0, 0, 0]])],
                  voxels=dict(coors=torch.tensor(
                      [[0, 0, 0, 0], [0, 1, 2, 0], [1, 3, 1, 1]])))
    out = Cylinder3DRows()(s, t, inputs, dict(batch_size=2))
    assert out['teacher_feats'].squeeze(1).tolist() == [10.0, 20.0, 30.0]
    assert out['point2voxel'].tolist() == [1, 0, 2]
    assert out['point_range'].tolist() == pytest.approx([5.0, 1.0, 2.0])
    bad = FakeSparse(t.features, idx + 7)
    with pytest.raises(ValueError, match='same voxels'):
        Cylinder3DRows()(s, bad, inputs, dict(batch_size=2))
