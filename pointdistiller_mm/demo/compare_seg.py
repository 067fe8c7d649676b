"""PVD's Table 1 on the segmentation demo: the 0.5x Cylinder3D student
trained without KD, with each baseline KD method (KD, CD, IFV, SKD, KA) and
with PVD, under one shared schedule, for one or more seeds.

The run machinery is the detection comparison's (:mod:`.compare`): every
run is ``tools/train.py`` in a subprocess into
``WORK/runs/<method>/seed<S>``, finished runs (same config, options, data
and teacher: ``done.json``) are reused and interrupted ones resumed from
their last checkpoint (``started.json``). Metrics are the final
validation's mmdet3d ``SegMetric`` (mIoU, accuracy, per-class IoU).
"""
from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .compare import (KDMethod, RunRecord, _arg, _note_progress,
                      teacher_identity, train_run, validate_last_epoch)
from .compare_seg_report import seg_summary, seg_val_records
from .pipeline import REPO_ROOT, _machine_facts
from .settings import Schedule
from .stages import StageError, run_stage, subprocess_env

__all__ = ['SEG_METHODS', 'SEG_METHOD_KEYS', 'SegDataSpec',
           'SegCompareSettings', 'seg_compare_settings', 'run_seg_comparison',
           'seg_data_ready', 'data_identity', 'SEG_FULL', 'SEG_QUICK']

_PVD = 'projects/PVD/configs'
#: Table 1's rows (the PVD supplementary) in the paper's order, on the
#: demo's Cylinder3D instead of SPVNAS / MinkowskiNet.
SEG_METHODS = (
    KDMethod('nokd', 'Cylinder3D_0.5×',
             'configs/demo/cylinder3d_0.5x_student.py'),
    KDMethod('kd', 'Cylinder3D_0.5× + KD',
             f'{_PVD}/kd_cylinder3d_0.5x_demo.py'),
    KDMethod('cd', 'Cylinder3D_0.5× + CD',
             f'{_PVD}/cd_cylinder3d_0.5x_demo.py'),
    KDMethod('ifv', 'Cylinder3D_0.5× + IFV',
             f'{_PVD}/ifv_cylinder3d_0.5x_demo.py'),
    KDMethod('skd', 'Cylinder3D_0.5× + SKD',
             f'{_PVD}/skd_cylinder3d_0.5x_demo.py'),
    KDMethod('ka', 'Cylinder3D_0.5× + KA',
             f'{_PVD}/ka_cylinder3d_0.5x_demo.py'),
    KDMethod('pvd', 'Cylinder3D_0.5× + PVD',
             f'{_PVD}/pvd_cylinder3d_0.5x_demo.py'),
)
SEG_METHOD_KEYS = tuple(m.key for m in SEG_METHODS)
TEACHER_CONFIG = 'configs/demo/cylinder3d_teacher.py'
TEACHER_CHECKPOINT = 'work_dirs/demo/cylinder3d_teacher'
INFO_FILES = ('semantickitti_infos_train.pkl', 'semantickitti_infos_val.pkl')

# The configs' own schedule (3 epochs, one validation at the end) with one
# loader worker; quick: one epoch at batch 2 without loader workers.
SEG_FULL = Schedule(num_workers=1)
SEG_QUICK = Schedule(epochs=1, batch_size=2, num_workers=0, val_interval=1,
                     log_interval=1)


@dataclass(frozen=True)
class SegDataSpec:
    """Synthetic SemanticKITTI data created when the data root has none
    (``tools/create_demo_data.py --dataset semantickitti`` arguments)."""
    num_train: int = 40
    num_val: int = 16
    seed: int = 0


SEG_QUICK_DATA = SegDataSpec(num_train=4, num_val=2, seed=0)


@dataclass(frozen=True)
class SegCompareSettings:
    """Everything a segmentation comparison depends on.

    Attributes:
        work_dir: Runs, logs and the report go here.
        data_root: Synthetic SemanticKITTI-format data (created when its
            info files are missing).
        seeds: ``randomness.seed`` of the student runs.
        methods: Keys of :data:`SEG_METHODS` to run, in table order.
        schedule: Shared training settings (``--cfg-options``).
        cfg_options: Further ``key=value`` options passed to every run
            (keys must exist in the configs).
        data: Data set created when ``data_root`` has none.
        teacher_checkpoint: Teacher of the distilled runs (a ``.pth`` or a
            work dir whose newest checkpoint is used).
        quick: Tiny data and a one-epoch schedule.
        command: The command line, for the report.
    """
    work_dir: str = 'work_dirs/compare_seg'
    data_root: str = 'data/demo_semantickitti'
    seeds: tuple = (0, )
    methods: tuple = SEG_METHOD_KEYS
    schedule: Schedule = SEG_FULL
    cfg_options: tuple = ()
    data: SegDataSpec = field(default_factory=SegDataSpec)
    teacher_checkpoint: str = TEACHER_CHECKPOINT
    quick: bool = False
    command: str = ''


def seg_compare_settings(quick: bool = False, epochs: Optional[int] = None,
                         **kwargs) -> SegCompareSettings:
    """The full or quick comparison; ``epochs`` overrides the schedule's
    epochs and validation runs once, after the last epoch. ``None``
    values in ``kwargs`` are ignored."""
    schedule = validate_last_epoch(SEG_QUICK if quick else SEG_FULL, epochs,
                                   SEG_METHODS[0].config)
    base = SegCompareSettings(
        work_dir='work_dirs/compare_seg_quick' if quick else
        'work_dirs/compare_seg',
        data_root='data/demo_semantickitti_quick' if quick else
        'data/demo_semantickitti',
        schedule=schedule,
        data=SEG_QUICK_DATA if quick else SegDataSpec(),
        quick=quick)
    return replace(base, **{k: v for k, v in kwargs.items()
                            if v is not None})


def seg_data_ready(data_root: str) -> bool:
    """True when the train and val info files exist."""
    return all((Path(data_root) / f).is_file() for f in INFO_FILES)


def data_identity(data_root: str) -> str:
    """SHA-256 of the info files: part of every run's fingerprint, so new
    data retrains the runs."""
    h = hashlib.sha256()
    for name in INFO_FILES:
        h.update((Path(data_root) / name).read_bytes())
    return h.hexdigest()


def _stage_data(settings: SegCompareSettings, data_root: str, logs: Path,
                echo: Callable[[str], None]) -> None:
    if seg_data_ready(data_root):
        echo(f'[data] using the data set in {data_root}')
        return
    d = settings.data
    cmd = [sys.executable, 'tools/create_demo_data.py', '--dataset',
           'semantickitti', '--out-dir', _arg(data_root), '--num-train',
           str(d.num_train), '--num-val', str(d.num_val), '--seed',
           str(d.seed)]
    if Path(data_root).exists():
        cmd.append('--overwrite')
    run_stage('data', cmd, str(logs / 'data.log'), cwd=REPO_ROOT,
              env=subprocess_env(REPO_ROOT), echo=echo)


def _teacher(settings: SegCompareSettings) -> str:
    """The teacher checkpoint, absolute; a clear error when it is
    missing."""
    path = Path(settings.teacher_checkpoint)
    if not path.is_absolute():
        cwd_path = Path.cwd() / path
        path = cwd_path if cwd_path.exists() else Path(REPO_ROOT) / path
    ok = path.is_file() or (path.is_dir() and
                            (path / 'last_checkpoint').is_file())
    if not ok:
        raise StageError(
            f'teacher checkpoint {settings.teacher_checkpoint} not found (a '
            '.pth file or a work dir with last_checkpoint); train the demo '
            f'teacher first: python tools/train.py {TEACHER_CONFIG} '
            f'--work-dir {TEACHER_CHECKPOINT}, or pass '
            '--teacher-checkpoint')
    return str(path.resolve())


def run_seg_comparison(settings: SegCompareSettings,
                       echo: Callable[[str], None] = print) -> dict:
    """Data, every method x seed, then the report. Returns the results
    written to ``WORK/compare_seg.json``; raises :class:`StageError` after
    the report when a run failed."""
    from .compare_seg_report import write_seg_comparison
    t0 = time.perf_counter()
    unknown = [k for k in settings.methods if k not in SEG_METHOD_KEYS]
    if unknown:
        raise StageError(f'unknown methods {unknown}; choose from '
                         f'{list(SEG_METHOD_KEYS)}')
    work = Path(settings.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logs = work / 'logs'
    data_root = str(Path(settings.data_root).resolve())
    facts = _machine_facts()
    methods = [m for m in SEG_METHODS if m.key in settings.methods]
    echo(f'Segmentation KD comparison ({"quick" if settings.quick else "full"}'
         f'): {len(methods)} methods x seeds {list(settings.seeds)}; work '
         f'dir {work}, data {data_root}; {facts.get("cpus")} CPUs')
    _stage_data(settings, data_root, logs, echo)
    data_id = data_identity(data_root)

    ckpt: Optional[str] = None
    teacher_opt, teacher_id = '', ''
    if any(m.key != 'nokd' for m in methods):
        ckpt = _teacher(settings)
        teacher_opt = f'model.teacher.checkpoint={_arg(ckpt)}'
        teacher_id = teacher_identity(ckpt)

    runs: List[RunRecord] = []
    summaries: Dict[str, Dict[str, float]] = {}
    failed: List[str] = []
    for seed in settings.seeds:
        for m in methods:
            name = f'{m.key}/seed{seed}'
            echo(f'\n=== {m.label}, seed {seed} ===')
            extra = list(settings.cfg_options)
            salt = data_id
            if m.key != 'nokd':
                extra.append(teacher_opt)
                salt += teacher_id
            run_dir = work / 'runs' / m.key / f'seed{seed}'
            t_run = time.perf_counter()
            try:
                rec = train_run(name, m.key, seed, m.config, run_dir,
                                data_root, settings.schedule, extra, logs,
                                echo, salt)
                val = seg_val_records(str(run_dir))
                if not val:
                    raise StageError(
                        f'{name}: no validation record (miou) in '
                        f'{run_dir}/*/vis_data/scalars.json; the schedule '
                        'must validate after the last epoch')
                rec.val_records = val
                summaries[name] = seg_summary(val[-1])
                runs.append(rec)
            except StageError as err:
                _note_progress(run_dir, time.perf_counter() - t_run)
                echo(f'[{name}] failed: {err}')
                failed.append(name)
                runs.append(RunRecord(name, m.key, seed, m.config,
                                      str(run_dir), status='failed'))
            except KeyboardInterrupt:
                _note_progress(run_dir, time.perf_counter() - t_run)
                raise
    results = write_seg_comparison(settings, methods, runs, summaries, ckpt,
                                   facts, time.perf_counter() - t0, echo)
    if failed:
        raise StageError(f'{len(failed)} run(s) failed: {failed}; the '
                         f'report in {work} leaves them out; logs in '
                         f'{logs}')
    return results
