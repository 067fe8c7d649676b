"""Synthetic nuScenes-format 3D detection data and mmdet3d's own converter.

A scene is a straight street (background from
:func:`.synthetic_kitti.sample_scene`: road, sidewalks, facades, trees,
poles, furniture) with objects of the 10 nuScenes detection classes. The ego
vehicle drives along its lane; vehicles, cycles and pedestrians move with
constant velocities; a simulated 32-beam LiDAR (HDL-32E geometry: +10.67 to
-30.67 deg, 360 deg) scans it at ``(sweeps_per_sample + 1) * 2`` Hz. Every
``sweeps_per_sample + 1``-th scan is a keyframe (a ``sample``, 2 Hz), the
others are non-key ``sample_data`` (sweeps) for multi-sweep loading.

Written in the nuScenes layout::

    OUT/samples/LIDAR_TOP/*.pcd.bin   keyframe scans (x, y, z, intensity,
                                      ring index; float32)
    OUT/sweeps/LIDAR_TOP/*.pcd.bin    the scans in between
    OUT/samples/CAM_*/*.jpg           blank keyframe images (optional)
    OUT/maps/*.png                    map masks (blank)
    OUT/<version>/*.json              the devkit's 13 tables

Annotations are in the global frame, one instance track per object across
the samples of its scene, with nuScenes attributes, a LiDAR visibility level
and ``num_lidar_pts`` (points inside the box, as the devkit counts them).
No radar is simulated: ``num_radar_pts`` is 0. Scene names are official
scene names of the version's train / val split, which is how mmdet3d's
converter and the devkit's evaluation pick the splits.

mmdet3d 1.4's converter then runs unmodified, as ``tools/create_data.py
nuscenes --version v1.0-mini`` does: ``create_nuscenes_infos``,
``update_pkl_infos`` to the v2 info format, and the GT database. The same
seed gives byte-identical files.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import os.path as osp
import shutil
import tempfile
import time
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from .lidar_sim import (Box, Foliage, GroundPlane, LidarConfig, LidarSimulator,
                        Primitive, Scan, VerticalCylinder)
from .synthetic_kitti import (SceneConfig, load_mmdet3d_converters,
                              object_primitives, sample_scene)

__all__ = [
    'NusClassSpec', 'NUS_CLASSES', 'NuScenesSimConfig', 'hdl32_lidar_config',
    'MovingObject', 'SimulatedScene', 'nus_object_primitives',
    'simulate_scene', 'scan_at', 'scene_names', 'create_demo_nuscenes',
    'run_nuscenes_converter', 'load_mmdet3d_nuscenes_converters',
    'check_nuscenes_metric'
]

CAMERAS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK',
           'CAM_BACK_LEFT', 'CAM_BACK_RIGHT')
# camera yaw (deg) in the ego frame
_CAMERA_YAW = dict(CAM_FRONT=0.0, CAM_FRONT_RIGHT=-55.0, CAM_FRONT_LEFT=55.0,
                   CAM_BACK=180.0, CAM_BACK_LEFT=110.0, CAM_BACK_RIGHT=-110.0)
_CAM_INTRINSIC = [[1266.417203046554, 0.0, 816.2670197447984],
                  [0.0, 1266.417203046554, 491.50706579294757],
                  [0.0, 0.0, 1.0]]
_CAM_SIZE = (1600, 900)

ATTRIBUTES = ('vehicle.moving', 'vehicle.stopped', 'vehicle.parked',
              'cycle.with_rider', 'cycle.without_rider', 'pedestrian.moving',
              'pedestrian.standing', 'pedestrian.sitting_lying_down')
VISIBILITY = (('1', 'v0-40'), ('2', 'v40-60'), ('3', 'v60-80'),
              ('4', 'v80-100'))
LOCATIONS = ('boston-seaport', 'singapore-onenorth', 'singapore-queenstown',
             'singapore-hollandvillage')


def hdl32_lidar_config(**overrides) -> LidarConfig:
    """The nuScenes HDL-32E: 32 beams evenly from +10.67 to -30.67 deg,
    360 deg at about 1,090 firings per beam and revolution (20 Hz)."""
    kw = dict(elevations_deg=tuple(np.linspace(10.67, -30.67, 32)),
              azimuth_step_deg=0.33,
              min_range=1.0,
              max_range=100.0,
              detect_range_ref=110.0,
              intensity_quantum=0.0)
    kw.update(overrides)
    return LidarConfig(**kw)


@dataclass(frozen=True)
class NusClassSpec:
    """One nuScenes detection class.

    Attributes:
        name: Detection name (``car``, ...).
        category: Full nuScenes category written to ``category.json``.
        count: Inclusive range of instances per scene.
        size_mean / size_std / size_min / size_max: Length, width, height.
        shape: Composite of boxes that represents it (see
            :func:`nus_object_primitives`).
        placement: Shares of ``(lane, road_edge, sidewalk)``.
        moving_prob: Probability that an object that may move does.
        speed: Range of speeds (m/s) when moving.
        reflectivity: Range of body reflectivity.
    """
    name: str
    category: str
    count: Tuple[int, int]
    size_mean: Tuple[float, float, float]
    size_std: Tuple[float, float, float]
    size_min: Tuple[float, float, float]
    size_max: Tuple[float, float, float]
    shape: str
    placement: Tuple[float, float, float]
    moving_prob: float = 0.0
    speed: Tuple[float, float] = (0.0, 0.0)
    reflectivity: Tuple[float, float] = (0.05, 0.7)


# Approximate nuScenes size statistics per class (l, w, h in m).
NUS_CLASSES: Tuple[NusClassSpec, ...] = (
    NusClassSpec('car', 'vehicle.car', (8, 18), (4.63, 1.96, 1.74),
                 (0.46, 0.19, 0.25), (3.5, 1.5, 1.3), (5.8, 2.4, 2.3), 'car',
                 (0.5, 0.5, 0.0), 0.8, (3.0, 12.0)),
    NusClassSpec('truck', 'vehicle.truck', (2, 4), (6.94, 2.51, 2.84),
                 (1.8, 0.3, 0.5), (4.5, 1.9, 1.9), (11.0, 3.0, 4.0), 'truck',
                 (0.6, 0.4, 0.0), 0.7, (3.0, 10.0)),
    NusClassSpec('construction_vehicle', 'vehicle.construction', (1, 2),
                 (6.5, 2.8, 3.2), (1.4, 0.35, 0.45), (3.5, 2.0, 2.2),
                 (10.0, 3.5, 4.2), 'construction', (0.0, 1.0, 0.0)),
    NusClassSpec('bus', 'vehicle.bus.rigid', (1, 2), (11.0, 2.94, 3.47),
                 (1.3, 0.15, 0.3), (8.0, 2.5, 2.9), (13.5, 3.2, 4.0), 'van',
                 (0.8, 0.2, 0.0), 0.7, (3.0, 10.0), (0.1, 0.6)),
    NusClassSpec('trailer', 'vehicle.trailer', (1, 2), (12.3, 2.9, 3.9),
                 (1.8, 0.2, 0.35), (7.0, 2.3, 3.0), (15.0, 3.2, 4.3),
                 'trailer', (0.0, 1.0, 0.0)),
    NusClassSpec('barrier', 'movable_object.barrier', (2, 8),
                 (0.5, 2.5, 0.98), (0.1, 0.35, 0.1), (0.3, 1.5, 0.8),
                 (0.8, 3.2, 1.2), 'block', (0.2, 0.8, 0.0),
                 reflectivity=(0.3, 0.8)),
    NusClassSpec('motorcycle', 'vehicle.motorcycle', (1, 3),
                 (2.11, 0.77, 1.47), (0.2, 0.12, 0.18), (1.6, 0.55, 1.1),
                 (2.6, 1.1, 1.8), 'cyclist', (0.4, 0.6, 0.0), 0.6,
                 (3.0, 10.0)),
    NusClassSpec('bicycle', 'vehicle.bicycle', (1, 4), (1.70, 0.60, 1.28),
                 (0.18, 0.1, 0.2), (1.3, 0.4, 0.9), (2.1, 0.9, 1.8),
                 'cyclist', (0.0, 0.5, 0.5), 0.8, (2.0, 6.0)),
    NusClassSpec('pedestrian', 'human.pedestrian.adult', (3, 12),
                 (0.73, 0.67, 1.77), (0.19, 0.14, 0.16), (0.4, 0.4, 1.3),
                 (1.2, 1.0, 2.1), 'pedestrian', (0.0, 0.15, 0.85), 0.6,
                 (0.8, 1.8), (0.1, 0.5)),
    NusClassSpec('traffic_cone', 'movable_object.trafficcone', (2, 8),
                 (0.41, 0.41, 1.07), (0.08, 0.08, 0.12), (0.25, 0.25, 0.6),
                 (0.6, 0.6, 1.3), 'cone', (0.3, 0.7, 0.0),
                 reflectivity=(0.4, 0.9)),
)

_NUS_CATEGORY_NAMES = (
    'human.pedestrian.adult', 'human.pedestrian.child',
    'human.pedestrian.wheelchair', 'human.pedestrian.stroller',
    'human.pedestrian.personal_mobility', 'human.pedestrian.police_officer',
    'human.pedestrian.construction_worker', 'animal',
    'vehicle.car', 'vehicle.motorcycle', 'vehicle.bicycle',
    'vehicle.bus.bendy', 'vehicle.bus.rigid', 'vehicle.truck',
    'vehicle.construction', 'vehicle.emergency.ambulance',
    'vehicle.emergency.police', 'vehicle.trailer', 'movable_object.barrier',
    'movable_object.trafficcone', 'movable_object.pushable_pullable',
    'movable_object.debris', 'static_object.bicycle_rack')


@dataclass
class NuScenesSimConfig:
    """Scenes, ego motion and timing. Lengths in m, speeds in m/s.

    Attributes:
        classes: Object classes.
        lidar_translation: LiDAR position in the ego frame (nuScenes'
            roof mount); the LiDAR is yawed by ``lidar_yaw_deg`` about z
            (-90: its x axis points to the ego's right, as in nuScenes).
        ego_speed: Range of the ego's speed; it stands still with
            ``ego_stop_prob``.
        object_extent: Objects are placed this far behind / ahead of the
            ego's first position along the road, plus the distance it drives.
        street_margin: Background extends this much further.
        ego_corridor: Half width of the ego's lane kept free.
        collision_step: Time step (s) of the path collision check.
        annotation_range: Objects farther than this from the ego are not
            annotated in a sample.
        visibility_bins: Upper edges of the visible-ray shares of
            visibility levels 1-3.
        background: Overrides of :class:`SceneConfig` for the street.
    """
    classes: Tuple[NusClassSpec, ...] = NUS_CLASSES
    lidar_translation: Tuple[float, float, float] = (0.943713, 0.0, 1.84023)
    lidar_yaw_deg: float = -90.0
    ego_speed: Tuple[float, float] = (3.0, 10.0)
    ego_stop_prob: float = 0.2
    object_extent: Tuple[float, float] = (-50.0, 50.0)
    street_margin: float = 30.0
    ego_corridor: float = 1.6
    collision_step: float = 0.1
    annotation_range: float = 80.0
    visibility_bins: Tuple[float, float, float] = (0.4, 0.6, 0.8)
    glass_dropout: float = 0.4
    background: Dict[str, object] = field(
        default_factory=lambda: dict(max_grade=0.005, road_half_width=(
            4.5, 8.0), ego_lane_margin=1.8, road_heading_deg=0.0))


# ---------------------------------------------------------------------------
# geometry helpers
# ---------------------------------------------------------------------------


def _rot2(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]])


def _transform_primitive(prim: Primitive, theta: float, t: np.ndarray,
                         dz: float = 0.0) -> Primitive:
    """``prim`` under ``p -> Rz(theta) p + (t, dz)`` (``t`` in xy).

    Foliage ellipsoids are axis-aligned, so ``theta`` must be a multiple of
    90 deg for them (the x / y radii swap at odd multiples).
    """
    r = _rot2(theta)
    if isinstance(prim, Box):
        xy = r @ np.asarray(prim.center[:2]) + t
        return replace(prim,
                       center=(float(xy[0]), float(xy[1]),
                               float(prim.center[2] + dz)),
                       yaw=float(prim.yaw + theta))
    if isinstance(prim, VerticalCylinder):
        xy = r @ np.asarray(prim.center_xy) + t
        return replace(prim,
                       center_xy=(float(xy[0]), float(xy[1])),
                       z_min=prim.z_min + dz,
                       z_max=prim.z_max + dz)
    if isinstance(prim, Foliage):
        quarter = theta / (0.5 * math.pi)
        if abs(quarter - round(quarter)) > 1e-9:
            raise ValueError('foliage can only be turned by multiples of '
                             f'90 deg, got {math.degrees(theta):.3f} deg')
        xy = r @ np.asarray(prim.center[:2]) + t
        radii = prim.radii
        if int(round(quarter)) % 2:
            radii = (radii[1], radii[0], radii[2])
        return replace(prim,
                       center=(float(xy[0]), float(xy[1]),
                               float(prim.center[2] + dz)),
                       radii=radii)
    raise TypeError(f'cannot move a {type(prim).__name__}')


def _ground_in_frame(ground: GroundPlane, theta: float, origin: np.ndarray
                     ) -> GroundPlane:
    """The ground plane seen from a frame at ``origin`` (xyz) turned by
    ``theta`` about z."""
    c, s = math.cos(theta), math.sin(theta)
    z0 = float(ground.height(origin[0], origin[1])) - float(origin[2])
    gx = ground.grade_x * c + ground.grade_y * s
    gy = -ground.grade_x * s + ground.grade_y * c
    return replace(ground, z0=z0, grade_x=gx, grade_y=gy)


def _footprint(box: np.ndarray) -> np.ndarray:
    """Circles ``(K, 3)`` (x, y, r) covering a box's footprint."""
    x, y, _, l, w, _, yaw = box
    long_, short = (l, w) if l >= w else (w, l)
    ax = yaw if l >= w else yaw + 0.5 * math.pi
    k = max(1, int(math.ceil(long_ / short)))
    offs = (np.arange(k) + 0.5) / k * long_ - 0.5 * long_
    r = math.hypot(0.5 * long_ / k, 0.5 * short)
    return np.stack([
        x + offs * math.cos(ax), y + offs * math.sin(ax),
        np.full(k, r)
    ], -1)


def nus_object_primitives(shape: str, box: np.ndarray, refl: float,
                          owner: int,
                          glass_dropout: float) -> List[Primitive]:
    """Boxes that make up an object inside its box ``(x, y, z_bottom, l, w,
    h, yaw)``. ``car``, ``van``, ``pedestrian`` and ``cyclist`` are
    :func:`.synthetic_kitti.object_primitives`; the other shapes are
    ``truck`` (cab and cargo box), ``construction`` (body and cab),
    ``trailer`` (raised body), ``block`` (barrier), ``cone`` (three stacked
    boxes) and ``bike`` (a cycle without rider)."""
    if shape in ('car', 'van', 'pedestrian', 'cyclist'):
        return object_primitives(shape, box, refl, owner, glass_dropout)
    x, y, zb, l, w, h, yaw = [float(v) for v in box]
    c, s = math.cos(yaw), math.sin(yaw)

    def part(dx: float, z0: float, z1: float, pl: float, pw: float,
             r: float = refl, drop: float = 0.0) -> Box:
        return Box((x + c * dx, y + s * dx, zb + 0.5 * (z0 + z1)),
                   (pl, pw, z1 - z0), yaw, r, drop, owner)

    wheels = lambda z1: [  # noqa: E731
        part(sx * 0.35 * l, 0.0, z1, 0.9, 0.96 * w, 0.05)
        for sx in (-1, 1)
    ]
    if shape == 'truck':
        cab = min(2.2, 0.3 * l)
        return wheels(0.5) + [
            part(0.5 * l - 0.5 * cab, 0.45, 0.85 * h, 0.97 * cab, 0.96 * w,
                 refl, 0.1),
            part(-0.5 * cab, 0.5, 0.98 * h, 0.97 * (l - cab), 0.98 * w)
        ]
    if shape == 'construction':
        return wheels(0.8) + [
            part(0.0, 0.5, 0.55 * h, 0.97 * l, 0.96 * w),
            part(-0.15 * l, 0.55 * h, 0.98 * h, 0.4 * l, 0.7 * w, refl, 0.2)
        ]
    if shape == 'trailer':
        return [part(-0.3 * l, 0.0, 0.9, 1.2, 0.96 * w, 0.05),
                part(0.0, 0.9, 0.98 * h, 0.98 * l, 0.98 * w)]
    if shape == 'block':
        return [part(0.0, 0.0, 0.97 * h, 0.95 * l, 0.97 * w)]
    if shape == 'cone':
        return [part(0.0, 0.0, 0.1 * h, 0.95 * l, 0.95 * w),
                part(0.0, 0.1 * h, 0.55 * h, 0.55 * l, 0.55 * w),
                part(0.0, 0.55 * h, 0.97 * h, 0.3 * l, 0.3 * w)]
    if shape == 'bike':
        return [part(0.0, 0.0, 0.95 * h, 0.96 * l, min(0.15, 0.5 * w), 0.3,
                     0.3)]
    raise ValueError(f'unknown object shape {shape!r}')


# ---------------------------------------------------------------------------
# scenes
# ---------------------------------------------------------------------------


@dataclass
class MovingObject:
    """An object of a scene: its box at time 0 in the scene frame, a constant
    velocity and its parts at time 0."""
    spec: NusClassSpec
    box: np.ndarray
    velocity: np.ndarray
    attribute: str
    owner: int
    parts: List[Primitive]

    def box_at(self, t: float, ground: GroundPlane) -> np.ndarray:
        """The box at time ``t`` (following the ground's grade)."""
        b = self.box.copy()
        d = self.velocity * t
        b[:2] += d
        b[2] += ground.grade_x * d[0] + ground.grade_y * d[1]
        return b

    def parts_at(self, t: float, ground: GroundPlane) -> List[Primitive]:
        """The parts at time ``t``."""
        if not self.velocity.any():
            return self.parts
        d = self.velocity * t
        dz = ground.grade_x * d[0] + ground.grade_y * d[1]
        return [_transform_primitive(p, 0.0, d, dz) for p in self.parts]


@dataclass
class SimulatedScene:
    """A scene in its own frame (x along the road, the first sensor position
    at the origin) and the rigid map into the global frame."""
    ground: GroundPlane
    background: List[Primitive]
    objects: List[MovingObject]
    ego_start: np.ndarray
    ego_yaw: float
    ego_speed: float
    global_yaw: float
    global_offset: np.ndarray

    def ego_pose(self, t: float) -> Tuple[np.ndarray, float]:
        """Ego position (x, y, z on the ground) and yaw at ``t`` (scene
        frame)."""
        xy = self.ego_start[:2] + self.ego_speed * t * np.array(
            [math.cos(self.ego_yaw), math.sin(self.ego_yaw)])
        return np.array([xy[0], xy[1],
                         float(self.ground.height(*xy))]), self.ego_yaw

    def to_global(self, xyz: np.ndarray, yaw: float) -> Tuple[np.ndarray,
                                                              float]:
        """Scene-frame point and heading in the global frame."""
        xy = _rot2(self.global_yaw) @ np.asarray(xyz[:2]) + \
            self.global_offset[:2]
        return np.array([xy[0], xy[1], xyz[2] + self.global_offset[2]
                         ]), yaw + self.global_yaw


def _attr_for(spec: NusClassSpec, moving: bool, where: int) -> str:
    if spec.name in ('car', 'truck', 'bus', 'trailer',
                     'construction_vehicle'):
        if moving:
            return 'vehicle.moving'
        return 'vehicle.stopped' if where == 0 else 'vehicle.parked'
    if spec.name in ('bicycle', 'motorcycle'):
        return 'cycle.with_rider' if moving or where == 0 else \
            'cycle.without_rider'
    if spec.name == 'pedestrian':
        return 'pedestrian.moving' if moving else 'pedestrian.standing'
    return ''


def simulate_scene(rng: np.random.Generator, duration: float,
                   cfg: Optional[NuScenesSimConfig] = None) -> SimulatedScene:
    """Draw a street, the ego's drive of ``duration`` s and the objects."""
    cfg = cfg or NuScenesSimConfig()
    moving_ego = rng.random() >= cfg.ego_stop_prob
    ego_speed = float(rng.uniform(*cfg.ego_speed)) if moving_ego else 0.0
    travel = ego_speed * duration
    lo = cfg.object_extent[0] - travel
    hi = cfg.object_extent[1] + travel
    scfg = SceneConfig(**dict(cfg.background),
                       sensor_height=cfg.lidar_translation[2],
                       street_extent=(lo - cfg.street_margin,
                                      hi + cfg.street_margin),
                       object_extent=(lo, hi),
                       classes=())
    street = sample_scene(scfg, rng)
    lay = street.layout
    if lay is None or abs(lay.heading) > 1e-12:
        raise ValueError('the nuScenes scenes need a street along x '
                         '(background road_heading_deg=0)')
    ground = street.ground
    hw, q_ego = lay.half_width, lay.ego_offset
    # right-hand traffic: the ego drives +x on the right half of the road
    ego_yaw = 0.0 if q_ego <= 0 else math.pi
    ego_dir = math.cos(ego_yaw)
    lidar_off = cfg.lidar_translation[0]
    ego_start = np.array([-ego_dir * lidar_off, 0.0])

    def base_height(side: int, x: float, q: float) -> float:
        sw, curb, _, _ = lay.sides[side]
        if sw > 0 and hw <= abs(q) <= hw + sw:
            s_lo, s_hi = lay.street_extent
            n = int(round((s_hi - s_lo) / lay.segment))
            k = min(max(int((x - s_lo) // lay.segment), 0), n - 1)
            cx, cy = lay.to_xy(s_lo + (k + 0.5) * lay.segment,
                               side * (hw + 0.5 * sw))
            return float(ground.height(cx, cy)) + curb
        return float(ground.height(x, q - q_ego))

    times = np.arange(0.0, duration + 1e-9, cfg.collision_step)
    ego_xy = ego_start[None] + np.outer(times * ego_speed,
                                        [ego_dir, 0.0])
    # paths already taken: (T, K, 3) circles per decided object, ego first
    ego_r = 2.7
    paths: List[np.ndarray] = [
        np.concatenate([ego_xy + [1.4 * ego_dir, 0.0],
                        np.full((len(times), 1), ego_r)], 1)[:, None]
    ]

    def clear(circ: np.ndarray) -> bool:
        for other in paths:
            d = np.linalg.norm(circ[:, :, None, :2] - other[:, None, :, :2],
                               axis=-1)
            if (d < circ[:, :, None, 2] + other[:, None, :, 2] + 0.3).any():
                return False
        return True

    def static_clear(x: float, y: float, circles: np.ndarray) -> bool:
        return all(
            lay.occupied.free(cx, cy, cr) for cx, cy, cr in circles)

    objects: List[MovingObject] = []
    flows = {+1: float(rng.uniform(2.0, 12.0)), -1: float(
        rng.uniform(2.0, 12.0))}
    owner = 0
    for spec in cfg.classes:
        n = int(rng.integers(spec.count[0], spec.count[1] + 1))
        for _ in range(n):
            for _attempt in range(30):
                l, w, h = [
                    float(np.clip(rng.normal(m, sd), a, b))
                    for m, sd, a, b in zip(spec.size_mean, spec.size_std,
                                           spec.size_min, spec.size_max)
                ]
                where = int(rng.choice(3, p=np.asarray(spec.placement) /
                                       sum(spec.placement)))
                side = -1 if rng.random() < 0.5 else 1
                x = float(rng.uniform(lo, hi))
                sw = lay.sides[side][0]
                if where == 0:
                    q = float(rng.uniform(-hw + 0.5 * w + 0.3,
                                          hw - 0.5 * w - 0.3))
                elif where == 1:
                    q = side * (hw - 0.5 * w - float(rng.uniform(0.1, 0.6)))
                else:
                    if sw < w + 0.2:
                        continue
                    q = side * (hw + float(
                        rng.uniform(0.5 * w + 0.1, sw - 0.5 * w - 0.1)))
                drive = 1.0 if q <= 0 else -1.0  # right-hand traffic
                moving = rng.random() < spec.moving_prob and (
                    where == 0 or spec.name in ('bicycle', 'motorcycle',
                                                'pedestrian'))
                if where == 2 and spec.name != 'pedestrian':
                    moving = False
                if moving:
                    if spec.name == 'pedestrian' or where != 0:
                        speed = float(rng.uniform(*spec.speed))
                        direction = 1.0 if rng.random() < 0.5 else -1.0
                        if spec.name != 'pedestrian':
                            direction = drive
                    else:  # one flow speed per direction: no rear-ending
                        speed, direction = flows[int(drive)], drive
                    yaw = (0.0 if direction > 0 else math.pi) + math.radians(
                        rng.normal(0.0, 2.0))
                    vel = np.array([direction * speed, 0.0])
                elif where == 2 or spec.name in ('pedestrian', 'traffic_cone'):
                    yaw = float(rng.uniform(-math.pi, math.pi))
                    vel = np.zeros(2)
                else:
                    yaw = (0.0 if drive > 0 else math.pi) + math.radians(
                        rng.normal(0.0, 4.0))
                    vel = np.zeros(2)
                if spec.name == 'barrier':  # its long side along the road
                    yaw = 0.5 * math.pi + math.radians(rng.normal(0.0, 5.0))
                y = q - q_ego
                yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
                box = np.array(
                    [x, y, base_height(side, x, q), l, w, h, yaw])
                circles = _footprint(box)
                if not static_clear(x, y, circles):
                    continue
                path = circles[None] + np.concatenate(
                    [np.outer(times, vel)[:, None],
                     np.zeros((len(times), 1, 1))], -1)
                if not clear(path):
                    if not vel.any():
                        continue
                    vel = np.zeros(2)  # try it standing still
                    path = np.broadcast_to(circles[None], path.shape)
                    if not clear(path):
                        continue
                    moving = False
                refl = float(rng.uniform(*spec.reflectivity))
                shape = spec.shape
                attr = _attr_for(spec, moving, where)
                if attr == 'cycle.without_rider':
                    shape = 'bike'
                parts = nus_object_primitives(shape, box, refl, owner,
                                              cfg.glass_dropout)
                objects.append(
                    MovingObject(spec, box, vel, attr, owner, parts))
                paths.append(path)
                for cx, cy, cr in circles:
                    lay.occupied.add(cx, cy, cr)
                owner += 1
                break
    g_yaw = float(rng.uniform(-math.pi, math.pi))
    g_off = np.array([rng.uniform(300.0, 2000.0),
                      rng.uniform(300.0, 2000.0), 0.0])
    ego_start3 = np.array([ego_start[0], ego_start[1], 0.0])
    return SimulatedScene(ground=ground,
                          background=street.background,
                          objects=objects,
                          ego_start=ego_start3,
                          ego_yaw=ego_yaw,
                          ego_speed=ego_speed,
                          global_yaw=g_yaw,
                          global_offset=g_off)


def scan_at(scene: SimulatedScene, t: float, sim: LidarSimulator,
            cfg: NuScenesSimConfig, rng: np.random.Generator
            ) -> Tuple[Scan, List[np.ndarray]]:
    """Scan the scene from the LiDAR at time ``t``. Returns the scan (sensor
    frame) and every object's box at ``t`` (scene frame)."""
    ego_xyz, ego_yaw = scene.ego_pose(t)
    yaw_s = ego_yaw + math.radians(cfg.lidar_yaw_deg)
    lt = np.asarray(cfg.lidar_translation)
    s_xy = ego_xyz[:2] + _rot2(ego_yaw) @ lt[:2]
    s_xyz = np.array([s_xy[0], s_xy[1], ego_xyz[2] + lt[2]])
    # scene -> sensor: p_s = Rz(-yaw_s) (p - s)
    rinv = _rot2(-yaw_s)
    t_xy = -(rinv @ s_xy)
    prims: List[Primitive] = [_ground_in_frame(scene.ground, yaw_s, s_xyz)]
    for p in scene.background:
        prims.append(_transform_primitive(p, -yaw_s, t_xy, -s_xyz[2]))
    boxes = []
    for obj in scene.objects:
        boxes.append(obj.box_at(t, scene.ground))
        for p in obj.parts_at(t, scene.ground):
            prims.append(_transform_primitive(p, -yaw_s, t_xy, -s_xyz[2]))
    return sim.scan(prims, rng), boxes


# ---------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------


def _quat_yaw(yaw: float) -> List[float]:
    """``[w, x, y, z]`` of a rotation by ``yaw`` about +z."""
    return [math.cos(0.5 * yaw), 0.0, 0.0, math.sin(0.5 * yaw)]


def _quat_matrix(m: np.ndarray) -> List[float]:
    from pyquaternion import Quaternion
    return [float(v) for v in Quaternion(matrix=m).elements]


def _r(v: Sequence[float], nd: int = 6) -> List[float]:
    return [round(float(x), nd) for x in v]


def _camera_rotation(yaw_deg: float) -> List[float]:
    """Camera (x right, y down, z forward) to ego, looking at ``yaw_deg``."""
    base = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    c, s = math.cos(math.radians(yaw_deg)), math.sin(math.radians(yaw_deg))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return _quat_matrix(rz @ base)


def scene_names(version: str) -> Tuple[List[str], List[str]]:
    """Official train / val scene names of a nuScenes version (the
    devkit's ``splits``)."""
    from nuscenes.utils import splits
    if version == 'v1.0-mini':
        return list(splits.mini_train), list(splits.mini_val)
    if version == 'v1.0-trainval':
        return list(splits.train), list(splits.val)
    raise ValueError(f"version must be 'v1.0-mini' or 'v1.0-trainval' (the "
                     f'versions with a train and a val split), got '
                     f'{version!r}')


def _points_in_box(points: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Mask of ``(N, 3)`` points inside ``(x, y, z_bottom, l, w, h, yaw)``
    (same frame)."""
    x, y, zb, l, w, h, yaw = box
    d = points[:, :3] - np.array([x, y, zb + 0.5 * h])
    c, s = math.cos(yaw), math.sin(yaw)
    u = c * d[:, 0] + s * d[:, 1]
    v = -s * d[:, 0] + c * d[:, 1]
    return (np.abs(u) <= 0.5 * l) & (np.abs(v) <= 0.5 * w) & (
        np.abs(d[:, 2]) <= 0.5 * h)


class _Tables:
    """The devkit's tables, filled scene by scene."""

    NAMES = ('category', 'attribute', 'visibility', 'instance', 'sensor',
             'calibrated_sensor', 'ego_pose', 'log', 'scene', 'sample',
             'sample_data', 'sample_annotation', 'map')

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.t: Dict[str, List[dict]] = {n: [] for n in self.NAMES}
        for name in _NUS_CATEGORY_NAMES:
            self.t['category'].append(
                dict(token=self.token('category', name), name=name,
                     description=name))
        for name in ATTRIBUTES:
            self.t['attribute'].append(
                dict(token=self.token('attribute', name), name=name,
                     description=name))
        for tok, level in VISIBILITY:
            self.t['visibility'].append(
                dict(token=tok, level=level,
                     description=f'visibility of the instance {level} %'))
        for ch in ('LIDAR_TOP', ) + CAMERAS:
            self.t['sensor'].append(
                dict(token=self.token('sensor', ch), channel=ch,
                     modality='lidar' if ch == 'LIDAR_TOP' else 'camera'))

    def token(self, *key: object) -> str:
        """A 32-hex token, a pure function of the seed and ``key``."""
        return hashlib.md5(':'.join(str(k) for k in (self.seed, ) + key)
                           .encode()).hexdigest()

    def dump(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.t.items():
            (folder / f'{name}.json').write_text(json.dumps(rows, indent=0))


_BLANK_JPG: Optional[bytes] = None


def _blank_jpg() -> bytes:
    global _BLANK_JPG
    if _BLANK_JPG is None:
        import io

        from PIL import Image
        buf = io.BytesIO()
        Image.new('RGB', _CAM_SIZE).save(buf, format='JPEG', quality=50)
        _BLANK_JPG = buf.getvalue()
    return _BLANK_JPG


def _write_scene(tables: _Tables, out: Path, name: str, index: int,
                 rng: np.random.Generator, samples: int, sweeps: int,
                 cfg: NuScenesSimConfig, sim: LidarSimulator,
                 images: bool, stats: Dict[str, list]) -> None:
    """Simulate one scene and add its records (files written to ``out``)."""
    tok = tables.token
    duration = 0.5 * (samples - 1)
    scene = simulate_scene(rng, duration, cfg)
    location = LOCATIONS[index % len(LOCATIONS)]
    day = 1 + index % 28
    logfile = f'n015-2018-08-{day:02d}-{10 + index % 10:02d}-00-00+0800'
    log_tok = tok('log', name)
    tables.t['log'].append(
        dict(token=log_tok, logfile=logfile, vehicle='n015',
             date_captured=f'2018-08-{day:02d}', location=location))
    lidar_cs = tok('cs', name, 'LIDAR_TOP')
    tables.t['calibrated_sensor'].append(
        dict(token=lidar_cs, sensor_token=tok('sensor', 'LIDAR_TOP'),
             translation=_r(cfg.lidar_translation),
             rotation=_r(_quat_yaw(math.radians(cfg.lidar_yaw_deg)), 9),
             camera_intrinsic=[]))
    cam_cs = {}
    for cam in CAMERAS:
        cam_cs[cam] = tok('cs', name, cam)
        yaw = math.radians(_CAMERA_YAW[cam])
        tables.t['calibrated_sensor'].append(
            dict(token=cam_cs[cam], sensor_token=tok('sensor', cam),
                 translation=_r([1.5 * math.cos(yaw) + 0.3,
                                 0.5 * math.sin(yaw), 1.55]),
                 rotation=_r(_camera_rotation(_CAMERA_YAW[cam]), 9),
                 camera_intrinsic=_CAM_INTRINSIC))
    scene_tok = tok('scene', name)
    base_ts = 1533000000000000 + index * 3_600_000_000
    step = sweeps + 1
    dt = 0.5 / step
    sample_toks = [tok('sample', name, i) for i in range(samples)]
    prev_sd = ''
    prev_sd_rec: Optional[dict] = None
    lidar_prefix = f'{logfile}__LIDAR_TOP__'
    ann_of_owner: Dict[int, List[dict]] = {}
    for k in range(-sweeps, (samples - 1) * step + 1):
        t = k * dt
        ts = base_ts + int(round((t + 0.5) * 1e6))
        key = k >= 0 and k % step == 0
        si = min(samples - 1, max(0, -(-k // step)))  # next keyframe
        scan, boxes = scan_at(scene, t, sim, cfg, rng)
        pts = np.zeros((len(scan.points), 5), np.float32)
        pts[:, :3] = scan.points[:, :3]
        pts[:, 3] = np.round(scan.points[:, 3] * 255.0)
        pts[:, 4] = scan.ring
        folder = 'samples' if key else 'sweeps'
        fname = f'{folder}/LIDAR_TOP/{lidar_prefix}{ts}.pcd.bin'
        (out / fname).parent.mkdir(parents=True, exist_ok=True)
        pts.tofile(str(out / fname))
        ego_xyz, ego_yaw = scene.ego_pose(t)
        g_xyz, g_yaw = scene.to_global(ego_xyz, ego_yaw)
        sd_tok = tok('sd', name, 'LIDAR_TOP', k)
        tables.t['ego_pose'].append(
            dict(token=sd_tok, timestamp=ts, rotation=_r(_quat_yaw(g_yaw), 9),
                 translation=_r(g_xyz)))
        rec = dict(token=sd_tok, sample_token=sample_toks[si],
                   ego_pose_token=sd_tok, calibrated_sensor_token=lidar_cs,
                   timestamp=ts, fileformat='pcd', is_key_frame=key,
                   height=0, width=0, filename=fname, prev=prev_sd, next='')
        if prev_sd_rec is not None:
            prev_sd_rec['next'] = sd_tok
        tables.t['sample_data'].append(rec)
        prev_sd, prev_sd_rec = sd_tok, rec
        stats['points_sweep' if not key else 'points_key'].append(
            len(pts))
        if not key:
            continue
        i = k // step
        tables.t['sample'].append(
            dict(token=sample_toks[i], timestamp=ts,
                 prev=sample_toks[i - 1] if i > 0 else '',
                 next=sample_toks[i + 1] if i + 1 < samples else '',
                 scene_token=scene_tok))
        for cam in CAMERAS:
            ctok = tok('sd', name, cam, k)
            cname = f'samples/{cam}/{logfile}__{cam}__{ts}.jpg'
            if images:
                (out / cname).parent.mkdir(parents=True, exist_ok=True)
                (out / cname).write_bytes(_blank_jpg())
            tables.t['ego_pose'].append(
                dict(token=ctok, timestamp=ts,
                     rotation=_r(_quat_yaw(g_yaw), 9),
                     translation=_r(g_xyz)))
            prev_cam = tok('sd', name, cam, k - step) if i > 0 else ''
            next_cam = tok('sd', name, cam, k + step) \
                if i + 1 < samples else ''
            tables.t['sample_data'].append(
                dict(token=ctok, sample_token=sample_toks[i],
                     ego_pose_token=ctok,
                     calibrated_sensor_token=cam_cs[cam], timestamp=ts,
                     fileformat='jpg', is_key_frame=True,
                     height=_CAM_SIZE[1], width=_CAM_SIZE[0],
                     filename=cname, prev=prev_cam, next=next_cam))
        # annotations, in the global frame
        ego_xy = ego_xyz[:2]
        yaw_s = ego_yaw + math.radians(cfg.lidar_yaw_deg)
        per_class: Dict[str, int] = {}
        for obj, box in zip(scene.objects, boxes):
            if np.hypot(*(box[:2] - ego_xy)) > cfg.annotation_range:
                continue
            # the box in the sensor frame, to count its points
            lt = np.asarray(cfg.lidar_translation)
            s_xy = ego_xy + _rot2(ego_yaw) @ lt[:2]
            rel = _rot2(-yaw_s) @ (box[:2] - s_xy)
            sbox = np.array([rel[0], rel[1],
                             box[2] - ego_xyz[2] - lt[2], *box[3:6],
                             box[6] - yaw_s])
            n_pts = int(_points_in_box(scan.points, sbox).sum())
            total = scan.rays_unoccluded.get(obj.owner, 0)
            share = scan.rays_visible.get(obj.owner, 0) / max(total, 1)
            vis = str(1 + int(np.searchsorted(cfg.visibility_bins, share,
                                              side='right')))
            centre, yaw = scene.to_global(
                np.array([box[0], box[1], box[2] + 0.5 * box[5]]), box[6])
            inst_tok = tok('instance', name, obj.owner)
            ann = dict(token=tok('ann', name, obj.owner, i),
                       sample_token=sample_toks[i], instance_token=inst_tok,
                       visibility_token=vis,
                       attribute_tokens=[tok('attribute', obj.attribute)]
                       if obj.attribute else [],
                       translation=_r(centre),
                       size=_r([box[4], box[3], box[5]]),
                       rotation=_r(_quat_yaw(yaw), 9), prev='', next='',
                       num_lidar_pts=n_pts, num_radar_pts=0)
            chain = ann_of_owner.setdefault(obj.owner, [])
            if chain:
                chain[-1]['next'] = ann['token']
                ann['prev'] = chain[-1]['token']
            chain.append(ann)
            tables.t['sample_annotation'].append(ann)
            if n_pts > 0:
                per_class[obj.spec.name] = per_class.get(obj.spec.name, 0) + 1
        stats['boxes'].append(per_class)
    for obj in scene.objects:
        chain = ann_of_owner.get(obj.owner)
        if not chain:
            continue
        tables.t['instance'].append(
            dict(token=tok('instance', name, obj.owner),
                 category_token=tok('category', obj.spec.category),
                 nbr_annotations=len(chain),
                 first_annotation_token=chain[0]['token'],
                 last_annotation_token=chain[-1]['token']))
    tables.t['scene'].append(
        dict(token=scene_tok, log_token=log_tok, nbr_samples=samples,
             first_sample_token=sample_toks[0],
             last_sample_token=sample_toks[-1], name=name,
             description=f'synthetic street, ego {scene.ego_speed:.1f} m/s'))


# ---------------------------------------------------------------------------
# mmdet3d's converter
# ---------------------------------------------------------------------------



class _Discard(io.TextIOBase):
    """A text stream that drops what is written (and is never closed, so a
    logger created while it is ``sys.stdout`` keeps working)."""

    def write(self, s: str) -> int:
        return len(s)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence stdout / stderr; mmengine's logger is created first so that
    it keeps the real streams."""
    from mmengine.logging import MMLogger
    MMLogger.get_current_instance()
    sink = _Discard()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def load_mmdet3d_nuscenes_converters(
        reload: bool = False) -> types.SimpleNamespace:
    """mmdet3d's own ``nuscenes_converter``, ``update_infos_to_v2`` and
    ``create_gt_database`` modules from the wheel's ``.mim/tools``,
    unmodified (cached)."""
    return load_mmdet3d_converters('nuscenes_converter',
                                   'update_infos_to_v2',
                                   'create_gt_database', reload=reload)


@contextlib.contextmanager
def _cwd_with_data_link(root: str) -> Iterator[None]:
    """Run in a scratch directory where ``./data/nuscenes`` is ``root``:
    ``update_infos_to_v2.update_nuscenes_infos`` loads the devkit from that
    fixed relative path."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix='nus_convert_') as tmp:
        (Path(tmp) / 'data').mkdir()
        os.symlink(root, str(Path(tmp) / 'data' / 'nuscenes'))
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(old)


def run_nuscenes_converter(root: str,
                           version: str = 'v1.0-mini',
                           info_prefix: str = 'nuscenes',
                           max_sweeps: int = 10) -> Dict[str, str]:
    """What ``tools/create_data.py nuscenes --root-path R --out-dir R
    --extra-tag P --version V`` does (mmdet3d's ``nuscenes_data_prep``),
    call for call. Returns the paths written."""
    from mmengine.registry import DefaultScope
    root = osp.abspath(str(root))
    conv = load_mmdet3d_nuscenes_converters()
    train = osp.join(root, f'{info_prefix}_infos_train.pkl')
    val = osp.join(root, f'{info_prefix}_infos_val.pkl')
    with DefaultScope.overwrite_default_scope('mmdet3d'), \
            _cwd_with_data_link(root):
        conv.nuscenes_converter.create_nuscenes_infos(
            root, info_prefix, version=version, max_sweeps=max_sweeps)
        for pkl in (train, val):
            conv.update_infos_to_v2.update_pkl_infos('nuscenes',
                                                     out_dir=root,
                                                     pkl_path=pkl)
        conv.create_gt_database.create_groundtruth_database(
            'NuScenesDataset', root, info_prefix,
            f'{info_prefix}_infos_train.pkl')
    return dict(infos_train=train,
                infos_val=val,
                dbinfos_train=osp.join(root,
                                       f'{info_prefix}_dbinfos_train.pkl'),
                gt_database=osp.join(root, f'{info_prefix}_gt_database'))


# ---------------------------------------------------------------------------
# whole data set
# ---------------------------------------------------------------------------

_GENERATED = ('samples', 'sweeps', 'maps', 'v1.0-mini', 'v1.0-trainval')


def create_demo_nuscenes(out_dir: str = 'data/demo_nuscenes',
                         num_train_scenes: int = 6,
                         num_val_scenes: int = 2,
                         samples_per_scene: int = 10,
                         sweeps_per_sample: int = 9,
                         seed: int = 0,
                         version: str = 'v1.0-mini',
                         sim_cfg: Optional[NuScenesSimConfig] = None,
                         lidar_cfg: Optional[LidarConfig] = None,
                         images: bool = True,
                         convert: bool = True,
                         info_prefix: str = 'nuscenes',
                         max_sweeps: int = 10,
                         overwrite: bool = False,
                         verbose: bool = True) -> Dict[str, object]:
    """Generate a synthetic nuScenes-format data set and convert it.

    Args:
        out_dir: Data root (created).
        num_train_scenes / num_val_scenes: Scenes per split, named after the
            first official scenes of ``version``'s train / val split
            (v1.0-mini: at most 8 / 2).
        samples_per_scene: Keyframes (2 Hz) per scene.
        sweeps_per_sample: Non-key LiDAR scans between two keyframes (and
            before the first); nuScenes' 20 Hz LiDAR has 9.
        seed: Scene ``i`` of a split depends only on ``(seed, split, i)``.
        version: ``'v1.0-mini'`` or ``'v1.0-trainval'``.
        sim_cfg / lidar_cfg: Scenes and sensor (default HDL-32E).
        images: Write blank camera JPGs for the camera records.
        convert: Run mmdet3d's nuScenes converter afterwards.
        info_prefix: Prefix of the info files (``--extra-tag``).
        max_sweeps: Sweeps per info (the converter's ``--max-sweeps``).
        overwrite: Replace a previous data set in ``out_dir``.
        verbose: Print progress and the converter's output.

    Returns:
        A dict with ``out_dir``, scene / sample counts, ``points_key`` /
        ``points_sweep`` (mean points per scan), ``boxes_per_sample`` per
        class (boxes with at least one point), timings and, if converted,
        the paths the converter wrote.
    """
    sim_cfg = sim_cfg or NuScenesSimConfig()
    train_names, val_names = scene_names(version)
    if num_train_scenes > len(train_names) or \
            num_val_scenes > len(val_names):
        raise ValueError(
            f'{version} has {len(train_names)} train and {len(val_names)} '
            f'val scenes; asked for {num_train_scenes} / {num_val_scenes} '
            "(use version='v1.0-trainval' for more)")
    if num_train_scenes < 1 or num_val_scenes < 1 or samples_per_scene < 2:
        raise ValueError('need at least one train and one val scene and two '
                         'samples per scene (velocities come from tracks)')
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out} is not empty; pass overwrite=True (--overwrite) to '
                'replace the data set there, or choose another directory')
        for name in _GENERATED + (f'{info_prefix}_gt_database', ):
            shutil.rmtree(out / name, ignore_errors=True)
        for p in out.glob(f'{info_prefix}_*infos_*.pkl'):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    tables = _Tables(seed)
    sim = LidarSimulator(lidar_cfg or hdl32_lidar_config())
    stats: Dict[str, list] = dict(points_key=[], points_sweep=[], boxes=[])
    todo = [(n, 0, i) for i, n in enumerate(train_names[:num_train_scenes])
            ] + [(n, 1, i) for i, n in enumerate(val_names[:num_val_scenes])]
    t0 = time.perf_counter()
    for index, (name, split, i) in enumerate(todo):
        rng = np.random.default_rng(
            np.random.SeedSequence([int(seed), split, i]))
        _write_scene(tables, out, name, index, rng, samples_per_scene,
                     sweeps_per_sample, sim_cfg, sim, images, stats)
        if verbose:
            print(f'[{index + 1}/{len(todo)}] {name} '
                  f'({"train" if split == 0 else "val"}): '
                  f'{samples_per_scene} samples, '
                  f'{time.perf_counter() - t0:.1f} s', flush=True)
    # one blank map mask per location in use
    from PIL import Image
    (out / 'maps').mkdir(exist_ok=True)
    for loc in sorted({r['location'] for r in tables.t['log']}):
        mtok = tables.token('map', loc)
        fname = f'maps/{mtok}.png'
        Image.new('L', (64, 64), 255).save(str(out / fname))
        tables.t['map'].append(
            dict(token=mtok, category='semantic_prior', filename=fname,
                 log_tokens=[
                     r['token'] for r in tables.t['log']
                     if r['location'] == loc
                 ]))
    tables.dump(out / version)
    t_gen = time.perf_counter() - t0
    classes = [c.name for c in sim_cfg.classes]
    per_class = {
        c: float(np.mean([b.get(c, 0) for b in stats['boxes']]))
        for c in classes
    }
    result: Dict[str, object] = dict(
        out_dir=str(out), version=version,
        num_train_scenes=num_train_scenes, num_val_scenes=num_val_scenes,
        num_samples=len(tables.t['sample']),
        num_sweeps=len(stats['points_sweep']),
        num_annotations=len(tables.t['sample_annotation']),
        points_key=float(np.mean(stats['points_key'])),
        points_sweep=float(np.mean(stats['points_sweep']))
        if stats['points_sweep'] else 0.0,
        boxes_per_sample=per_class,
        seconds_generate=t_gen)
    if convert:
        t1 = time.perf_counter()
        if verbose:
            paths = run_nuscenes_converter(str(out), version, info_prefix,
                                           max_sweeps)
        else:
            with _quiet():
                paths = run_nuscenes_converter(str(out), version, info_prefix,
                                               max_sweeps)
        result.update(paths)
        result['seconds_convert'] = time.perf_counter() - t1
    return result


def check_nuscenes_metric(root: str,
                          info_prefix: str = 'nuscenes',
                          verbose: bool = False) -> Dict[str, float]:
    """mmdet3d's ``NuScenesMetric`` (the devkit's detection evaluation) with
    the val ground truth fed back as predictions: every val instance the
    evaluation keeps (at least one point) becomes a detection of score 1
    with its box and velocity. Scores are distinct (1 down to 0.5 in data
    order): the devkit interpolates TP errors over the score, which is
    degenerate when all scores tie. Returns the metric dict (keys
    ``pred_instances_3d_NuScenes/{mAP,NDS,mATE,...}``)."""
    import mmengine
    import torch
    from mmdet3d.evaluation.metrics import NuScenesMetric
    from mmdet3d.structures import LiDARInstance3DBoxes
    from mmengine.structures import InstanceData
    ann = osp.join(str(root), f'{info_prefix}_infos_val.pkl')
    infos = mmengine.load(ann)
    classes = sorted(infos['metainfo']['categories'],
                     key=infos['metainfo']['categories'].get)
    classes = [c for c in classes if infos['metainfo']['categories'][c] >= 0]
    metric = NuScenesMetric(data_root=str(root) + '/', ann_file=ann,
                            metric='bbox')
    metric.dataset_meta = dict(classes=classes,
                               version=infos['metainfo']['version'])
    results = []
    total = sum(
        1 for info in infos['data_list'] for x in info['instances']
        if x['bbox_label_3d'] >= 0 and x['num_lidar_pts'] > 0)
    seen = 0
    for i, info in enumerate(infos['data_list']):
        inst = [
            x for x in info['instances']
            if x['bbox_label_3d'] >= 0 and x['num_lidar_pts'] > 0
        ]
        boxes = np.array([
            list(x['bbox_3d']) + list(np.nan_to_num(x['velocity']))
            for x in inst
        ], np.float32).reshape(-1, 9)
        pred = InstanceData()
        pred.bboxes_3d = LiDARInstance3DBoxes(torch.from_numpy(boxes),
                                              box_dim=9)
        pred.scores_3d = 1.0 - 0.5 * (seen + torch.arange(
            len(inst), dtype=torch.float32)) / max(total, 1)
        seen += len(inst)
        pred.labels_3d = torch.tensor([x['bbox_label_3d'] for x in inst],
                                      dtype=torch.long)
        results.append(
            dict(pred_instances_3d=pred, pred_instances=InstanceData(),
                 sample_idx=i))
    if verbose:
        return metric.compute_metrics(results)
    with _quiet():
        return metric.compute_metrics(results)
