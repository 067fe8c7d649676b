"""CPU rotated-box IoU for mmdet3d's KITTI evaluation.

mmdet3d 1.4 computes the BEV and 3D overlaps of its KITTI metric with
``rotate_iou_gpu_eval`` from
``mmdet3d/evaluation/functional/kitti_utils/rotate_iou.py``, a ``numba.cuda``
kernel that is compiled eagerly when that module is imported.  Without a CUDA
driver the import itself raises ``CudaSupportError``, so ``KittiMetric`` cannot
run on a CPU-only machine.

:func:`rotate_iou_cpu_eval` is a ``numba.njit`` port of the same kernel.  It
keeps the kernel's operation order and its precision of every step as executed
by numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, NumPy 1.x scalar
promotion): float32 corners rounded from float64 trigonometry, float32 clipping
and sorting keys normalised in float64, float64 area accumulation and a float32
result.  It also keeps the kernel's argument order: entry ``[n, k]`` is
computed with ``query_boxes[k]`` as the first box, so criterion ``0`` divides
by the area of ``query_boxes[k]`` and criterion ``1`` by the area of
``boxes[n]``.

:func:`apply` makes the function-local ``from .rotate_iou import
rotate_iou_gpu_eval`` of ``eval.py`` resolve to the CPU version; :func:`remove`
undoes it.  Kernels compile on their first call (cached on disk by numba).
"""
from __future__ import annotations

import math
import os
import sys
import types

import numba
import numpy as np

from ._contexts import patch_contexts

PATCH_NAME = 'kitti_rotate_iou_cpu'
ROTATE_IOU_MODULE = 'mmdet3d.evaluation.functional.kitti_utils.rotate_iou'
_PARENT_MODULE, _, _CHILD_NAME = ROTATE_IOU_MODULE.rpartition('.')

# Scratch sizes: a clipped pair of quadrilaterals yields at most 8 candidate
# vertices inside the other box plus 16 edge crossings.
_MAX_POINTS = 24
# Matrices with fewer pairs run single-threaded (see rotate_iou_cpu_eval).
PARALLEL_MIN_PAIRS = 4096

_njit = numba.njit(cache=True, nogil=True, error_model='numpy')


@_njit
def _box_corners(box: np.ndarray, corners: np.ndarray) -> None:
    """Write the 4 corners (x0, y0, ..., x3, y3) of a BEV box, clockwise."""
    angle = np.float64(box[4])
    a_cos = math.cos(angle)
    a_sin = math.sin(angle)
    center_x = np.float64(box[0])
    center_y = np.float64(box[1])
    half_x = np.float32(np.float64(box[2]) / 2)
    half_y = np.float32(np.float64(box[3]) / 2)
    corners_x = (-half_x, -half_x, half_x, half_x)
    corners_y = (-half_y, half_y, half_y, -half_y)
    for i in range(4):
        cx = np.float64(corners_x[i])
        cy = np.float64(corners_y[i])
        corners[2 * i] = np.float32(a_cos * cx + a_sin * cy + center_x)
        corners[2 * i + 1] = np.float32(-a_sin * cx + a_cos * cy + center_y)


@_njit
def _point_in_quadrilateral(pt_x, pt_y, corners: np.ndarray) -> bool:
    ab0 = corners[2] - corners[0]
    ab1 = corners[3] - corners[1]
    ad0 = corners[6] - corners[0]
    ad1 = corners[7] - corners[1]
    ap0 = pt_x - corners[0]
    ap1 = pt_y - corners[1]
    abab = ab0 * ab0 + ab1 * ab1
    abap = ab0 * ap0 + ab1 * ap1
    adad = ad0 * ad0 + ad1 * ad1
    adap = ad0 * ap0 + ad1 * ap1
    return abab >= abap and abap >= 0 and adad >= adap and adap >= 0


@_njit
def _segment_intersection(pts1: np.ndarray, pts2: np.ndarray, i: int, j: int,
                          out: np.ndarray, pos: int) -> bool:
    """Crossing of edge ``i`` of ``pts1`` and edge ``j`` of ``pts2``."""
    a0 = pts1[2 * i]
    a1 = pts1[2 * i + 1]
    b0 = pts1[2 * ((i + 1) % 4)]
    b1 = pts1[2 * ((i + 1) % 4) + 1]
    c0 = pts2[2 * j]
    c1 = pts2[2 * j + 1]
    d0 = pts2[2 * ((j + 1) % 4)]
    d1 = pts2[2 * ((j + 1) % 4) + 1]
    ba0 = b0 - a0
    ba1 = b1 - a1
    da0 = d0 - a0
    ca0 = c0 - a0
    da1 = d1 - a1
    ca1 = c1 - a1
    acd = da1 * ca0 > ca1 * da0
    bcd = (d1 - b1) * (c0 - b0) > (c1 - b1) * (d0 - b0)
    if acd != bcd:
        abc = ca1 * ba0 > ba1 * ca0
        abd = da1 * ba0 > ba1 * da0
        if abc != abd:
            dc0 = d0 - c0
            dc1 = d1 - c1
            abba = a0 * b1 - b0 * a1
            cddc = c0 * d1 - d0 * c1
            dh = ba1 * dc0 - ba0 * dc1
            dx = abba * dc0 - ba0 * cddc
            dy = abba * dc1 - ba1 * cddc
            out[2 * pos] = dx / dh
            out[2 * pos + 1] = dy / dh
            return True
    return False


@_njit
def _quadrilateral_intersection(pts1: np.ndarray, pts2: np.ndarray,
                                int_pts: np.ndarray) -> int:
    num = 0
    for i in range(4):
        if _point_in_quadrilateral(pts1[2 * i], pts1[2 * i + 1], pts2):
            int_pts[num * 2] = pts1[2 * i]
            int_pts[num * 2 + 1] = pts1[2 * i + 1]
            num += 1
        if _point_in_quadrilateral(pts2[2 * i], pts2[2 * i + 1], pts1):
            int_pts[num * 2] = pts2[2 * i]
            int_pts[num * 2 + 1] = pts2[2 * i + 1]
            num += 1
    for i in range(4):
        for j in range(4):
            if _segment_intersection(pts1, pts2, i, j, int_pts, num):
                num += 1
    return num


@_njit
def _sort_vertices(int_pts: np.ndarray, num: int, keys: np.ndarray) -> None:
    """Order the candidate vertices by angle around their centroid."""
    if num <= 0:
        return
    center0 = np.float32(0.0)
    center1 = np.float32(0.0)
    for i in range(num):
        center0 += int_pts[2 * i]
        center1 += int_pts[2 * i + 1]
    center0 = np.float32(np.float64(center0) / num)
    center1 = np.float32(np.float64(center1) / num)
    for i in range(num):
        v0 = int_pts[2 * i] - center0
        v1 = int_pts[2 * i + 1] - center1
        d = math.sqrt(np.float64(v0 * v0 + v1 * v1))
        v0 = np.float32(np.float64(v0) / d)
        v1 = np.float32(np.float64(v1) / d)
        if v1 < 0:
            v0 = np.float32(-2.0 - np.float64(v0))
        keys[i] = v0
    for i in range(1, num):
        if keys[i - 1] > keys[i]:
            temp = keys[i]
            tx = int_pts[2 * i]
            ty = int_pts[2 * i + 1]
            j = i
            while j > 0 and keys[j - 1] > temp:
                keys[j] = keys[j - 1]
                int_pts[j * 2] = int_pts[j * 2 - 2]
                int_pts[j * 2 + 1] = int_pts[j * 2 - 1]
                j -= 1
            keys[j] = temp
            int_pts[j * 2] = tx
            int_pts[j * 2 + 1] = ty


@_njit
def _polygon_area(int_pts: np.ndarray, num: int) -> float:
    area_val = 0.0
    for i in range(num - 2):
        a0 = int_pts[0]
        a1 = int_pts[1]
        b0 = int_pts[2 * i + 2]
        b1 = int_pts[2 * i + 3]
        c0 = int_pts[2 * i + 4]
        c1 = int_pts[2 * i + 5]
        twice = (a0 - c0) * (b1 - c1) - (a1 - c1) * (b0 - c0)
        area_val += abs(np.float64(twice) / 2.0)
    return area_val


@_njit
def _pair_overlap(corners1: np.ndarray, area1, corners2: np.ndarray, area2,
                  criterion: int, int_pts: np.ndarray,
                  keys: np.ndarray) -> np.float32:
    num = _quadrilateral_intersection(corners1, corners2, int_pts)
    _sort_vertices(int_pts, num, keys)
    area_inter = _polygon_area(int_pts, num)
    if criterion == -1:
        return np.float32(area_inter /
                          (np.float64(area1 + area2) - area_inter))
    elif criterion == 0:
        return np.float32(area_inter / np.float64(area1))
    elif criterion == 1:
        return np.float32(area_inter / np.float64(area2))
    return np.float32(area_inter)


@_njit
def _all_corners(boxes: np.ndarray) -> np.ndarray:
    corners = np.empty((boxes.shape[0], 8), dtype=np.float32)
    for n in range(boxes.shape[0]):
        _box_corners(boxes[n], corners[n])
    return corners


@_njit
def _fill_row(iou: np.ndarray, n: int, boxes: np.ndarray,
              box_corners: np.ndarray, query_boxes: np.ndarray,
              query_corners: np.ndarray, criterion: int) -> None:
    int_pts = np.empty(2 * _MAX_POINTS, dtype=np.float32)
    keys = np.empty(_MAX_POINTS, dtype=np.float32)
    area_box = boxes[n, 2] * boxes[n, 3]
    for k in range(query_boxes.shape[0]):
        # The kernel evaluates devRotateIoUEval(query_box, box).
        area_query = query_boxes[k, 2] * query_boxes[k, 3]
        iou[n, k] = _pair_overlap(query_corners[k], area_query,
                                  box_corners[n], area_box, criterion,
                                  int_pts, keys)


@_njit
def _rotate_iou_serial(boxes: np.ndarray, query_boxes: np.ndarray,
                       criterion: int) -> np.ndarray:
    box_corners = _all_corners(boxes)
    query_corners = _all_corners(query_boxes)
    iou = np.zeros((boxes.shape[0], query_boxes.shape[0]), dtype=np.float32)
    for n in range(boxes.shape[0]):
        _fill_row(iou, n, boxes, box_corners, query_boxes, query_corners,
                  criterion)
    return iou


@numba.njit(cache=True, parallel=True, error_model='numpy')
def _rotate_iou_parallel(boxes: np.ndarray, query_boxes: np.ndarray,
                         criterion: int) -> np.ndarray:
    box_corners = _all_corners(boxes)
    query_corners = _all_corners(query_boxes)
    iou = np.zeros((boxes.shape[0], query_boxes.shape[0]), dtype=np.float32)
    for n in numba.prange(boxes.shape[0]):
        _fill_row(iou, n, boxes, box_corners, query_boxes, query_corners,
                  criterion)
    return iou


def rotate_iou_cpu_eval(boxes: np.ndarray,
                        query_boxes: np.ndarray,
                        criterion: int = -1,
                        device_id: int = 0,
                        parallel_min_pairs: int = PARALLEL_MIN_PAIRS
                        ) -> np.ndarray:
    """Rotated BEV overlap of every box with every query box, on the CPU.

    Drop-in replacement of mmdet3d's ``rotate_iou_gpu_eval`` (same arguments,
    same float32 result).

    Args:
        boxes: ``(N, 5)`` boxes ``(x, y, dx, dy, angle)``, angle clockwise
            (camera-frame BEV).
        query_boxes: ``(K, 5)`` boxes in the same format.
        criterion: ``-1`` IoU, ``0`` intersection / area of the query box,
            ``1`` intersection / area of the box, anything else the
            intersection area.
        device_id: ignored; kept for signature compatibility.
        parallel_min_pairs: use numba's thread pool from this many pairs on
            (starting it costs more than small matrices take).

    Returns:
        ``(N, K)`` float32 array.
    """
    del device_id
    boxes = np.ascontiguousarray(boxes, dtype=np.float32).reshape(-1, 5)
    query_boxes = np.ascontiguousarray(
        query_boxes, dtype=np.float32).reshape(-1, 5)
    if boxes.shape[0] == 0 or query_boxes.shape[0] == 0:
        return np.zeros((boxes.shape[0], query_boxes.shape[0]),
                        dtype=np.float32)
    if boxes.shape[0] * query_boxes.shape[0] >= parallel_min_pairs:
        return _rotate_iou_parallel(boxes, query_boxes, int(criterion))
    return _rotate_iou_serial(boxes, query_boxes, int(criterion))


# --------------------------------------------------------------------------
# Patch management
# --------------------------------------------------------------------------

_state: dict = {}


def cudasim_requested() -> bool:
    """Whether the user asked numba for its CUDA simulator."""
    if 'numba' in sys.modules:
        try:
            from numba import config
            if getattr(config, 'ENABLE_CUDASIM', 0):
                return True
        except ImportError:
            pass
    raw = os.environ.get('NUMBA_ENABLE_CUDASIM', '0').strip() or '0'
    try:
        return int(raw) != 0
    except ValueError:
        return False


def needs_patch() -> bool:
    """True when CUDA is absent and the CUDA simulator was not requested."""
    import torch
    return not torch.cuda.is_available() and not cudasim_requested()


def is_applied() -> bool:
    """Whether :func:`apply` is in effect."""
    return bool(_state)


def _make_stub_module() -> types.ModuleType:
    stub = types.ModuleType(
        ROTATE_IOU_MODULE,
        'CPU stand-in for mmdet3d kitti_utils.rotate_iou, installed by '
        'pointdistiller_mm.compat.kitti_rotate_iou.')
    stub.rotate_iou_gpu_eval = rotate_iou_cpu_eval
    stub.rotate_iou_cpu_eval = rotate_iou_cpu_eval
    return stub


def apply(force: bool = False) -> bool:
    """Route mmdet3d's ``rotate_iou_gpu_eval`` to :func:`rotate_iou_cpu_eval`.

    Args:
        force: apply even where CUDA or the CUDA simulator is in use.

    Returns:
        True when the patch is in effect after the call.
    """
    if _state:
        return True
    if not force and not needs_patch():
        return False
    module = sys.modules.get(ROTATE_IOU_MODULE)
    if module is not None:
        # The real module is importable here: swap its attribute only.
        _state['module'] = module
        _state['original'] = module.rotate_iou_gpu_eval
        module.rotate_iou_gpu_eval = rotate_iou_cpu_eval
    else:
        # Importing the real module compiles a CUDA kernel and fails without a
        # driver, so a stand-in module answers the function-local import.
        stub = _make_stub_module()
        sys.modules[ROTATE_IOU_MODULE] = stub
        _state['module'] = stub
        _state['original'] = None
        parent = sys.modules.get(_PARENT_MODULE)
        if parent is not None and not hasattr(parent, _CHILD_NAME):
            setattr(parent, _CHILD_NAME, stub)
    return True


def remove() -> None:
    """Undo :func:`apply` (no-op when not applied)."""
    if not _state:
        return
    module = _state['module']
    original = _state['original']
    if original is not None:
        module.rotate_iou_gpu_eval = original
    else:
        if sys.modules.get(ROTATE_IOU_MODULE) is module:
            del sys.modules[ROTATE_IOU_MODULE]
        parent = sys.modules.get(_PARENT_MODULE)
        if parent is not None and getattr(parent, _CHILD_NAME,
                                          None) is module:
            delattr(parent, _CHILD_NAME)
    _state.clear()


patched, unpatched = patch_contexts(apply, remove, is_applied)


def warmup() -> None:
    """Compile (or load from numba's cache) the kernels ahead of first use."""
    box = np.array([[0.0, 0.0, 1.0, 1.0, 0.0]], dtype=np.float32)
    rotate_iou_cpu_eval(box, box, -1, parallel_min_pairs=0)
    rotate_iou_cpu_eval(box, box, -1, parallel_min_pairs=2)
