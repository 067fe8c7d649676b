"""Baseline KD losses (PointDistiller Table 3) against hand-computed values
on small tensors; zero when student equals teacher where that holds;
gradients reach the student and the connectors, never the teacher."""
import math

import pytest
import torch
from torch import nn

from mmdet3d.registry import MODELS
from pointdistiller_mm.distillers.rows import AnchorHeadRows, anchor_rows
from pointdistiller_mm.losses import (ATLoss, CRDLoss, FitNetsLoss, FKDLoss,
                                      LogitKDLoss, OFDLoss,
                                      SESSDConsistencyLoss, SPLoss)
from pointdistiller_mm.losses.baselines import (NonLocalBlock, bn_margin,
                                                spatial_channel_attention)


def _map(rows, b=1, h=1):
    """(B * H * W, C) rows -> (B, C, H, W) map, rows ordered (b, y, x)."""
    rows = torch.as_tensor(rows, dtype=torch.float32)
    c = rows.shape[1]
    w = rows.shape[0] // (b * h)
    return rows.reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()


def _sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def _smooth_l1(x, beta):
    x = abs(x)
    return 0.5 * x * x / beta if x < beta else x - 0.5 * beta


# ------------------------------------------------------------------ FitNets
def test_fitnets_by_hand():
    s = _map([[1.0, 3.0], [2.0, 4.0]])  # 2 locations, 2 channels
    t = torch.zeros_like(s)
    loss = FitNetsLoss(2, 2, loss_weight=1.0)
    assert loss.connector is None  # 'auto' with equal widths
    assert loss(s, t).item() == pytest.approx((1 + 9 + 4 + 16) / 4)
    # weight: only location 0 ([1, 3]) counts, mean over its channels
    w = torch.tensor([[[1.0, 0.0]]])
    assert loss(s, t, weight=w).item() == pytest.approx(10 / 2)
    # rows (N, C) and a conv connector 2 * I
    conv = FitNetsLoss(2, 2, connector='conv', loss_weight=0.5)
    with torch.no_grad():
        conv.connector.conv.weight.copy_(2 * torch.eye(2).view(2, 2, 1, 1))
        conv.connector.conv.bias.zero_()
    rows = torch.tensor([[1.0, 3.0], [2.0, 4.0]])
    assert conv(rows, torch.zeros(2, 2)).item() == pytest.approx(
        0.5 * 4 * 30 / 4)


def test_fitnets_connector_maps_widths():
    loss = FitNetsLoss(3, 5)
    out = loss(torch.randn(2, 3, 4, 4), torch.randn(2, 5, 4, 4))
    assert out.dim() == 0 and out.item() > 0


# ---------------------------------------------------------------------- AT
def test_at_by_hand():
    # student: location 0 (3, 4), location 1 (0, 0) -> A = (1, 0)
    s = _map([[3.0, 4.0], [0.0, 0.0]])
    # teacher with 3 channels (no connector needed): equal energy -> A = u
    t = _map([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    r = 1 / math.sqrt(2)
    want = ((1 - r) ** 2 + r ** 2) / 2
    assert ATLoss(loss_weight=2.0)(s, t).item() == pytest.approx(2 * want)


# ---------------------------------------------------------------------- SP
def test_sp_by_hand():
    s = _map([[1.0, 0.0], [0.0, 1.0]], b=2)  # orthogonal samples: G_S = I
    t = _map([[1.0, 0.0], [1.0, 0.0]], b=2)  # equal samples: rows (r, r)
    r = 1 / math.sqrt(2)
    want = 2 * ((1 - r) ** 2 + r ** 2) / 4
    assert SPLoss()(s, t).item() == pytest.approx(want)
    # one sample: G is 1 x 1 on both sides
    assert SPLoss()(s[:1], t[:1]).item() == pytest.approx(0.0)


# --------------------------------------------------------------------- OFD
def test_ofd_margin_from_bn_statistics():
    # N(0, 1): E[x | x < 0] = -pdf(0) / cdf(0) = -sqrt(2 / pi)
    m = bn_margin(torch.tensor([1.0, -2.0, 1.0]),
                  torch.tensor([0.0, 0.0, 10.0]))
    assert m[0].item() == pytest.approx(-math.sqrt(2 / math.pi), rel=1e-5)
    assert m[1].item() == pytest.approx(-2 * math.sqrt(2 / math.pi),
                                        rel=1e-5)
    assert m[2].item() == pytest.approx(-3.0)  # P(x < 0) <= 0.001


def test_ofd_partial_l2_by_hand():
    loss = OFDLoss(1, 1, connector='none')
    loss.margin.fill_(-1.0)
    t = torch.tensor([-2.0, 0.5, -0.5, -3.0]).view(1, 1, 1, 4)
    s = torch.tensor([-1.5, 1.0, 0.0, -0.5]).view(1, 1, 1, 4)
    # clipped teacher (-1, 0.5, -0.5, -1); position 0 is skipped (student
    # below a non-positive teacher), the others give 0.25 each
    assert loss(s, t).item() == pytest.approx(0.75)
    two = loss(torch.cat([s, s]), torch.cat([t, t]))  # sum / batch
    assert two.item() == pytest.approx(0.75)
    w = torch.tensor([0.0, 1.0, 1.0, 0.0]).view(1, 1, 4)
    assert loss(s, t, weight=w).item() == pytest.approx(0.5)


def _conv_bn(c_in, c_out):
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out))


def test_ofd_binds_bn_and_applies_it():
    torch.manual_seed(0)
    student, teacher = _conv_bn(3, 2), _conv_bn(3, 4)
    with torch.no_grad():
        teacher[1].weight.copy_(torch.tensor([1.0, 2.0, 0.5, 1.0]))
        teacher[1].bias.copy_(torch.tensor([0.0, 1.0, -1.0, 10.0]))
        teacher[1].running_mean.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    teacher.eval()
    loss = OFDLoss(2, 4, teacher_bn='1', apply_bn=True)
    loss.bind_models(student, teacher)
    assert torch.allclose(loss.margin,
                          bn_margin(teacher[1].weight, teacher[1].bias))
    x = torch.randn(2, 3, 3, 3)
    s_conv, t_conv = student[0](x), teacher[0](x)
    s_pre, t_pre = loss._pre_relu(s_conv, t_conv)
    student.train()
    assert torch.allclose(s_pre, student(x), atol=1e-6)
    assert torch.allclose(t_pre, teacher(x), atol=1e-6)
    out = loss(s_conv, t_conv.detach())
    out.backward()
    assert student[1].weight.grad is not None  # through the student BN
    with pytest.raises(TypeError, match='not a BatchNorm'):
        OFDLoss(2, 4, teacher_bn='0').bind_models(student, teacher)


# --------------------------------------------------------------------- CRD
def _identity_crd(**kw):
    loss = CRDLoss(2, 2, embed_channels=2, temperature=1.0, **kw)
    for lin in (loss.student_embed, loss.teacher_embed):
        with torch.no_grad():
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
    return loss


def test_crd_by_hand():
    # two cells, orthogonal unit features on both sides, plus an empty
    # teacher cell that is not a candidate
    s = _map([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    t = _map([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    one_way = math.log(1 + math.exp(-1))  # -log(e / (e + 1))
    assert _identity_crd(symmetric=False)(s, t).item() == pytest.approx(
        one_way, rel=1e-5)
    assert _identity_crd()(s, t).item() == pytest.approx(
        2 * one_way, rel=1e-5)
    # negatives from the same sample only: one cell per sample leaves the
    # positive alone
    s2, t2 = _map([[1.0, 0.0], [0.0, 1.0]], b=2), _map(
        [[1.0, 0.0], [0.0, 1.0]], b=2)
    assert _identity_crd(negatives='sample')(s2, t2).item() == \
        pytest.approx(0.0, abs=1e-6)
    assert _identity_crd()(s2, t2).item() == pytest.approx(
        2 * one_way, rel=1e-5)


def test_crd_draws_num_samples_and_handles_no_candidates():
    loss = CRDLoss(3, 4, num_samples=8)
    out = loss(torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5))
    assert torch.isfinite(out) and out.item() > 0
    zero = loss(torch.randn(1, 3, 2, 2, requires_grad=True),
                torch.zeros(1, 4, 2, 2))
    assert zero.item() == 0.0 and zero.requires_grad


# --------------------------------------------------------------------- FKD
def test_fkd_attention_masks_by_hand():
    f = _map([[1.0, 1.0], [0.0, 2.0]])  # c0 = (1, 0), c1 = (1, 2)
    a_s, a_c = spatial_channel_attention(f, temperature=1.0)
    assert torch.allclose(a_s.flatten(), torch.ones(2))  # mean |F| 1, 1
    e = math.exp(1.0)  # channel means 0.5, 1.5
    want = torch.tensor([2 / (1 + e), 2 * e / (1 + e)])
    assert torch.allclose(a_c.flatten(), want)


def test_fkd_by_hand():
    t = _map([[1.0, 1.0], [0.0, 2.0]])
    s = torch.zeros_like(t)
    loss = FKDLoss(2, 2, temperature=1.0, feat_weight=1.0,
                   attention_weight=1.0, nonlocal_weight=0.0)
    e = math.exp(1.0)
    a_c = [2 / (1 + e), 2 * e / (1 + e)]  # teacher channel mask
    # (t - s)^2 per channel: c0 1 + 0, c1 1 + 4; spatial mask 1
    l_am = math.sqrt(1 * a_c[0] + 5 * a_c[1])
    # student masks are uniform (all zero map)
    l_at = 0.0 + (abs(a_c[0] - 1) + abs(a_c[1] - 1)) / 2
    assert loss(s, t).item() == pytest.approx(l_am + l_at, rel=1e-5)
    # the official code's mix of teacher and student masks
    mixed = FKDLoss(2, 2, temperature=1.0, feat_weight=1.0,
                    attention_weight=0.0, nonlocal_weight=0.0,
                    mask_student_ratio=1.0)
    l_am_mix = math.sqrt(1 * (a_c[0] + 1) / 2 + 5 * (a_c[1] + 1) / 2)
    assert mixed(s, t).item() == pytest.approx(l_am_mix, rel=1e-5)


def test_non_local_block_starts_as_identity():
    block = NonLocalBlock(4)
    x = torch.randn(2, 4, 3, 3)
    assert torch.allclose(block(x), x)


# ------------------------------------------------------------------ SE-SSD
def _head(cls, bbox):
    return dict(cls_scores=torch.tensor([cls]), bbox_preds=torch.tensor(
        [bbox]), dir_cls_preds=None)


def test_sessd_consistency_by_hand():
    t_cls = [[2.0, -5.0], [-5.0, -5.0], [0.0, -5.0]]
    t_box = [[0.1, 0, 0, 0, 0, 0, math.pi / 2], [5.0] * 7,
             [0, 0, 0, 0, 0, 0, math.pi]]
    s = _head([[0.0, 0.0]] * 3, [[0.0] * 7] * 3)
    t = _head(t_cls, t_box)
    loss = SESSDConsistencyLoss(score_thr=0.3, beta=1.0)
    # confident anchors: 0 (0.88) and 2 (0.5); anchor 1 (0.007) is not
    cls = [sum(_smooth_l1(0.5 - _sigmoid(c), 1.0) for c in t_cls[i]) / 2
           for i in (0, 2)]
    box0 = _smooth_l1(0.1, 1.0) + _smooth_l1(math.sin(-math.pi / 2), 1.0)
    box2 = _smooth_l1(math.sin(-math.pi), 1.0)
    want = sum(cls) / 2 + (box0 + box2) / 2
    assert loss(s, t).item() == pytest.approx(want, rel=1e-5)
    # only the class term; a weight that drops anchor 2
    cls_only = SESSDConsistencyLoss(score_thr=0.3, beta=1.0,
                                    outputs=('cls', ))
    assert cls_only(s, t).item() == pytest.approx(sum(cls) / 2, rel=1e-5)
    w = torch.tensor([[1.0, 1.0, 0.0]])
    assert cls_only(s, t, weight=w).item() == pytest.approx(cls[0],
                                                            rel=1e-5)
    # no confident anchor
    assert SESSDConsistencyLoss(score_thr=0.99)(s, t).item() == 0.0


def test_sessd_direction_term_and_bad_outputs():
    s = dict(cls_scores=torch.zeros(1, 1, 1), bbox_preds=torch.zeros(1, 1, 7),
             dir_cls_preds=torch.tensor([[[0.0, 0.0]]]))
    t = dict(cls_scores=torch.ones(1, 1, 1), bbox_preds=torch.zeros(1, 1, 7),
             dir_cls_preds=torch.tensor([[[math.log(3.0), 0.0]]]))
    loss = SESSDConsistencyLoss(outputs=('dir', ), beta=1.0)
    want = (_smooth_l1(0.25, 1.0) + _smooth_l1(0.25, 1.0)) / 2
    assert loss(s, t).item() == pytest.approx(want, rel=1e-5)
    with pytest.raises(ValueError, match='outputs'):
        SESSDConsistencyLoss(outputs=('box', ))
    s['dir_cls_preds'] = None
    with pytest.raises(KeyError, match='dir_cls_preds'):
        loss(s, t)


# ---------------------------------------------------------------------- KD
def test_logit_kd_sigmoid_and_softmax_by_hand():
    s = torch.tensor([[0.0, 0.0]])
    t = torch.tensor([[math.log(3.0), 0.0]])

    def binary_kl(p, q):
        return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))

    # T = 1: class 0 p_T = 0.75, p_S = 0.5; class 1 equal
    sig = LogitKDLoss(temperature=1.0)
    assert sig(s, t).item() == pytest.approx(binary_kl(0.75, 0.5), rel=1e-5)
    # T = 2: softened, times T^2
    p = _sigmoid(math.log(3.0) / 2)
    sig2 = LogitKDLoss(temperature=2.0)
    assert sig2(s, t).item() == pytest.approx(4 * binary_kl(p, 0.5),
                                              rel=1e-5)
    # softmax over the class axis: p_T = (0.75, 0.25), p_S = (0.5, 0.5)
    soft = LogitKDLoss(temperature=1.0, activation='softmax')
    want = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    assert soft(s, t).item() == pytest.approx(want, rel=1e-5)
    # head-output dicts and row weights
    rows_s = dict(cls_scores=torch.cat([s, s]).unsqueeze(0))
    rows_t = dict(cls_scores=torch.cat([t, s]).unsqueeze(0))
    w = torch.tensor([[1.0, 3.0]])
    assert sig(rows_s, rows_t, weight=w).item() == pytest.approx(
        binary_kl(0.75, 0.5) / 4, rel=1e-5)


# ------------------------------------------------------------ anchor rows
def test_anchor_rows_follow_mmdet3d_anchor_order():
    a, k, h, w = 2, 3, 2, 2
    cls = torch.arange(1 * a * k * h * w, dtype=torch.float32).view(
        1, a * k, h, w)
    box = torch.randn(1, a * 7, h, w)
    d = torch.randn(1, a * 2, h, w)
    rows = anchor_rows(([cls], [box], [d]))
    assert rows['cls_scores'].shape == (1, h * w * a, k)
    assert rows['bbox_preds'].shape == (1, h * w * a, 7)
    assert rows['dir_cls_preds'].shape == (1, h * w * a, 2)
    # mmdet3d: cls_score.permute(0, 2, 3, 1).reshape(-1, num_classes)
    assert torch.equal(rows['cls_scores'][0],
                       cls.permute(0, 2, 3, 1).reshape(-1, k))
    y, x, anchor, c = 1, 0, 1, 2
    assert rows['cls_scores'][0, (y * w + x) * a + anchor, c] == \
        cls[0, anchor * k + c, y, x]
    # levels are concatenated; a missing direction head gives None
    two = anchor_rows(([cls, cls], [box, box], [None, None]))
    assert two['cls_scores'].shape == (1, 2 * h * w * a, k)
    assert two['dir_cls_preds'] is None
    built = AnchorHeadRows()(([cls], [box], [d]), ([cls], [box], [d]), {},
                             {})
    assert set(built) == {'student_feats', 'teacher_feats'}
    with pytest.raises(ValueError, match='share anchors'):
        AnchorHeadRows()(([cls], [box], [d]),
                         ([cls[:, :3]], [box[:, :7]], [d]), {}, {})


# ------------------------------------------- zero at equality, gradients
def _maps(c_s=4, c_t=4):
    torch.manual_seed(0)
    return torch.randn(2, c_s, 6, 6), torch.randn(2, c_t, 6, 6)


ZERO_AT_EQUALITY = {
    'FitNets': lambda: FitNetsLoss(4, 4),
    'AT': lambda: ATLoss(),
    'SP': lambda: SPLoss(),
    'OFD': lambda: OFDLoss(4, 4, connector='none'),
    'FKD': lambda: FKDLoss(4, 4, nonlocal_pool=2),
}


@pytest.mark.parametrize('name', sorted(ZERO_AT_EQUALITY))
def test_zero_when_student_equals_teacher_maps(name):
    f, _ = _maps()
    loss = ZERO_AT_EQUALITY[name]()
    assert loss(f.clone(), f.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_zero_when_student_equals_teacher_head_outputs():
    torch.manual_seed(0)
    head = dict(cls_scores=torch.randn(2, 50, 3),
                bbox_preds=torch.randn(2, 50, 7),
                dir_cls_preds=torch.randn(2, 50, 2))
    for loss in (LogitKDLoss(), LogitKDLoss(activation='softmax'),
                 SESSDConsistencyLoss(score_thr=0.0,
                                      outputs=('cls', 'bbox', 'dir'))):
        assert loss(head, dict(head)).item() == pytest.approx(0.0, abs=1e-6)


MAP_LOSSES = {
    'FitNets': lambda: FitNetsLoss(3, 5),
    'AT': lambda: ATLoss(),
    'SP': lambda: SPLoss(),
    'OFD': lambda: OFDLoss(3, 5),
    'CRD': lambda: CRDLoss(3, 5, num_samples=16, embed_channels=8),
    'FKD': lambda: FKDLoss(3, 5, nonlocal_pool=2, feat_weight=1.0,
                           attention_weight=1.0, nonlocal_weight=1.0),
}


def _loss_params(loss):
    return {n: p for n, p in loss.named_parameters() if p.requires_grad}


@pytest.mark.parametrize('name', sorted(MAP_LOSSES))
def test_gradients_reach_student_and_connectors_not_teacher(name):
    s, t = _maps(3, 5)
    s.requires_grad_(True)
    t.requires_grad_(True)  # a leaf that must stay untouched
    loss = MAP_LOSSES[name]().train()
    out = loss(s, t)
    assert out.dim() == 0 and torch.isfinite(out)
    out.backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0
    params = _loss_params(loss)
    if name in ('FitNets', 'OFD', 'CRD', 'FKD'):
        assert params, name  # connectors / embeddings are trainable
    for pname, p in params.items():
        assert p.grad is not None, pname


@pytest.mark.parametrize('loss', [
    LogitKDLoss(), SESSDConsistencyLoss(score_thr=0.0,
                                        outputs=('cls', 'bbox', 'dir'))
], ids=['KD', 'SE-SSD'])
def test_head_losses_gradients(loss):
    torch.manual_seed(0)

    def head():
        return {k: torch.randn(2, 20, d, requires_grad=True)
                for k, d in (('cls_scores', 3), ('bbox_preds', 7),
                             ('dir_cls_preds', 2))}

    s, t = head(), head()
    loss(s, t).backward()
    assert all(v.grad is None for v in t.values())
    assert s['cls_scores'].grad.abs().sum() > 0
    if isinstance(loss, SESSDConsistencyLoss):
        assert s['bbox_preds'].grad.abs().sum() > 0


REGISTERED = ['FitNetsLoss', 'ATLoss', 'SPLoss', 'OFDLoss', 'CRDLoss',
              'FKDLoss', 'SESSDConsistencyLoss', 'LogitKDLoss']


@pytest.mark.parametrize('name', REGISTERED)
def test_registered_with_one_call_shape(name):
    import inspect
    cls = MODELS.get(name)
    assert cls is not None
    params = inspect.signature(cls.forward).parameters
    assert list(params)[1:5] == ['student_feats', 'teacher_feats', 'weight',
                                 'data_samples']
    assert 'loss_weight' in inspect.signature(cls.__init__).parameters
