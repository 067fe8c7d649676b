"""Pieces shared by the baseline KD losses: connectors, map layout, weights.

The baselines take whole feature maps ``(B, C, *spatial)`` (a BEV map is
``(B, C, H, W)``) or rows ``(N, C)``; an optional ``weight`` is a
per-location weight broadcastable to ``(B, *spatial)`` (maps) or ``(N,)``
(rows).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from ...adapters.connectors import Conv1x1Connector

__all__ = ['build_connector', 'apply_connector', 'location_weight',
           'graph_zero', 'check_map']

CONNECTOR_CHOICES = ('auto', 'conv', 'none')


def build_connector(student_channels: int, teacher_channels: int,
                    connector: str = 'auto',
                    norm: bool = False) -> Optional[nn.Module]:
    """A trainable 1x1 map student -> teacher channels, or None.

    Args:
        connector: ``'conv'`` (always a 1x1 conv), ``'none'`` (identity;
            the widths must match) or ``'auto'`` (a conv when the widths
            differ, identity otherwise).
        norm: BatchNorm after the conv (OFD's connector).
    """
    if connector not in CONNECTOR_CHOICES:
        raise ValueError(f'connector must be one of {CONNECTOR_CHOICES}, '
                         f'got {connector!r}')
    if connector == 'none' or (connector == 'auto'
                               and student_channels == teacher_channels):
        if student_channels != teacher_channels:
            raise ValueError(
                f"connector='none' needs equal widths, got student "
                f'{student_channels} and teacher {teacher_channels}')
        return None
    return Conv1x1Connector(student_channels, teacher_channels, norm=norm)


def apply_connector(connector: Optional[nn.Module], x: Tensor) -> Tensor:
    """Apply a 1x1 conv connector to maps ``(B, C, *spatial)`` or rows
    ``(N, C)`` (each row a 1 x 1 map)."""
    if connector is None:
        return x
    if x.dim() == 2:
        return connector(x[:, :, None, None])[:, :, 0, 0]
    if x.dim() == 4:
        return connector(x)
    shape = x.shape
    y = connector(x.reshape(shape[0], shape[1], -1, 1))
    return y.reshape(shape[0], y.shape[1], *shape[2:])


def location_weight(weight: Optional[Tensor], feats: Tensor) -> Optional[
        Tensor]:
    """``weight`` reshaped to broadcast over the channels of ``feats``:
    ``(B, 1, *spatial)`` for maps, ``(N, 1)`` for rows."""
    if weight is None:
        return None
    weight = weight.to(feats.dtype)
    if feats.dim() == 2:
        return weight.reshape(-1, 1)
    spatial = feats.shape[2:]
    return weight.reshape(feats.shape[0], 1, *spatial)


def check_map(name: str, feats: Tensor) -> None:
    """Raise unless ``feats`` is a map ``(B, C, *spatial)``."""
    if feats.dim() < 3:
        raise ValueError(f'{name} takes feature maps (B, C, H, W), got a '
                         f'tensor of shape {tuple(feats.shape)}; record a '
                         'map (e.g. the middle encoder output) with the '
                         'FeaturePair rows')


def graph_zero(module: nn.Module, *tensors: Tensor) -> Tensor:
    """A zero that keeps the given tensors and the module's trainable
    parameters in the graph (every parameter gets a gradient, DDP-safe)."""
    z = None
    for t in tensors:
        z = t.sum() * 0.0 if z is None else z + t.sum() * 0.0
    for p in module.parameters():
        if p.requires_grad:
            z = p.sum() * 0.0 if z is None else z + p.sum() * 0.0
    return z if z is not None else torch.zeros(())
