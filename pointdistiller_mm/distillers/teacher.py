"""Build, load and freeze a teacher; check it sees the student's voxels."""
from __future__ import annotations

import logging
import os
import os.path as osp
from collections import OrderedDict
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log
from mmengine.runner.checkpoint import CheckpointLoader
from torch import nn

from mmdet3d.registry import MODELS


class TeacherCheckpointError(RuntimeError):
    """The teacher checkpoint does not fit the teacher model."""


class VoxelizationMismatchError(ValueError):
    """Teacher and student voxelize the point cloud differently."""


#: Voxelizer settings that must agree for the teacher to consume the
#: student's voxelized batch.
VOXEL_FIELDS = ('voxel', 'voxel_type', 'voxel_layer')


def teacher_model_cfg(config: Union[str, Mapping]) -> ConfigDict:
    """The teacher's ``model`` config from a config path or a model dict."""
    if isinstance(config, str):
        if not osp.isfile(config):
            raise FileNotFoundError(
                f'Teacher config not found: {osp.abspath(config)}. Set '
                'model.teacher.config to the config the teacher checkpoint '
                'was trained with (a path relative to where you run the '
                'command, usually the repository root).')
        return Config.fromfile(config).model
    if 'model' in config and 'type' not in config:
        return ConfigDict(config['model'])
    return ConfigDict(config)


def _flatten(prefix: str, value: Any, out: Dict[str, Any]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f'{prefix}.{k}' if prefix else str(k), v, out)
    else:
        out[prefix] = list(value) if isinstance(value, tuple) else value


def check_same_voxelization(student_cfg: Mapping, teacher_cfg: Mapping) -> None:
    """Raise if the data preprocessors voxelize differently.

    Compares ``voxel``, ``voxel_type`` and every field of ``voxel_layer``
    (voxel size, point-cloud range, points per voxel, max voxels, ...).
    """
    s_pre = student_cfg.get('data_preprocessor') or {}
    t_pre = teacher_cfg.get('data_preprocessor') or {}
    s_flat: Dict[str, Any] = {}
    t_flat: Dict[str, Any] = {}
    for field in VOXEL_FIELDS:
        _flatten(field, s_pre.get(field), s_flat)
        _flatten(field, t_pre.get(field), t_flat)
    diffs = [(k, s_flat.get(k), t_flat.get(k))
             for k in sorted(set(s_flat) | set(t_flat))
             if s_flat.get(k) != t_flat.get(k)]
    if diffs:
        lines = '\n'.join(f'  data_preprocessor.{k}: student {s!r}, '
                          f'teacher {t!r}' for k, s, t in diffs)
        raise VoxelizationMismatchError(
            'The teacher consumes the student\'s voxelized batch, but the two '
            f'configs voxelize differently:\n{lines}\nUse a teacher trained '
            'with the student\'s voxelization (or give the student the '
            "teacher's data_preprocessor settings).")


def strip_state_prefix(state: Mapping[str, Any],
                       prefix: str) -> 'OrderedDict[str, Any]':
    """``state`` with ``prefix`` removed from its keys, keeping only the keys
    that carry it, and with the same renaming applied to the module metadata
    (``state._metadata``). The metadata holds each module's ``version``;
    mmdet3d's spconv loader permutes kernels of modules whose version is not
    2, so losing it breaks every SECOND / sparse-conv checkpoint."""
    metadata = getattr(state, '_metadata', None)
    root = prefix.rstrip('.')
    out = OrderedDict((k[len(prefix):], v) for k, v in state.items()
                      if k.startswith(prefix))
    if metadata is not None:
        out._metadata = OrderedDict(
            ('' if k == root else k[len(prefix):], v)
            for k, v in metadata.items()
            if k == root or k.startswith(prefix))
    return out


def _state_dict_of(checkpoint: Any) -> Dict[str, torch.Tensor]:
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, Mapping) else checkpoint
    if state and all(k.startswith('module.') for k in state):
        state = strip_state_prefix(state, 'module.')
    # A distiller checkpoint used as teacher: take its student.
    if any(k.startswith('student.') for k in state):
        state = strip_state_prefix(state, 'student.')
    return state


def _listing(keys: List[str], limit: int = 8) -> str:
    shown = ', '.join(keys[:limit])
    more = f' ... (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return shown + more


def resolve_checkpoint(path: str) -> str:
    """A checkpoint file for ``path``; a work dir gives its newest one.

    For a directory, the file named in its ``last_checkpoint`` (written by
    mmengine's CheckpointHook) is used, else the newest ``*.pth`` in it.
    """
    if '://' in path or not osp.isdir(path):
        return path
    pointer = osp.join(path, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
        named = osp.join(path, osp.basename(named))
        if osp.isfile(named):
            return named
    ckpts = sorted((f for f in os.listdir(path) if f.endswith('.pth')),
                   key=lambda f: osp.getmtime(osp.join(path, f)))
    if not ckpts:
        raise FileNotFoundError(
            f'No teacher checkpoint in {osp.abspath(path)} (no '
            'last_checkpoint file and no .pth). Train the teacher first '
            '(python tools/train.py TEACHER_CONFIG --work-dir '
            f'{path}) or set model.teacher.checkpoint to a .pth file or URL.')
    return osp.join(path, ckpts[-1])


def load_teacher_checkpoint(model: nn.Module, filename: str) -> None:
    """Load ``filename`` into ``model`` strictly, or explain why it fails.

    ``filename`` may also be a work dir (see :func:`resolve_checkpoint`).
    """
    filename = resolve_checkpoint(filename)
    if '://' not in filename and not osp.isfile(filename):
        raise FileNotFoundError(
            f'Teacher checkpoint not found: {osp.abspath(filename)}. Train the '
            'teacher first (python tools/train.py TEACHER_CONFIG) or set '
            'model.teacher.checkpoint to an existing file or URL.')
    state = _state_dict_of(
        CheckpointLoader.load_checkpoint(filename, map_location='cpu'))
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f'{k} (checkpoint {tuple(state[k].shape)}, model '
              f'{tuple(own[k].shape)})' for k in own
              if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = [f'Teacher checkpoint {filename} does not fit the teacher '
                 f'model ({type(model).__name__}):']
        if missing:
            parts.append(f'  missing keys ({len(missing)}): {_listing(missing)}')
        if unexpected:
            parts.append(f'  unexpected keys ({len(unexpected)}): '
                         f'{_listing(unexpected)}')
        if shapes:
            parts.append(f'  shape mismatches ({len(shapes)}): '
                         f'{_listing(shapes, 4)}')
        parts.append('Set model.teacher.config to the config this checkpoint '
                     'was trained with, or model.teacher.checkpoint to a '
                     'checkpoint of this teacher config.')
        raise TeacherCheckpointError('\n'.join(parts))
    model.load_state_dict(state, strict=True)


def build_teacher(config: Union[str, Mapping],
                  checkpoint: Optional[str]) -> Tuple[nn.Module, ConfigDict]:
    """Build the teacher, load its checkpoint strictly and freeze it.

    Returns the frozen teacher (eval mode, ``requires_grad`` False) and its
    model config.
    """
    cfg = teacher_model_cfg(config)
    teacher = MODELS.build(cfg)
    if checkpoint:
        checkpoint = resolve_checkpoint(checkpoint)
        load_teacher_checkpoint(teacher, checkpoint)
        print_log(f'Teacher loaded strictly from {checkpoint}',
                  logger='current')
    else:
        print_log('model.teacher.checkpoint is not set: the teacher keeps its '
                  'random initialisation (only useful for tests).',
                  logger='current', level=logging.WARNING)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher, cfg
