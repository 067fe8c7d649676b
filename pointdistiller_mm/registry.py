"""Registries owned by pointdistiller_mm.

Models, losses and hooks register into ``mmdet3d.registry`` so stock
mmdet3d tools build them. Recorders have no counterpart in mmdet3d or
mmengine, so they live in a registry of their own.
"""
from mmengine.registry import Registry

#: Feature recorders (forward hooks on module paths). Built by
#: :class:`pointdistiller_mm.recorders.RecorderManager` with
#: ``RECORDERS.get(cfg['type'])`` so no default scope is involved.
RECORDERS = Registry(
    'recorder',
    scope='pointdistiller_mm',
    locations=['pointdistiller_mm.recorders'])

__all__ = ['RECORDERS']
