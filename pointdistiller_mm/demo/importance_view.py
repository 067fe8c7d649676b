"""Bird's-eye view of PointDistiller's importance scores (paper, Figure 6).

Points of one scan are coloured by the importance score of the row the loss
sees them in: their pillar (``VoxelRows``: the number of points the model's
own hard voxelization puts into it, capped at ``max_num_points``) or the cell
of a BEV map (``BEVRows`` with point-count scores: the pillar counts summed
over the cell, at the map's stride, as the loss computes them). The top-N
rows the loss samples are outlined, ground-truth boxes are drawn, and the
title says how concentrated the reweighting ``phi = softmax(score / tau)``
is.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ..analysis.reweight_stats import find_distill_term as pointdistiller_term
from ..importance import (bev_cell_index, bev_point_count_scores, reweight,
                          topn_per_sample)

__all__ = ['CellImportance', 'PillarImportance', 'pillar_importance',
           'bev_cell_importance', 'render_importance_bev', 'box_corners_bev',
           'importance_figure_from_config', 'loss_sampling_settings',
           'pointdistiller_term', 'recorded_map_shape']


@dataclass
class CellImportance:
    """Occupied rows of one scan (pillars, or cells of a BEV map) and the
    per-point view of their scores.

    Attributes:
        coors: (M, 3) int row coordinates ``(z, y, x)`` in cells of size
            ``voxel_size``.
        num_points: (M,) points per row (the importance score).
        point_score: (P,) score of each input point's row (0 for points
            outside the range or in a pillar dropped by ``max_voxels``).
        point_cell: (P, 2) ``(y, x)`` row cell of each point, -1 for points
            outside the range.
        voxel_size: Cell size ``(vx, vy, vz)`` (the pillar size times the
            map's stride).
        point_cloud_range: ``(x0, y0, z0, x1, y1, z1)``.
        unit: What a row is, for the picture's labels.
    """
    coors: np.ndarray
    num_points: np.ndarray
    point_score: np.ndarray
    point_cell: np.ndarray
    voxel_size: Tuple[float, float, float]
    point_cloud_range: Tuple[float, ...]
    unit: str = 'pillar'


#: the pillar view (one row per pillar) is a :class:`CellImportance`
PillarImportance = CellImportance


def pillar_importance(points: np.ndarray, voxel_layer: Mapping[str, Any],
                      training: bool = True) -> CellImportance:
    """Voxelize a scan with mmcv's hard ``Voxelization`` (the op of the
    model's data preprocessor) and score every point by its pillar.

    Args:
        points: (P, C >= 3) LiDAR points.
        voxel_layer: The config's ``data_preprocessor.voxel_layer``
            (``voxel_size``, ``point_cloud_range``, ``max_num_points``,
            ``max_voxels``).
        training: Use the training ``max_voxels`` (the loss runs in
            training).
    """
    from mmcv.ops import Voxelization
    layer = Voxelization(**dict(voxel_layer))
    layer.train(training)
    pts = torch.as_tensor(np.ascontiguousarray(points), dtype=torch.float32)
    _, coors, num_points = layer(pts)
    coors = coors.numpy().astype(np.int64)
    num_points = num_points.numpy().astype(np.int64)
    vs = tuple(float(v) for v in voxel_layer['voxel_size'])
    pcr = tuple(float(v) for v in voxel_layer['point_cloud_range'])
    nx = int(round((pcr[3] - pcr[0]) / vs[0]))
    ny = int(round((pcr[4] - pcr[1]) / vs[1]))
    grid = np.zeros((ny, nx), dtype=np.int64)
    # pillars have one z cell; sum over z for general voxels
    np.add.at(grid, (coors[:, 1], coors[:, 2]), num_points)
    ix = np.floor((points[:, 0] - pcr[0]) / vs[0]).astype(np.int64)
    iy = np.floor((points[:, 1] - pcr[1]) / vs[1]).astype(np.int64)
    inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny) & \
        (points[:, 2] >= pcr[2]) & (points[:, 2] < pcr[5])
    score = np.zeros(len(points), dtype=np.int64)
    score[inside] = grid[iy[inside], ix[inside]]
    cell = np.full((len(points), 2), -1, dtype=np.int64)
    cell[inside, 0], cell[inside, 1] = iy[inside], ix[inside]
    return CellImportance(coors, num_points, score, cell, vs, pcr)


def bev_cell_importance(points: np.ndarray, voxel_layer: Mapping[str, Any],
                        map_shape: Tuple[int, int],
                        training: bool = True) -> CellImportance:
    """Score every point by the BEV-map cell its pillar falls into: the
    pillars' point counts summed per cell with
    :func:`~pointdistiller_mm.importance.bev_point_count_scores` (what
    ``BEVRows(score='point_count')`` gives the loss).

    Args:
        points: (P, C >= 3) LiDAR points.
        voxel_layer: The config's ``data_preprocessor.voxel_layer``.
        map_shape: ``(h, w)`` of the distilled BEV map.
        training: Use the training ``max_voxels``.
    """
    pillars = pillar_importance(points, voxel_layer, training)
    vs, pcr = pillars.voxel_size, pillars.point_cloud_range
    grid = (int(round((pcr[4] - pcr[1]) / vs[1])),
            int(round((pcr[3] - pcr[0]) / vs[0])))
    h, w = int(map_shape[0]), int(map_shape[1])
    coors = torch.as_tensor(pillars.coors)
    with_batch = torch.cat([torch.zeros_like(coors[:, :1]), coors], dim=1)
    scores = bev_point_count_scores(
        with_batch, torch.as_tensor(pillars.num_points), 1, grid,
        (h, w)).reshape(h, w).round().long().numpy()
    ys, xs = np.nonzero(scores)
    cells = np.stack([np.zeros_like(ys), ys, xs], axis=1).astype(np.int64)
    point_cell = np.full_like(pillars.point_cell, -1)
    inside = pillars.point_cell[:, 0] >= 0
    if inside.any():
        cy, cx = bev_cell_index(
            torch.as_tensor(pillars.point_cell[inside]), grid, (h, w))
        point_cell[inside, 0], point_cell[inside, 1] = cy.numpy(), cx.numpy()
    point_score = np.zeros(len(points), dtype=np.int64)
    # points of pillars dropped by max_voxels keep score 0, as in the
    # pillar view
    kept = inside & (pillars.point_score > 0)
    point_score[kept] = scores[point_cell[kept, 0], point_cell[kept, 1]]
    cell_size = (vs[0] * grid[1] / w, vs[1] * grid[0] / h, vs[2])
    return CellImportance(cells, scores[ys, xs].astype(np.int64),
                          point_score, point_cell, cell_size, pcr,
                          unit='BEV cell')


def box_corners_bev(boxes: np.ndarray) -> np.ndarray:
    """(K, 4, 2) BEV corners of LiDAR boxes ``(x, y, z, l, w, h, yaw)``
    (mmdet3d LiDAR convention: ``l`` along the heading ``yaw``)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    x, y, l, w, yaw = boxes[:, 0], boxes[:, 1], boxes[:, 3], boxes[:, 4], \
        boxes[:, 6]
    local = np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])
    dx = local[None, :, 0] * l[:, None]
    dy = local[None, :, 1] * w[:, None]
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    return np.stack([x[:, None] + c * dx - s * dy,
                     y[:, None] + s * dx + c * dy], axis=-1)


def _phi_share(num_points: np.ndarray, top: np.ndarray,
               tau: Optional[float]) -> Tuple[int, int]:
    """Rows holding 50 % and 90 % of the reweighting mass of the
    sampled rows."""
    if tau is None or len(top) == 0:
        return len(top) // 2, int(np.ceil(0.9 * len(top)))
    phi = reweight(torch.as_tensor(num_points[top], dtype=torch.float32),
                   tau).numpy()
    cum = np.cumsum(np.sort(phi)[::-1]) / max(phi.sum(), 1e-12)
    return (int(np.searchsorted(cum, 0.5) + 1),
            int(np.searchsorted(cum, 0.9) + 1))


def render_importance_bev(points: np.ndarray,
                          imp: CellImportance,
                          out_file: str,
                          top_n: Optional[int] = 6000,
                          tau: Optional[float] = 1.0,
                          gt_boxes: Optional[np.ndarray] = None,
                          gt_labels: Optional[Sequence[str]] = None,
                          title: str = '',
                          dpi: int = 110) -> dict:
    """Draw the picture and save it as PNG.

    Args:
        points: (P, >= 3) scan.
        imp: :func:`pillar_importance` or :func:`bev_cell_importance` of
            the scan.
        out_file: PNG path.
        top_n: Rows the loss samples per scan (the loss's
            ``num_samples``); None: all.
        tau: Reweighting temperature (None: no reweighting).
        gt_boxes: (K, 7) LiDAR boxes to draw.
        gt_labels: Class name per box.
        title: First title line.

    Returns:
        dict: ``unit``, ``num_cells`` (occupied rows), ``num_sampled``,
        ``phi50``, ``phi90`` (rows holding 50 / 90 % of phi),
        ``single_point_share`` (rows holding one point).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import LogNorm
    from matplotlib.patches import Polygon, Rectangle

    m = len(imp.num_points)
    scores = torch.as_tensor(imp.num_points, dtype=torch.float32)
    top = topn_per_sample(scores, torch.zeros(m, dtype=torch.long), top_n,
                          batch_size=1)
    top_idx = top.index[0][top.mask[0]].numpy() if m else np.zeros(0, int)
    phi50, phi90 = _phi_share(imp.num_points, top_idx, tau)
    x0, y0 = imp.point_cloud_range[0], imp.point_cloud_range[1]
    x1, y1 = imp.point_cloud_range[3], imp.point_cloud_range[4]
    vx, vy = imp.voxel_size[0], imp.voxel_size[1]

    ny = int(round((y1 - y0) / vy))
    nx = int(round((x1 - x0) / vx))
    sampled_grid = np.zeros((ny, nx), dtype=bool)
    if len(top_idx):
        sampled_grid[imp.coors[top_idx, 1], imp.coors[top_idx, 2]] = True
    cell = imp.point_cell
    in_grid = cell[:, 0] >= 0
    sampled_pt = np.zeros(len(points), dtype=bool)
    sampled_pt[in_grid] = sampled_grid[cell[in_grid, 0], cell[in_grid, 1]]
    keep = sampled_pt & (imp.point_score > 0)

    fig, ax = plt.subplots(figsize=(8.5, 8))
    order = np.argsort(imp.point_score[keep], kind='stable')
    pts, sc = points[keep][order], imp.point_score[keep][order]
    ax.scatter(points[~keep, 0], points[~keep, 1], s=0.2, c='0.75',
               linewidths=0, rasterized=True)
    vmax = max(int(imp.num_points.max()) if m else 2, 2)
    art = ax.scatter(pts[:, 0], pts[:, 1], s=0.6, c=sc, cmap='viridis',
                     norm=LogNorm(vmin=1, vmax=vmax), linewidths=0,
                     rasterized=True)
    cbar = fig.colorbar(art, ax=ax, fraction=0.046, pad=0.02)
    unit = imp.unit
    cbar.set_label(f'importance score: points in the {unit} '
                   '(grey: not sampled)')
    # outline the sampled rows that carry 90 % of the loss weight phi
    if len(top_idx):
        heavy = top_idx[np.argsort(-imp.num_points[top_idx],
                                   kind='stable')][:phi90]
        rects = [Rectangle((x0 + c[2] * vx, y0 + c[1] * vy), vx, vy)
                 for c in imp.coors[heavy]]
        ax.add_collection(PatchCollection(rects, facecolor='none',
                                          edgecolor='red', linewidths=0.6))
    if gt_boxes is not None and len(gt_boxes):
        corners = box_corners_bev(gt_boxes)
        ax.add_collection(PatchCollection(
            [Polygon(c, closed=True) for c in corners], facecolor='none',
            edgecolor='deepskyblue', linewidths=1.2))
        for c, name in zip(corners, gt_labels or []):
            ax.text(c[:, 0].max() + 0.3, c[:, 1].max(), name, fontsize=6,
                    color='deepskyblue')
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect('equal')
    ax.set_xlabel('x (m, forward)')
    ax.set_ylabel('y (m, left)')
    sampled = len(top_idx)
    note = (f'top-N = {top_n}: all {m} occupied {unit}s sampled'
            if top_n is None or top_n >= m
            else f'top-{top_n} of {m} occupied {unit}s sampled')
    phi_note = (f'phi=softmax(count/{tau:g}): {phi50} {unit}s hold 50 %, '
                f'{phi90} hold 90 % of the weight (red)' if tau is not None
                else f'no reweighting; sampled {unit}s in red')
    ax.set_title('\n'.join(t for t in (title, note, phi_note) if t),
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(out_file, dpi=dpi)
    plt.close(fig)
    single = float((imp.num_points == 1).mean()) if m else 0.0
    return dict(unit=unit, num_cells=m, num_sampled=sampled, phi50=phi50,
                phi90=phi90, single_point_share=single)


def loss_sampling_settings(model_cfg: Mapping) -> Tuple[Optional[int],
                                                        Optional[float]]:
    """``(num_samples, tau)`` of the first ``PointDistillerLoss`` term of a
    ``Distiller3D`` model config; ``(None, None)`` without one."""
    found = pointdistiller_term(model_cfg)
    if found is None:
        return None, None
    loss = found[1]['loss']
    tau = loss.get('tau', 1.0) if loss.get('reweight', True) else None
    return loss.get('num_samples', 6000), tau


def recorded_map_shape(model_cfg: Mapping, recorder_cfg: Mapping,
                       points: np.ndarray) -> Tuple[int, int]:
    """``(h, w)`` of the map a student recorder records, from one forward
    of the (untrained) student on ``points``."""
    from mmdet3d.registry import MODELS
    from mmdet3d.structures import Det3DDataSample

    from ..recorders import build_recorder
    student = MODELS.build(dict(model_cfg.get('student', model_cfg)))
    student.eval()
    recorder = build_recorder(dict(recorder_cfg)).register(student)
    try:
        pts = torch.as_tensor(np.ascontiguousarray(points),
                              dtype=torch.float32)
        data = student.data_preprocessor(
            dict(inputs=dict(points=[pts]), data_samples=[Det3DDataSample()]),
            False)
        args = [data['inputs']]
        if 'batch_input_metas' in inspect.signature(
                student.extract_feat).parameters:  # MVX detectors
            args.append([s.metainfo for s in data['data_samples']])
        with recorder, torch.no_grad():
            student.extract_feat(*args)
        out = recorder.data
    finally:
        recorder.remove()
    if not torch.is_tensor(out) or out.dim() != 4:
        raise ValueError(f'recorder {dict(recorder_cfg)} records '
                         f'{type(out).__name__}, not a (B, C, H, W) BEV map')
    return int(out.shape[-2]), int(out.shape[-1])


def _importance_of_term(points: np.ndarray, model_cfg: Mapping,
                        voxel_layer: Mapping) -> CellImportance:
    """The importance view matching the first PointDistiller term's rows:
    pillars for ``VoxelRows`` (or no term), BEV cells for ``BEVRows`` with
    point-count scores."""
    found = pointdistiller_term(model_cfg)
    rows = dict(found[1].get('rows', {})) if found else {}
    kind = rows.get('type', 'VoxelRows')
    if kind == 'VoxelRows':
        return pillar_importance(points, voxel_layer, training=True)
    if kind == 'BEVRows' and rows.get('score', 'point_count') == \
            'point_count':
        name, term = found
        recorder = model_cfg['student_recorders'][term['student']]
        shape = recorded_map_shape(model_cfg, recorder, points)
        return bev_cell_importance(points, voxel_layer, shape,
                                   training=True)
    raise ValueError(
        f"the importance picture shows point-count scores of pillars "
        f"(VoxelRows) or BEV cells (BEVRows, score='point_count'); term "
        f"{found[0]!r} uses {rows}")


def importance_figure_from_config(cfg, out_file: str, index: int = 0,
                                  title: str = '') -> dict:
    """Render the picture for val scan ``index`` of a distiller config
    (voxelization of its student, rows, N and tau of its PointDistiller
    loss, GT boxes of the val split)."""
    from mmengine.registry import init_default_scope
    from mmdet3d.registry import DATASETS
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model_cfg = cfg.model
    student = model_cfg.get('student', model_cfg)
    voxel_layer = student['data_preprocessor']['voxel_layer']
    top_n, tau = loss_sampling_settings(model_cfg)
    ds_cfg = dict(cfg.val_dataloader.dataset)
    dataset = DATASETS.build(ds_cfg)
    info = dataset.get_data_info(index)
    path = info['lidar_points']['lidar_path']
    points = np.fromfile(path, dtype=np.float32).reshape(-1, 4)
    ann = info.get('eval_ann_info') or info.get('ann_info') or {}
    boxes = ann.get('gt_bboxes_3d')
    labels = ann.get('gt_labels_3d', [])
    classes = dataset.metainfo['classes']
    names = [classes[int(i)] if 0 <= int(i) < len(classes) else 'DontCare'
             for i in labels]
    boxes_np = None
    if boxes is not None and len(boxes):
        t = boxes.tensor if hasattr(boxes, 'tensor') else torch.as_tensor(
            boxes)
        boxes_np = t[:, :7].numpy()
        valid = np.asarray([n != 'DontCare' for n in names], dtype=bool)
        boxes_np, names = boxes_np[valid], [n for n in names
                                            if n != 'DontCare']
    imp = _importance_of_term(points, model_cfg, voxel_layer)
    heading = title or f'val scan {info.get("sample_idx", index)}'
    return render_importance_bev(points, imp, out_file, top_n=top_n, tau=tau,
                                 gt_boxes=boxes_np, gt_labels=names,
                                 title=heading)
