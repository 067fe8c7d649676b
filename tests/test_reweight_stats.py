"""Reweighting statistics: phi figures against hand values, config look-ups
and the CLI on the tiny synthetic KITTI set."""
import json
import math
import re

import pytest
import torch

from pointdistiller_mm.analysis.reweight_stats import (find_distill_loss,
                                                       find_voxel_layer,
                                                       phi_stats, pts_prefix,
                                                       reweight_stats)
from pointdistiller_mm.importance import reweight

from .conftest import run_tool

CONFIG = 'configs/demo/pointpillars_4x_pointdistiller.py'


def _stats(scores, tau, mask=None):
    scores = torch.as_tensor(scores, dtype=torch.float32)
    out = phi_stats(reweight(scores, tau, mask), mask)
    return {k: v.tolist() for k, v in out.items()}


def test_uniform_scores_no_reweighting():
    st = _stats([1.0, 1.0, 1.0, 1.0], 1.0)
    assert st['phi_max'] == pytest.approx(1.0)
    assert st['share_above_1'] == 0.0
    assert st['eff_frac'] == pytest.approx(1.0)
    # ties of many rows stay at "no phi > 1" despite float32 rounding
    st = _stats([7.0] * 6000, 0.5)
    assert st['share_above_1'] == 0.0
    assert st['eff_frac'] == pytest.approx(1.0, abs=1e-5)


def test_two_values_by_hand():
    # exp(s / tau) = [1, 1, 3] -> softmax [0.2, 0.2, 0.6] -> phi = 3 * that
    # = [0.6, 0.6, 1.8]; p = phi / 3, sum p^2 = 0.44, 1 / 0.44 / 3 = 25/33
    st = _stats([0.0, 0.0, math.log(3.0)], 1.0)
    assert st['n_valid'] == 3
    assert st['phi_max'] == pytest.approx(1.8, rel=1e-5)
    assert st['share_above_1'] == pytest.approx(1 / 3)
    assert st['eff_frac'] == pytest.approx(25 / 33, rel=1e-5)
    # same with tau 2 and doubled scores, plus a padded row and an empty row
    scores = torch.tensor([[0.0, 0.0, 2 * math.log(3.0), 99.0],
                           [5.0, 5.0, 5.0, 5.0]])
    mask = torch.tensor([[True, True, True, False], [False] * 4])
    st = _stats(scores, 2.0, mask)
    assert st['n_valid'] == [3.0, 0.0]
    assert st['phi_max'][0] == pytest.approx(1.8, rel=1e-5)
    assert st['share_above_1'][0] == pytest.approx(1 / 3)
    assert st['eff_frac'][0] == pytest.approx(25 / 33, rel=1e-5)
    assert all(math.isnan(v[1]) for k, v in st.items() if k != 'n_valid')


def test_one_peak_and_large_tau():
    # one row of 4 with all the weight: phi_max = n, effective 1 row
    st = _stats([100.0, 0.0, 0.0, 0.0], 1.0)
    assert st['phi_max'] == pytest.approx(4.0)
    assert st['share_above_1'] == pytest.approx(0.25)
    assert st['eff_frac'] == pytest.approx(0.25)
    counts = torch.arange(1, 33, dtype=torch.float32)
    phi_max = [_stats(counts, tau)['phi_max'] for tau in (1, 10, 100, 1e4)]
    assert phi_max == sorted(phi_max, reverse=True)
    assert phi_max[-1] == pytest.approx(1.0, abs=1e-2)
    assert _stats(counts, 1e4)['eff_frac'] == pytest.approx(1.0, abs=1e-4)


def test_config_lookups():
    layer = dict(voxel_size=[1, 1, 1], max_num_points=5)
    det = dict(model=dict(data_preprocessor=dict(voxel_layer=layer)))
    assert find_voxel_layer(det) == layer
    assert find_distill_loss(det) is None
    dist = dict(model=dict(
        type='Distiller3D', student=det['model'],
        distill_terms=dict(a=dict(loss=dict(type='KDLoss')),
                           b=dict(loss=dict(type='PointDistillerLoss',
                                            num_samples=7)))))
    assert find_voxel_layer(dist) == layer
    assert find_distill_loss(dist) == (
        'b', dict(type='PointDistillerLoss', num_samples=7))
    with pytest.raises(KeyError):
        find_voxel_layer(dict(model=dict(type='X')))
    cfg = dict(
        train_dataloader=dict(dataset=dict(type='RepeatDataset', dataset=dict(
            ann_file='kitti_infos_train.pkl',
            data_prefix=dict(pts='training/velodyne')))),
        val_dataloader=dict(dataset=dict(
            ann_file='kitti_infos_val.pkl',
            data_prefix=dict(pts='training/velodyne_reduced'))))
    assert pts_prefix(cfg, 'train') == 'training/velodyne'
    assert pts_prefix(cfg, 'val') == 'training/velodyne_reduced'
    assert pts_prefix(cfg, 'test') == 'training/velodyne_reduced'
    assert pts_prefix({}, 'val') == 'velodyne'


def test_library_on_tiny_kitti(tiny_kitti):
    st = reweight_stats(CONFIG, str(tiny_kitti), num_samples=5,
                        taus=[1.0, 1e4])
    assert st.num_samples == 5 and st.config_tau == 10.0
    assert st.scan_folder == 'training/velodyne_reduced'
    assert len(st.scans) == 2 and st.empty_scans == 1  # val frame 5
    scan = next(s for s in st.scans if s.voxels > 0)
    assert scan.sampled == 5
    assert 1 <= scan.sampled_min <= scan.sampled_max <= 32
    assert 0 <= scan.share_at_cap <= 1
    assert st.taus[0].phi_max >= st.taus[1].phi_max
    assert st.taus[1].phi_max == pytest.approx(1.0, abs=1e-2)


def test_cli_on_tiny_kitti(tiny_kitti, tmp_path):
    out = tmp_path / 'stats.json'
    taus = ['1', '2.5', '10', '100']
    proc = run_tool(['PYTHON', 'tools/analysis/reweight_stats.py', CONFIG,
                     '--data-root', str(tiny_kitti), '--taus', *taus,
                     '--json', str(out)], timeout=120)
    rows = [
        line for line in proc.stdout.splitlines()
        if re.match(r'^\s*[0-9.]+\*?\s+[0-9.]+\s+[0-9.]+%\s+[0-9.]+$', line)
    ]
    assert [r.split()[0].rstrip('*') for r in rows] == taus
    assert '10*' in proc.stdout  # the config's tau is marked
    data = json.loads(out.read_text())
    assert [t['tau'] for t in data['taus']] == [1.0, 2.5, 10.0, 100.0]
    assert data['num_samples'] == 6000 and data['empty_scans'] == 1
    assert data['voxel_layer']['max_num_points'] == 32
