"""Per-architecture pieces: turn recorded features into loss inputs.

A distillation term records one student and one teacher output; a *rows*
builder turns them, together with the voxelized batch, into the keyword
arguments of the term's loss. Builders are registered in mmdet3d's
``TASK_UTILS`` and keep detector specifics out of :class:`Distiller3D`.

Every builder is called as ``builder(student, teacher, inputs, context)``
where ``inputs`` is the preprocessed batch (``points``, ``voxels``) and
``context`` holds ``batch_size`` and ``grid_shape`` (voxel grid ``(H, W)``).
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch
from torch import Tensor

from mmdet3d.registry import TASK_UTILS

from ..importance import bev_point_count_scores, channel_max_scores


def _voxels(inputs: Mapping) -> Mapping:
    voxels = inputs.get('voxels')
    if voxels is None or 'coors' not in voxels:
        raise KeyError('these distillation rows need the voxelized batch '
                       "(inputs['voxels'] with 'coors' and 'num_points'); the "
                       'student has no voxel data preprocessor')
    return voxels


@TASK_UTILS.register_module()
class VoxelRows:
    """Voxel / pillar rows (PointPillars pillar encoder output).

    Student and teacher features are ``(M, C)``, one row per voxel of the
    shared voxelized batch; the importance score is the voxel's point count.
    """

    def __call__(self, student: Tensor, teacher: Tensor, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        voxels = _voxels(inputs)
        coors = voxels['coors']
        if student.dim() == 3:  # (M, 1, C) encoders that keep a point axis
            student, teacher = student.squeeze(1), teacher.squeeze(1)
        if coors.shape[0] == 0:  # no voxel in the batch (see compat)
            student, teacher = student[:0], teacher[:0]
        return dict(
            student_feats=student,
            teacher_feats=teacher,
            batch_idx=coors[:, 0].long(),
            scores=voxels['num_points'].float(),
            coords=coors[:, 1:].float(),
            batch_size=context['batch_size'])


def bev_map_rows(feature_map: Tensor) -> Dict[str, Tensor]:
    """Rows of a dense ``(B, C, h, w)`` map, row-major over ``(y, x)``."""
    b, c, h, w = feature_map.shape
    rows = feature_map.permute(0, 2, 3, 1).reshape(b * h * w, c)
    dev = feature_map.device
    batch_idx = torch.arange(b, device=dev).repeat_interleave(h * w)
    ys = torch.arange(h, device=dev).repeat_interleave(w).repeat(b)
    xs = torch.arange(w, device=dev).repeat(h * b)
    return dict(rows=rows, batch_idx=batch_idx,
                coords=torch.stack([ys, xs], 1).float())


@TASK_UTILS.register_module()
class BEVRows:
    """Dense BEV-map rows (SECOND backbone maps, nuScenes FPN levels).

    Args:
        score: ``'point_count'`` (points of the voxels falling into each cell,
            at the map's stride) or ``'channel_max'`` (max over channels of
            the teacher map).
    """

    def __init__(self, score: str = 'point_count') -> None:
        if score not in ('point_count', 'channel_max'):
            raise ValueError("score must be 'point_count' or 'channel_max', "
                             f'got {score!r}')
        self.score = score

    def __call__(self, student: Tensor, teacher: Tensor, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        if student.shape[-2:] != teacher.shape[-2:]:
            raise ValueError(
                f'student map {tuple(student.shape)} and teacher map '
                f'{tuple(teacher.shape)} differ in size; distil maps of the '
                'same stride')
        s = bev_map_rows(student)
        t = bev_map_rows(teacher)
        if self.score == 'point_count':
            voxels = _voxels(inputs)
            scores = bev_point_count_scores(
                voxels['coors'], voxels['num_points'], teacher.shape[0],
                context['grid_shape'], tuple(teacher.shape[-2:])).reshape(-1)
        else:
            scores = channel_max_scores(t['rows'])
        return dict(student_feats=s['rows'], teacher_feats=t['rows'],
                    batch_idx=t['batch_idx'], scores=scores,
                    coords=t['coords'], batch_size=context['batch_size'])


@TASK_UTILS.register_module()
class PointRows:
    """Point rows (PointRCNN FP-neck features): ``(B, C, Np)`` per side.

    Record either the feature tensor (``index='fp_features'`` on the neck)
    or the neck's whole output dict (``fp_features`` and ``fp_xyz``); row
    ``b * Np + i`` is point i of sample b on both sides (teacher and student
    see the same points). Importance is the channel maximum of the teacher
    feature; coordinates are the points' xyz when the recorded output
    carries them (``knn_space='coord'``), else None.
    """

    def __call__(self, student: Any, teacher: Any, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        coords = None
        if isinstance(teacher, Mapping):
            xyz = teacher.get('fp_xyz')
            if xyz is not None:
                coords = xyz.reshape(-1, xyz.shape[-1]).float()
            teacher = teacher['fp_features']
        if isinstance(student, Mapping):
            student = student['fp_features']
        if student.shape[0] != teacher.shape[0] or \
                student.shape[2] != teacher.shape[2]:
            raise ValueError(
                f'student points {tuple(student.shape)} and teacher points '
                f'{tuple(teacher.shape)} differ (expected (B, C, Np) with the '
                'same B and Np); distil features of the same points')
        b, c, n = teacher.shape
        s_rows = student.permute(0, 2, 1).reshape(b * n, -1)
        t_rows = teacher.permute(0, 2, 1).reshape(b * n, c)
        batch_idx = torch.arange(b, device=teacher.device).repeat_interleave(n)
        return dict(student_feats=s_rows, teacher_feats=t_rows,
                    batch_idx=batch_idx, scores=channel_max_scores(t_rows),
                    coords=coords, batch_size=b)


@TASK_UTILS.register_module()
class FeaturePair:
    """Pass the two recorded features through unchanged (baseline losses
    that work on whole maps: ``loss(student, teacher)``)."""

    def __call__(self, student: Any, teacher: Any, inputs: Mapping,
                 context: Mapping) -> Dict[str, Any]:
        return dict(student_feats=student, teacher_feats=teacher)


def _levels(output: Any) -> List[Optional[Tensor]]:
    if output is None or isinstance(output, Tensor):
        return [output]
    return list(output)


def anchor_rows(head_output: Sequence[Any],
                box_code_size: int = 7) -> Dict[str, Optional[Tensor]]:
    """Per-anchor rows of an anchor head's ``(cls_scores, bbox_preds[,
    dir_cls_preds])``, each a map ``(B, A * D, H, W)`` or a list of them
    (one per level): ``(B, N, D)`` in mmdet3d's anchor order (levels, then
    ``(y, x, anchor)``), with A = bbox channels / ``box_code_size``."""
    names = ('cls_scores', 'bbox_preds', 'dir_cls_preds')
    if not 2 <= len(head_output) <= 3:
        raise ValueError('anchor head outputs are (cls_scores, bbox_preds[, '
                         f'dir_cls_preds]), got {len(head_output)} items')
    levels = [_levels(x) for x in head_output]
    out: Dict[str, Optional[Tensor]] = {}
    for name, maps in zip(names, levels):
        if any(m is None for m in maps):
            out[name] = None
            continue
        rows = []
        for m, box in zip(maps, levels[1]):
            anchors = box.shape[1] // box_code_size
            b = m.shape[0]
            rows.append(m.permute(0, 2, 3, 1).reshape(
                b, -1, m.shape[1] // anchors))
        out[name] = torch.cat(rows, 1)
    out.setdefault('dir_cls_preds', None)
    return out


@TASK_UTILS.register_module()
class AnchorHeadRows:
    """Anchor-head outputs (``Anchor3DHead`` and kin) as per-anchor rows.

    Record the student's ``bbox_head`` (its output is ``(cls_scores,
    bbox_preds, dir_cls_preds)``) and the teacher's model root with
    ``teacher_forward='tensor'`` (the teacher then returns the same
    tuple). Both sides become ``dict(cls_scores=(B, N, K), bbox_preds=(B,
    N, code), dir_cls_preds=(B, N, 2) or None)``; row n is the same anchor
    on both sides when the heads share their anchor generator.

    Args:
        box_code_size: Box code length of the head (7 for KITTI).
    """

    def __init__(self, box_code_size: int = 7) -> None:
        self.box_code_size = box_code_size

    def __call__(self, student: Sequence[Any], teacher: Sequence[Any],
                 inputs: Mapping, context: Mapping) -> Dict[str, Any]:
        s = anchor_rows(student, self.box_code_size)
        t = anchor_rows(teacher, self.box_code_size)
        for key in ('cls_scores', 'bbox_preds'):
            if s[key].shape != t[key].shape:
                raise ValueError(
                    f'student and teacher {key} differ: '
                    f'{tuple(s[key].shape)} vs {tuple(t[key].shape)}; the '
                    'heads must share anchors and classes')
        return dict(student_feats=s, teacher_feats=t)
