"""Importance scores, per-sample top-N and reweighting against hand values."""
import math

import pytest
import torch

from pointdistiller_mm.importance import (bev_point_count_scores,
                                          channel_max_scores, gather_rows,
                                          reweight, topn_per_sample,
                                          voxel_point_count_scores)


def test_voxel_point_count_scores():
    out = voxel_point_count_scores(torch.tensor([3, 1, 5], dtype=torch.int32))
    assert out.dtype == torch.float32
    assert out.tolist() == [3.0, 1.0, 5.0]


def test_bev_scatter_stride_2():
    # (batch, z, y, x) on a 4 x 4 grid, map 2 x 2 (stride 2).
    coors = torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 2, 3],
                          [1, 0, 3, 0]])
    num_points = torch.tensor([2, 3, 1, 4])
    out = bev_point_count_scores(coors, num_points, 2, (4, 4), (2, 2))
    assert out.tolist() == [[5.0, 0.0, 0.0, 1.0], [0.0, 0.0, 4.0, 0.0]]


def test_bev_scatter_non_divisible_grid():
    # Grid (5, 3) -> map (3, 2): stride 2, ceil-sized (padded conv).
    coors = torch.tensor([[0, 0, 4, 2], [0, 0, 3, 1], [0, 0, 2, 2],
                          [0, 0, 0, 0]])
    num_points = torch.tensor([1, 2, 4, 8])
    out = bev_point_count_scores(coors, num_points, 1, (5, 3), (3, 2))
    expected = torch.zeros(6)
    expected[2 * 2 + 1] += 1  # y 4 -> 2, x 2 -> 1
    expected[1 * 2 + 0] += 2  # y 3 -> 1, x 1 -> 0
    expected[1 * 2 + 1] += 4  # y 2 -> 1, x 2 -> 1
    expected[0] += 8
    assert out[0].tolist() == expected.tolist()
    # Floor-sized map (unpadded conv): the last row goes to the last cell.
    out = bev_point_count_scores(
        torch.tensor([[0, 0, 4, 4]]), torch.tensor([7]), 1, (5, 5), (2, 2))
    assert out[0].tolist() == [0.0, 0.0, 0.0, 7.0]
    # 3-column coors (batch, y, x) and an explicit stride.
    out = bev_point_count_scores(
        torch.tensor([[0, 5, 1]]), torch.tensor([1]), 1, (6, 6), (2, 2),
        stride=3)
    assert out[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    # Upsampled map: proportional mapping, y -> 2y.
    out = bev_point_count_scores(
        torch.tensor([[0, 0, 3, 0]]), torch.tensor([1]), 1, (4, 1), (8, 1))
    assert out[0].nonzero().flatten().tolist() == [6]


def test_channel_max_scores():
    rows = torch.tensor([[1.0, 5.0, 2.0], [-1.0, -3.0, -2.0]])
    assert channel_max_scores(rows).tolist() == [5.0, -1.0]
    fmap = torch.zeros(1, 2, 1, 2)
    fmap[0, 0, 0] = torch.tensor([1.0, 7.0])
    fmap[0, 1, 0] = torch.tensor([4.0, 2.0])
    assert channel_max_scores(fmap).tolist() == [[4.0, 7.0]]


def test_topn_per_sample_padding_and_empty_sample():
    scores = torch.tensor([5.0, 1.0, 3.0, 9.0, 2.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1, 1, 3])
    top = topn_per_sample(scores, batch, 2, batch_size=4)
    assert top.index.tolist() == [[0, 2], [3, 4], [0, 0], [5, 0]]
    assert top.mask.tolist() == [[True, True], [True, True],
                                 [False, False], [True, False]]
    # n larger than every sample: all rows, width = largest sample.
    top = topn_per_sample(scores, batch, 10, batch_size=4)
    assert top.index.shape == (4, 3)
    assert top.index[0].tolist() == [0, 2, 1]
    assert top.mask.sum(1).tolist() == [3, 2, 0, 1]
    # Inferred batch size stops at the last non-empty sample.
    assert topn_per_sample(scores, batch, 1).index.shape == (4, 1)


def test_topn_batch_global_and_ties():
    scores = torch.tensor([5.0, 1.0, 3.0, 9.0, 2.0, 4.0])
    batch = torch.tensor([0, 0, 0, 1, 1, 3])
    top = topn_per_sample(scores, batch, 3, mode='batch_global')
    assert top.index.tolist() == [[3, 0, 5]]
    assert top.mask.all()
    ties = topn_per_sample(torch.ones(4), torch.zeros(4, dtype=torch.long), 2)
    assert ties.index.tolist() == [[0, 1]]


def test_topn_all_empty():
    top = topn_per_sample(torch.zeros(0), torch.zeros(0, dtype=torch.long), 5,
                          batch_size=2)
    assert top.index.shape == (2, 0) and top.mask.shape == (2, 0)


def test_gather_rows_zeroes_padding():
    rows = torch.tensor([[1.0], [2.0], [3.0]])
    top = topn_per_sample(
        torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0, 0, 1]), 2)
    out = gather_rows(rows, top).squeeze(-1)
    assert out.tolist() == [[2.0, 1.0], [3.0, 0.0]]


def test_reweight_by_hand():
    s = torch.tensor([[1.0, 2.0, 7.0]])
    mask = torch.tensor([[True, True, False]])
    phi = reweight(s, 1.0, mask)
    e = math.e
    assert phi[0, 0].item() == pytest.approx(2 / (1 + e), rel=1e-6)
    assert phi[0, 1].item() == pytest.approx(2 * e / (1 + e), rel=1e-6)
    assert phi[0, 2].item() == 0.0
    assert phi.sum().item() == pytest.approx(2.0)  # mean 1 over valid rows


def test_reweight_temperature_limits():
    s = torch.tensor([[1.0, 3.0, 3.0, 2.0]])
    assert torch.allclose(reweight(s, 1e6, None), torch.ones(1, 4), atol=1e-5)
    # Integer counts with a tiny tau: argmax, ties share the mass.
    assert reweight(s, 1e-3, None).tolist() == [[0.0, 2.0, 2.0, 0.0]]
    assert reweight(s, None, None).tolist() == [[1.0, 1.0, 1.0, 1.0]]
    phi = reweight(torch.randn(3, 5), 0.5, None)
    assert torch.allclose(phi.mean(-1), torch.ones(3))


def test_reweight_empty_row_no_nan():
    mask = torch.tensor([[False, False], [True, False]])
    phi = reweight(torch.tensor([[1.0, 2.0], [3.0, 0.0]]), 0.1, mask)
    assert phi.tolist() == [[0.0, 0.0], [1.0, 0.0]]
    with pytest.raises(ValueError):
        reweight(torch.ones(1, 2), 0.0, None)
