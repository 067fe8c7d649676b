"""Synthetic SemanticKITTI-format point-wise segmentation data.

The street scenes of :mod:`.synthetic_kitti` (road, sidewalks, facades,
trees, bushes, poles, street furniture, cars, vans, pedestrians, cyclists),
with trucks and buses added to the object classes and a few things that
segmentation data has and detection data does not need (fences, hedges,
traffic signs on poles, parking strips, parked bicycles and motorcycles), are
scanned over 360 deg by the simulated HDL-64E of :mod:`.lidar_sim`. Every
point is labelled from the primitive its ray hit (ground points by where
they lie on the street) and written in the real SemanticKITTI layout::

    OUT/sequences/XX/velodyne/NNNNNN.bin   float32 x, y, z, intensity
    OUT/sequences/XX/labels/NNNNNN.label   uint32: raw label | instance << 16

with the raw label ids of ``semantic-kitti.yaml``. Sequences follow the
split that mmdet3d's converter hard-codes (train 00-07, 09, 10; val 08;
test 11-21, unlabelled). mmdet3d's own converter
(``tools/create_data.py semantickitti``) then writes
``semantickitti_infos_{train,val,test}.pkl``; it lists the official number of
frames of every sequence without looking at the disk, so the entries whose
scan was not generated are dropped afterwards (order and fields unchanged).

Labelling rules (raw ids):

* ground: road (40) on the carriageway, parking (44) on parking strips along
  its edges, sidewalk (48) under the sidewalks, terrain (72) elsewhere;
  sidewalk boxes and their curbs: sidewalk (48);
* facades: building (50); fences: fence (51); tree trunks: trunk (71);
  crowns, bushes, hedges and far vegetation: vegetation (70); poles: pole
  (80); sign plates: traffic-sign (81); street furniture: other-object (99,
  which the 19-class mapping ignores);
* cars and vans: car (10), trucks: truck (18), buses: other-vehicle (20),
  pedestrians: person (30); a cyclist's rider: bicyclist (31), the bicycle
  under the rider: bicycle (11); parked bicycles: bicycle (11), parked
  motorcycles: motorcycle (15). Each thing (object, and for a cyclist rider
  and bicycle separately) has its own instance id (1, 2, ... per frame);
  stuff has instance 0.

The same seed gives byte-identical files.
"""
from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
import types
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .lidar_sim import (Box, Foliage, LidarConfig, LidarSimulator, Primitive,
                        Scan)
from .synthetic_kitti import (DEFAULT_CLASSES, ObjectClassSpec, Scene,
                              SceneConfig, SceneObject, StreetLayout,
                              load_mmdet3d_converters, sample_scene)

__all__ = [
    'RAW_LABELS', 'SEMANTICKITTI_CLASSES', 'BACKGROUND_LABELS',
    'OBJECT_LABELS', 'PART_LABELS', 'default_street_config',
    'SemanticSceneConfig', 'SemanticExtras', 'SemanticFrame',
    'add_semantic_extras', 'ground_labels', 'label_points',
    'simulate_semantic_frame', 'write_semantic_frame',
    'load_mmdet3d_semantickitti_converter', 'converter_splits',
    'run_semantickitti_converter', 'create_demo_semantickitti'
]

#: Raw SemanticKITTI label ids (``semantic-kitti.yaml``) this generator uses.
RAW_LABELS: Dict[str, int] = {
    'unlabeled': 0,
    'car': 10,
    'bicycle': 11,
    'motorcycle': 15,
    'truck': 18,
    'other-vehicle': 20,
    'person': 30,
    'bicyclist': 31,
    'road': 40,
    'parking': 44,
    'sidewalk': 48,
    'building': 50,
    'fence': 51,
    'vegetation': 70,
    'trunk': 71,
    'terrain': 72,
    'pole': 80,
    'traffic-sign': 81,
    'other-object': 99,
}

#: The 19 learning classes of mmdet3d's SemanticKITTI config (index order).
SEMANTICKITTI_CLASSES: Tuple[str, ...] = (
    'car', 'bicycle', 'motorcycle', 'truck', 'bus', 'person', 'bicyclist',
    'motorcyclist', 'road', 'parking', 'sidewalk', 'other-ground', 'building',
    'fence', 'vegetation', 'trunck', 'terrian', 'pole', 'traffic-sign')

#: Raw label of each background tag of :class:`~.synthetic_kitti.Scene`.
BACKGROUND_LABELS: Dict[str, int] = {
    'sidewalk': 48,
    'facade': 50,
    'fence': 51,
    'trunk': 71,
    'crown': 70,
    'bush': 70,
    'hedge': 70,
    'far_vegetation': 70,
    'pole': 80,
    'sign': 81,
    'furniture': 99,
}

#: Raw label of every part of an object of each class (cyclists and
#: parked two-wheelers: see :data:`PART_LABELS`).
OBJECT_LABELS: Dict[str, int] = {
    'Car': 10,
    'Van': 10,
    'Truck': 18,
    'Bus': 20,
    'Pedestrian': 30,
    'Bicycle': 11,
    'Motorcycle': 15,
}

#: Per-part raw labels where parts of one object differ: a cyclist is the
#: bicycle (first part of :func:`~.synthetic_kitti.object_primitives`) and
#: the rider (the other three).
PART_LABELS: Dict[str, Tuple[int, ...]] = {'Cyclist': (11, 31, 31, 31)}

_TRUCK = ObjectClassSpec('Truck', (0, 1), (7.5, 2.45, 3.2), (1.2, 0.1, 0.3),
                         (5.5, 2.2, 2.6), (10.0, 2.6, 3.8), 'van',
                         (0.4, 0.6, 0.0), (0.1, 0.6))
_BUS = ObjectClassSpec('Bus', (0, 1), (11.0, 2.55, 3.1), (1.0, 0.05, 0.15),
                       (9.0, 2.4, 2.8), (13.0, 2.6, 3.5), 'van',
                       (0.7, 0.3, 0.0), (0.1, 0.6))


def _street_classes() -> Tuple[ObjectClassSpec, ...]:
    by_name = {c.name: c for c in DEFAULT_CLASSES}
    return (by_name['Car'], by_name['Van'], _TRUCK, _BUS,
            replace(by_name['Pedestrian'], count=(0, 3)),
            replace(by_name['Cyclist'], count=(0, 2)))


def default_street_config() -> SceneConfig:
    """The KITTI street scene with trucks and buses, fewer pedestrians and
    cyclists, objects all around the sensor (the scan is 360 deg), narrower
    roads, more buildings and more vegetation, so that the class shares come
    near SemanticKITTI's."""
    return SceneConfig(classes=_street_classes(),
                       object_extent=(-45.0, 60.0),
                       road_half_width=(2.5, 6.0),
                       facade_prob=0.6,
                       trees_per_100m=6.0,
                       bushes_per_100m=10.0,
                       far_vegetation_per_100m=30.0)


@dataclass
class SemanticSceneConfig:
    """Scene parameters (lengths in m; ``*_per_100m``: Poisson rates per
    100 m of street per side; ``*_per_scene``: Poisson means per scene).

    Attributes:
        street: The street scene of :func:`~.synthetic_kitti.sample_scene`.
        parking_prob: Chance that a sidewalk-long stretch of road edge is a
            parking strip.
        parking_width: Width range of parking strips (inside the road).
        fences_per_100m: Fence runs between sidewalk and buildings / land.
        fence_length / fence_height / fence_offset: Fence run size and its
            distance behind the sidewalk.
        fence_thickness / fence_reflectivity / fence_dropout: Fence surface.
        hedges_per_100m: Hedge runs behind the sidewalk, in front of the
            facade line.
        hedge_length / hedge_height / hedge_depth: Hedge run size; a run is
            a row of foliage ellipsoids ``hedge_piece`` m long (axis-aligned
            like every :class:`~.lidar_sim.Foliage`, so hedges follow the
            street only as far as its heading is near the x axis).
        hedge_mean_free_path: How far rays get into a hedge.
        hedges_before_facades: Also plant hedges on street sides with
            buildings (in the setback), where they hide the facades.
        sign_prob: Chance that a pole carries a sign plate.
        sign_size: Width and height range of a sign plate.
        sign_height: Range of the plate centre above the ground (clipped to
            the pole top).
        sign_reflectivity: Sign plates are retro-reflective.
        bicycles_per_scene / motorcycles_per_scene: Parked two-wheelers.
        two_wheeler_reflectivity: Their surface.
    """
    street: SceneConfig = field(default_factory=default_street_config)
    parking_prob: float = 0.12
    parking_width: Tuple[float, float] = (2.0, 2.6)
    fences_per_100m: float = 3.5
    fence_length: Tuple[float, float] = (5.0, 30.0)
    fence_height: Tuple[float, float] = (0.8, 2.2)
    fence_offset: Tuple[float, float] = (0.1, 1.5)
    fence_thickness: float = 0.06
    fence_reflectivity: Tuple[float, float] = (0.15, 0.5)
    fence_dropout: float = 0.15
    hedges_per_100m: float = 4.0
    hedge_length: Tuple[float, float] = (4.0, 25.0)
    hedge_height: Tuple[float, float] = (0.8, 2.5)
    hedge_depth: Tuple[float, float] = (0.8, 2.0)
    hedge_piece: float = 2.5
    hedge_mean_free_path: float = 0.25
    hedges_before_facades: bool = True
    sign_prob: float = 0.7
    sign_size: Tuple[float, float] = (0.6, 1.0)
    sign_height: Tuple[float, float] = (2.0, 3.2)
    sign_reflectivity: Tuple[float, float] = (0.6, 0.95)
    bicycles_per_scene: float = 0.8
    motorcycles_per_scene: float = 0.4
    two_wheeler_reflectivity: Tuple[float, float] = (0.1, 0.5)


@dataclass
class SemanticExtras:
    """What :func:`add_semantic_extras` decided beyond the primitives it
    added: ``parking[side]`` flags each sidewalk-long stretch of road edge
    (``layout.segment`` m) as parking strip of width ``parking_width[side]``.
    """
    parking: Dict[int, np.ndarray]
    parking_width: Dict[int, float]


@dataclass
class SemanticFrame:
    """One labelled scan: ``semantic`` raw label ids ``(N,)`` uint16 and
    ``instance`` ids ``(N,)`` uint16 of ``scan.points``."""
    scene: Scene
    scan: Scan
    extras: SemanticExtras
    semantic: np.ndarray
    instance: np.ndarray

    def label_words(self) -> np.ndarray:
        """The ``.label`` file content: ``semantic | instance << 16``."""
        return (self.semantic.astype(np.uint32) |
                (self.instance.astype(np.uint32) << np.uint32(16)))


# ---------------------------------------------------------------------------
# scene additions
# ---------------------------------------------------------------------------


def _u(rng: np.random.Generator, r: Tuple[float, float]) -> float:
    return float(rng.uniform(r[0], r[1]))


def _surface_height(scene: Scene, side: int, s: float, q: float) -> float:
    """Top of the sidewalk or of the ground under road coordinates."""
    lay = scene.layout
    sw, curb, _, _ = lay.sides[side]
    s_lo, s_hi = lay.street_extent
    if sw > 0 and lay.half_width <= abs(q) <= lay.half_width + sw and \
            s_lo <= s <= s_hi:
        n_seg = int(round((s_hi - s_lo) / lay.segment))
        k = min(max(int((s - s_lo) // lay.segment), 0), n_seg - 1)
        cx, cy = lay.to_xy(s_lo + (k + 0.5) * lay.segment,
                           side * (lay.half_width + 0.5 * sw))
        return float(scene.ground.height(cx, cy)) + curb
    return float(scene.ground.height(*lay.to_xy(s, q)))


def _two_wheeler_parts(kind: str, box: np.ndarray, refl: float,
                       owner: int) -> List[Primitive]:
    """Wheels and frame / body of a parked bicycle or motorcycle."""
    x, y, zb, l, w, h, yaw = [float(v) for v in box]
    c, s = math.cos(yaw), math.sin(yaw)

    def part(dx: float, z0: float, z1: float, pl: float, pw: float,
             drop: float) -> Box:
        return Box((x + c * dx, y + s * dx, zb + 0.5 * (z0 + z1)),
                   (pl, pw, z1 - z0), yaw, refl, drop, owner)

    wheel = 0.68 if kind == 'Bicycle' else 0.6
    tyre = 0.05 if kind == 'Bicycle' else 0.14
    parts = [
        part(sx * 0.5 * (l - wheel), 0.0, wheel, wheel, tyre,
             0.5 if kind == 'Bicycle' else 0.1) for sx in (-1, 1)
    ]
    if kind == 'Bicycle':
        parts.append(part(0.0, 0.45, h, 0.55 * l, 0.08, 0.3))
    else:
        parts.append(part(0.0, 0.3, h, 0.7 * l, w, 0.05))
    return parts


def add_semantic_extras(scene: Scene, cfg: SemanticSceneConfig,
                        rng: np.random.Generator) -> SemanticExtras:
    """Add fences, hedges, sign plates and parked two-wheelers to a street
    scene of :func:`~.synthetic_kitti.sample_scene` (in place, tagged in
    ``scene.background_tags``) and draw its parking strips."""
    lay = scene.layout
    if lay is None:
        raise ValueError('the scene has no street layout; build it with '
                         'synthetic_kitti.sample_scene')
    hw, psi = lay.half_width, lay.heading
    s_lo, s_hi = lay.street_extent
    n_seg = int(round((s_hi - s_lo) / lay.segment))
    gz = scene.ground.height

    def add(prim: Primitive, tag: str) -> None:
        scene.background.append(prim)
        scene.background_tags.append(tag)

    parking, parking_width = {}, {}
    for side in (-1, 1):
        parking[side] = rng.random(n_seg) < cfg.parking_prob
        parking_width[side] = _u(rng, cfg.parking_width)

    # fences behind the sidewalk, in front of the facade line
    for side in (-1, 1):
        sw, _, facade, setback = lay.sides[side]
        for _ in range(int(rng.poisson(cfg.fences_per_100m *
                                       (s_hi - s_lo) / 100.0))):
            s0 = _u(rng, lay.street_extent)
            length = _u(rng, cfg.fence_length)
            off = _u(rng, cfg.fence_offset)
            height = _u(rng, cfg.fence_height)
            refl = _u(rng, cfg.fence_reflectivity)
            if facade and off > setback - 0.2:
                continue  # no room in front of the building
            x, y = lay.to_xy(s0 + 0.5 * length, side * (hw + sw + off))
            base = float(gz(x, y)) - 0.2 - 0.01 * length
            top = float(gz(x, y)) + height
            add(
                Box((float(x), float(y), 0.5 * (base + top)),
                    (length, cfg.fence_thickness, top - base), psi, refl,
                    cfg.fence_dropout), 'fence')

    # hedges: rows of foliage pieces behind the sidewalk
    for side in (-1, 1):
        sw, _, facade, setback = lay.sides[side]
        for _ in range(int(rng.poisson(cfg.hedges_per_100m *
                                       (s_hi - s_lo) / 100.0))):
            s0 = _u(rng, lay.street_extent)
            length = _u(rng, cfg.hedge_length)
            height = _u(rng, cfg.hedge_height)
            depth = _u(rng, cfg.hedge_depth)
            refl = _u(rng, cfg.street.vegetation_reflectivity)
            if facade and not cfg.hedges_before_facades:
                continue
            if facade and depth > setback:
                continue  # no room in front of the building
            q = side * (hw + sw + 0.5 * depth + 0.1)
            n_piece = max(1, int(round(length / cfg.hedge_piece)))
            for k in range(n_piece):
                x, y = lay.to_xy(s0 + (k + 0.5) * length / n_piece, q)
                add(
                    Foliage((float(x), float(y), float(gz(x, y)) +
                             0.5 * height),
                            (0.6 * length / n_piece, 0.5 * depth,
                             0.5 * height), cfg.hedge_mean_free_path, refl),
                    'hedge')

    # sign plates on poles, facing along the street
    poles = [
        p for p, t in zip(list(scene.background), scene.background_tags)
        if t == 'pole'
    ]
    along = np.array([math.cos(psi), math.sin(psi)])
    for pole in poles:
        if rng.random() >= cfg.sign_prob:
            continue
        width, height = _u(rng, cfg.sign_size), _u(rng, cfg.sign_size)
        facing = 1.0 if rng.random() < 0.5 else -1.0
        cx, cy = np.asarray(pole.center_xy) + facing * along * (pole.radius +
                                                                0.03)
        zc = min(float(gz(cx, cy)) + _u(rng, cfg.sign_height),
                 pole.z_max - 0.5 * height)
        add(
            Box((float(cx), float(cy), zc),
                (0.04, width, height), psi, _u(rng, cfg.sign_reflectivity)),
            'sign')

    # parked bicycles (sidewalk) and motorcycles (road edge or sidewalk)
    owner = 1 + max([o.owner for o in scene.objects], default=-1)
    for kind, rate in (('Bicycle', cfg.bicycles_per_scene),
                       ('Motorcycle', cfg.motorcycles_per_scene)):
        for _ in range(int(rng.poisson(rate))):
            side = -1 if rng.random() < 0.5 else 1
            sw = lay.sides[side][0]
            s = _u(rng, cfg.street.object_extent)
            if kind == 'Bicycle':
                l, w, h = _u(rng, (1.6, 1.8)), 0.5, _u(rng, (0.95, 1.1))
            else:
                l, w, h = _u(rng, (1.9, 2.2)), _u(rng, (0.6, 0.8)), \
                    _u(rng, (1.0, 1.25))
            if sw >= 1.2:
                q = side * (hw + _u(rng, (0.4, sw - 0.4)))
            elif kind == 'Motorcycle':
                q = side * (hw - 0.5 * w - _u(rng, (0.1, 0.4)))
            else:
                continue
            x, y = lay.to_xy(s, q)
            r = 0.5 * math.hypot(l, w)
            if not lay.occupied.free(float(x), float(y), r):
                continue
            lay.occupied.add(float(x), float(y), r)
            yaw = psi + (math.pi if rng.random() < 0.5 else 0.0) + \
                math.radians(float(rng.normal(0.0, 20.0)))
            yaw = (yaw + math.pi) % (2 * math.pi) - math.pi
            box = np.array([
                float(x),
                float(y),
                _surface_height(scene, side, s, q), l, w, h, yaw
            ])
            refl = _u(rng, cfg.two_wheeler_reflectivity)
            scene.objects.append(
                SceneObject(kind, box, owner,
                            _two_wheeler_parts(kind, box, refl, owner)))
            owner += 1
    return SemanticExtras(parking=parking, parking_width=parking_width)


# ---------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------


def ground_labels(xy: np.ndarray, layout: StreetLayout,
                  extras: SemanticExtras) -> np.ndarray:
    """Raw labels of ground-plane points ``(N, 2)`` by where they lie:
    road, parking strip, sidewalk (seams under sidewalk boxes) or terrain."""
    s, q = layout.to_sq(xy[:, 0], xy[:, 1])
    aq = np.abs(q)
    side = np.where(q >= 0, 1, -1)
    hw = layout.half_width
    s_lo, s_hi = layout.street_extent
    in_street = (s >= s_lo) & (s <= s_hi)
    n_seg = int(round((s_hi - s_lo) / layout.segment))
    k = np.clip(((s - s_lo) // layout.segment).astype(np.int64), 0, n_seg - 1)
    sw = np.where(side > 0, layout.sides[1][0], layout.sides[-1][0])
    pw = np.where(side > 0, extras.parking_width[1], extras.parking_width[-1])
    park_flag = np.where(side > 0, extras.parking[1][k], extras.parking[-1][k])
    out = np.full(len(xy), RAW_LABELS['terrain'], dtype=np.uint16)
    out[aq <= hw] = RAW_LABELS['road']
    out[(aq <= hw) & (aq >= hw - pw) & park_flag
        & in_street] = RAW_LABELS['parking']
    out[(aq > hw) & (aq <= hw + sw) & in_street] = RAW_LABELS['sidewalk']
    return out


def label_points(scene: Scene, scan: Scan,
                 extras: SemanticExtras) -> Tuple[np.ndarray, np.ndarray]:
    """Raw semantic labels and instance ids ``(N,)`` uint16 of a scan of
    ``scene.primitives()`` (see the module docstring for the rules)."""
    n = len(scan.points)
    if n == 0:
        return np.zeros(0, np.uint16), np.zeros(0, np.uint16)
    if scan.prim_index is None:
        raise ValueError('the scan has no prim_index; scan the scene with '
                         'LidarSimulator.scan')
    sem: List[int] = [-1]  # the ground, labelled by position below
    inst: List[int] = [0]
    for tag in scene.background_tags:
        if tag not in BACKGROUND_LABELS:
            raise KeyError(f'no SemanticKITTI label for background {tag!r}; '
                           f'known: {sorted(BACKGROUND_LABELS)}')
        sem.append(BACKGROUND_LABELS[tag])
        inst.append(0)
    if len(sem) != 1 + len(scene.background):
        raise ValueError('scene.background_tags must name every background '
                         'primitive')
    next_id = 1
    for obj in scene.objects:
        if obj.name in PART_LABELS:
            labels = PART_LABELS[obj.name]
            if len(labels) != len(obj.parts):
                raise ValueError(f'{obj.name} has {len(obj.parts)} parts, '
                                 f'expected {len(labels)}')
        elif obj.name in OBJECT_LABELS:
            labels = (OBJECT_LABELS[obj.name], ) * len(obj.parts)
        else:
            raise KeyError(f'no SemanticKITTI label for objects of class '
                           f'{obj.name!r}; add it to OBJECT_LABELS')
        ids: Dict[int, int] = {}
        for lab in labels:
            if lab not in ids:
                ids[lab] = next_id
                next_id += 1
            sem.append(lab)
            inst.append(ids[lab])
    sem_arr = np.asarray(sem, dtype=np.int64)
    inst_arr = np.asarray(inst, dtype=np.int64)
    pidx = scan.prim_index
    semantic = sem_arr[pidx]
    on_ground = pidx == 0
    semantic[on_ground] = ground_labels(scan.points[on_ground, :2],
                                        scene.layout, extras)
    return semantic.astype(np.uint16), inst_arr[pidx].astype(np.uint16)


def simulate_semantic_frame(
        rng: np.random.Generator,
        cfg: Optional[SemanticSceneConfig] = None,
        simulator: Optional[LidarSimulator] = None) -> SemanticFrame:
    """Sample a street scene with its segmentation extras, scan it over
    360 deg and label every point."""
    cfg = cfg or SemanticSceneConfig()
    simulator = simulator or LidarSimulator()
    if not simulator.cfg.full_circle:
        raise ValueError('SemanticKITTI scans are 360 deg: use a LidarConfig '
                         'with azimuth_min_deg=-180, azimuth_max_deg=180')
    scene = sample_scene(cfg.street, rng)
    extras = add_semantic_extras(scene, cfg, rng)
    scan = simulator.scan(scene.primitives(), rng)
    semantic, instance = label_points(scene, scan, extras)
    return SemanticFrame(scene, scan, extras, semantic, instance)


def write_semantic_frame(root: str,
                         sequence: int,
                         idx: int,
                         points: np.ndarray,
                         label_words: Optional[np.ndarray] = None) -> None:
    """Write ``sequences/XX/velodyne/NNNNNN.bin`` and, unless
    ``label_words`` is ``None`` (test sequences), ``labels/NNNNNN.label``."""
    seq = Path(root) / 'sequences' / f'{int(sequence):02d}'
    (seq / 'velodyne').mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(points, dtype=np.float32).tofile(
        str(seq / 'velodyne' / f'{idx:06d}.bin'))
    if label_words is not None:
        if len(label_words) != len(points):
            raise ValueError(f'{len(label_words)} labels for {len(points)} '
                             'points')
        (seq / 'labels').mkdir(parents=True, exist_ok=True)
        np.ascontiguousarray(label_words, dtype=np.uint32).tofile(
            str(seq / 'labels' / f'{idx:06d}.label'))


# ---------------------------------------------------------------------------
# mmdet3d's converter
# ---------------------------------------------------------------------------



def load_mmdet3d_semantickitti_converter(
        reload: bool = False) -> types.ModuleType:
    """mmdet3d's own ``tools/dataset_converters/semantickitti_converter``,
    unmodified (loaded once; the repository's ``tools`` stays in place)."""
    return load_mmdet3d_converters('semantickitti_converter',
                                   reload=reload).semantickitti_converter


def converter_splits() -> Dict[str, List[int]]:
    """Sequence ids per split, as mmdet3d's converter hard-codes them."""
    conv = load_mmdet3d_semantickitti_converter()
    return {k: [int(v) for v in conv.fold_split[k]]
            for k in ('train', 'val', 'test')}


def run_semantickitti_converter(
        root: str, info_prefix: str = 'semantickitti') -> Dict[str, str]:
    """What ``tools/create_data.py semantickitti --root-path R --out-dir R
    --extra-tag P`` does (``semantickitti_data_prep``), then drop the info
    entries whose scan is not under ``root``. Returns the paths written."""
    import mmengine
    conv = load_mmdet3d_semantickitti_converter()
    conv.create_semantickitti_info_file(info_prefix, root)
    paths = {}
    for split in ('train', 'val', 'test'):
        pkl = os.path.join(root, f'{info_prefix}_infos_{split}.pkl')
        infos = mmengine.load(pkl)
        infos['data_list'] = [
            d for d in infos['data_list'] if os.path.exists(
                os.path.join(root, d['lidar_points']['lidar_path']))
        ]
        mmengine.dump(infos, pkl)
        paths[f'infos_{split}'] = pkl
    return paths


# ---------------------------------------------------------------------------
# whole data set
# ---------------------------------------------------------------------------


def _frame_rng(seed: int, sequence: int, idx: int) -> np.random.Generator:
    # 0x5E3A: a stream of its own, apart from synthetic_kitti's frames
    return np.random.default_rng(
        np.random.SeedSequence([0x5E3A, int(seed),
                                int(sequence),
                                int(idx)]))


def _spread(num: int, sequences: Sequence[int]) -> List[Tuple[int, int]]:
    """``num`` frames over ``sequences`` as evenly as possible, as
    ``(sequence, frame id)`` pairs in sequence order."""
    out = []
    base, extra = divmod(int(num), len(sequences))
    for i, seq in enumerate(sequences):
        out += [(seq, j) for j in range(base + (i < extra))]
    return out


def create_demo_semantickitti(out_dir: str = 'data/demo_semantickitti',
                              num_train: int = 40,
                              num_val: int = 16,
                              seed: int = 0,
                              num_test: int = 0,
                              scene_cfg: Optional[SemanticSceneConfig] = None,
                              lidar_cfg: Optional[LidarConfig] = None,
                              convert: bool = True,
                              info_prefix: str = 'semantickitti',
                              overwrite: bool = False,
                              verbose: bool = True) -> Dict[str, object]:
    """Generate a synthetic SemanticKITTI-format data set and convert it.

    Training frames are spread over the converter's train sequences (00-07,
    09, 10; ``num_train=40`` gives 4 each), validation frames go to its val
    sequence (08), and ``num_test`` unlabelled frames are spread over its
    test sequences (11-21). Frame ``j`` of sequence ``s`` depends only on
    ``(seed, s, j)``.

    Args:
        out_dir: Data root (created).
        num_train / num_val / num_test: Frames per split.
        seed: Random seed.
        scene_cfg / lidar_cfg: Scene and sensor (the sensor must scan 360
            deg).
        convert: Run mmdet3d's SemanticKITTI converter afterwards.
        info_prefix: Prefix of the info files (``--extra-tag``).
        overwrite: Replace a previous data set in ``out_dir``.
        verbose: Print progress and the converter's output.

    Returns:
        A dict with ``out_dir``, frame counts, ``sequences`` per split,
        ``class_points`` (points per raw class name, train + val),
        ``class_share`` (the same over all labelled points),
        ``mean_points`` per scan, ``seconds_generate``, and if converted,
        ``infos_{train,val,test}`` and ``seconds_convert``.
    """
    cfg = scene_cfg or SemanticSceneConfig()
    if min(num_train, num_val, num_test) < 0:
        raise ValueError('frame counts must be >= 0')
    if convert and (num_train < 1 or num_val < 1):
        raise ValueError('give train and val at least one frame each '
                         '(num_train >= 1, num_val >= 1), or convert=False')
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f'{out} is not empty; pass overwrite=True (--overwrite) to '
                'replace the data set there, or choose another directory')
        shutil.rmtree(out / 'sequences', ignore_errors=True)
        for p in out.glob(f'{info_prefix}_infos_*.pkl'):
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    folds = converter_splits()
    splits = [('train', _spread(num_train, folds['train'])),
              ('val', _spread(num_val, folds['val'])),
              ('test', _spread(num_test, folds['test']))]
    sim = LidarSimulator(lidar_cfg)
    names = {v: k for k, v in RAW_LABELS.items()}
    counts = np.zeros(1 << 16, dtype=np.int64)
    n_points: List[int] = []
    total = num_train + num_val + num_test
    done = 0
    t0 = time.perf_counter()
    for split, frames in splits:
        for seq, idx in frames:
            frame = simulate_semantic_frame(_frame_rng(seed, seq, idx), cfg,
                                            sim)
            labelled = split != 'test'
            write_semantic_frame(str(out), seq, idx, frame.scan.points,
                                 frame.label_words() if labelled else None)
            n_points.append(len(frame.scan.points))
            if labelled:
                counts += np.bincount(frame.semantic, minlength=1 << 16)
            done += 1
            if verbose and (done == total or done % max(1, total // 8) == 0):
                print(
                    f'[{done}/{total}] {split} sequences/{seq:02d}/'
                    f'{idx:06d}: {len(frame.scan.points)} points '
                    f'({time.perf_counter() - t0:.1f} s)',
                    flush=True)
    t_gen = time.perf_counter() - t0
    labelled_total = int(counts.sum())
    class_points = {
        names.get(int(i), str(int(i))): int(counts[i])
        for i in np.nonzero(counts)[0]
    }
    result: Dict[str, object] = dict(
        out_dir=str(out),
        num_train=num_train,
        num_val=num_val,
        num_test=num_test,
        sequences={
            split: sorted({s
                           for s, _ in frames})
            for split, frames in splits
        },
        class_points=class_points,
        class_share={
            k: v / max(labelled_total, 1)
            for k, v in class_points.items()
        },
        mean_points=float(np.mean(n_points)) if n_points else 0.0,
        seconds_generate=t_gen)
    if convert:
        t1 = time.perf_counter()
        if verbose:
            paths = run_semantickitti_converter(str(out), info_prefix)
        else:
            with open(os.devnull, 'w') as devnull, \
                    contextlib.redirect_stdout(devnull):
                paths = run_semantickitti_converter(str(out), info_prefix)
        result.update(paths)
        result['seconds_convert'] = time.perf_counter() - t1
    return result
