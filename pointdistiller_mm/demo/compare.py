"""PointDistiller's Table 3 on the demo benchmark: the 4x PointPillars
student trained without KD, with each baseline KD method and with
PointDistiller, under one shared schedule, for one or more seeds.

Every run is ``tools/train.py`` in a subprocess (as in the demo) into
``WORK/runs/<method>/seed<S>``; its metrics are the final validation (KITTI
metric, AP40 moderate, strict IoU). Reruns skip finished runs (same config,
options and data: ``done.json``) and resume interrupted ones from their last
checkpoint (``started.json`` with the same fingerprint). A distilled run's
fingerprint includes its teacher checkpoint's identity, so a retrained
teacher retrains the students.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from .logs import kitti_summary, last_checkpoint, read_scalars
from .pipeline import (REPO_ROOT, Demo, _check_options, _machine_facts,
                       config_fingerprint, seed_options)
from .settings import (FULL, QUICK, QUICK_DATA, DataSpec, DemoSettings,
                       Schedule, schedule_overrides)
from .stages import (StageError, format_command, format_seconds, run_stage,
                     subprocess_env)

__all__ = ['KDMethod', 'METHODS', 'CompareSettings', 'compare_settings',
           'RunRecord', 'train_run', 'run_comparison', 'run_records',
           'teacher_identity']

TEACHER_CONFIG = 'configs/demo/pointpillars_teacher.py'
DONE = 'done.json'
STARTED = 'started.json'


@dataclass(frozen=True)
class KDMethod:
    """One row of the comparison: a key, its table label, its config."""
    key: str
    label: str
    config: str


#: Table 3's rows in the paper's order; Hinton KD (not in the paper's
#: table) before PointDistiller, which is run on the pillar features (the
#: paper's placement for PointPillars) and on the backbone's first BEV map.
METHODS = (
    KDMethod('nokd', 'Student w/o KD',
             'configs/demo/pointpillars_4x_student.py'),
    KDMethod('fitnets', '+ FitNets (Romero et al.)',
             'configs/demo/fitnets_pointpillars_4x.py'),
    KDMethod('at', '+ AT (Zagoruyko et al.)',
             'configs/demo/at_pointpillars_4x.py'),
    KDMethod('sessd', '+ SE-SSD consistency (Zheng et al.)',
             'configs/demo/sessd_pointpillars_4x.py'),
    KDMethod('sp', '+ SP (Tung et al.)', 'configs/demo/sp_pointpillars_4x.py'),
    KDMethod('crd', '+ CRD (Tian et al.)',
             'configs/demo/crd_pointpillars_4x.py'),
    KDMethod('ofd', '+ OFD (Heo et al.)',
             'configs/demo/ofd_pointpillars_4x.py'),
    KDMethod('fkd', '+ FKD (Zhang et al.)',
             'configs/demo/fkd_pointpillars_4x.py'),
    KDMethod('kd', '+ KD (Hinton et al.)',
             'configs/demo/kd_pointpillars_4x.py'),
    KDMethod('pointdistiller', '+ PointDistiller (pillar features)',
             'configs/demo/pointpillars_4x_pointdistiller.py'),
    KDMethod('pointdistiller_bev', '+ PointDistiller (BEV stage 1)',
             'configs/demo/pointpillars_4x_pointdistiller_bev.py'),
)
METHOD_KEYS = tuple(m.key for m in METHODS)


@dataclass(frozen=True)
class CompareSettings:
    """Everything a comparison depends on.

    Attributes:
        work_dir: Runs, logs and the report go here.
        data_root: Synthetic KITTI-format data (created when missing).
        seeds: ``randomness.seed`` of the student runs.
        methods: Keys of :data:`METHODS` to run, in table order.
        schedule: Shared training settings (``--cfg-options``).
        data: Data set created when ``data_root`` has none.
        teacher_config: Config of the teacher trained when no checkpoint is
            given (seed ``teacher_seed``).
        teacher_checkpoint: Use this teacher instead of training one.
        teacher_seed: Seed of the teacher run.
        quick: Tiny data and a short schedule.
        command: The command line, for the report.
    """
    work_dir: str = 'work_dirs/compare_kd'
    data_root: str = 'data/demo_kitti'
    seeds: tuple = (0, )
    methods: tuple = METHOD_KEYS
    schedule: Schedule = FULL
    data: DataSpec = field(default_factory=DataSpec)
    teacher_config: str = TEACHER_CONFIG
    teacher_checkpoint: Optional[str] = None
    teacher_seed: int = 0
    quick: bool = False
    command: str = ''


def validate_last_epoch(schedule: Schedule, epochs: Optional[int],
                        config: str) -> Schedule:
    """``schedule`` with ``epochs`` (when given) and one validation, after
    the last epoch (``config``'s ``max_epochs`` when the schedule keeps
    it)."""
    if epochs is not None:
        schedule = replace(schedule, epochs=epochs)
    if schedule.epochs is None:
        from ..utils import load_config
        cfg = load_config(str(Path(REPO_ROOT) / config))
        last = int(cfg.train_cfg.max_epochs)
    else:
        last = schedule.epochs
    return replace(schedule, val_interval=last)


def compare_settings(quick: bool = False, epochs: Optional[int] = None,
                     **kwargs) -> CompareSettings:
    """The full or quick comparison; ``epochs`` overrides the schedule's
    epochs and validation runs once, after the last epoch. ``None``
    values in ``kwargs`` are ignored."""
    schedule = validate_last_epoch(QUICK if quick else FULL, epochs,
                                   METHODS[0].config)
    base = CompareSettings(
        work_dir='work_dirs/compare_kd_quick' if quick else
        'work_dirs/compare_kd',
        data_root='data/demo_kitti_quick' if quick else 'data/demo_kitti',
        schedule=schedule,
        data=QUICK_DATA if quick else DataSpec(),
        quick=quick)
    return replace(base, **{k: v for k, v in kwargs.items()
                            if v is not None})


@dataclass
class RunRecord:
    """One training run and what the report needs from it."""
    name: str
    method: str
    seed: int
    config: str
    work_dir: str
    checkpoint: Optional[str] = None
    seconds: Optional[float] = None
    status: str = 'trained'  # trained | resumed | reused | failed
    options: List[str] = field(default_factory=list)
    command: str = ''
    train_records: List[dict] = field(default_factory=list)
    val_records: List[dict] = field(default_factory=list)

    @property
    def summary(self) -> Dict[str, Optional[float]]:
        """Moderate AP40 per class and mAP, 3D and BEV, of the final
        validation (``{}`` when there is none)."""
        return kitti_summary(self.val_records[-1]) if self.val_records \
            else {}

    @property
    def seconds_per_iter(self) -> Optional[float]:
        """Median of the logged iteration times (mmengine's ``time``: data
        loading and the training step, averaged over each logging window),
        without the first record; the median ignores a window slowed by
        another job on a shared machine."""
        times = [r['time'] for r in self.train_records if 'time' in r]
        times = times[1:] if len(times) > 1 else times
        return statistics.median(times) if times else None


def run_records(work_dir: str):
    """Training and validation records of every ``scalars.json`` of a work
    dir, oldest run first (a resumed run adds a timestamp folder)."""
    train, val = [], []
    for path in sorted(Path(work_dir).glob('*/vis_data/scalars.json')):
        t, v = read_scalars(str(path))
        train += t
        val += v
    return train, val


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _arg(path: str) -> str:
    """A path as a command argument: relative to the repository root (where
    the runs start) when inside it, absolute otherwise."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(Path(REPO_ROOT).resolve()))
    except ValueError:
        return str(p)


def teacher_identity(checkpoint: str) -> str:
    """What identifies a teacher checkpoint (a file, or a work dir whose
    newest checkpoint is used): its path, size and modification time."""
    path = Path(checkpoint)
    if path.is_dir():
        path = Path(last_checkpoint(str(path)) or path)
    try:
        st = path.stat()
    except OSError:
        return str(path)
    return f'{path.resolve()}:{st.st_size}:{st.st_mtime_ns}'


def train_run(name: str, method: str, seed: int, config: str, work: Path,
              data_root: str, schedule: Schedule, extra: Sequence[str],
              log_dir: Path, echo: Callable[[str], None] = print,
              salt: str = '') -> RunRecord:
    """Train ``config`` into ``work``: reuse a finished run with the same
    fingerprint, resume an interrupted one, or start afresh. ``salt``
    enters the fingerprint (the teacher's identity for distilled runs)."""
    from ..utils import load_config
    cfg_path = str(Path(REPO_ROOT) / config)
    options = schedule_overrides(load_config(cfg_path), schedule)
    options += list(extra)
    seed_opts, allow_new = seed_options(cfg_path, seed)
    if allow_new:
        _check_options(cfg_path, options)
    options += seed_opts
    fingerprint = hashlib.sha256(
        (config_fingerprint(cfg_path, data_root, options) + salt).encode()
    ).hexdigest()
    rec = RunRecord(name, method, seed, config, str(work), options=options)
    done = _read(work / DONE)
    if done.get('fingerprint') == fingerprint and \
            Path(done.get('checkpoint', '')).is_file():
        echo(f'[{name}] finished before ({format_seconds(done["seconds"])}'
             f'): reusing {work}')
        rec.checkpoint, rec.seconds = done['checkpoint'], done['seconds']
        rec.status, rec.command = 'reused', done.get('command', '')
        rec.train_records, rec.val_records = run_records(str(work))
        return rec
    started = _read(work / STARTED)
    resume = started.get('fingerprint') == fingerprint and \
        last_checkpoint(str(work)) is not None
    if resume:
        echo(f'[{name}] resuming the interrupted run in {work} from '
             f'{last_checkpoint(str(work))}')
    else:
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        (work / STARTED).write_text(json.dumps(
            dict(fingerprint=fingerprint, seconds_before=0.0), indent=2))
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir',
           _arg(str(work)), '--data-root', _arg(data_root)]
    if resume:
        cmd.append('--resume')
    if allow_new:
        cmd.append('--allow-new-keys')
    cmd += ['--cfg-options', *options]
    epochs = next((int(o.split('=', 1)[1]) for o in options
                   if o.startswith('train_cfg.max_epochs=')), None)
    res = run_stage(name, cmd, str(log_dir / f'{name}.log'), cwd=REPO_ROOT,
                    env=subprocess_env(REPO_ROOT), max_epochs=epochs,
                    echo=echo)
    before = float(started.get('seconds_before', 0.0)) if resume else 0.0
    ckpt = last_checkpoint(str(work))
    if ckpt is None:
        raise StageError(f'{name}: training finished without a checkpoint '
                         f'in {work}')
    rec.checkpoint, rec.seconds = ckpt, before + res.seconds
    rec.status = 'resumed' if resume else 'trained'
    rec.command = format_command(cmd)
    (work / DONE).write_text(json.dumps(dict(
        fingerprint=fingerprint, checkpoint=ckpt, seconds=rec.seconds,
        config=config, options=options, command=rec.command), indent=2))
    rec.train_records, rec.val_records = run_records(str(work))
    return rec


def _note_progress(work: Path, seconds: float) -> None:
    """Add a stopped run's time to its ``started.json`` (for resumes)."""
    started = _read(work / STARTED)
    if started:
        started['seconds_before'] = float(
            started.get('seconds_before', 0.0)) + seconds
        (work / STARTED).write_text(json.dumps(started, indent=2))


def run_comparison(settings: CompareSettings,
                   echo: Callable[[str], None] = print) -> dict:
    """Data, teacher, every method x seed, then the report. Returns the
    results written to ``WORK/compare_kd.json``; raises
    :class:`StageError` after the report when a run failed."""
    from .compare_report import write_comparison
    t0 = time.perf_counter()
    work = Path(settings.work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    logs = work / 'logs'
    data_root = str(Path(settings.data_root).resolve())
    facts = _machine_facts()
    methods = [m for m in METHODS if m.key in settings.methods]
    echo(f'KD comparison ({"quick" if settings.quick else "full"}): '
         f'{len(methods)} methods x seeds {list(settings.seeds)}; work dir '
         f'{work}, data {data_root}; {facts.get("cpus")} CPUs')
    demo = Demo(DemoSettings(work_dir=str(work), data_root=data_root,
                             data=settings.data), echo)
    demo.stage_data()

    teacher: Optional[RunRecord] = None
    ckpt = settings.teacher_checkpoint
    if ckpt is None:
        echo('\n=== teacher ===')
        teacher = train_run('teacher', 'teacher', settings.teacher_seed,
                            settings.teacher_config, work / 'runs' /
                            'teacher', data_root, settings.schedule, [],
                            logs, echo)
        ckpt = teacher.checkpoint
    teacher_opt = f'model.teacher.checkpoint={_arg(ckpt)}'
    teacher_id = teacher_identity(ckpt)

    runs: List[RunRecord] = []
    failed: List[str] = []
    for seed in settings.seeds:
        for m in methods:
            name = f'{m.key}/seed{seed}'
            echo(f'\n=== {m.label}, seed {seed} ===')
            extra, salt = ([], '') if m.key == 'nokd' else (
                [teacher_opt], teacher_id)
            run_dir = work / 'runs' / m.key / f'seed{seed}'
            t_run = time.perf_counter()
            try:
                runs.append(train_run(name, m.key, seed, m.config, run_dir,
                                      data_root, settings.schedule, extra,
                                      logs, echo, salt))
            except StageError as err:
                _note_progress(run_dir, time.perf_counter() - t_run)
                echo(f'[{name}] failed: {err}')
                failed.append(name)
                runs.append(RunRecord(name, m.key, seed, m.config,
                                      str(run_dir), status='failed'))
            except KeyboardInterrupt:
                _note_progress(run_dir, time.perf_counter() - t_run)
                raise
    results = write_comparison(settings, methods, runs, teacher, ckpt,
                               facts, time.perf_counter() - t0, echo)
    if failed:
        raise StageError(f'{len(failed)} run(s) failed: {failed}; the '
                         f'report in {work} leaves them out; logs in '
                         f'{logs}')
    return results
