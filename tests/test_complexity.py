"""Parameter and FLOP (multiply-accumulate) counting against hand-computed
values: dense layers, spconv sparse convolutions, PointPillars."""
import os.path as osp

import mmdet3d
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from torch import nn

import pointdistiller_mm  # noqa: F401  (registers Distiller3D)
from pointdistiller_mm.analysis import (count_parameters, group_by_prefix,
                                        match_paper_key,
                                        mmdet3d_tensor_forward,
                                        model_complexity)

STOCK_PP = osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'configs',
                    'pointpillars',
                    'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py')
DEMO_TEACHER = 'configs/demo/pointpillars_teacher.py'
DEMO_DISTILL = 'configs/demo/pointpillars_4x_pointdistiller.py'


def tiny_net() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),  # bias
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 3, 2, stride=2, bias=False),
        nn.Flatten(),
        nn.Linear(3 * 12 * 12, 5))


def test_dense_layers_hand_computed():
    # input (1, 2, 6, 6)
    conv = 36 * (3 * 3 * 2 * 4) + 4 * 36      # MACs per site + bias adds
    bn = 4 * 36 * 2                            # affine: 2 per element
    relu = 4 * 36
    deconv = 36 * (2 * 2 * 4 * 3)              # per input site, no bias
    linear = 432 * 5                           # input numel x out_features
    res = model_complexity(tiny_net(), torch.randn(1, 2, 6, 6))
    per = {k: v.macs for k, v in res['per_module'].items()}
    assert per == {'0': conv, '1': bn, '2': relu, '3': deconv, '5': linear}
    assert res['flops'] == conv + bn + relu + deconv + linear == 7056
    assert res['params'] == (2 * 4 * 9 + 4) + 8 + 4 * 3 * 4 + (432 * 5 + 5)
    assert res['flops_unit'] == 'MAC'


def test_mean_over_inputs_and_batch_scaling():
    net = tiny_net()
    one = model_complexity(net, torch.randn(1, 2, 6, 6))['flops']
    res = model_complexity(net, [torch.randn(1, 2, 6, 6),
                                 torch.randn(3, 2, 6, 6)])
    assert res['num_inputs'] == 2
    assert res['flops'] == pytest.approx((one + 3 * one) / 2)
    assert net.training  # mode restored


def test_hooks_are_removed():
    net = tiny_net()
    model_complexity(net, torch.randn(1, 2, 6, 6))
    assert all(not m._forward_hooks for m in net.modules())


spconv = pytest.importorskip('spconv.pytorch')


def _sparse_input(cin: int) -> 'spconv.SparseConvTensor':
    # two neighbouring active voxels in a 4x4x4 grid (batch 0)
    idx = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 2]], dtype=torch.int32)
    return spconv.SparseConvTensor(torch.randn(2, cin), idx, [4, 4, 4], 1)


def test_sparse_convs_count_index_pairs():
    # (spconv's CPU build cannot run biased sparse convs in eval mode;
    # mmdet3d's sparse encoders use bias-free convs)
    cin, cmid, cout = 3, 5, 2
    net = spconv.SparseSequential(
        spconv.SubMConv3d(cin, cmid, 3, indice_key='subm1', bias=False),
        spconv.SparseConv3d(cmid, cout, 2, stride=2, indice_key='down1',
                            bias=False),
        spconv.SparseInverseConv3d(cout, cmid, 2, indice_key='down1',
                                   bias=False),
        spconv.SubMConv3d(cmid, cout, 3, bias=False))  # no key: recomputed
    res = model_complexity(net, _sparse_input(cin))
    per = res['per_module']
    # SubM 3x3x3: each of the 2 sites sees itself and its neighbour: 4 pairs
    assert per['0'].macs == 4 * cin * cmid
    # stride-2 conv, kernel 2: each input lands in exactly one output cell
    # ((1,1,1) -> (0,0,0), (1,1,2) -> (0,0,1)): 2 pairs
    assert per['1'].macs == 2 * cmid * cout
    # inverse conv reuses the 2 pairs
    assert per['2'].macs == 2 * cout * cmid
    assert per['3'].macs == 4 * cmid * cout
    assert {c.sparse_count for c in per.values()} == {'pairs'}


def _points_batch(n: int = 3000, seed: int = 0) -> dict:
    from mmdet3d.structures import Det3DDataSample
    g = torch.Generator().manual_seed(seed)
    pts = torch.rand(n, 4, generator=g)
    pts[:, 0] *= 40.0
    pts[:, 1] = pts[:, 1] * 40.0 - 20.0
    pts[:, 2] = pts[:, 2] * 3.0 - 2.5
    return dict(inputs=dict(points=[pts]), data_samples=[Det3DDataSample()])


def _build(cfg_path: str):
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    cfg = Config.fromfile(cfg_path)
    return cfg, MODELS.build(cfg.model)


def test_stock_pointpillars_parameters():
    _, model = _build(STOCK_PP)
    assert round(count_parameters(model) / 1e6, 2) == 4.83


def test_pointpillars_backbone_macs_match_the_architecture():
    cfg, model = _build(DEMO_TEACHER)
    res = model_complexity(model, _points_batch(),
                           forward=mmdet3d_tensor_forward)
    # SECOND backbone on the config's pillar grid, no conv bias, BN affine
    size, cin, total = cfg.bev_shape[0], 64, 0
    for cout, layers in zip((64, 128, 256), (3, 5, 5)):
        size //= 2
        for c_in in [cin] + [cout] * layers:
            sites = size * size
            total += sites * 9 * c_in * cout + 2 * sites * cout + \
                sites * cout  # conv + BN + ReLU
        cin = cout
    groups = group_by_prefix(res['per_module'])
    assert groups['backbone'] == total
    assert set(groups) == {'voxel_encoder', 'backbone', 'neck', 'bbox_head'}


def test_distiller_is_measured_as_its_student():
    cfg = Config.fromfile(DEMO_DISTILL)
    cfg.model.teacher.checkpoint = None
    from mmdet3d.registry import MODELS
    init_default_scope('mmdet3d')
    distiller = MODELS.build(cfg.model)
    batch = _points_batch()
    res_d = model_complexity(distiller, batch,
                             forward=mmdet3d_tensor_forward)
    res_s = model_complexity(distiller.student, batch,
                             forward=mmdet3d_tensor_forward)
    assert res_d['params'] == res_s['params'] == \
        count_parameters(distiller.student)
    assert res_d['flops'] == res_s['flops']
    assert not any(k.startswith('distill') for k in res_d['per_module'])


@pytest.mark.parametrize('name, key', [
    ('pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py',
     'pointpillars-teacher'),
    ('configs/demo/pointpillars_4x_student.py', 'pointpillars-4x'),
    ('pointpillars_16x_pointdistiller.py', 'pointpillars-16x'),
    ('second_hv_secfpn_8xb6-80e_kitti-3d-3class.py', 'second-teacher'),
    ('second_4x_student.py', 'second-4x'),
    ('pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py', None),
    ('centerpoint_voxel01.py', None),
])
def test_paper_rows_matched_from_config_names(name, key):
    assert match_paper_key(name) == key
