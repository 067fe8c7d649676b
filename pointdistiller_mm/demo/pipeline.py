"""The demo, stage by stage: data, teacher, student, distilled student,
comparison table and pictures.

Every training stage is ``tools/train.py`` run with this interpreter in a
subprocess (the printed commands are the ones a user would type); metrics
are the final validation of each run (``tools/test.py`` on the last
checkpoint gives the same numbers).
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .data_check import repair_ignored_categories
from .logs import find_scalars, last_checkpoint, read_scalars
from .settings import DemoSettings, schedule_overrides
from .stages import (StageResult, format_command, format_seconds, run_stage,
                     subprocess_env)

__all__ = ['RunInfo', 'run_demo', 'config_fingerprint', 'seed_options',
           'dataset_ready', 'REPO_ROOT']

REPO_ROOT = str(Path(__file__).resolve().parents[2])
DONE_MARKER = 'done.json'
INFO_FILES = ('kitti_infos_train.pkl', 'kitti_infos_val.pkl',
              'kitti_dbinfos_train.pkl')


@dataclass
class RunInfo:
    """A finished training run of the demo."""
    name: str
    config: str
    work_dir: str
    checkpoint: str
    seconds: Optional[float]
    reused: bool
    options: List[str]
    train_records: List[dict] = field(default_factory=list)
    val_records: List[dict] = field(default_factory=list)

    @property
    def final_metrics(self) -> Dict[str, float]:
        """The last validation record."""
        return self.val_records[-1] if self.val_records else {}


def dataset_ready(data_root: str) -> bool:
    """True when the info files the demo configs read exist."""
    return all((Path(data_root) / f).is_file() for f in INFO_FILES)


def _load_cfg(config: str, data_root: str, options: List[str]):
    from mmengine.config import DictAction

    from ..utils import load_config, replace_data_root
    cfg = load_config(config)
    if options:
        # parsed as tools/train.py's --cfg-options (mmengine DictAction)
        values: Dict[str, Any] = {}
        for opt in options:
            key, val = opt.split('=', 1)
            values[key] = DictAction._parse_iterable(val)
        cfg.merge_from_dict(values, allow_list_keys=True)
    replace_data_root(cfg, data_root)
    return cfg


def config_fingerprint(config: str, data_root: str,
                       options: List[str]) -> str:
    """SHA-256 of the resolved config (with the options and data root) and
    of the data set's info files: equal fingerprints mean the same run."""
    cfg = _load_cfg(config, data_root, options)
    h = hashlib.sha256()
    h.update(json.dumps(cfg.to_dict(), sort_keys=True,
                        default=str).encode())
    for name in INFO_FILES:
        path = Path(data_root) / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def seed_options(config: str, seed: int) -> tuple:
    """``(options, allow_new_keys)`` that set the run's random seed.

    ``randomness.seed`` is used when the config defines ``randomness``;
    otherwise the key is new to the config and ``tools/train.py`` needs
    ``--allow-new-keys``.
    """
    from ..utils import load_config
    cfg = load_config(config)
    has_key = isinstance(cfg.get('randomness'), dict) and \
        'seed' in cfg.randomness
    return [f'randomness.seed={seed}'], not has_key


def _check_options(config: str, options: List[str]) -> None:
    """The typo check of tools/train.py, done here for the options when
    ``--allow-new-keys`` must be passed for the seed."""
    from ..utils import check_cfg_options, load_config
    cfg = load_config(config)
    check_cfg_options(cfg, {o.split('=', 1)[0]: None for o in options})


# mmengine's Config.fromfile is not thread-safe (its package lookups race
# in pkg_resources): stages trained side by side load configs one at a time.
_CONFIG_LOCK = threading.Lock()


class Demo:
    """Runs the stages of one demo and collects what the report needs."""

    def __init__(self, settings: DemoSettings,
                 echo: Callable[[str], None] = print) -> None:
        self.s = settings
        self.echo = echo
        self.work = Path(self._abs(settings.work_dir))
        self.env = subprocess_env(REPO_ROOT)
        self.stage_seconds: Dict[str, float] = {}

    # ---------------------------------------------------------------- utils
    @staticmethod
    def _abs(path: str) -> str:
        p = Path(path)
        return str(p if p.is_absolute() else Path(os.getcwd()) / p)

    @staticmethod
    def _arg(path: str) -> str:
        """A path as a command argument: relative to the repository root
        (where the stages run) when inside it, absolute otherwise."""
        rel = os.path.relpath(path, REPO_ROOT)
        return path if rel.startswith('..') else rel

    def _config(self, path: str) -> str:
        p = Path(path)
        if p.is_absolute() or p.exists():
            return str(p)
        return str(Path(REPO_ROOT) / p)

    def _tool(self, name: str) -> str:
        return str(Path('tools') / name)  # run from REPO_ROOT

    def banner(self, text: str) -> None:
        self.echo('')
        self.echo(f'=== {text} ===')

    # ----------------------------------------------------------------- data
    def stage_data(self) -> None:
        root = self._abs(self.s.data_root)
        if dataset_ready(root):
            self.echo(f'[data] using the data set in {root}')
            self.stage_seconds['data'] = 0.0
            self._warn_small_val(root)
        else:
            self._create_data(root)
        for path in repair_ignored_categories(root):
            self.echo(f'[data] {path}: added DontCare: -1 to the '
                      'categories (mmdet3d converter bug; KittiMetric needs '
                      'it)')

    def _warn_small_val(self, root: str) -> None:
        """Say so when an existing data set has fewer val frames than the
        settings ask for (KITTI AP40 is capped below 41 GT per class)."""
        val = Path(root) / 'ImageSets' / 'val.txt'
        n = len(val.read_text().split()) if val.is_file() else 0
        if n < self.s.data.num_val:
            self.echo(
                f'[data] warning: {root} has {n} val frames, the demo '
                f'expects {self.s.data.num_val} (AP40 of a class with 40 '
                'or fewer moderate boxes cannot reach 100); recreate it '
                'with: python tools/create_demo_data.py --out-dir '
                f'{self._arg(root)} --num-val {self.s.data.num_val} '
                '--overwrite')

    def _create_data(self, root: str) -> None:
        d = self.s.data
        cmd = [sys.executable, self._tool('create_demo_data.py'),
               '--out-dir', self._arg(root), '--num-train', str(d.num_train),
               '--num-val', str(d.num_val), '--num-test', str(d.num_test),
               '--seed', str(d.seed)]
        if Path(root).exists():
            cmd.append('--overwrite')
        res = run_stage('data', cmd, str(self.work / 'logs' / 'data.log'),
                        cwd=REPO_ROOT, env=self.env, echo=self.echo)
        self.stage_seconds['data'] = res.seconds

    # -------------------------------------------------------------- training
    def _train_options(self, config: str,
                       extra: Optional[List[str]] = None) -> tuple:
        """``(options, allow_new_keys, fingerprint)`` of a run."""
        from ..utils import load_config
        with _CONFIG_LOCK:
            cfg = load_config(config)
            options = schedule_overrides(cfg, self.s.schedule) + list(
                extra or [])
            seed_opts, allow_new = seed_options(config, self.s.seed)
            if allow_new:
                _check_options(config, options)
            fingerprint = config_fingerprint(config,
                                             self._abs(self.s.data_root),
                                             options + seed_opts)
        return options + seed_opts, allow_new, fingerprint

    def train(self, name: str, config: str,
              extra: Optional[List[str]] = None,
              reuse: bool = False,
              threads: Optional[int] = None) -> RunInfo:
        """Train ``config`` into ``WORK/name`` (or reuse a finished run with
        the same fingerprint when ``reuse``); ``threads`` sets the run's
        ``OMP_NUM_THREADS`` (default: this process's environment)."""
        config = self._config(config)
        work = self.work / name
        options, allow_new, fingerprint = self._train_options(config, extra)
        data_root = self._abs(self.s.data_root)
        marker = work / DONE_MARKER
        if reuse and marker.is_file():
            done = json.loads(marker.read_text())
            ckpt = done.get('checkpoint', '')
            if self._finished(done, fingerprint):
                self.echo(f'[{name}] reusing the finished run in {work} '
                          f'(same config, options and data; '
                          f'trained in {format_seconds(done["seconds"])}); '
                          '--retrain-teacher trains it again')
                self.stage_seconds[name] = 0.0
                return self._run_info(name, config, work, ckpt,
                                      done['seconds'], True, options)
            self.echo(f'[{name}] {work} holds a run of another config, '
                      'schedule or data set: training again')
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        cmd = [sys.executable, self._tool('train.py'), self._arg(config),
               '--work-dir', self._arg(str(work)), '--data-root',
               self._arg(data_root)]
        if allow_new:
            cmd.append('--allow-new-keys')
        cmd += ['--cfg-options', *options]
        epochs = self._epochs(config, options)
        env = dict(self.env)
        if threads:
            env['OMP_NUM_THREADS'] = str(threads)
            self.echo(f'[{name}] OMP_NUM_THREADS={threads}')
        res: StageResult = run_stage(name, cmd, str(self.work / 'logs' /
                                                    f'{name}.log'),
                                     cwd=REPO_ROOT, env=env,
                                     max_epochs=epochs, echo=self.echo)
        self.stage_seconds[name] = res.seconds
        ckpt = last_checkpoint(str(work))
        if ckpt is None:
            raise RuntimeError(f'{name}: training finished without a '
                               f'checkpoint in {work}')
        marker.write_text(json.dumps(dict(
            fingerprint=fingerprint, checkpoint=ckpt, seconds=res.seconds,
            config=config, options=options, command=format_command(cmd)),
            indent=2))
        return self._run_info(name, config, work, ckpt, res.seconds, False,
                              options)

    @staticmethod
    def _finished(done: Dict[str, Any], fingerprint: str) -> bool:
        ckpt = done.get('checkpoint', '')
        return done.get('fingerprint') == fingerprint and \
            bool(ckpt) and Path(ckpt).is_file()

    def reusable(self, name: str, config: str,
                 extra: Optional[List[str]] = None) -> bool:
        """Whether ``WORK/name`` holds a finished run that :meth:`train`
        with ``reuse=True`` would reuse."""
        config = self._config(config)
        marker = self.work / name / DONE_MARKER
        if not marker.is_file():
            return False
        _, _, fingerprint = self._train_options(config, extra)
        return self._finished(json.loads(marker.read_text()), fingerprint)

    def _epochs(self, config: str, options: List[str]) -> Optional[int]:
        for opt in options:
            if opt.startswith('train_cfg.max_epochs='):
                return int(opt.split('=', 1)[1])
        from ..utils import load_config
        with _CONFIG_LOCK:
            return load_config(config).train_cfg.get('max_epochs')

    def _run_info(self, name, config, work, ckpt, seconds, reused,
                  options) -> RunInfo:
        scalars = find_scalars(str(work))
        train_recs, val_recs = read_scalars(str(scalars)) if scalars else (
            [], [])
        return RunInfo(name, config, str(work), ckpt, seconds, reused,
                       options, train_recs, val_recs)


def _machine_facts() -> Dict[str, Any]:
    facts: Dict[str, Any] = dict(cpus=os.cpu_count(),
                                 python=platform.python_version())
    try:
        facts['load_avg'] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    try:
        import torch
        facts['torch'] = torch.__version__
        facts['cuda'] = torch.cuda.is_available()
    except ImportError:
        pass
    return facts


def stage_threads(settings: DemoSettings,
                  cpus: Optional[int] = None) -> Optional[tuple]:
    """``(distillation threads, plain student threads)`` when the two
    students train side by side (both need only the teacher), ``None`` to
    train them one after the other (``settings.parallel`` off, or fewer
    than two cores). The distillation run, the slower one, gets the larger
    half."""
    cpus = cpus or os.cpu_count() or 1
    if not settings.parallel or cpus < 2:
        return None
    return cpus - cpus // 2, cpus // 2


def train_students(demo: Demo, settings: DemoSettings,
                   teacher: RunInfo) -> tuple:
    """Stages 3 and 4: the plain student and the student distilled from
    ``teacher``, side by side on half the cores each where the machine has
    two or more (:func:`stage_threads`); returns ``(student, distill)``.
    With one thread for the distillation run its teacher forward runs in
    a thread of its own (``model.concurrent_teacher=True``)."""
    extra = [f'model.teacher.checkpoint={demo._arg(teacher.checkpoint)}']
    split = stage_threads(settings)
    if split is not None and split[0] == 1:
        # one intra-op thread: the teacher's forward gets a thread of its
        # own beside the student's (same results, see Distiller3D); it
        # uses the core the plain student leaves when it finishes first
        extra.append('model.concurrent_teacher=True')
    if split is None:
        demo.banner('3/5 4x student alone')
        student = demo.train('student', settings.student_config)
        demo.banner('4/5 4x student + PointDistiller')
        distill = demo.train('distill', settings.distill_config, extra=extra)
        return student, distill
    demo.banner(f'3-4/5 4x student + PointDistiller and 4x student alone, '
                f'side by side ({split[0]} + {split[1]} threads)')
    with ThreadPoolExecutor(max_workers=2) as pool:
        distill_job = pool.submit(demo.train, 'distill',
                                  settings.distill_config, extra=extra,
                                  threads=split[0])
        student_job = pool.submit(demo.train, 'student',
                                  settings.student_config, threads=split[1])
        return student_job.result(), distill_job.result()


def run_demo(settings: DemoSettings,
             echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the whole demo; returns the results written to
    ``WORK/demo_results.json``."""
    from .report import write_report
    t0 = time.perf_counter()
    demo = Demo(settings, echo)
    demo.work.mkdir(parents=True, exist_ok=True)
    facts = _machine_facts()
    echo(f'PointDistiller demo ({"quick" if settings.quick else "full"}): '
         f'work dir {demo.work}, data {settings.data_root}, seed '
         f'{settings.seed}; {facts.get("cpus")} CPUs, load '
         f'{facts.get("load_avg")}')

    demo.banner('1/5 data')
    demo.stage_data()
    demo.banner('2/5 teacher (PointPillars)')
    teacher = demo.train('teacher', settings.teacher_config,
                         reuse=not settings.retrain_teacher)
    student, distill = train_students(demo, settings, teacher)
    demo.banner('5/5 comparison')
    results = write_report(demo, [teacher, student, distill], facts, t0)
    echo('\nre-evaluate a checkpoint with tools/test.py, e.g.\n  ' +
         results['meta']['test_commands']['distill'])
    total = format_seconds(results['meta']['total_seconds'])
    echo(f'demo finished in {total}; results in {demo.work}')
    return results
