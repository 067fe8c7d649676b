"""How peaked PointDistiller's reweighting is on a config's voxelization.

PointDistiller keeps the top-N voxels / pillars of a sample by importance
score (the voxel's point count, ``num_points`` of the voxelizer, capped at
the voxel layer's ``max_num_points``) and weights them with
``phi = softmax(score / tau) * n`` (mean 1 over the n sampled rows, see
:func:`pointdistiller_mm.importance.reweight`). Point counts span 1 to the
cap, so a small ``tau`` turns phi into an argmax over the densest voxels.

:func:`reweight_stats` voxelizes scans of a KITTI-format split with the
config's voxel layer (mmcv's ``Voxelization`` on CPU, training-mode
``max_voxels``) and reports, per tau, the mean over scans of

* ``phi_max``: the largest weight of a scan (1 = no reweighting),
* ``share_above_1``: the share of sampled rows with phi > 1,
* ``eff_frac``: the effective number of rows ``1 / sum(p^2)`` with
  ``p = phi / n``, as a fraction of n (1 = uniform, 1/n = one row).

Sampling is per scan, as in the loss' default ``'per_sample'`` mode (the
legacy mode samples over the whole batch instead). Scans with no voxel in
range are counted and left out of the means.
"""
from __future__ import annotations

import copy
import math
import os.path as osp
import pickle
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..importance import reweight, topn_per_sample, voxel_point_count_scores

__all__ = [
    'DEFAULT_NUM_SAMPLES', 'DEFAULT_TAUS', 'ScanStats', 'TauStats',
    'ReweightStats', 'phi_stats', 'find_voxel_layer', 'find_distill_term',
    'find_distill_loss',
    'scan_paths', 'load_scan', 'voxel_counts', 'reweight_stats',
    'format_table'
]

DEFAULT_NUM_SAMPLES = 6000
DEFAULT_TAUS = (1.0, 2.5, 5.0, 10.0, 20.0, 100.0)
# phi of tied rows is 1 up to float32 rounding of the softmax
PHI_ABOVE_1_TOL = 1e-5


@dataclass
class ScanStats:
    """Voxelization of one scan.

    Attributes:
        path: the scan file.
        points: points in the file.
        voxels: non-empty voxels in range (at most ``max_voxels``).
        mean_count: mean points per voxel (``num_points``).
        share_at_cap: share of voxels with ``max_num_points`` points.
        sampled: rows kept by the top-N selection (``min(N, voxels)``).
        sampled_min: smallest score among the sampled rows.
        sampled_max: largest score among the sampled rows.
    """
    path: str
    points: int
    voxels: int
    mean_count: float
    share_at_cap: float
    sampled: int
    sampled_min: float
    sampled_max: float


@dataclass
class TauStats:
    """Reweighting statistics for one tau, means over non-empty scans.

    Attributes:
        tau: the softmax temperature.
        phi_max: mean over scans of the largest phi.
        share_above_1: mean over scans of the share of rows with phi > 1.
        eff_frac: mean over scans of ``(1 / sum(p^2)) / n``, ``p = phi / n``.
    """
    tau: float
    phi_max: float
    share_above_1: float
    eff_frac: float


@dataclass
class ReweightStats:
    """Result of :func:`reweight_stats`."""
    config: str
    data_root: str
    split: str
    scan_folder: str
    num_samples: Optional[int]
    config_tau: Optional[float]
    voxel_layer: Dict[str, Any]
    scans: List[ScanStats] = field(default_factory=list)
    taus: List[TauStats] = field(default_factory=list)

    @property
    def empty_scans(self) -> int:
        """Scans without any voxel in range (left out of the means)."""
        return sum(1 for s in self.scans if s.voxels == 0)

    def summary(self) -> Dict[str, float]:
        """Means over non-empty scans of the per-scan voxel figures."""
        rows = [s for s in self.scans if s.voxels > 0]
        keys = ('points', 'voxels', 'mean_count', 'share_at_cap', 'sampled',
                'sampled_min', 'sampled_max')
        return {
            k: float(np.mean([getattr(s, k) for s in rows]))
            if rows else math.nan
            for k in keys
        }

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready dict (dataclass fields plus ``summary`` and
        ``empty_scans``)."""
        out = asdict(self)
        out['summary'] = self.summary()
        out['empty_scans'] = self.empty_scans
        return out


# ----------------------------------------------------------- phi statistics
def phi_stats(phi: Tensor, mask: Optional[Tensor] = None
              ) -> Dict[str, Tensor]:
    """Peakedness of reweighting rows ``phi`` (mean 1 over valid rows).

    Args:
        phi (Tensor): (..., n) weights from :func:`reweight`.
        mask (Tensor, optional): (..., n) bool, True on valid rows.

    Returns:
        dict: ``n_valid``, ``phi_max``, ``share_above_1`` (phi > 1 +
        1e-5, the tolerance absorbing float32 rounding of ties) and
        ``eff_frac`` (``1 / sum(p^2)`` with ``p = phi / n_valid``, divided
        by ``n_valid``), each of shape (...); NaN where no row is valid.
    """
    phi = phi.double()
    if mask is None:
        mask = torch.ones_like(phi, dtype=torch.bool)
    n = mask.sum(dim=-1).double()
    has = n > 0
    nan = torch.full_like(n, math.nan)
    phi = phi.masked_fill(~mask, 0.0)
    phi_max = torch.where(
        has, phi.masked_fill(~mask, -math.inf).amax(dim=-1), nan)
    above = ((phi > 1.0 + PHI_ABOVE_1_TOL) & mask).sum(dim=-1).double()
    share = torch.where(has, above / n.clamp(min=1), nan)
    p = phi / n.clamp(min=1).unsqueeze(-1)
    sum_p2 = (p * p).sum(dim=-1)
    eff = torch.where(has, 1.0 / (sum_p2.clamp(min=1e-300) * n.clamp(min=1)),
                      nan)
    return dict(n_valid=n, phi_max=phi_max, share_above_1=share,
                eff_frac=eff)


# ------------------------------------------------------------ config access
def _get(node: Any, key: str) -> Any:
    if node is None:
        return None
    try:
        return node.get(key)
    except AttributeError:
        return None


def find_voxel_layer(cfg: Any) -> Dict[str, Any]:
    """The ``data_preprocessor.voxel_layer`` dict of a detector config, or
    of a distiller config's ``model.student``.

    Raises:
        KeyError: when neither place has one.
    """
    model = cfg['model']
    for owner in (model, _get(model, 'student')):
        layer = _get(_get(owner, 'data_preprocessor'), 'voxel_layer')
        if layer is not None:
            return dict(copy.deepcopy(layer))
    raise KeyError('no data_preprocessor.voxel_layer at model. or '
                   'model.student.')


def find_distill_term(model_cfg: Any) -> Optional[Tuple[str, Any]]:
    """``(term name, term)`` of the first ``PointDistillerLoss`` term of a
    ``Distiller3D`` model config (``distill_terms.*.loss``), or None."""
    terms = _get(model_cfg, 'distill_terms') or {}
    for name, term in terms.items():
        if _get(_get(term, 'loss'), 'type') == 'PointDistillerLoss':
            return name, term
    return None


def find_distill_loss(cfg: Any) -> Optional[Tuple[str, Dict[str, Any]]]:
    """``(term name, loss dict)`` of the first ``PointDistillerLoss`` under
    ``model.distill_terms.*.loss``, or None."""
    found = find_distill_term(cfg['model'])
    return None if found is None else (found[0], dict(found[1]['loss']))


def _config_tau(loss: Mapping[str, Any]) -> Optional[float]:
    """The tau a PointDistillerLoss config trains with (None: no
    reweighting)."""
    from ..losses.pointdistiller_loss import DEFAULT_TAU, LEGACY_TAU
    if not loss.get('reweight', True):
        return None
    tau = loss.get('tau')
    if tau is None:
        tau = LEGACY_TAU if loss.get('legacy', False) else DEFAULT_TAU
    return float(tau)


def _datasets(node: Any) -> List[Any]:
    """Dataset dicts inside a (possibly wrapped) dataset config."""
    if node is None:
        return []
    out = [node]
    out += _datasets(_get(node, 'dataset'))
    for sub in _get(node, 'datasets') or []:
        out += _datasets(sub)
    return out


def pts_prefix(cfg: Any, split: str) -> str:
    """The ``data_prefix['pts']`` the config's datasets read ``split`` with.

    The dataset whose ``ann_file`` is ``kitti_infos_<split>.pkl`` wins, then
    the val dataloader's, then any dataloader's; mmdet3d's
    ``Det3DDataset`` default ``'velodyne'`` when none sets one.
    """
    wanted = f'kitti_infos_{split}.pkl'
    found: List[Tuple[bool, str]] = []
    for loader in ('val_dataloader', 'test_dataloader', 'train_dataloader'):
        for ds in _datasets(_get(_get(cfg, loader), 'dataset')):
            prefix = _get(_get(ds, 'data_prefix'), 'pts')
            if prefix is None:
                continue
            ann = _get(ds, 'ann_file') or ''
            found.append((osp.basename(str(ann)) == wanted, str(prefix)))
    for match, prefix in found:
        if match:
            return prefix
    return found[0][1] if found else 'velodyne'


def scan_paths(data_root: str, split: str, prefix: str,
               num_scans: Optional[int] = None) -> List[str]:
    """Scan files of ``<data_root>/kitti_infos_<split>.pkl``, resolved like
    mmdet3d's ``KittiDataset``: ``join(data_root, prefix, lidar_path)``
    (an absolute ``prefix`` is used as is)."""
    info_path = osp.join(data_root, f'kitti_infos_{split}.pkl')
    if not osp.isfile(info_path):
        raise FileNotFoundError(f'{info_path} is missing')
    with open(info_path, 'rb') as f:
        infos = pickle.load(f)
    data_list = infos['data_list'] if isinstance(infos, dict) else infos
    folder = prefix if osp.isabs(prefix) else osp.join(data_root, prefix)
    paths = [
        osp.join(folder, info['lidar_points']['lidar_path'])
        for info in data_list
    ]
    return paths if num_scans is None else paths[:num_scans]


def load_scan(path: str, load_dim: int = 4) -> np.ndarray:
    """(P, load_dim) float32 points of a ``.bin`` scan."""
    return np.fromfile(path, dtype=np.float32).reshape(-1, load_dim)


def build_voxelizer(voxel_layer: Mapping[str, Any]) -> torch.nn.Module:
    """mmcv's ``Voxelization`` with the layer's settings and the
    training-mode ``max_voxels`` (the first entry of a pair)."""
    from mmcv.ops import Voxelization
    max_num_points = int(voxel_layer.get('max_num_points', 35))
    if max_num_points <= 0:
        raise ValueError('dynamic voxelization (max_num_points=-1) has no '
                         'per-voxel point count')
    max_voxels = voxel_layer.get('max_voxels', 20000)
    if isinstance(max_voxels, (tuple, list)):
        max_voxels = max_voxels[0]
    return Voxelization(
        voxel_size=list(voxel_layer['voxel_size']),
        point_cloud_range=list(voxel_layer['point_cloud_range']),
        max_num_points=max_num_points,
        max_voxels=int(max_voxels),
        deterministic=bool(voxel_layer.get('deterministic', True))).eval()


def voxel_counts(points: np.ndarray, voxelizer: torch.nn.Module) -> Tensor:
    """(M,) ``num_points`` of the voxels of one scan."""
    if len(points) == 0:
        return torch.zeros(0, dtype=torch.int32)
    with torch.no_grad():
        _, _, num = voxelizer(torch.from_numpy(np.ascontiguousarray(points)))
    return num.reshape(-1)


# ----------------------------------------------------------------- analysis
def reweight_stats(config: str,
                   data_root: str,
                   split: str = 'val',
                   num_scans: Optional[int] = 16,
                   num_samples: Optional[int] = None,
                   taus: Sequence[float] = DEFAULT_TAUS,
                   load_dim: int = 4) -> ReweightStats:
    """Reweighting statistics of ``config`` on scans of ``data_root``.

    Args:
        config: mmengine config path (detector or ``Distiller3D``).
        data_root: KITTI-format root holding ``kitti_infos_<split>.pkl``.
        split: info file split.
        num_scans: first scans of the split (None: all).
        num_samples: N rows per scan; defaults to the config's
            ``PointDistillerLoss.num_samples``, else 6000.
        taus: softmax temperatures to evaluate.
        load_dim: floats per point in the scan files.
    """
    from ..utils import load_config
    cfg = load_config(config)
    layer = find_voxel_layer(cfg)
    loss = find_distill_loss(cfg)
    if num_samples is None:
        num_samples = (loss[1].get('num_samples', DEFAULT_NUM_SAMPLES)
                       if loss else DEFAULT_NUM_SAMPLES)
    prefix = pts_prefix(cfg, split)
    paths = scan_paths(data_root, split, prefix, num_scans)
    if not paths:
        raise ValueError(f'no scans in {data_root}/kitti_infos_{split}.pkl')
    voxelizer = build_voxelizer(layer)
    cap = int(voxelizer.max_num_points)

    counts: List[Tensor] = []
    n_points: List[int] = []
    for path in paths:
        pts = load_scan(path, load_dim)
        n_points.append(len(pts))
        counts.append(voxel_counts(pts, voxelizer))

    # all scans as one batch: per-sample top-N and reweighting as in the loss
    scores = voxel_point_count_scores(torch.cat(counts))
    batch_idx = torch.cat([
        torch.full((len(c), ), i, dtype=torch.long)
        for i, c in enumerate(counts)
    ])
    top = topn_per_sample(scores, batch_idx, num_samples,
                          batch_size=len(paths))
    sampled = scores[top.index] * top.mask
    n_valid = top.mask.sum(dim=-1)

    result = ReweightStats(
        config=config, data_root=data_root, split=split, scan_folder=prefix,
        num_samples=num_samples,
        config_tau=_config_tau(loss[1]) if loss else None,
        voxel_layer=_jsonable(layer))
    for i, (path, c) in enumerate(zip(paths, counts)):
        k = int(n_valid[i])
        row = sampled[i, :k]
        result.scans.append(ScanStats(
            path=path, points=n_points[i], voxels=len(c),
            mean_count=float(c.float().mean()) if len(c) else math.nan,
            share_at_cap=float((c >= cap).float().mean())
            if len(c) else math.nan,
            sampled=k,
            sampled_min=float(row.min()) if k else math.nan,
            sampled_max=float(row.max()) if k else math.nan))
    has = n_valid > 0
    for tau in taus:
        st = phi_stats(reweight(sampled, float(tau), top.mask), top.mask)

        def mean(key: str) -> float:
            v = st[key][has]
            return float(v.mean()) if v.numel() else math.nan

        result.taus.append(TauStats(
            tau=float(tau), phi_max=mean('phi_max'),
            share_above_1=mean('share_above_1'), eff_frac=mean('eff_frac')))
    return result


def _jsonable(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(k): _jsonable(v) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_jsonable(v) for v in node]
    return node


def format_table(stats: ReweightStats, per_scan: bool = False) -> str:
    """Plain-text report: voxel summary, one row per tau, optionally one
    row per scan. The config's own tau is marked with ``*``."""
    layer = stats.voxel_layer
    mv = layer.get('max_voxels')
    s = stats.summary()
    used = len(stats.scans) - stats.empty_scans
    lines = [
        f'{stats.config}: voxel_size {layer.get("voxel_size")}, '
        f'max_num_points {layer.get("max_num_points")}, max_voxels {mv} '
        f'(training: first)',
        f'{len(stats.scans)} scans of {stats.split!r} from '
        f'{osp.join(stats.data_root, stats.scan_folder)} '
        f'({stats.empty_scans} empty, left out); N = {stats.num_samples}; '
        f'config tau = {stats.config_tau}',
        f'per scan: {s["voxels"]:.0f} voxels, {s["mean_count"]:.2f} points '
        f'per voxel, {100 * s["share_at_cap"]:.1f}% at the cap, '
        f'{s["sampled"]:.0f} sampled with counts '
        f'{s["sampled_min"]:.1f}..{s["sampled_max"]:.1f} (means over '
        f'{used} scans)',
        '',
        f'{"tau":>8}  {"phi_max":>9}  {"phi>1":>7}  {"eff. rows/N":>11}',
    ]
    for t in stats.taus:
        mark = '*' if (stats.config_tau is not None
                       and math.isclose(t.tau, stats.config_tau)) else ' '
        lines.append(f'{t.tau:>7g}{mark}  {t.phi_max:>9.3f}  '
                     f'{100 * t.share_above_1:>6.1f}%  {t.eff_frac:>11.3f}')
    if per_scan:
        lines += ['', f'{"scan":<14}{"points":>8}{"voxels":>8}'
                  f'{"mean":>7}{"at cap":>8}{"sampled":>9}{"min":>6}'
                  f'{"max":>6}']
        for sc in stats.scans:
            lines.append(
                f'{osp.basename(sc.path):<14}{sc.points:>8}{sc.voxels:>8}'
                f'{sc.mean_count:>7.2f}{100 * sc.share_at_cap:>7.1f}%'
                f'{sc.sampled:>9}{sc.sampled_min:>6.0f}{sc.sampled_max:>6.0f}')
    return '\n'.join(lines)
