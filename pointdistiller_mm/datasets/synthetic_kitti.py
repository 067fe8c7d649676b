"""Synthetic KITTI-format 3D detection data: scene sampling, KITTI writer and
mmdet3d's own KITTI converter.

A frame is a street scene (road, sidewalks, facades, trees, bushes, poles,
street furniture, cars, vans, pedestrians, cyclists) scanned by the simulated
HDL-64E of :mod:`.lidar_sim`, written in the real KITTI layout::

    OUT/ImageSets/{train,val,test}.txt
    OUT/training/{velodyne,label_2,calib,image_2}/%06d.{bin,txt,txt,png}
    OUT/testing/{velodyne,calib,image_2}/%06d.{bin,txt,png}

and then converted with mmdet3d's unmodified ``tools/dataset_converters``
(info files ``kitti_infos_{train,val,trainval,test}.pkl`` in the v2 format,
``training/velodyne_reduced`` and the GT database for ``ObjectSample``).

Labelling rules (KITTI labels only what the left colour camera sees):

* an object is labelled when at least ``min_in_image_fraction`` of its box
  projects inside the image; objects behind or beside the car exist in the
  360 deg scan but get no label;
* an object in view with at least one LiDAR return inside the image is
  labelled with its class; one without any return (too far, between beams, or
  hidden behind other things) is labelled ``DontCare`` with its 2D box, so it
  is neither a training target nor a false positive in evaluation;
* ``occluded`` comes from the share of rays that still reach the object with
  every other object present (``>= occlusion_thresholds[0]``: 0,
  ``>= [1]``: 1, else 2); ``truncated`` is the share of the box volume
  outside the image; the 2D box is the projection of the 8 camera-frame
  corners with P2, clipped to the image.

The same seed gives byte-identical files.
"""
from __future__ import annotations

import contextlib
import importlib
import math
import multiprocessing
import os
import os.path as osp
import shutil
import sys
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .lidar_sim import (Box, Foliage, GroundPlane, LidarConfig, LidarSimulator,
                        Primitive, Scan, VerticalCylinder)

__all__ = [
    'KittiCalibration', 'ObjectClassSpec', 'SceneConfig', 'SceneObject',
    'StreetLayout', 'Scene', 'FrameLabel', 'object_primitives',
    'sample_scene', 'label_scene',
    'simulate_frame', 'write_frame', 'load_mmdet3d_converters',
    'load_mmdet3d_kitti_converters',
    'run_kitti_converter', 'create_demo_kitti', 'DEFAULT_CLASSES'
]

# ---------------------------------------------------------------------------
# calibration
# ---------------------------------------------------------------------------

# A real KITTI calibration (the 2011_09_26 drives, e.g. training/000000).
_KITTI_CALIB = {
    'P0': [
        7.215377e+02, 0.0, 6.095593e+02, 0.0, 0.0, 7.215377e+02, 1.728540e+02,
        0.0, 0.0, 0.0, 1.0, 0.0
    ],
    'P1': [
        7.215377e+02, 0.0, 6.095593e+02, -3.875744e+02, 0.0, 7.215377e+02,
        1.728540e+02, 0.0, 0.0, 0.0, 1.0, 0.0
    ],
    'P2': [
        7.215377e+02, 0.0, 6.095593e+02, 4.485728e+01, 0.0, 7.215377e+02,
        1.728540e+02, 2.163791e-01, 0.0, 0.0, 1.0, 2.745884e-03
    ],
    'P3': [
        7.215377e+02, 0.0, 6.095593e+02, -3.395242e+02, 0.0, 7.215377e+02,
        1.728540e+02, 2.199936e+00, 0.0, 0.0, 1.0, 2.729905e-03
    ],
    'R0_rect': [
        9.999239e-01, 9.837760e-03, -7.445048e-03, -9.869795e-03, 9.999421e-01,
        -4.278459e-03, 7.402527e-03, 4.351614e-03, 9.999631e-01
    ],
    'Tr_velo_to_cam': [
        7.533745e-03, -9.999714e-01, -6.166020e-04, -4.069766e-03,
        1.480249e-02, 7.280733e-04, -9.998902e-01, -7.631618e-02, 9.998621e-01,
        7.523790e-03, 1.480755e-02, -2.717806e-01
    ],
    'Tr_imu_to_velo': [
        9.999976e-01, 7.553071e-04, -2.035826e-03, -8.086759e-01,
        -7.854027e-04, 9.998898e-01, -1.482298e-02, 3.195559e-01, 2.024406e-03,
        1.482454e-02, 9.998881e-01, -7.997231e-01
    ],
}


class KittiCalibration:
    """KITTI camera / LiDAR calibration with the transforms mmdet3d uses.

    ``lidar2cam = R0_rect @ Tr_velo_to_cam`` (4x4), the rectified camera-0
    frame in which KITTI labels live; ``P2`` projects it into image 2.

    Args:
        matrices: Flat values per key as in a KITTI ``calib/*.txt``; the
            default is a real KITTI calibration.
        image_size: ``(width, height)`` of image 2.
    """

    KEYS = ('P0', 'P1', 'P2', 'P3', 'R0_rect', 'Tr_velo_to_cam',
            'Tr_imu_to_velo')

    def __init__(
        self,
        matrices: Optional[Dict[str, Sequence[float]]] = None,
        image_size: Tuple[int, int] = (1242, 375)
    ) -> None:
        m = dict(_KITTI_CALIB if matrices is None else matrices)
        self.values = {k: [float(v) for v in m[k]] for k in self.KEYS}
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.P2 = np.array(self.values['P2']).reshape(3, 4)
        rect = np.eye(4)
        rect[:3, :3] = np.array(self.values['R0_rect']).reshape(3, 3)
        tr = np.eye(4)
        tr[:3] = np.array(self.values['Tr_velo_to_cam']).reshape(3, 4)
        self.lidar2cam = rect @ tr
        self.cam2lidar = np.linalg.inv(self.lidar2cam)

    def to_text(self) -> str:
        """The ``calib/*.txt`` file content."""
        return ''.join(f'{k}: ' + ' '.join(f'{v:.12e}'
                                           for v in self.values[k]) + '\n'
                       for k in self.KEYS)

    def lidar_to_cam(self, pts: np.ndarray) -> np.ndarray:
        """``(N, 3)`` LiDAR points to the rectified camera frame."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        return pts @ self.lidar2cam[:3, :3].T + self.lidar2cam[:3, 3]

    def cam_to_lidar(self, pts: np.ndarray) -> np.ndarray:
        """``(N, 3)`` rectified camera points to the LiDAR frame."""
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 3)
        return pts @ self.cam2lidar[:3, :3].T + self.cam2lidar[:3, 3]

    def project(self, pts_cam: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates ``(N, 2)`` and depth ``(N,)`` with P2."""
        pts_cam = np.asarray(pts_cam, dtype=np.float64).reshape(-1, 3)
        uvw = pts_cam @ self.P2[:, :3].T + self.P2[:, 3]
        depth = uvw[:, 2]
        with np.errstate(divide='ignore', invalid='ignore'):
            uv = uvw[:, :2] / depth[:, None]
        return uv, depth

    def in_image(self, pts_lidar: np.ndarray) -> np.ndarray:
        """Mask of LiDAR points in front of camera 2 and inside its image."""
        uv, depth = self.project(self.lidar_to_cam(pts_lidar))
        w, h = self.image_size
        return (depth > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (
            uv[:, 1] >= 0) & (uv[:, 1] < h)


# ---------------------------------------------------------------------------
# scene configuration
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectClassSpec:
    """How one object class is sized, shaped and placed.

    Attributes:
        name: KITTI class name written to the label files.
        count: Inclusive range of instances per scene (all around the car;
            only those in the camera view get labels).
        size_mean / size_std: Length, width, height (m) statistics; sizes are
            drawn from a normal clipped to ``size_min`` / ``size_max``.
        shape: ``'car'``, ``'van'``, ``'pedestrian'`` or ``'cyclist'``
            (which composite of boxes represents it).
        placement: Shares of ``(lane, road_edge, sidewalk)`` placement.
        reflectivity: Range of body reflectivity.
    """
    name: str
    count: Tuple[int, int]
    size_mean: Tuple[float, float, float]
    size_std: Tuple[float, float, float]
    size_min: Tuple[float, float, float]
    size_max: Tuple[float, float, float]
    shape: str
    placement: Tuple[float, float, float]
    reflectivity: Tuple[float, float] = (0.05, 0.7)


DEFAULT_CLASSES: Tuple[ObjectClassSpec, ...] = (
    # KITTI training-set size statistics (l, w, h).
    ObjectClassSpec('Car', (6, 16), (3.88, 1.63, 1.53), (0.43, 0.10, 0.14),
                    (3.0, 1.4, 1.25), (5.0, 1.95, 1.9), 'car',
                    (0.35, 0.65, 0.0)),
    ObjectClassSpec('Van', (0, 2), (5.08, 1.90, 2.21), (0.45, 0.12, 0.25),
                    (4.2, 1.7, 1.8), (6.0, 2.2, 2.7), 'van', (0.4, 0.6, 0.0)),
    ObjectClassSpec('Pedestrian', (1, 6), (0.84, 0.66, 1.76),
                    (0.23, 0.14, 0.11), (0.4, 0.4, 1.4), (1.3, 1.0, 2.0),
                    'pedestrian', (0.1, 0.1, 0.8), (0.1, 0.5)),
    ObjectClassSpec('Cyclist', (0, 3), (1.76, 0.60, 1.74), (0.18, 0.12, 0.09),
                    (1.4, 0.4, 1.5), (2.1, 0.85, 1.95), 'cyclist',
                    (0.5, 0.5, 0.0), (0.1, 0.5)),
)


@dataclass
class SceneConfig:
    """Parameters of the street scenes. Lengths in metres, angles in degrees,
    ``*_per_100m`` are Poisson rates per 100 m of street per side."""
    sensor_height: float = 1.73
    max_grade: float = 0.01
    road_half_width: Tuple[float, float] = (3.0, 7.0)
    road_heading_deg: float = 6.0
    ego_lane_margin: float = 1.5
    street_extent: Tuple[float, float] = (-60.0, 110.0)
    object_extent: Tuple[float, float] = (-20.0, 50.0)
    ego_clearance: float = 4.0
    object_gap: float = 0.3
    random_yaw_prob: float = 0.1
    heading_noise_deg: float = 4.0
    # ground and street layout
    road_reflectivity: Tuple[float, float] = (0.12, 0.3)
    sidewalk_prob: float = 0.85
    sidewalk_width: Tuple[float, float] = (1.5, 4.0)
    curb_height: Tuple[float, float] = (0.08, 0.2)
    sidewalk_segment: float = 10.0
    sidewalk_reflectivity: Tuple[float, float] = (0.2, 0.4)
    facade_prob: float = 0.5
    facade_setback: Tuple[float, float] = (0.0, 4.0)
    facade_height: Tuple[float, float] = (3.0, 15.0)
    facade_length: Tuple[float, float] = (6.0, 35.0)
    facade_gap: Tuple[float, float] = (0.0, 25.0)
    facade_reflectivity: Tuple[float, float] = (0.15, 0.6)
    # street furniture and vegetation
    trees_per_100m: float = 4.0
    trunk_radius: Tuple[float, float] = (0.1, 0.25)
    trunk_height: Tuple[float, float] = (1.8, 3.2)
    crown_radius: Tuple[float, float] = (1.2, 3.0)
    crown_mean_free_path: float = 0.5
    bushes_per_100m: float = 8.0
    bush_radius: Tuple[float, float] = (0.4, 1.6)
    bush_height: Tuple[float, float] = (0.4, 1.4)
    bush_mean_free_path: float = 0.25
    far_vegetation_per_100m: float = 15.0
    far_vegetation_offset: Tuple[float, float] = (2.0, 30.0)
    far_vegetation_radius: Tuple[float, float] = (1.0, 4.0)
    far_vegetation_height: Tuple[float, float] = (1.0, 6.0)
    far_vegetation_mean_free_path: float = 0.6
    poles_per_100m: float = 5.0
    pole_radius: Tuple[float, float] = (0.04, 0.15)
    pole_height: Tuple[float, float] = (2.5, 8.0)
    furniture_per_100m: float = 4.0
    furniture_size: Tuple[float, float] = (0.3, 1.5)
    vegetation_reflectivity: Tuple[float, float] = (0.15, 0.4)
    # objects
    classes: Tuple[ObjectClassSpec, ...] = DEFAULT_CLASSES
    glass_dropout: float = 0.4
    # labelling
    min_in_image_fraction: float = 0.05
    occlusion_thresholds: Tuple[float, float] = (0.8, 0.4)
    truncation_samples: int = 6
    label_decimals: int = 2


@dataclass
class SceneObject:
    """An object in the scene, in the LiDAR frame.

    ``box`` is ``(x, y, z_bottom, l, w, h, yaw)`` as mmdet3d's
    ``LiDARInstance3DBoxes`` (bottom centre, yaw about +z from +x), already
    consistent with the rounded KITTI label.
    """
    name: str
    box: np.ndarray
    owner: int
    parts: List[Primitive] = field(default_factory=list)


@dataclass
class StreetLayout:
    """The street a scene was drawn on, in road coordinates: ``s`` along the
    road (heading ``heading`` rad in the LiDAR frame), ``q`` across it
    (``q = 0`` on the road centre line, ``|q| <= half_width`` on the road).

    ``sides[side]`` (side -1: right, +1: left of the heading) is
    ``(sidewalk_width, curb_height, has_facade, facade_setback)``; sidewalk
    boxes are ``segment`` m long and tile ``street_extent``; ``occupied``
    holds the footprints already taken on the ground.
    """
    half_width: float
    heading: float
    ego_offset: float
    sides: Dict[int, Tuple[float, float, bool, float]]
    street_extent: Tuple[float, float]
    segment: float
    occupied: _Footprints

    def to_xy(self, s: np.ndarray, q: np.ndarray) -> Tuple[np.ndarray,
                                                           np.ndarray]:
        """Road coordinates to LiDAR ``(x, y)``."""
        c, sn = math.cos(self.heading), math.sin(self.heading)
        qq = np.asarray(q) - self.ego_offset
        s = np.asarray(s)
        return s * c - qq * sn, s * sn + qq * c

    def to_sq(self, x: np.ndarray, y: np.ndarray) -> Tuple[np.ndarray,
                                                           np.ndarray]:
        """LiDAR ``(x, y)`` to road coordinates ``(s, q)``."""
        c, sn = math.cos(self.heading), math.sin(self.heading)
        x, y = np.asarray(x), np.asarray(y)
        return x * c + y * sn, -x * sn + y * c + self.ego_offset


@dataclass
class Scene:
    """Everything a frame is made of.

    ``background_tags`` names what each ``background`` primitive is
    (``'sidewalk'``, ``'facade'``, ``'trunk'``, ``'crown'``, ``'bush'``,
    ``'far_vegetation'``, ``'pole'``, ``'furniture'``); ``layout`` is the
    street it stands on. Both are ``None`` / empty for hand-built scenes.
    """
    ground: GroundPlane
    objects: List[SceneObject]
    background: List[Primitive]
    layout: Optional[StreetLayout] = None
    background_tags: List[str] = field(default_factory=list)

    def primitives(self) -> List[Primitive]:
        """All primitives for the simulator."""
        prims: List[Primitive] = [self.ground]
        prims += self.background
        for obj in self.objects:
            prims += obj.parts
        return prims


@dataclass
class FrameLabel:
    """One KITTI label line (``num_points``: LiDAR returns of the object
    inside the image; ``owner``: the scene object it describes)."""
    name: str
    truncated: float
    occluded: int
    alpha: float
    bbox: Tuple[float, float, float, float]
    dims_hwl: Tuple[float, float, float]
    location: Tuple[float, float, float]
    rotation_y: float
    num_points: int = 0
    owner: int = -1

    def to_line(self, decimals: int = 2) -> str:
        """The label-file line."""
        if self.name == 'DontCare':
            b = ' '.join(f'{v:.{decimals}f}' for v in self.bbox)
            return f'DontCare -1 -1 -10 {b} -1 -1 -1 -1000 -1000 -1000 -10'
        f = f'{{:.{decimals}f}}'
        vals = [
            self.name, f'{self.truncated:.2f}',
            str(self.occluded),
            f.format(self.alpha)
        ]
        vals += [f.format(v) for v in self.bbox]
        vals += [f.format(v) for v in self.dims_hwl]
        vals += [f.format(v) for v in self.location]
        vals.append(f.format(self.rotation_y))
        return ' '.join(vals)


# ---------------------------------------------------------------------------
# scene sampling
# ---------------------------------------------------------------------------


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _u(rng: np.random.Generator, r: Tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


class _Footprints:
    """Circles already occupied on the ground plane."""

    def __init__(self, gap: float) -> None:
        self.gap = gap
        self.xy: List[Tuple[float, float, float]] = []

    def free(self, x: float, y: float, r: float) -> bool:
        return all(
            math.hypot(x - a, y - b) >= r + c + self.gap
            for a, b, c in self.xy)

    def add(self, x: float, y: float, r: float) -> None:
        self.xy.append((x, y, r))


def object_primitives(shape: str, box: np.ndarray, refl: float, owner: int,
                      glass_dropout: float) -> List[Primitive]:
    """Boxes that make up an object standing inside its label box.

    Args:
        shape: ``'car'``, ``'van'``, ``'pedestrian'`` or ``'cyclist'``.
        box: LiDAR box ``(x, y, z_bottom, l, w, h, yaw)``.
        refl: Body reflectivity.
        owner: Owner id given to every part.
        glass_dropout: Extra dropout of car windows.
    """
    x, y, zb, l, w, h, yaw = [float(v) for v in box]
    c, s = math.cos(yaw), math.sin(yaw)

    def part(dx: float,
             dy: float,
             z0: float,
             z1: float,
             pl: float,
             pw: float,
             r: float = refl,
             drop: float = 0.0) -> Box:
        return Box(
            (x + c * dx - s * dy, y + s * dx + c * dy, zb + 0.5 * (z0 + z1)),
            (pl, pw, z1 - z0), yaw, r, drop, owner)

    parts: List[Primitive] = []
    if shape in ('car', 'van'):
        clear = min(0.3, 0.2 * h)
        wheel_r = min(0.34, clear + 0.1)
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(
                    part(sx * 0.32 * l, sy * (0.5 * w - 0.14), 0.0,
                         clear + 0.02, 2 * wheel_r, 0.2, 0.05))
        if shape == 'car':
            belt = 0.6 * h
            parts.append(part(0.0, 0.0, clear, belt, 0.97 * l, 0.96 * w))
            parts.append(
                part(-0.06 * l, 0.0, belt, 0.97 * h, 0.52 * l, 0.86 * w, 0.1,
                     glass_dropout))
        else:
            parts.append(part(0.0, 0.0, clear, 0.97 * h, 0.97 * l, 0.96 * w))
    elif shape == 'pedestrian':
        parts.append(part(0.0, 0.0, 0.0, 0.47 * h, 0.45 * l, 0.55 * w))
        parts.append(part(0.0, 0.0, 0.47 * h, 0.83 * h, 0.6 * l, 0.9 * w))
        parts.append(
            part(0.0, 0.0, 0.84 * h, 0.98 * h, min(0.24, 0.6 * l),
                 min(0.2, 0.5 * w)))
    elif shape == 'cyclist':
        parts.append(part(0.0, 0.0, 0.0, 0.55 * h, 0.96 * l, 0.12, 0.3, 0.3))
        parts.append(part(0.0, 0.0, 0.3 * h, 0.55 * h, 0.3 * l, 0.6 * w))
        parts.append(part(-0.05 * l, 0.0, 0.52 * h, 0.83 * h, 0.3 * l,
                          0.9 * w))
        parts.append(
            part(0.05 * l, 0.0, 0.84 * h, 0.98 * h, 0.14 * l, 0.35 * w))
    else:
        raise ValueError(f'unknown object shape {shape!r}')
    return parts


def _box_to_label_frame(box: np.ndarray, calib: KittiCalibration,
                        decimals: int) -> Tuple[np.ndarray, np.ndarray]:
    """Round a LiDAR box through the KITTI label (camera) representation.

    Returns the rounded camera box ``(x, y, z, l, h, w, ry)`` and the LiDAR
    box mmdet3d will recover from it, so geometry and label agree exactly.
    """
    x, y, zb, l, w, h, yaw = box
    loc = calib.lidar_to_cam(np.array([[x, y, zb]]))[0]
    ry = _wrap(-yaw - math.pi / 2)
    cam = np.round(np.array([*loc, l, h, w, ry]), decimals)
    back = calib.cam_to_lidar(cam[None, :3])[0]
    lidar = np.array(
        [*back, cam[3], cam[5], cam[4],
         _wrap(-cam[6] - math.pi / 2)])
    return cam, lidar


def sample_scene(cfg: SceneConfig,
                 rng: np.random.Generator,
                 calib: Optional[KittiCalibration] = None) -> Scene:
    """Draw one street scene around the sensor (LiDAR frame)."""
    calib = calib or KittiCalibration()
    ground = GroundPlane(z0=-cfg.sensor_height,
                         grade_x=_u(rng, (-cfg.max_grade, cfg.max_grade)),
                         grade_y=_u(rng, (-cfg.max_grade, cfg.max_grade)),
                         reflectivity=_u(rng, cfg.road_reflectivity))

    hw = _u(rng, cfg.road_half_width)
    psi = math.radians(_u(rng, (-cfg.road_heading_deg, cfg.road_heading_deg)))
    q_ego = _u(rng, (-hw + cfg.ego_lane_margin, hw - cfg.ego_lane_margin))
    cu, su = math.cos(psi), math.sin(psi)

    def to_xy(s: float, q: float) -> Tuple[float, float]:
        qq = q - q_ego
        return s * cu - qq * su, s * su + qq * cu

    def gz(x: float, y: float) -> float:
        return float(ground.height(x, y))

    s_lo, s_hi = cfg.street_extent
    street_len = s_hi - s_lo
    n_seg = int(math.ceil(street_len / cfg.sidewalk_segment))
    seg = street_len / n_seg

    def segment_centre(side: int, s: float, sw: float) -> Tuple[float, float]:
        k = min(max(int((s - s_lo) // seg), 0), n_seg - 1)
        return to_xy(s_lo + (k + 0.5) * seg, side * (hw + 0.5 * sw))

    def base_height(side: int, s: float, q: float) -> float:
        """Ground or sidewalk top under road coordinates ``(s, q)``."""
        sw, curb, _, _ = sides[side]
        if sw > 0 and hw <= abs(q) <= hw + sw:
            return gz(*segment_centre(side, s, sw)) + curb
        return gz(*to_xy(s, q))

    sides = {}
    for side in (-1, 1):
        sw = _u(rng, cfg.sidewalk_width) if rng.random() < \
            cfg.sidewalk_prob else 0.0
        curb = _u(rng, cfg.curb_height) if sw > 0 else 0.0
        facade = rng.random() < cfg.facade_prob
        setback = _u(rng, cfg.facade_setback)
        sides[side] = (sw, curb, facade, setback)

    occupied = _Footprints(cfg.object_gap)
    occupied.add(0.0, 0.0, cfg.ego_clearance)
    background: List[Primitive] = []
    tags: List[str] = []

    def add(prim: Primitive, tag: str) -> None:
        background.append(prim)
        tags.append(tag)

    # labelled objects first, so clutter never pushes them out
    objects: List[SceneObject] = []
    owner = 0
    for spec in cfg.classes:
        n = int(rng.integers(spec.count[0], spec.count[1] + 1))
        for _ in range(n):
            for _attempt in range(30):
                l, w, h = [
                    float(np.clip(rng.normal(m, sd), lo, hi))
                    for m, sd, lo, hi in zip(spec.size_mean, spec.size_std,
                                             spec.size_min, spec.size_max)
                ]
                where = rng.choice(3,
                                   p=np.asarray(spec.placement) /
                                   sum(spec.placement))
                side = -1 if rng.random() < 0.5 else 1
                s = _u(rng, cfg.object_extent)
                sw = sides[side][0]
                if where == 0:  # a lane
                    q = _u(rng, (-hw + 0.5 * w + 0.3, hw - 0.5 * w - 0.3))
                elif where == 1:  # at the road edge (parked, bike lane)
                    q = side * (hw - 0.5 * w - _u(rng, (0.1, 0.6)))
                else:  # sidewalk
                    if sw < w + 0.2:
                        continue
                    q = side * (hw + _u(rng,
                                        (0.5 * w + 0.1, sw - 0.5 * w - 0.1)))
                heading = psi + (math.pi if rng.random() < 0.5 else 0.0)
                if where == 2 or rng.random() < cfg.random_yaw_prob:
                    yaw = _u(rng, (-math.pi, math.pi))
                else:
                    yaw = heading + math.radians(
                        rng.normal(0.0, cfg.heading_noise_deg))
                x, y = to_xy(s, q)
                r = 0.5 * math.hypot(l, w)
                if not occupied.free(x, y, r):
                    continue
                box = np.array(
                    [x, y, base_height(side, s, q), l, w, h,
                     _wrap(yaw)])
                _, box = _box_to_label_frame(box, calib, cfg.label_decimals)
                refl = _u(rng, spec.reflectivity)
                parts = object_primitives(spec.shape, box, refl, owner,
                                          cfg.glass_dropout)
                objects.append(SceneObject(spec.name, box, owner, parts))
                occupied.add(x, y, r)
                owner += 1
                break

    for side in (-1, 1):
        sw, curb, facade, setback = sides[side]
        if sw > 0:
            refl = _u(rng, cfg.sidewalk_reflectivity)
            for k in range(n_seg):
                x, y = segment_centre(side, s_lo + (k + 0.5) * seg, sw)
                top = gz(x, y) + curb
                add(
                    Box((x, y, top - 0.5), (seg, sw, 1.0), psi, refl),
                    'sidewalk')
        if facade:
            s = s_lo + _u(rng, cfg.facade_gap)
            q0 = hw + sw + setback
            while s < s_hi:
                length = min(_u(rng, cfg.facade_length), s_hi - s)
                height = _u(rng, cfg.facade_height)
                x, y = to_xy(s + 0.5 * length, side * (q0 + 0.5))
                base = gz(x, y) - 0.5 - cfg.max_grade * length
                add(
                    Box((x, y, base + 0.5 * height), (length, 1.0, height),
                        psi, _u(rng, cfg.facade_reflectivity)), 'facade')
                s += length + _u(rng, cfg.facade_gap)

    def scatter(rate: float) -> Iterator[Tuple[int, float]]:
        for side in (-1, 1):
            for _ in range(int(rng.poisson(rate * street_len / 100.0))):
                yield side, _u(rng, cfg.street_extent)

    for side, s in scatter(cfg.trees_per_100m):
        sw, curb, _, setback = sides[side]
        q = side * (hw + _u(rng, (0.6, max(0.7, sw + setback - 0.5))))
        x, y = to_xy(s, q)
        crown = _u(rng, cfg.crown_radius)
        trunk_r = _u(rng, cfg.trunk_radius)
        if not occupied.free(x, y, trunk_r + 0.3):
            continue
        occupied.add(x, y, trunk_r + 0.3)
        z0 = gz(x, y)
        trunk_h = _u(rng, cfg.trunk_height)
        add(
            VerticalCylinder((x, y), trunk_r, z0 - 0.2, z0 + trunk_h + crown,
                             _u(rng, cfg.vegetation_reflectivity)), 'trunk')
        add(
            Foliage((x, y, z0 + trunk_h + crown), (crown, crown, crown),
                    cfg.crown_mean_free_path,
                    _u(rng, cfg.vegetation_reflectivity)), 'crown')

    for side, s in scatter(cfg.bushes_per_100m):
        sw, curb, _, setback = sides[side]
        rad = _u(rng, cfg.bush_radius)
        q = side * (hw + sw + _u(rng, (rad, max(rad + 0.1, setback + 2.0))))
        x, y = to_xy(s, q)
        if not occupied.free(x, y, rad):
            continue
        occupied.add(x, y, rad)
        height = _u(rng, cfg.bush_height)
        add(
            Foliage((x, y, gz(x, y) + 0.5 * height),
                    (rad, rad * _u(rng, (0.6, 1.5)), 0.6 * height),
                    cfg.bush_mean_free_path,
                    _u(rng, cfg.vegetation_reflectivity)), 'bush')

    for side, s in scatter(cfg.far_vegetation_per_100m):
        sw, curb, _, setback = sides[side]
        rad = _u(rng, cfg.far_vegetation_radius)
        q = side * (hw + sw + setback + 1.0 + rad +
                    _u(rng, cfg.far_vegetation_offset))
        x, y = to_xy(s, q)
        if not occupied.free(x, y, rad):
            continue
        occupied.add(x, y, rad)
        height = _u(rng, cfg.far_vegetation_height)
        add(
            Foliage((x, y, gz(x, y) + 0.5 * height),
                    (rad, rad * _u(rng, (0.6, 1.5)), 0.5 * height),
                    cfg.far_vegetation_mean_free_path,
                    _u(rng, cfg.vegetation_reflectivity)), 'far_vegetation')

    for side, s in scatter(cfg.poles_per_100m):
        sw, curb, _, _ = sides[side]
        q = side * (hw + _u(rng, (0.3, max(0.4, sw - 0.2))))
        x, y = to_xy(s, q)
        rad = _u(rng, cfg.pole_radius)
        if not occupied.free(x, y, rad + 0.2):
            continue
        occupied.add(x, y, rad + 0.2)
        z0 = gz(x, y)
        add(
            VerticalCylinder((x, y), rad, z0 - 0.2,
                             z0 + _u(rng, cfg.pole_height),
                             float(rng.uniform(0.3, 0.8))), 'pole')

    for side, s in scatter(cfg.furniture_per_100m):
        sw, _, _, setback = sides[side]
        size = [_u(rng, cfg.furniture_size) for _ in range(3)]
        q = side * (hw + _u(rng, (0.3, max(0.4, sw + setback - 0.3))))
        x, y = to_xy(s, q)
        r = 0.5 * math.hypot(size[0], size[1])
        if not occupied.free(x, y, r):
            continue
        occupied.add(x, y, r)
        add(
            Box((x, y, base_height(side, s, q) + 0.5 * size[2]), tuple(size),
                _u(rng, (-math.pi, math.pi)), float(rng.uniform(0.1, 0.7))),
            'furniture')

    layout = StreetLayout(half_width=hw,
                          heading=psi,
                          ego_offset=q_ego,
                          sides=sides,
                          street_extent=(s_lo, s_hi),
                          segment=seg,
                          occupied=occupied)
    return Scene(ground=ground,
                 objects=objects,
                 background=background,
                 layout=layout,
                 background_tags=tags)


# ---------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------


def camera_box_corners(cam_box: np.ndarray) -> np.ndarray:
    """8 corners ``(8, 3)`` of a KITTI camera box ``(x, y, z, l, h, w, ry)``
    whose location is the bottom centre (mmdet3d's origin (0.5, 1, 0.5))."""
    x, y, z, l, h, w, ry = cam_box
    xs = np.array([1, 1, 1, 1, -1, -1, -1, -1]) * 0.5 * l
    ys = np.array([0, 0, -1, -1, 0, 0, -1, -1]) * h
    zs = np.array([1, -1, 1, -1, 1, -1, 1, -1]) * 0.5 * w
    c, s = math.cos(ry), math.sin(ry)
    return np.stack([x + xs * c + zs * s, y + ys, z - xs * s + zs * c], -1)


def project_box_2d(cam_box: np.ndarray,
                   calib: KittiCalibration,
                   samples: int = 6) -> Tuple[Optional[np.ndarray], float]:
    """2D box (clipped to the image) and truncation of a camera box.

    The 2D box is the extent of the projected corners when all of them are
    in front of the camera, else of the projected volume samples that are.
    Truncation is the share of ``samples ** 3`` volume samples that fall
    outside the image (behind the camera counts as outside). Returns
    ``(None, 1.0)`` when nothing projects into the image.
    """
    w_img, h_img = calib.image_size
    g = (np.arange(samples) + 0.5) / samples - 0.5
    gx, gy, gz_ = np.meshgrid(g, g - 0.5, g, indexing='ij')
    x, y, z, l, h, w, ry = cam_box
    lx, ly, lz = gx.ravel() * l, gy.ravel() * h, gz_.ravel() * w
    c, s = math.cos(ry), math.sin(ry)
    vol = np.stack([x + lx * c + lz * s, y + ly, z - lx * s + lz * c], -1)
    uv, depth = calib.project(vol)
    inside = (depth > 0.1) & (uv[:, 0] >= 0) & (uv[:, 0] < w_img) & (
        uv[:, 1] >= 0) & (uv[:, 1] < h_img)
    truncated = 1.0 - inside.mean()
    if not inside.any():
        return None, 1.0
    cuv, cdepth = calib.project(camera_box_corners(cam_box))
    if (cdepth > 0.1).all():
        pts = cuv
    else:
        pts = uv[depth > 0.1]
    x1, y1 = np.clip(pts.min(0), [0, 0], [w_img - 1, h_img - 1])
    x2, y2 = np.clip(pts.max(0), [0, 0], [w_img - 1, h_img - 1])
    return np.array([x1, y1, x2, y2]), float(truncated)


def label_scene(scene: Scene, scan: Scan, calib: KittiCalibration,
                cfg: SceneConfig) -> List[FrameLabel]:
    """KITTI labels of the objects the camera sees (see module docstring);
    ``DontCare`` lines come last, as mmdet3d's converter expects."""
    labels: List[FrameLabel] = []
    dontcare: List[FrameLabel] = []
    in_img = calib.in_image(scan.points[:, :3]) if len(scan.points) else \
        np.zeros(0, dtype=bool)
    for obj in scene.objects:
        cam, _ = _box_to_label_frame(obj.box, calib, cfg.label_decimals)
        bbox, trunc = project_box_2d(cam, calib, cfg.truncation_samples)
        if bbox is None or 1.0 - trunc < cfg.min_in_image_fraction:
            continue
        n_pts = int(((scan.owner == obj.owner) & in_img).sum())
        if n_pts == 0:
            dontcare.append(
                FrameLabel('DontCare', -1, -1, -10, tuple(bbox), (-1, -1, -1),
                           (-1000, -1000, -1000), -10, 0, obj.owner))
            continue
        total = scan.rays_unoccluded.get(obj.owner, 0)
        vis = scan.rays_visible.get(obj.owner, 0) / max(total, 1)
        t0, t1 = cfg.occlusion_thresholds
        occluded = 0 if vis >= t0 else (1 if vis >= t1 else 2)
        x, y, z, l, h, w, ry = cam
        alpha = _wrap(ry - math.atan2(x, z))
        labels.append(
            FrameLabel(obj.name, round(trunc, 2), occluded, alpha, tuple(bbox),
                       (h, w, l), (x, y, z), ry, n_pts, obj.owner))
    return labels + dontcare


# ---------------------------------------------------------------------------
# frames
# ---------------------------------------------------------------------------


def _blank(scan: Scan) -> Scan:
    """The same scan with every return lost."""
    return Scan(points=np.zeros((0, 4), np.float32),
                owner=np.zeros(0, np.int32),
                rays_unoccluded=dict(scan.rays_unoccluded),
                rays_visible={k: 0
                              for k in scan.rays_visible},
                num_rays=scan.num_rays)


def simulate_frame(
    rng: np.random.Generator,
    scene_cfg: Optional[SceneConfig] = None,
    lidar_cfg: Optional[LidarConfig] = None,
    calib: Optional[KittiCalibration] = None,
    empty: bool = False,
    simulator: Optional[LidarSimulator] = None
) -> Tuple[Scene, Scan, List[FrameLabel]]:
    """Sample a scene, scan it and label it.

    ``empty=True`` returns a scan with zero points (a sensor that saw
    nothing); its labels then follow the usual rule (all ``DontCare``).
    ``simulator`` (built from ``lidar_cfg`` if not given) may be shared
    between frames.
    """
    scene_cfg = scene_cfg or SceneConfig()
    calib = calib or KittiCalibration()
    simulator = simulator or LidarSimulator(lidar_cfg)
    scene = sample_scene(scene_cfg, rng, calib)
    scan = simulator.scan(scene.primitives(), rng)
    if empty:
        scan = _blank(scan)
    labels = label_scene(scene, scan, calib, scene_cfg)
    return scene, scan, labels


def render_points_image(points: np.ndarray,
                        calib: KittiCalibration) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 image of the points projected with P2, coloured
    by depth (near red, far blue)."""
    w, h = calib.image_size
    img = np.zeros((h, w, 3), np.uint8)
    if len(points) == 0:
        return img
    uv, depth = calib.project(calib.lidar_to_cam(points[:, :3]))
    ok = (depth > 0.1) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (
        uv[:, 1] < h)
    uv, depth = uv[ok].astype(np.int64), depth[ok]
    order = np.argsort(-depth, kind='stable')  # near points drawn last
    uv, depth = uv[order], depth[order]
    t = np.clip(depth / 60.0, 0.0, 1.0)
    col = np.stack([255 * (1 - t), 255 * (1 - np.abs(2 * t - 1)), 255 * t],
                   -1).astype(np.uint8)
    img[uv[:, 1], uv[:, 0]] = col
    return img


def write_frame(root: str,
                idx: int,
                points: np.ndarray,
                calib: KittiCalibration,
                labels: Optional[Sequence[FrameLabel]],
                training: bool = True,
                image_mode: str = 'points',
                decimals: int = 2) -> None:
    """Write one frame in the KITTI layout (``labels=None``: no label file,
    as in ``testing/``). ``image_mode`` is ``'points'`` (projection render)
    or ``'blank'``."""
    from PIL import Image
    split = 'training' if training else 'testing'
    name = f'{idx:06d}'
    base = Path(root) / split
    subdirs = ['velodyne', 'calib', 'image_2']
    if labels is not None:
        subdirs.append('label_2')
    for sub in subdirs:
        (base / sub).mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(points, dtype=np.float32).tofile(
        str(base / 'velodyne' / f'{name}.bin'))
    (base / 'calib' / f'{name}.txt').write_text(calib.to_text())
    if labels is not None:
        (base / 'label_2' / f'{name}.txt').write_text(''.join(
            lab.to_line(decimals) + '\n' for lab in labels))
    if image_mode == 'points':
        img = render_points_image(points, calib)
    elif image_mode == 'blank':
        img = np.zeros((calib.image_size[1], calib.image_size[0], 3), np.uint8)
    else:
        raise ValueError(
            f"image_mode must be 'points' or 'blank', got {image_mode!r}")
    Image.fromarray(img).save(str(base / 'image_2' / f'{name}.png'))


# ---------------------------------------------------------------------------
# mmdet3d's converter
# ---------------------------------------------------------------------------

# mmdet3d converter modules by name (load_mmdet3d_converters)
_CONVERTERS: Dict[str, types.ModuleType] = {}


def _mmdet3d_tools_dir() -> Path:
    import mmdet3d
    path = Path(mmdet3d.__file__).parent / '.mim' / 'tools'
    if not (path / 'dataset_converters' / 'kitti_converter.py').exists():
        raise FileNotFoundError(
            f'mmdet3d converter tools not found under {path}; install '
            'mmdet3d from a wheel that ships its .mim/tools folder')
    return path


@contextlib.contextmanager
def _mmdet3d_tools_package() -> Iterator[None]:
    """Make ``tools`` resolve to mmdet3d's ``.mim/tools`` for a while.

    mmdet3d's converters import each other as ``tools.dataset_converters``;
    any other ``tools`` package (such as this repository's) is set aside and
    restored afterwards.
    """
    saved = {
        k: v
        for k, v in sys.modules.items()
        if k == 'tools' or k.startswith('tools.')
    }
    for k in saved:
        del sys.modules[k]
    pkg = types.ModuleType('tools')
    pkg.__path__ = [str(_mmdet3d_tools_dir())]
    sys.modules['tools'] = pkg
    try:
        yield
    finally:
        for k in [
                k for k in sys.modules
                if k == 'tools' or k.startswith('tools.')
        ]:
            del sys.modules[k]
        sys.modules.update(saved)


def load_mmdet3d_converters(*names: str,
                            reload: bool = False) -> types.SimpleNamespace:
    """mmdet3d's own ``tools/dataset_converters`` modules, unmodified.

    Returns a namespace with the named modules (e.g. ``kitti_converter``,
    ``update_infos_to_v2``); each is loaded once from the mmdet3d wheel and
    cached (``reload`` loads them again). Whatever ``tools`` package was
    imported before stays in place.
    """
    missing = [n for n in names if reload or n not in _CONVERTERS]
    if missing:
        import mmdet3d.datasets  # noqa: F401  registers the datasets
        with _mmdet3d_tools_package():
            for n in missing:
                _CONVERTERS[n] = importlib.import_module(
                    f'tools.dataset_converters.{n}')
    return types.SimpleNamespace(**{n: _CONVERTERS[n] for n in names})


def load_mmdet3d_kitti_converters(
        reload: bool = False) -> types.SimpleNamespace:
    """mmdet3d's KITTI converter modules: ``kitti_converter``,
    ``update_infos_to_v2`` and ``create_gt_database``
    (:func:`load_mmdet3d_converters`)."""
    return load_mmdet3d_converters('kitti_converter', 'update_infos_to_v2',
                                   'create_gt_database', reload=reload)


def _check_splits_not_empty(sizes: Dict[str, int]) -> None:
    empty = [k for k, v in sizes.items() if v < 1]
    if empty:
        raise ValueError(
            f'split(s) {empty} have no frames: mmdet3d 1.4\'s '
            'update_infos_to_v2.update_kitti_infos fails on an empty info '
            'file (UnboundLocalError: ignore_class_name); give every split '
            'at least one frame (e.g. num_test >= 1)')


def run_kitti_converter(root: str,
                        info_prefix: str = 'kitti',
                        with_plane: bool = False,
                        skip_overwrite_pause: bool = True) -> Dict[str, str]:
    """What ``tools/create_data.py kitti --root-path R --out-dir R
    --extra-tag P`` does (mmdet3d's ``kitti_data_prep``), call for call.

    ``update_infos_to_v2`` sleeps 5 s per file when it overwrites an info
    file under its ``out_dir`` (which is the intended outcome here); with
    ``skip_overwrite_pause`` the same directory is spelled ``root/.`` so the
    warning and its pause are skipped. Returns the paths written.
    """
    from mmengine.registry import DefaultScope
    root = str(root)
    _check_splits_not_empty({
        split:
        len((Path(root) / 'ImageSets' / f'{split}.txt').read_text().split())
        for split in ('train', 'val', 'test')
    })
    conv = load_mmdet3d_kitti_converters()
    # create_data.py runs under the mmdet3d default scope; so do we, but
    # only for the duration of the call
    with DefaultScope.overwrite_default_scope('mmdet3d'):
        return _kitti_data_prep(conv, root, info_prefix, with_plane,
                                skip_overwrite_pause)


def _kitti_data_prep(conv: types.SimpleNamespace, root: str, info_prefix: str,
                     with_plane: bool,
                     skip_overwrite_pause: bool) -> Dict[str, str]:
    conv.kitti_converter.create_kitti_info_file(root, info_prefix, with_plane)
    conv.kitti_converter.create_reduced_point_cloud(root, info_prefix)
    out_dir = osp.join(root, '.') if skip_overwrite_pause else root
    infos = {}
    for split in ('train', 'val', 'trainval', 'test'):
        pkl = osp.join(root, f'{info_prefix}_infos_{split}.pkl')
        conv.update_infos_to_v2.update_pkl_infos('kitti',
                                                 out_dir=out_dir,
                                                 pkl_path=pkl)
        infos[split] = pkl
    conv.create_gt_database.create_groundtruth_database(
        'KittiDataset',
        root,
        info_prefix,
        f'{info_prefix}_infos_train.pkl',
        relative_path=False,
        mask_anno_path='instances_train.json',
        with_mask=False)
    return dict(infos_train=infos['train'],
                infos_val=infos['val'],
                infos_trainval=infos['trainval'],
                infos_test=infos['test'],
                dbinfos_train=osp.join(root,
                                       f'{info_prefix}_dbinfos_train.pkl'),
                gt_database=osp.join(root, f'{info_prefix}_gt_database'),
                velodyne_reduced=osp.join(root, 'training',
                                          'velodyne_reduced'))


# ---------------------------------------------------------------------------
# whole data set
# ---------------------------------------------------------------------------

_GENERATED = ('ImageSets', 'training', 'testing')


def _frame_rng(seed: int, training: bool, idx: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([int(seed), int(training),
                                int(idx)]))


class _FrameWriter:
    """Simulates and writes one frame of :func:`create_demo_kitti`
    (picklable, so that worker processes can run it); returns the number
    of points and the class names of the frame's labels."""

    def __init__(self, root: str, seed: int, scene_cfg: SceneConfig,
                 lidar_cfg: Optional[LidarConfig], calib: KittiCalibration,
                 image_mode: str) -> None:
        self.root, self.seed, self.scene_cfg = root, seed, scene_cfg
        self.lidar_cfg, self.calib, self.image_mode = (lidar_cfg, calib,
                                                       image_mode)
        self._sim: Optional[LidarSimulator] = None

    def __call__(self, job: Tuple[str, bool, int, bool]
                 ) -> Tuple[int, List[str]]:
        _, training, idx, empty = job
        if self._sim is None:
            self._sim = LidarSimulator(self.lidar_cfg)
        _, scan, labels = simulate_frame(_frame_rng(self.seed, training, idx),
                                         self.scene_cfg,
                                         calib=self.calib,
                                         empty=empty,
                                         simulator=self._sim)
        write_frame(self.root,
                    idx,
                    scan.points,
                    self.calib,
                    labels if training else None,
                    training=training,
                    image_mode=self.image_mode,
                    decimals=self.scene_cfg.label_decimals)
        return len(scan.points), [lab.name for lab in labels]


@contextlib.contextmanager
def _frame_pool(workers: int, num_frames: int):
    """A process pool for the frames, or None for ``workers <= 1``."""
    workers = min(int(workers), num_frames)
    if workers <= 1:
        yield None
        return
    with multiprocessing.Pool(workers) as pool:  # _FrameWriter pickles
        yield pool


def create_demo_kitti(out_dir: str = 'data/demo_kitti',
                      num_train: int = 64,
                      num_val: int = 32,
                      seed: int = 0,
                      num_test: int = 4,
                      scene_cfg: Optional[SceneConfig] = None,
                      lidar_cfg: Optional[LidarConfig] = None,
                      calib: Optional[KittiCalibration] = None,
                      empty_frames: Sequence[int] = (),
                      image_mode: str = 'points',
                      convert: bool = True,
                      info_prefix: str = 'kitti',
                      overwrite: bool = False,
                      verbose: bool = True,
                      workers: int = 1) -> Dict[str, object]:
    """Generate a synthetic KITTI-format data set and convert it.

    Training frames get ids ``0 .. num_train-1`` (``ImageSets/train.txt``),
    validation frames the next ``num_val`` ids (``val.txt``), both under
    ``training/``; ``num_test`` unlabelled frames go to ``testing/``.
    mmdet3d 1.4's converter cannot convert an empty split, so with
    ``convert=True`` every split needs at least one frame.

    Args:
        out_dir: Data root (created).
        num_train / num_val / num_test: Frames per split.
        seed: Frame ``i`` depends only on ``(seed, split, i)``.
        scene_cfg / lidar_cfg / calib: Scene, sensor and calibration.
        empty_frames: Training-folder ids whose scan has zero points.
        image_mode: ``'points'`` or ``'blank'`` images.
        convert: Run mmdet3d's KITTI converter afterwards.
        info_prefix: Prefix of info files (``--extra-tag``).
        overwrite: Replace a previous data set in ``out_dir``.
        verbose: Print progress and the converter's output.
        workers: Processes that simulate and write frames (each frame
            depends only on its own seed, so the files are the same for
            any number).

    Returns:
        A dict with ``out_dir``, frame counts, ``labels`` per class
        (training folder), ``mean_points`` per 360 deg scan, timings and,
        if converted, the paths the converter wrote and
        ``mean_points_front`` (points per ``velodyne_reduced`` scan).
    """
    scene_cfg = scene_cfg or SceneConfig()
    calib = calib or KittiCalibration()
    if convert:
        _check_splits_not_empty(
            dict(train=num_train, val=num_val, test=num_test))
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out} is not empty; pass overwrite=True (--overwrite) to '
                'replace the data set there, or choose another directory')
        for name in _GENERATED:
            shutil.rmtree(out / name, ignore_errors=True)
        shutil.rmtree(out / f'{info_prefix}_gt_database', ignore_errors=True)
        for p in out.glob(f'{info_prefix}_*infos_*.pkl'):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    (out / 'ImageSets').mkdir(exist_ok=True)
    empty = set(int(i) for i in empty_frames)

    splits = [('train', True, list(range(num_train))),
              ('val', True, list(range(num_train, num_train + num_val))),
              ('test', False, list(range(num_test)))]
    for name, _, ids in splits:
        (out / 'ImageSets' / f'{name}.txt').write_text(''.join(f'{i:06d}\n'
                                                               for i in ids))

    jobs = [(name, training, idx, training and idx in empty)
            for name, training, ids in splits for idx in ids]
    frame = _FrameWriter(str(out), seed, scene_cfg, lidar_cfg, calib,
                         image_mode)
    label_counts: Dict[str, int] = {}
    n_points: List[int] = []
    total = len(jobs)
    t0 = time.perf_counter()
    with _frame_pool(workers, total) as pool:
        results = pool.imap(frame, jobs) if pool else map(frame, jobs)
        for done, ((name, training, idx, _), (n, names)) in enumerate(
                zip(jobs, results), 1):
            n_points.append(n)
            for lab in names if training else ():
                label_counts[lab] = label_counts.get(lab, 0) + 1
            if verbose and (done == total or done % max(1, total // 16) == 0):
                el = time.perf_counter() - t0
                print(
                    f'[{done}/{total}] {name} {idx:06d}: '
                    f'{n} points, {len(names)} labels '
                    f'({el:.1f} s)',
                    flush=True)
    t_gen = time.perf_counter() - t0

    result: Dict[str, object] = dict(
        out_dir=str(out),
        num_train=num_train,
        num_val=num_val,
        num_test=num_test,
        labels=dict(sorted(label_counts.items())),
        mean_points=float(np.mean(n_points)) if n_points else 0.0,
        seconds_generate=t_gen)
    if convert:
        t1 = time.perf_counter()
        if verbose:
            paths = run_kitti_converter(str(out), info_prefix)
        else:
            with open(os.devnull, 'w') as devnull, \
                    contextlib.redirect_stdout(devnull):
                paths = run_kitti_converter(str(out), info_prefix)
        result.update(paths)
        result['seconds_convert'] = time.perf_counter() - t1
        reduced = Path(paths['velodyne_reduced'])
        sizes = [(reduced / f'{i:06d}.bin').stat().st_size // 16
                 for _, training, ids in splits if training for i in ids]
        result['mean_points_front'] = float(np.mean(sizes))
    return result
