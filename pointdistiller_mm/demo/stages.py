"""Run one demo stage as a subprocess and stream a compact progress view.

The full output of the command goes to a log file; the terminal gets one
line per logged training iteration (stage, epoch, iteration, loss, ETA), the
validation results, and a heartbeat when the command has been quiet for a
while, so the demo is never silent for long.
"""
from __future__ import annotations

import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, TextIO

from .logs import kitti_summary, parse_train_line, parse_val_line

__all__ = ['StageResult', 'StageError', 'run_stage', 'format_command',
           'progress_line', 'format_seconds', 'subprocess_env']


class StageError(RuntimeError):
    """A stage's command exited with a non-zero status."""


@dataclass
class StageResult:
    """What a finished stage returns.

    Attributes:
        name: Stage name.
        returncode: Exit status of the command.
        seconds: Wall time.
        log_file: Where the full output was written.
        tail: The last lines of the output (for error messages).
        val: ``{epoch: metrics}`` of the validation results seen.
    """
    name: str
    returncode: int
    seconds: float
    log_file: str
    tail: List[str] = field(default_factory=list)
    val: Dict[int, Dict[str, float]] = field(default_factory=dict)


def format_seconds(seconds: float) -> str:
    """``75.3`` -> ``'1m15s'``; under a minute ``'42.0s'``."""
    if seconds < 60:
        return f'{seconds:.1f}s'
    m, s = divmod(int(round(seconds)), 60)
    if m < 60:
        return f'{m}m{s:02d}s'
    h, m = divmod(m, 60)
    return f'{h}h{m:02d}m{s:02d}s'


def format_command(cmd: Sequence[str], cwd: Optional[str] = None) -> str:
    """A shell-pasteable rendering of a command (interpreter shown as
    ``python`` when it is this interpreter)."""
    parts = ['python' if c == sys.executable else c for c in cmd]
    text = ' '.join(shlex.quote(str(p)) for p in parts)
    return text


def progress_line(stage: str, line: str,
                  max_epochs: Optional[int] = None) -> Optional[str]:
    """Compact rendering of an mmengine log line, or None to skip it."""
    tl = parse_train_line(line)
    if tl is not None:
        ep = f'{tl.epoch}/{max_epochs}' if max_epochs else str(tl.epoch)
        parts = [f'[{stage}] epoch {ep} iter {tl.iter}/{tl.iters}']
        if tl.loss is not None:
            parts.append(f'loss {tl.loss:.4f}')
        if tl.distill_loss is not None:
            parts.append(f'distill {tl.distill_loss:.4f}')
        if 'time' in tl.values:
            parts.append(f'{tl.values["time"]:.2f}s/it')
        if tl.eta:
            parts.append(f'eta {tl.eta}')
        return '  '.join(parts)
    vl = parse_val_line(line)
    if vl is not None and any('KITTI/' in k for k in vl.values):
        s = kitti_summary(vl.values)
        if s['mAP_3D'] is None:
            return f'[{stage}] val epoch {vl.epoch}: metrics incomplete'
        return (f'[{stage}] val epoch {vl.epoch}: moderate AP40 mAP 3D '
                f'{s["mAP_3D"]:.2f}  BEV {s["mAP_BEV"]:.2f}  (Car 3D '
                f'{s["Car_3D"]:.2f})')
    return None


def _reader(stream: TextIO, out: 'queue.Queue[Optional[str]]') -> None:
    for line in iter(stream.readline, ''):
        out.put(line)
    out.put(None)


def run_stage(name: str,
              cmd: Sequence[str],
              log_file: str,
              cwd: Optional[str] = None,
              env: Optional[Dict[str, str]] = None,
              max_epochs: Optional[int] = None,
              heartbeat_s: float = 20.0,
              echo: Callable[[str], None] = print,
              check: bool = True) -> StageResult:
    """Run ``cmd``, log everything to ``log_file``, stream progress.

    Args:
        name: Stage name shown on every progress line.
        cmd: The command (list of arguments).
        log_file: Full stdout + stderr of the command.
        cwd: Working directory.
        env: Environment (defaults to this process's).
        max_epochs: Shown as ``epoch e/E`` when known.
        heartbeat_s: Print a heartbeat after this many quiet seconds.
        echo: Where progress lines go.
        check: Raise :class:`StageError` on a non-zero exit.

    Returns:
        StageResult.
    """
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    echo(f'[{name}] $ {format_command(cmd)}')
    t0 = time.perf_counter()
    last_print = t0
    last_seen = ''
    tail: List[str] = []
    val: Dict[int, Dict[str, float]] = {}
    lines: 'queue.Queue[Optional[str]]' = queue.Queue()
    with open(log_file, 'w') as log:
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=env,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True,
                                bufsize=1, errors='replace')
        reader = threading.Thread(target=_reader, args=(proc.stdout, lines),
                                  daemon=True)
        reader.start()
        done = False
        try:
            while not done:
                try:
                    line = lines.get(timeout=1.0)
                except queue.Empty:
                    line = ''
                if line is None:
                    done = True
                    continue
                now = time.perf_counter()
                if line:
                    log.write(line)
                    log.flush()
                    tail = (tail + [line.rstrip('\n')])[-40:]
                    if line.strip():
                        last_seen = line.strip()
                    vl = parse_val_line(line)
                    if vl is not None and any('KITTI/' in k
                                              for k in vl.values):
                        val[vl.epoch] = vl.values
                    shown = progress_line(name, line, max_epochs)
                    if shown:
                        echo(shown)
                        last_print = now
                if now - last_print >= heartbeat_s:
                    hint = last_seen[-90:] if last_seen else 'starting'
                    echo(f'[{name}] ... {format_seconds(now - t0)} elapsed '
                         f'| {hint}')
                    last_print = now
        except KeyboardInterrupt:
            proc.terminate()
            raise
        returncode = proc.wait()
    seconds = time.perf_counter() - t0
    result = StageResult(name, returncode, seconds, log_file, tail, val)
    if returncode != 0 and check:
        raise StageError(
            f'stage {name} failed (exit {returncode}) after '
            f'{format_seconds(seconds)}; full log: {log_file}\n' +
            '\n'.join(tail[-25:]))
    echo(f'[{name}] done in {format_seconds(seconds)}')
    return result


def subprocess_env(repo_root: str) -> Dict[str, str]:
    """Environment for the stage subprocesses: this environment with the
    repository on ``PYTHONPATH``."""
    env = dict(os.environ)
    path = env.get('PYTHONPATH', '')
    env['PYTHONPATH'] = repo_root + (os.pathsep + path if path else '')
    env.setdefault('PYTHONUNBUFFERED', '1')
    return env
