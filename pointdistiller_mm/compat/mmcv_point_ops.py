"""mmcv's CUDA-only point ops on CPU tensors (PointRCNN and PointNet++).

mmcv 2.1 ships CUDA kernels only for furthest point sampling (with and
without a distance matrix), ball query, grouping, gather, three-NN, three
interpolation, points-in-boxes (part / all) and RoI point pooling. On a
machine without CUDA, PointNet++ backbones and necks (``PointNet2SASSG``,
``PointNet2SAMSG``, ``PointNetFPNeck``), ``PointRPNHead``,
``PointRCNNRoIHead`` and box structures' ``points_in_boxes_*`` fail with
``Torch not compiled with CUDA enabled`` or a missing kernel.

The patch gives mmcv's autograd functions a CPU path: ``forward`` (and
``backward`` where the op has one) of ``FurthestPointSampling``,
``FurthestPointSamplingWithDist``, ``BallQuery``, ``GroupingOperation``,
``GatherPoints``, ``ThreeNN``, ``ThreeInterpolate`` and
``RoIPointPool3dFunction`` are replaced by wrappers that run
:mod:`.point_ops_cpu` for CPU tensors and mmcv's original for CUDA tensors.
Names bound to ``Function.apply`` elsewhere (``furthest_point_sample``,
``ball_query``, ``grouping_operation``... imported by mmdet3d) pick the new
methods up without rebinding. The plain functions ``points_in_boxes_part`` and
``points_in_boxes_all`` are rebound in ``mmcv.ops``,
``mmcv.ops.points_in_boxes`` and every loaded module that imported them by
name (``mmdet3d.structures.bbox_3d.base_box3d``, sparse encoders...);
modules imported later take the wrapper from ``mmcv.ops``.

The stacked (``*_batch_cnt``) forms of ball query and grouping (PV-RCNN)
stay CUDA-only: on CPU they raise ``NotImplementedError`` naming the op.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Dict, List, Tuple

import torch

from ._contexts import patch_contexts
from . import point_ops_cpu as K

PATCH_NAME = 'mmcv_point_ops_cpu'

# (module, class, method) -> original staticmethod; plus function rebinding.
_state: Dict[str, Any] = {}


def needs_patch() -> bool:
    """True when CUDA is unavailable."""
    return not torch.cuda.is_available()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def _on_cuda(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and t.is_cuda


def _stacked_error(op: str) -> NotImplementedError:
    return NotImplementedError(
        f'mmcv {op} with batch counts (stacked inputs, PV-RCNN) has no CPU '
        'implementation in pointdistiller_mm.compat; run it on a CUDA device')


# ---------------------------------------------------------- CPU forwards
def _fps_forward(ctx, points_xyz, num_points):
    assert points_xyz.is_contiguous()
    out = K.furthest_point_sample(points_xyz, num_points)
    ctx.mark_non_differentiable(out)
    return out


def _fps_dist_forward(ctx, points_dist, num_points):
    assert points_dist.is_contiguous()
    out = K.furthest_point_sample_with_dist(points_dist, num_points)
    ctx.mark_non_differentiable(out)
    return out


def _ball_query_forward(ctx, min_radius, max_radius, sample_num, xyz,
                        center_xyz, xyz_batch_cnt=None,
                        center_xyz_batch_cnt=None):
    if xyz_batch_cnt is not None and center_xyz_batch_cnt is not None:
        raise _stacked_error('ball_query')
    assert center_xyz.is_contiguous() and xyz.is_contiguous()
    assert min_radius < max_radius
    idx = K.ball_query(min_radius, max_radius, sample_num, xyz, center_xyz)
    ctx.mark_non_differentiable(idx)
    return idx


def _group_forward(ctx, features, indices, features_batch_cnt=None,
                   indices_batch_cnt=None):
    if features_batch_cnt is not None and indices_batch_cnt is not None:
        raise _stacked_error('grouping_operation')
    features, indices = features.contiguous(), indices.contiguous()
    ctx.for_backwards = (indices, features.shape[2])
    return K.group_points(features, indices)


def _group_backward(ctx, grad_out):
    idx, n = ctx.for_backwards
    return K.group_points_backward(grad_out.contiguous(), idx, n), None


def _gather_forward(ctx, features, indices):
    assert features.is_contiguous() and indices.is_contiguous()
    ctx.for_backwards = (indices, features.shape[1], features.shape[2])
    ctx.mark_non_differentiable(indices)
    return K.gather_points(features, indices)


def _gather_backward(ctx, grad_out):
    idx, _, n = ctx.for_backwards
    return K.gather_points_backward(grad_out.contiguous(), idx, n), None


def _three_nn_forward(ctx, target, source):
    dist2, idx = K.three_nn(target.contiguous(), source.contiguous())
    ctx.mark_non_differentiable(idx)
    return torch.sqrt(dist2), idx


def _three_interpolate_forward(ctx, features, indices, weight):
    assert features.is_contiguous() and indices.is_contiguous()
    assert weight.is_contiguous()
    ctx.three_interpolate_for_backward = (indices, weight, features.shape[2])
    return K.three_interpolate(features, indices, weight)


def _three_interpolate_backward(ctx, grad_out):
    idx, weight, m = ctx.three_interpolate_for_backward
    grad = K.three_interpolate_backward(grad_out.contiguous(), idx, weight, m)
    return grad, None, None


def _roipoint_forward(ctx, points, point_features, boxes3d,
                      num_sampled_points=512):
    assert len(points.shape) == 3 and points.shape[2] == 3
    return K.roipoint_pool3d(points, point_features, boxes3d,
                             num_sampled_points)


# (module, class, {method: (cpu function, index of the tensor to probe in
#  the arguments after ctx, or None for the gradient)})
_FUNCTIONS: Tuple[Tuple[str, str, Dict[str, Tuple[Callable, int]]], ...] = (
    ('mmcv.ops.furthest_point_sample', 'FurthestPointSampling',
     dict(forward=(_fps_forward, 0))),
    ('mmcv.ops.furthest_point_sample', 'FurthestPointSamplingWithDist',
     dict(forward=(_fps_dist_forward, 0))),
    ('mmcv.ops.ball_query', 'BallQuery', dict(forward=(_ball_query_forward,
                                                       3))),
    ('mmcv.ops.group_points', 'GroupingOperation',
     dict(forward=(_group_forward, 0), backward=(_group_backward, 0))),
    ('mmcv.ops.gather_points', 'GatherPoints',
     dict(forward=(_gather_forward, 0), backward=(_gather_backward, 0))),
    ('mmcv.ops.three_nn', 'ThreeNN', dict(forward=(_three_nn_forward, 0))),
    ('mmcv.ops.three_interpolate', 'ThreeInterpolate',
     dict(forward=(_three_interpolate_forward, 0),
          backward=(_three_interpolate_backward, 0))),
    ('mmcv.ops.roipoint_pool3d', 'RoIPointPool3dFunction',
     dict(forward=(_roipoint_forward, 0))),
)

_PIB_MODULE = 'mmcv.ops.points_in_boxes'
_PIB_NAMES = ('points_in_boxes_part', 'points_in_boxes_all')


def _dispatcher(original: Callable, cpu: Callable, probe: int) -> Callable:
    """A static method running ``original`` for CUDA tensors, else ``cpu``."""

    def method(ctx, *args, **kwargs):
        if _on_cuda(args[probe] if probe < len(args) else None):
            return original(ctx, *args, **kwargs)
        return cpu(ctx, *args, **kwargs)

    method.__wrapped__ = original  # type: ignore[attr-defined]
    method.__doc__ = cpu.__doc__ or original.__doc__
    return method


def _function_dispatcher(original: Callable, name: str) -> Callable:
    """A function running ``original`` for CUDA tensors, else the CPU
    function ``name`` of :mod:`.point_ops_cpu` (looked up at each call)."""

    def function(points, boxes):
        if _on_cuda(points):
            return original(points, boxes)
        return getattr(K, name)(points, boxes)

    function.__wrapped__ = original  # type: ignore[attr-defined]
    function.__name__ = original.__name__
    function.__doc__ = original.__doc__
    return function


def _modules_binding(obj: Any) -> List[str]:
    return [
        name for name, module in list(sys.modules.items())
        if module is not None and (name.startswith('mmcv')
                                   or name.startswith('mmdet3d')
                                   or name.startswith('mmdet')
                                   or name.startswith('projects'))
        and any(getattr(module, n, None) is obj for n in _PIB_NAMES)
    ]


def patched_functions() -> List[str]:
    """``module.Class.method`` and ``module.function`` names now patched."""
    if not _state:
        return []
    names = [f'{m}.{c}.{meth}' for (m, c, meth) in _state['methods']]
    for name, (_, wrapper) in _state['functions'].items():
        names += [f'{mod}.{name}' for mod in _modules_binding(wrapper)
                  if getattr(sys.modules[mod], name, None) is wrapper]
    return sorted(names)


def apply(force: bool = False) -> bool:
    """Install the CPU paths (only where CUDA is unavailable, or ``force``).

    Returns:
        True when the patch is in effect after the call.
    """
    if _state:
        return True
    if not force and not needs_patch():
        return False
    try:  # mmcv built without its ops (mmcv-lite) has nothing to patch
        classes = [getattr(importlib.import_module(m), c)
                   for m, c, _ in _FUNCTIONS]
        pib = importlib.import_module(_PIB_MODULE)
        importlib.import_module('mmcv.ops')
    except ImportError:
        return False
    methods: Dict[Tuple[str, str, str], Any] = {}
    for cls, (module_name, cls_name, table) in zip(classes, _FUNCTIONS):
        for meth, (cpu, probe) in table.items():
            raw = cls.__dict__[meth]
            methods[(module_name, cls_name, meth)] = raw
            original = raw.__func__ if isinstance(raw, staticmethod) else raw
            setattr(cls, meth, staticmethod(_dispatcher(original, cpu,
                                                        probe)))
    functions: Dict[str, Tuple[Callable, Callable]] = {}
    for name in _PIB_NAMES:
        original = getattr(pib, name)
        wrapper = _function_dispatcher(original, name)
        for mod in _modules_binding(original):
            if getattr(sys.modules[mod], name, None) is original:
                setattr(sys.modules[mod], name, wrapper)
        functions[name] = (original, wrapper)
    _state.update(methods=methods, functions=functions)
    return True


def remove() -> None:
    """Undo :func:`apply` (no-op when not applied)."""
    if not _state:
        return
    for (module_name, cls_name, meth), raw in _state['methods'].items():
        cls = getattr(sys.modules[module_name], cls_name)
        setattr(cls, meth, raw)
    for name, (original, wrapper) in _state['functions'].items():
        for mod in _modules_binding(wrapper):
            if getattr(sys.modules[mod], name, None) is wrapper:
                setattr(sys.modules[mod], name, original)
    _state.clear()


patched, unpatched = patch_contexts(apply, remove, is_applied)
