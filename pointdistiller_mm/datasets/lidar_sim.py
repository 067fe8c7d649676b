"""A vectorised ray-casting simulator of a spinning multi-beam LiDAR.

The sensor sits at the origin of its own frame (x forward, y left, z up) and
fires one ray per (beam, azimuth column). Every ray is intersected with a list
of primitives (ground plane, oriented boxes, vertical cylinders, volumetric
ellipsoids for foliage); the nearest hit wins, so occlusion, range fall-off
and the ring-shaped sparsity of real scans come from the geometry itself.
A return is then kept with a probability that falls with range, with low
reflectivity and with grazing incidence, plus random dropout; kept returns get
Gaussian range noise and an intensity in [0, 1].

Primitives carry an ``owner`` id: every ray records which owner it hit, so a
caller can count, per object, how many rays would hit it without occluders
(``rays_unoccluded``) and how many actually did (``rays_visible``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    'LidarConfig', 'GroundPlane', 'Box', 'VerticalCylinder', 'Foliage',
    'Primitive', 'Scan', 'LidarSimulator', 'hdl64_elevations'
]


def hdl64_elevations(upper: Tuple[float, float, int] = (2.0, -8.33, 32),
                     lower: Tuple[float, float,
                                  int] = (-8.83, -24.8, 32)) -> np.ndarray:
    """Beam elevation angles (deg, descending) of a two-block 64-beam sensor.

    Each block is ``(first_deg, last_deg, num_beams)`` spaced evenly, which is
    how the HDL-64E lays out its upper (about 1/3 deg) and lower (about
    1/2 deg) laser blocks.
    """
    return np.concatenate([
        np.linspace(upper[0], upper[1], int(upper[2])),
        np.linspace(lower[0], lower[1], int(lower[2]))
    ])


@dataclass
class LidarConfig:
    """Sensor model. Defaults imitate the Velodyne HDL-64E used by KITTI.

    Attributes:
        elevations_deg: Beam elevation angles in degrees; ``None`` means
            :func:`hdl64_elevations` with default blocks.
        azimuth_step_deg: Horizontal angle between two firings of a beam.
        azimuth_min_deg / azimuth_max_deg: Horizontal field of view
            (``-180, 180`` is a full revolution; 0 deg is the +x axis).
        random_azimuth_phase: Shift all columns by a random fraction of a
            step per scan, as a free-running spinning sensor does.
        min_range / max_range: Returns outside this range are discarded.
        range_noise_std: Std (m) of Gaussian noise added along the ray.
        dropout: Probability that any return is lost regardless of geometry.
        detect_range_ref: Range (m) at which a return of ``reflectivity_ref``
            at normal incidence is detected with probability 1/2.
        reflectivity_ref: Reflectivity that ``detect_range_ref`` refers to.
        incidence_exponent: Effective reflectivity is
            ``reflectivity * cos(incidence) ** incidence_exponent``; rough
            surfaces scatter back far more than Lambert's law (exponent 1).
        detect_sharpness: Exponent ``k`` of the detection probability
            ``1 / (1 + (r / r50) ** k)``.
        intensity_noise_std: Relative Gaussian noise on intensities.
        intensity_quantum: Intensities are rounded to multiples of this
            (KITTI stores multiples of 0.01); 0 disables rounding.
    """
    elevations_deg: Optional[Sequence[float]] = None
    azimuth_step_deg: float = 0.17
    azimuth_min_deg: float = -180.0
    azimuth_max_deg: float = 180.0
    random_azimuth_phase: bool = True
    min_range: float = 2.5
    max_range: float = 120.0
    range_noise_std: float = 0.01
    dropout: float = 0.03
    detect_range_ref: float = 160.0
    reflectivity_ref: float = 0.5
    incidence_exponent: float = 0.1
    detect_sharpness: float = 6.0
    intensity_noise_std: float = 0.1
    intensity_quantum: float = 0.01

    def elevations(self) -> np.ndarray:
        """Beam elevations in degrees, as an array."""
        if self.elevations_deg is None:
            return hdl64_elevations()
        return np.asarray(self.elevations_deg, dtype=np.float64)

    @property
    def num_columns(self) -> int:
        """Number of azimuth firings per scan."""
        span = self.azimuth_max_deg - self.azimuth_min_deg
        return max(1, int(round(span / self.azimuth_step_deg)))

    @property
    def full_circle(self) -> bool:
        """Whether the azimuth range covers a whole revolution."""
        return self.azimuth_max_deg - self.azimuth_min_deg >= 360.0 - 1e-6


@dataclass
class GroundPlane:
    """Plane ``z = z0 + grade_x * x + grade_y * y`` (sensor frame)."""
    z0: float
    grade_x: float = 0.0
    grade_y: float = 0.0
    reflectivity: float = 0.2
    dropout: float = 0.0
    owner: int = -1

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ground height under ``(x, y)``."""
        return self.z0 + self.grade_x * np.asarray(x) + self.grade_y * \
            np.asarray(y)


@dataclass
class Box:
    """Oriented box: geometric ``center``, ``size`` (x, y, z extents in the
    box frame) and ``yaw`` about +z."""
    center: Tuple[float, float, float]
    size: Tuple[float, float, float]
    yaw: float = 0.0
    reflectivity: float = 0.3
    dropout: float = 0.0
    owner: int = -1


@dataclass
class VerticalCylinder:
    """Upright cylinder (poles, trunks) between ``z_min`` and ``z_max``."""
    center_xy: Tuple[float, float]
    radius: float
    z_min: float
    z_max: float
    reflectivity: float = 0.3
    dropout: float = 0.0
    owner: int = -1


@dataclass
class Foliage:
    """Axis-aligned ellipsoid of foliage that scatters rays volumetrically.

    A ray entering it travels an exponentially distributed distance (mean
    ``mean_free_path``) before it hits a leaf; if that is beyond the exit
    point the ray passes through.
    """
    center: Tuple[float, float, float]
    radii: Tuple[float, float, float]
    mean_free_path: float = 0.6
    reflectivity: float = 0.25
    dropout: float = 0.0
    owner: int = -1


Primitive = Union[GroundPlane, Box, VerticalCylinder, Foliage]


@dataclass
class Scan:
    """Result of one simulated revolution.

    Attributes:
        points: ``(N, 4)`` float32 x, y, z, intensity in the sensor frame.
        owner: ``(N,)`` int32 owner id of the primitive each point hit.
        rays_unoccluded: Per owner id >= 0, rays that hit it with all other
            owners removed (before detection and dropout).
        rays_visible: Per owner id >= 0, rays whose nearest hit is it (before
            detection and dropout).
        num_rays: Rays fired.
        prim_index: ``(N,)`` int32 index, in the primitive list given to
            :meth:`LidarSimulator.scan`, of the primitive each point hit
            (``None`` where unknown).
        ring: ``(N,)`` int32 beam index of each point (0: the beam with the
            first, i.e. highest, elevation), ``None`` where unknown.
    """
    points: np.ndarray
    owner: np.ndarray
    rays_unoccluded: Dict[int, int] = field(default_factory=dict)
    rays_visible: Dict[int, int] = field(default_factory=dict)
    num_rays: int = 0
    prim_index: Optional[np.ndarray] = None
    ring: Optional[np.ndarray] = None

    def points_of(self, owner: int) -> np.ndarray:
        """Points that hit primitives of ``owner``."""
        return self.points[self.owner == owner]


def _bounding_sphere(prim: Primitive) -> Tuple[np.ndarray, float]:
    if isinstance(prim, Box):
        return np.asarray(prim.center,
                          float), 0.5 * float(np.linalg.norm(prim.size))
    if isinstance(prim, VerticalCylinder):
        zc = 0.5 * (prim.z_min + prim.z_max)
        half_h = 0.5 * (prim.z_max - prim.z_min)
        return (np.array([prim.center_xy[0], prim.center_xy[1],
                          zc]), math.hypot(prim.radius, half_h))
    if isinstance(prim, Foliage):
        return np.asarray(prim.center, float), float(max(prim.radii))
    raise TypeError(f'no bounding sphere for {type(prim).__name__}')


def _union_sphere(prims: Sequence[Primitive]) -> Tuple[np.ndarray, float]:
    spheres = [_bounding_sphere(p) for p in prims]
    centers = np.stack([c for c, _ in spheres])
    center = centers.mean(axis=0)
    radius = max(float(np.linalg.norm(c - center)) + r for c, r in spheres)
    return center, radius


def _safe_inv(d: np.ndarray) -> np.ndarray:
    small = np.abs(d) < 1e-12
    return 1.0 / np.where(small, np.where(d >= 0, 1e-12, -1e-12), d)


def _hit_box(prim: Box, dirs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Slab test of rays from the origin against an oriented box."""
    c, s = math.cos(prim.yaw), math.sin(prim.yaw)
    center = np.asarray(prim.center, float)
    # rotate into the box frame: R^T (p - center)
    o = np.array([
        c * -center[0] + s * -center[1], -s * -center[0] + c * -center[1],
        -center[2]
    ])
    d = np.stack([
        c * dirs[..., 0] + s * dirs[..., 1],
        -s * dirs[..., 0] + c * dirs[..., 1], dirs[..., 2]
    ], -1)
    half = 0.5 * np.asarray(prim.size, float)
    inv = _safe_inv(d)
    t1 = (-half - o) * inv
    t2 = (half - o) * inv
    tnear = np.minimum(t1, t2)
    tfar = np.maximum(t1, t2)
    t_enter = tnear.max(-1)
    t_exit = tfar.min(-1)
    hit = (t_exit >= t_enter) & (t_enter > 0)
    t = np.where(hit, t_enter, np.inf)
    axis = tnear.argmax(-1)
    cos_inc = np.abs(np.take_along_axis(d, axis[..., None], -1)[..., 0])
    return t, cos_inc


def _hit_cylinder(prim: VerticalCylinder,
                  dirs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    ox, oy = -prim.center_xy[0], -prim.center_xy[1]
    dx, dy = dirs[..., 0], dirs[..., 1]
    a = dx * dx + dy * dy
    b = 2.0 * (dx * ox + dy * oy)
    cc = ox * ox + oy * oy - prim.radius**2
    disc = b * b - 4 * a * cc
    ok = (disc >= 0) & (a > 1e-12)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    t = (-b - sq) / np.where(a > 1e-12, 2 * a, 1.0)
    z = t * dirs[..., 2]
    ok &= (t > 0) & (z >= prim.z_min) & (z <= prim.z_max)
    t = np.where(ok, t, np.inf)
    nx = (ox + t * dx) / prim.radius
    ny = (oy + t * dy) / prim.radius
    cos_inc = np.abs(np.where(ok, nx * dx + ny * dy, 0.0))
    return t, cos_inc


def _hit_foliage(prim: Foliage, dirs: np.ndarray,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    radii = np.asarray(prim.radii, float)
    o = -np.asarray(prim.center, float) / radii
    d = dirs / radii
    a = (d * d).sum(-1)
    b = 2.0 * (d @ o)
    cc = float(o @ o) - 1.0
    disc = b * b - 4 * a * cc
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    t0 = np.maximum((-b - sq) / (2 * a), 0.0)
    t1 = (-b + sq) / (2 * a)
    depth = rng.exponential(prim.mean_free_path, size=t0.shape)
    t = t0 + depth
    ok &= (t1 > 0) & (t < t1)
    t = np.where(ok, t, np.inf)
    cos_inc = rng.uniform(0.2, 1.0, size=t0.shape)
    return t, cos_inc


def _hit_ground(prim: GroundPlane,
                dirs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    normal = np.array([-prim.grade_x, -prim.grade_y, 1.0])
    normal /= np.linalg.norm(normal)
    # plane: normal . p = normal . (0, 0, z0)
    rhs = normal[2] * prim.z0
    denom = dirs @ normal
    t = np.where(denom < -1e-9, rhs / np.where(denom < -1e-9, denom, -1.0),
                 np.inf)
    t = np.where(t > 0, t, np.inf)
    return t, np.abs(denom)


class LidarSimulator:
    """Casts one revolution of rays against a list of primitives.

    Args:
        cfg: Sensor model.
    """

    def __init__(self, cfg: Optional[LidarConfig] = None) -> None:
        self.cfg = cfg or LidarConfig()
        self._elev = np.deg2rad(self.cfg.elevations())

    def ray_directions(self,
                       phase: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """Unit directions ``(B, C, 3)`` and column azimuths ``(C,)`` (rad).

        ``phase`` is a fraction of one azimuth step.
        """
        cfg = self.cfg
        step = math.radians(cfg.azimuth_step_deg)
        az = math.radians(
            cfg.azimuth_min_deg) + (np.arange(cfg.num_columns) + phase) * step
        ce, se = np.cos(self._elev), np.sin(self._elev)
        dirs = np.empty((len(self._elev), len(az), 3))
        dirs[..., 0] = ce[:, None] * np.cos(az)[None]
        dirs[..., 1] = ce[:, None] * np.sin(az)[None]
        dirs[..., 2] = se[:, None]
        return dirs, az

    def _window(self, center: np.ndarray, radius: float,
                az0: float) -> Tuple[np.ndarray, np.ndarray]:
        """Beam rows and azimuth columns whose rays may hit a sphere."""
        cfg = self.cfg
        n_rows, n_cols = len(self._elev), cfg.num_columns
        dist = float(np.linalg.norm(center))
        d_xy = math.hypot(center[0], center[1])
        if dist <= radius:
            return np.arange(n_rows), np.arange(n_cols)
        beta = math.asin(min(1.0, radius / dist))
        el_c = math.asin(center[2] / dist)
        rows = np.nonzero((self._elev >= el_c - beta - 1e-9)
                          & (self._elev <= el_c + beta + 1e-9))[0]
        if d_xy <= radius:
            return rows, np.arange(n_cols)
        half = math.asin(radius / d_xy)
        step = math.radians(cfg.azimuth_step_deg)
        phi = math.atan2(center[1], center[0])
        lo = math.floor((phi - half - az0) / step) - 1
        hi = math.ceil((phi + half - az0) / step) + 1
        if cfg.full_circle:
            if hi - lo + 1 >= n_cols:
                return rows, np.arange(n_cols)
            cols = np.arange(lo, hi + 1) % n_cols
        else:
            # azimuths outside the sensor's field of view wrap by 2 pi
            cols = []
            for shift in (-2 * math.pi, 0.0, 2 * math.pi):
                a = math.floor((phi + shift - half - az0) / step) - 1
                b = math.ceil((phi + shift + half - az0) / step) + 1
                a, b = max(a, 0), min(b, n_cols - 1)
                if a <= b:
                    cols.append(np.arange(a, b + 1))
            cols = (np.unique(np.concatenate(cols))
                    if cols else np.zeros(0, dtype=np.int64))
        return rows, cols

    def scan(self, primitives: Sequence[Primitive],
             rng: np.random.Generator) -> Scan:
        """Simulate one revolution.

        Args:
            primitives: Scene in the sensor frame.
            rng: Source of all randomness (azimuth phase, foliage, dropout,
                noise), so the same generator state gives the same scan.
        """
        cfg = self.cfg
        phase = float(rng.random()) if cfg.random_azimuth_phase else 0.0
        dirs, az = self.ray_directions(phase)
        shape = dirs.shape[:2]
        t_best = np.full(shape, np.inf)
        cos_best = np.zeros(shape)
        prim_best = np.full(shape, -1, dtype=np.int32)

        prims = list(primitives)
        groups: Dict[int, List[int]] = {}
        singles: List[int] = []
        for i, p in enumerate(prims):
            if p.owner >= 0 and not isinstance(p, GroundPlane):
                groups.setdefault(p.owner, []).append(i)
            else:
                singles.append(i)
        rays_unoccluded: Dict[int, int] = {}
        work = [([i], None)
                for i in singles] + [(idx, owner)
                                     for owner, idx in groups.items()]
        for idx, owner in work:
            members = [prims[i] for i in idx]
            if isinstance(members[0], GroundPlane):
                rows, cols = np.arange(shape[0]), np.arange(shape[1])
            else:
                center, radius = _union_sphere(members)
                rows, cols = self._window(center, radius, float(az[0]))
            if len(rows) == 0 or len(cols) == 0:
                if owner is not None:
                    rays_unoccluded[owner] = 0
                continue
            sub = np.ix_(rows, cols)
            block = dirs[sub]
            t_grp = np.full(block.shape[:2], np.inf)
            cos_grp = np.zeros(block.shape[:2])
            prim_grp = np.full(block.shape[:2], -1, dtype=np.int32)
            for i, p in zip(idx, members):
                t, cos_inc = self._intersect(p, block, rng)
                closer = t < t_grp
                t_grp = np.where(closer, t, t_grp)
                cos_grp = np.where(closer, cos_inc, cos_grp)
                prim_grp = np.where(closer, i, prim_grp)
            if owner is not None:
                rays_unoccluded[owner] = int(np.isfinite(t_grp).sum())
            cur = t_best[sub]
            closer = t_grp < cur
            t_best[sub] = np.where(closer, t_grp, cur)
            cos_best[sub] = np.where(closer, cos_grp, cos_best[sub])
            prim_best[sub] = np.where(closer, prim_grp, prim_best[sub])

        owners = np.array([p.owner for p in prims] + [-1], dtype=np.int32)
        refl = np.array([p.reflectivity for p in prims] + [0.0])
        drop = np.array([p.dropout for p in prims] + [1.0])
        ray_owner = owners[prim_best]
        rays_visible = {
            o: int((ray_owner == o).sum())
            for o in rays_unoccluded
        }

        hit = np.isfinite(t_best) & (t_best >= cfg.min_range) & (
            t_best <= cfg.max_range)
        t = t_best[hit]
        cos_inc = np.clip(cos_best[hit], 1e-3, 1.0)
        pidx = prim_best[hit]
        eff = refl[pidx] * cos_inc**cfg.incidence_exponent
        r50 = cfg.detect_range_ref * np.sqrt(
            np.maximum(eff, 1e-9) / cfg.reflectivity_ref)
        p_keep = (1.0 / (1.0 + (t / r50)**cfg.detect_sharpness)) * (
            1.0 - cfg.dropout) * (1.0 - drop[pidx])
        keep = rng.random(t.shape) < p_keep
        t, pidx, eff = t[keep], pidx[keep], eff[keep]
        t = t + rng.normal(0.0, cfg.range_noise_std, size=t.shape)
        xyz = dirs[hit][keep] * t[:, None]
        inten = eff * (1.0 +
                       rng.normal(0.0, cfg.intensity_noise_std, size=t.shape))
        inten = np.clip(inten, 0.0, 1.0)
        if cfg.intensity_quantum > 0:
            inten = np.round(inten / cfg.intensity_quantum) * \
                cfg.intensity_quantum
        points = np.concatenate([xyz, inten[:, None]], 1).astype(np.float32)
        return Scan(points=points,
                    owner=owners[pidx],
                    rays_unoccluded=rays_unoccluded,
                    rays_visible=rays_visible,
                    num_rays=int(np.prod(shape)),
                    prim_index=pidx.astype(np.int32),
                    ring=np.nonzero(hit)[0][keep].astype(np.int32))

    @staticmethod
    def _intersect(prim: Primitive, dirs: np.ndarray,
                   rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
        if isinstance(prim, Box):
            return _hit_box(prim, dirs)
        if isinstance(prim, VerticalCylinder):
            return _hit_cylinder(prim, dirs)
        if isinstance(prim, Foliage):
            return _hit_foliage(prim, dirs, rng)
        if isinstance(prim, GroundPlane):
            return _hit_ground(prim, dirs)
        raise TypeError(f'unsupported primitive {type(prim).__name__}')
