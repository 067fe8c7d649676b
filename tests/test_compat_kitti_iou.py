"""Tests of the CPU rotated IoU used by mmdet3d's KITTI evaluation.

The reference is mmdet3d's own ``numba.cuda`` kernel run through numba's CUDA
simulator in a subprocess (``NUMBA_ENABLE_CUDASIM=1`` must be set before numba
is imported).  The subprocess starts once per module, in the background, and
computes IoU matrices for all criteria plus a full ``kitti_eval``.
"""
import os
import pickle
import subprocess
import sys
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch

from pointdistiller_mm.compat import kitti_rotate_iou
from pointdistiller_mm.compat.kitti_rotate_iou import rotate_iou_cpu_eval

pytestmark = pytest.mark.skipif(
    torch.cuda.is_available(), reason='the patch targets CPU-only machines')

CRITERIA = (-1, 0, 1, 2)
CLASSES = ['Car', 'Pedestrian', 'Cyclist']
CLASS_DIMS = {  # KITTI camera-frame (l, h, w)
    'Car': (3.9, 1.56, 1.6),
    'Pedestrian': (0.8, 1.75, 0.6),
    'Cyclist': (1.76, 1.73, 0.6),
}
SIM_TIMEOUT_S = 300

# Runs under NUMBA_ENABLE_CUDASIM=1.  mmdet3d's ``kitti_utils`` package is
# loaded from its files directly, skipping the slow import of the whole
# ``mmdet3d`` package (it needs only numba and numpy).  NumPy warnings are
# silenced and the kernel module's warning registry pre-created: the
# simulator's threads iterate that module's globals, and a warning inserting
# the registry mid-iteration makes the simulator fail at random.
_SIM_SCRIPT = r'''
import importlib.util, os, pickle, sys
import numpy as np
np.seterr(all='ignore')
root = importlib.util.find_spec('mmdet3d').submodule_search_locations[0]
pkg_dir = os.path.join(root, 'evaluation', 'functional', 'kitti_utils')
spec = importlib.util.spec_from_file_location(
    'kitti_utils', os.path.join(pkg_dir, '__init__.py'),
    submodule_search_locations=[pkg_dir])
pkg = importlib.util.module_from_spec(spec)
sys.modules['kitti_utils'] = pkg
spec.loader.exec_module(pkg)
from kitti_utils import kitti_eval, rotate_iou
rotate_iou.__dict__.setdefault('__warningregistry__', {})
with open(sys.argv[1], 'rb') as f:
    job = pickle.load(f)
out = {'iou': {c: rotate_iou.rotate_iou_gpu_eval(job['boxes'], job['query'], c)
               for c in job['criteria']}}
out['ap'] = kitti_eval(job['gt'], job['dt'], job['classes'],
                       eval_types=['bbox', 'bev', '3d'])[1]
with open(sys.argv[2], 'wb') as f:
    pickle.dump(out, f)
'''


def _random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    boxes = np.empty((n, 5), dtype=np.float32)
    boxes[:, 0] = rng.uniform(-4, 4, n)
    boxes[:, 1] = rng.uniform(5, 13, n)
    boxes[:, 2] = rng.uniform(0.4, 4.5, n)
    boxes[:, 3] = rng.uniform(0.4, 2.0, n)
    boxes[:, 4] = rng.uniform(-np.pi, np.pi, n)
    return boxes


def _iou_inputs() -> Tuple[np.ndarray, np.ndarray]:
    """Random boxes plus degenerate pairs on the diagonal."""
    rng = np.random.default_rng(0)
    boxes = _random_boxes(rng, 22)
    query = boxes + rng.normal(0, 0.25, boxes.shape).astype(np.float32)
    degenerate_boxes = [
        [0, 0, 2, 1, 0.3],  # identical, rotated
        [0, 0, 2, 1, 0],  # shifted copy
        [5, 5, 1, 1, 0],  # far apart
        [0, 0, 1, 1, 0],  # touching edge
        [0, 0, 2, 2, 0],  # touching corner
        [0, 0, 2, 1, 0],  # rotated by 90 deg
        [0, 0, 2, 2, 0.4],  # square rotated by 90 deg
        [1, 1, 1e-3, 1e-3, 0.1],  # tiny boxes
        [20, 30, 4, 1.6, 1.2],  # identical, far from the origin
        [0, 0, 3, 3, 0],  # contains the query
    ]
    degenerate_query = [
        [0, 0, 2, 1, 0.3],
        [1, 0.5, 2, 1, 0],
        [20, 20, 1, 1, 0],
        [1, 0, 1, 1, 0],
        [2, 2, 2, 2, 0],
        [0, 0, 2, 1, np.pi / 2],
        [0, 0, 2, 2, 0.4 + np.pi / 2],
        [1, 1.0002, 1e-3, 1e-3, 0.7],
        [20, 30, 4, 1.6, 1.2],
        [0.2, -0.3, 1, 0.5, 0.9],
    ]
    # Shifted exactly along the heading: collinear long edges.
    degenerate_boxes.append([20, 30, 4, 1.6, 1.2])
    degenerate_query.append(
        [20 + 0.1 * np.cos(1.2), 30 - 0.1 * np.sin(1.2), 4, 1.6, 1.2])
    boxes = np.concatenate([boxes, np.float32(degenerate_boxes)])
    query = np.concatenate([query, np.float32(degenerate_query)])
    return boxes, query


def _synthetic_annos(num_frames: int = 5, per_frame: int = 9,
                     seed: int = 0) -> Tuple[List[Dict], List[Dict]]:
    """KITTI-format gt annotations and noisy detections of them."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for _ in range(num_frames):
        n = per_frame
        names = rng.choice(CLASSES, n)
        dims = np.array([CLASS_DIMS[c] for c in names])
        dims = dims * rng.uniform(0.9, 1.1, (n, 3))
        loc = np.stack([rng.uniform(-15, 15, n), rng.uniform(1.4, 1.8, n),
                        rng.uniform(5, 50, n)], axis=1)
        rot = rng.uniform(-np.pi, np.pi, n)
        x1, y1 = rng.uniform(0, 1100, n), rng.uniform(100, 200, n)
        height = rng.uniform(20, 160, n)  # spans the difficulty cut-offs
        bbox = np.stack([x1, y1, x1 + height * rng.uniform(0.5, 2, n),
                         y1 + height], axis=1)
        gts.append(dict(
            name=names, truncated=rng.choice([0.0, 0.1, 0.25, 0.4], n),
            occluded=rng.integers(0, 3, n), alpha=rng.uniform(-3, 3, n),
            bbox=bbox, dimensions=dims, location=loc, rotation_y=rot))
        keep = rng.random(n) > 0.15  # missed detections
        m, n_fp = int(keep.sum()), 2
        err = rng.normal(0, 1, (m, 3))
        dts.append(dict(
            name=np.concatenate([names[keep], names[:n_fp]]),
            truncated=np.zeros(m + n_fp),
            occluded=np.zeros(m + n_fp, dtype=np.int64),
            alpha=rng.uniform(-3, 3, m + n_fp),
            bbox=np.concatenate([bbox[keep] + rng.normal(0, 2, (m, 4)),
                                 bbox[:n_fp] + 300.0]),
            dimensions=np.concatenate([
                dims[keep] * rng.uniform(0.93, 1.07, (m, 3)), dims[:n_fp]]),
            location=np.concatenate([
                loc[keep] + err * dims[keep] * 0.06, loc[:n_fp] + 10.0]),
            rotation_y=np.concatenate([
                rot[keep] + rng.normal(0, 0.08, m), rot[:n_fp]]),
            # Better-localised detections tend to score higher.
            score=np.concatenate([
                1.0 / (1.0 + np.abs(err).sum(1)) + rng.uniform(0, 0.3, m),
                rng.uniform(0, 1, n_fp)])))
    return gts, dts


class _SimJob:
    """Background subprocess computing the CUDA-simulator reference."""

    def __init__(self, workdir) -> None:
        boxes, query = _iou_inputs()
        gts, dts = _synthetic_annos()
        self.job = dict(boxes=boxes, query=query, criteria=CRITERIA, gt=gts,
                        dt=dts, classes=CLASSES)
        self.in_path = os.path.join(workdir, 'job.pkl')
        self.out_path = os.path.join(workdir, 'ref.pkl')
        with open(self.in_path, 'wb') as f:
            pickle.dump(self.job, f)
        env = dict(os.environ, NUMBA_ENABLE_CUDASIM='1')
        self.proc = subprocess.Popen(
            [sys.executable, '-c', _SIM_SCRIPT, self.in_path, self.out_path],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._result = None

    def result(self) -> Dict:
        if self._result is None:
            output, _ = self.proc.communicate(timeout=SIM_TIMEOUT_S)
            assert self.proc.returncode == 0, output.decode()[-3000:]
            with open(self.out_path, 'rb') as f:
                self._result = pickle.load(f)
        return self._result


@pytest.fixture(scope='module', autouse=True)
def sim_job(tmp_path_factory):
    job = _SimJob(str(tmp_path_factory.mktemp('kitti_cudasim')))
    yield job
    if job.proc.poll() is None:
        job.proc.kill()
        job.proc.wait()


# ----------------------------------------------------------------- sanity


def test_self_overlap_is_full():
    # Well-conditioned cases only: for bit-identical rotated boxes away from
    # the origin the reference kernel's clipping degenerates (collinear edges,
    # corners on edges) and returns about 0; the port reproduces that, see
    # the identical far-away pair in ``_iou_inputs``.
    boxes = np.float32([[0, 0, 2, 1, 0], [3, -2, 4, 1.5, 0],
                        [31, 12, 3.9, 1.6, 0], [0, 0, 2, 1, 0.3]])
    iou = rotate_iou_cpu_eval(boxes, boxes, -1)
    assert iou.dtype == np.float32 and iou.shape == (4, 4)
    np.testing.assert_allclose(np.diag(iou), 1.0, rtol=1e-5)
    inter = rotate_iou_cpu_eval(boxes, boxes, 2)
    np.testing.assert_allclose(np.diag(inter), boxes[:, 2] * boxes[:, 3],
                               rtol=1e-5)


def test_shifted_box_matches_closed_form():
    # Shifting a box by (u, v) in its own frame, u along the x_d axis
    # (cos a, -sin a) for the clockwise angle a, v along the y_d axis
    # (sin a, cos a), leaves an intersection of (x_d - u) * (y_d - v).
    # (v > 0 keeps edges off collinearity, where the kernel degenerates.)
    rng = np.random.default_rng(3)
    n = 200
    boxes = _random_boxes(rng, n)
    boxes[:, :2] += rng.uniform(-40, 40, (n, 2)).astype(np.float32)
    u, v = rng.uniform(0.05, 0.3, n), rng.uniform(0.02, 0.2, n)
    cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
    query = boxes.copy()
    query[:, 0] += (u * cos + v * sin).astype(np.float32)
    query[:, 1] += (-u * sin + v * cos).astype(np.float32)
    inter = (boxes[:, 2] - u) * (boxes[:, 3] - v)
    area = boxes[:, 2] * boxes[:, 3]
    np.testing.assert_allclose(
        np.diag(rotate_iou_cpu_eval(boxes, query, 2)), inter, atol=2e-4)
    np.testing.assert_allclose(
        np.diag(rotate_iou_cpu_eval(boxes, query, -1)),
        inter / (2 * area - inter), atol=2e-4)


def test_disjoint_boxes_do_not_overlap():
    boxes = np.float32([[0, 0, 2, 1, 0.2], [10, 10, 2, 1, -0.7]])
    query = np.float32([[5, 5, 2, 2, 0.0], [-10, 3, 4, 1, 1.3]])
    for criterion in CRITERIA:
        assert not rotate_iou_cpu_eval(boxes, query, criterion).any()


def test_axis_aligned_overlap_matches_hand_computation():
    # [0, 4] x [0, 2] and [3, 5] x [1, 4]: intersection 1 x 1 = 1,
    # areas 8 and 6, union 13.
    box = np.float32([[2, 1, 4, 2, 0]])
    query = np.float32([[4, 2.5, 2, 3, 0]])
    assert rotate_iou_cpu_eval(box, query, -1)[0, 0] == pytest.approx(1 / 13)
    # criterion 0 divides by the query's area, 1 by the box's area
    assert rotate_iou_cpu_eval(box, query, 0)[0, 0] == pytest.approx(1 / 6)
    assert rotate_iou_cpu_eval(box, query, 1)[0, 0] == pytest.approx(1 / 8)
    assert rotate_iou_cpu_eval(box, query, 2)[0, 0] == pytest.approx(1.0)


def test_rotated_square_overlap_matches_hand_computation():
    # A unit square rotated by 45 deg inside a 2 x 2 square sharing its
    # centre lies fully inside: intersection 1, union 4.
    box = np.float32([[0, 0, 2, 2, 0]])
    query = np.float32([[0, 0, 1, 1, np.pi / 4]])
    assert rotate_iou_cpu_eval(box, query, -1)[0, 0] == pytest.approx(
        0.25, rel=1e-6)
    # Shifted by 1 along x: the square's right half (area 0.5) stays in.
    query = np.float32([[1, 0, 1, 1, np.pi / 4]])
    assert rotate_iou_cpu_eval(box, query, 2)[0, 0] == pytest.approx(
        0.5, rel=1e-6)


def test_empty_inputs_and_shapes():
    boxes = np.zeros((0, 5))
    query = np.float32([[0, 0, 1, 1, 0]] * 3)
    assert rotate_iou_cpu_eval(boxes, query).shape == (0, 3)
    assert rotate_iou_cpu_eval(query, boxes).shape == (3, 0)
    assert rotate_iou_cpu_eval(query.astype(np.float64), query).dtype == (
        np.float32)


# ------------------------------------------------------------ patch state


def test_patch_is_idempotent_and_removable():
    from mmdet3d.evaluation.functional.kitti_utils import \
        eval as kitti_eval_mod
    name = kitti_rotate_iou.ROTATE_IOU_MODULE
    with kitti_rotate_iou.unpatched():
        assert name not in sys.modules
        assert kitti_rotate_iou.apply() is True
        assert kitti_rotate_iou.apply() is True
        stub = sys.modules[name]
        assert stub.rotate_iou_gpu_eval is rotate_iou_cpu_eval
        boxes = np.float32([[0, 0, 2, 1, 0.0]])
        assert kitti_eval_mod.bev_box_overlap(boxes, boxes)[0, 0] == 1.0
        kitti_rotate_iou.remove()
        kitti_rotate_iou.remove()
        assert name not in sys.modules


def test_evaluation_fails_without_patch():
    from mmdet3d.evaluation.functional.kitti_utils import \
        eval as kitti_eval_mod
    boxes = np.float32([[0, 0, 2, 1, 0.0]])
    with kitti_rotate_iou.unpatched():
        with pytest.raises(Exception, match='CUDA'):
            kitti_eval_mod.bev_box_overlap(boxes, boxes)


def test_cudasim_request_is_respected(monkeypatch):
    monkeypatch.setenv('NUMBA_ENABLE_CUDASIM', '1')
    assert kitti_rotate_iou.cudasim_requested()
    assert not kitti_rotate_iou.needs_patch()
    monkeypatch.setenv('NUMBA_ENABLE_CUDASIM', '0')
    assert not kitti_rotate_iou.cudasim_requested()
    assert kitti_rotate_iou.needs_patch()


# ------------------------------------------------- against the simulator
# (the kitti_eval test comes first: its in-process run overlaps the
# simulator's subprocess)


def test_kitti_eval_matches_cuda_simulator(sim_job):
    from mmdet3d.evaluation.functional import kitti_eval
    job = sim_job.job
    with kitti_rotate_iou.patched():
        _, ap_cpu = kitti_eval(job['gt'], job['dt'], job['classes'],
                               eval_types=['bbox', 'bev', '3d'])
    ap_ref = sim_job.result()['ap']
    assert ap_cpu == ap_ref
    assert len(ap_cpu) > 100
    # The synthetic detections give a spread of APs, not a degenerate 0/100.
    bev = [v for k, v in ap_cpu.items() if '_BEV_AP40_moderate' in k]
    assert 5.0 < np.mean(bev) < 95.0


def test_iou_matches_cuda_simulator(sim_job):
    boxes, query = sim_job.job['boxes'], sim_job.job['query']
    reference = sim_job.result()['iou']
    for min_pairs in (0, 10**9):  # multi-threaded and serial kernels
        for criterion in CRITERIA:
            mine = rotate_iou_cpu_eval(boxes, query, criterion,
                                       parallel_min_pairs=min_pairs)
            ref = reference[criterion]
            assert mine.dtype == ref.dtype == np.float32
            assert (mine > 0).sum() > 60  # overlaps are exercised
            np.testing.assert_array_equal(
                mine, ref, err_msg=f'criterion {criterion}')
