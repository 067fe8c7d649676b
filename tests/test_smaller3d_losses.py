"""Smaller3D losses (projects/Smaller3D): hand-computed values, voxel
matching by coordinates, and the task-loss weight applied by Distiller3D."""
import math

import pytest
import torch

import pointdistiller_mm  # noqa: F401
from projects.Smaller3D.smaller3d import (Smaller3DLogitKDLoss,
                                          SparseFeatureMSELoss,
                                          VoxelMismatchError, match_voxels)

COORDS2 = torch.tensor([[0, 1, 2, 3], [1, 0, 0, 5]], dtype=torch.int32)


def test_paper_kd_hand_computed():
    # p_t = (0.75, 0.25), p_s = (0.5, 0.5) at T = 1
    t = torch.tensor([[math.log(3.0), 0.0]])
    s = torch.zeros(1, 2, requires_grad=True)
    c = COORDS2[:1]
    kl = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    loss = Smaller3DLogitKDLoss(alpha=0.5, temperature=1.0)
    assert loss.task_loss_weight == 0.5
    assert loss(s, t, c, c).item() == pytest.approx(0.5 * kl, rel=1e-6)
    # T = 2: p = softmax(z / 2), times T^2 = 4, weight 1 - alpha = 0.75
    q = math.sqrt(3.0) / (math.sqrt(3.0) + 1.0)
    kl2 = q * math.log(q / 0.5) + (1 - q) * math.log((1 - q) / 0.5)
    loss2 = Smaller3DLogitKDLoss(alpha=0.25, temperature=2.0, loss_weight=2.)
    assert loss2.task_loss_weight == 0.25
    assert loss2(s, t, c, c).item() == pytest.approx(2 * 0.75 * 4 * kl2,
                                                     rel=1e-6)
    # alpha = 1: the KD half vanishes, the task loss keeps weight 1
    loss1 = Smaller3DLogitKDLoss(alpha=1.0)
    assert loss1(s, t, c, c).item() == 0.0 and loss1.task_loss_weight == 1.0
    # gradient (paper, Hinton): d/ds of T^2 KL = T (p_s - p_t) per voxel
    out = Smaller3DLogitKDLoss(alpha=0.0, temperature=1.0)(s, t, c, c)
    out.backward()
    assert torch.allclose(s.grad, torch.tensor([[-0.25, 0.25]]), atol=1e-6)


def test_official_kd_hand_computed():
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 2.0], [3.0, 1.0]])
    # voxel 0: CE to class 1 = log(1 + e); L2 = (1 + 4) / 2
    # voxel 1: CE to class 0 = log 2; L2 = (9 + 1) / 2
    ce = (math.log(1 + math.e) + math.log(2.0)) / 2
    l2 = (2.5 + 5.0) / 2
    loss = Smaller3DLogitKDLoss(alpha=0.5, temperature=1.0, form='official')
    assert loss.task_loss_weight == 0.0  # the official code drops the GT
    assert loss(s, t, COORDS2, COORDS2).item() == pytest.approx(
        0.5 * ce + 0.5 * l2, rel=1e-6)
    loss_t2 = Smaller3DLogitKDLoss(alpha=0.2, temperature=2.0,
                                   form='official', task_loss_weight=1.0)
    assert loss_t2.task_loss_weight == 1.0
    assert loss_t2(s, t, COORDS2, COORDS2).item() == pytest.approx(
        0.8 * ce + 0.2 * l2 / 4, rel=1e-6)


def test_feature_mse_hand_computed():
    loss = SparseFeatureMSELoss(student_channels=1, teacher_channels=2)
    with torch.no_grad():
        loss.connector.linear.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        loss.connector.linear.bias.copy_(torch.tensor([0.0, 1.0]))
    s = torch.tensor([[1.0], [3.0]])
    t = torch.tensor([[2.0, 1.0], [5.0, -2.0]])
    # W s + b = [[2, 0], [6, -2]]; squared errors 0, 1, 1, 0
    assert loss(s, t, COORDS2, COORDS2).item() == pytest.approx(0.5)
    # rows paired by coordinates: teacher rows listed in the other order
    assert loss(s, t.flip(0), COORDS2, COORDS2.flip(0)).item() == \
        pytest.approx(0.5)
    # pairing by row order would give a different value here
    assert loss(s, t.flip(0), COORDS2, COORDS2).item() != \
        pytest.approx(0.5)


def test_feature_mse_normalized_by_teacher_energy():
    loss = SparseFeatureMSELoss(student_channels=1, teacher_channels=2,
                                normalize='teacher')
    with torch.no_grad():
        loss.connector.linear.weight.copy_(torch.tensor([[2.0], [-1.0]]))
        loss.connector.linear.bias.copy_(torch.tensor([0.0, 1.0]))
    s = torch.tensor([[1.0], [3.0]])
    t = torch.tensor([[2.0, 1.0], [5.0, -2.0]])
    # MSE 0.5 (as above) over mean t^2 = (4 + 1 + 25 + 4) / 4 = 8.5
    assert loss(s, t, COORDS2, COORDS2).item() == pytest.approx(0.5 / 8.5)
    # scale-free: teacher and lifted student x10 give the same value
    with torch.no_grad():
        loss.connector.linear.weight.mul_(10)
        loss.connector.linear.bias.mul_(10)
    assert loss(s, 10 * t, COORDS2, COORDS2).item() == pytest.approx(
        0.5 / 8.5)
    # W(s) = 0 misses all of the teacher's energy: 1
    with torch.no_grad():
        loss.connector.linear.weight.zero_()
        loss.connector.linear.bias.zero_()
    assert loss(s, t, COORDS2, COORDS2).item() == pytest.approx(1.0)
    # an all-zero teacher is floored by eps instead of dividing by 0
    zero = loss(s, torch.zeros_like(t), COORDS2, COORDS2)
    assert torch.isfinite(zero) and zero.item() == 0.0
    with pytest.raises(ValueError, match='normalize'):
        SparseFeatureMSELoss(1, 2, normalize='student')


def test_linear_connector_equals_1x1_sparse_conv():
    """A kernel-size-1 sparse conv maps each voxel's features on its own:
    the same affine map at every site, which a LinearConnector holds."""
    spconv = pytest.importorskip('spconv.pytorch')
    torch.manual_seed(0)
    conv = spconv.SubMConv3d(3, 5, kernel_size=1, bias=True, indice_key='k')
    coords = torch.tensor([[0, 0, 1, 2], [0, 3, 1, 0], [1, 2, 2, 2],
                           [1, 0, 0, 0]], dtype=torch.int32)

    def run(feats):
        out = conv(spconv.SparseConvTensor(feats, coords, [4, 4, 4], 2))
        assert torch.equal(out.indices, coords)
        return out.features

    with torch.no_grad():  # the affine map read off basis inputs
        basis = torch.cat([torch.eye(3), torch.zeros(1, 3)])
        out = run(basis)
        bias = out[3]
        weight = (out[:3] - bias).t()
    loss = SparseFeatureMSELoss(student_channels=3, teacher_channels=5)
    with torch.no_grad():
        loss.connector.linear.weight.copy_(weight)
        loss.connector.linear.bias.copy_(bias)
    feats = torch.randn(4, 3)
    assert torch.allclose(run(feats), loss.connector(feats), atol=1e-5)


def _random_case(n=50, cs=4, ct=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    flat = torch.randperm(2 * 8 * 8 * 8, generator=gen)[:n]
    coords = torch.stack([flat // 512, flat // 64 % 8, flat // 8 % 8,
                          flat % 8], 1).int()
    return (coords, torch.randn(n, cs, generator=gen),
            torch.randn(n, ct, generator=gen))


@pytest.mark.parametrize('which', ['feature', 'logit_paper', 'logit_official'])
def test_permuted_rows_give_the_same_loss(which):
    coords, s, t = _random_case(cs=6 if which != 'feature' else 4)
    if which == 'feature':
        torch.manual_seed(0)
        loss = SparseFeatureMSELoss(student_channels=4, teacher_channels=6)
    else:
        loss = Smaller3DLogitKDLoss(alpha=0.3, temperature=2.0,
                                    form=which.split('_')[1])
    ref = loss(s, t, coords, coords)
    gen = torch.Generator().manual_seed(1)
    ps, pt = (torch.randperm(len(coords), generator=gen) for _ in range(2))
    permuted = loss(s[ps], t[pt], coords[ps], coords[pt])
    assert permuted.item() == pytest.approx(ref.item(), rel=1e-6)
    # the same rows without their coordinates permuted: a different loss
    wrong = loss(s, t[pt], coords, coords)
    assert wrong.item() != pytest.approx(ref.item(), rel=1e-3)


def test_mismatched_voxels_raise():
    coords, s, t = _random_case()
    loss = SparseFeatureMSELoss(student_channels=4, teacher_channels=6)
    # one voxel missing on the teacher side
    with pytest.raises(VoxelMismatchError, match='1 only in the student'):
        loss(s, t[1:], coords, coords[1:])
    # same count, one voxel moved: present on one side only
    moved = coords.clone()
    moved[0, 0] = 5
    with pytest.raises(VoxelMismatchError, match='only in the teacher'):
        loss(s, t, coords, moved)
    # a duplicated voxel
    dup = coords.clone()
    dup[1] = dup[0]
    with pytest.raises(VoxelMismatchError, match='repeat'):
        match_voxels(dup, dup)
    # rows that do not fit the coordinates, missing coordinates, wrong width
    with pytest.raises(ValueError, match='do not fit'):
        loss(s[1:], t[1:], coords, coords[1:])
    with pytest.raises(ValueError, match='by coordinates'):
        loss(s, t)
    with pytest.raises(ValueError, match='student_channels=4'):
        loss(t, t, coords, coords)


def test_match_voxels_orders():
    a = torch.tensor([[0, 2, 1], [1, 0, 0], [0, 0, 3]])
    b = a[[2, 0, 1]]
    ia, ib = match_voxels(a, b)
    assert torch.equal(a[ia], b[ib])


def test_bad_arguments():
    with pytest.raises(ValueError, match='form'):
        Smaller3DLogitKDLoss(form='hinton')
    with pytest.raises(ValueError, match='alpha'):
        Smaller3DLogitKDLoss(alpha=1.5)
