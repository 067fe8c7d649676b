"""Checkpoint reading and writing that suits torch >= 2.6 and crashes.

* torch 2.6 changed ``torch.load``'s default to ``weights_only=True``;
  mmengine 0.10.7 calls ``torch.load`` without the argument, so resuming a
  run (message hub history, numpy scalars in ``meta``) raises
  ``UnpicklingError``. :func:`load_from_local` re-registers mmengine's local
  loader with ``weights_only=False``, mmengine's behaviour before torch 2.6.
  Checkpoints are pickles: load only files you trust, as always with
  mmengine.
* mmengine writes checkpoints straight to their final name, so a run killed
  while saving leaves a truncated ``.pth`` that ``--resume`` then picks up.
  :class:`AtomicLocalBackend` writes to a temporary file in the same folder
  and renames it, so a checkpoint file is either complete or absent.
"""
from __future__ import annotations

import os
import os.path as osp
import tempfile
from typing import Any, Optional, Union

import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.fileio import io as fileio_io
from mmengine.runner.checkpoint import CheckpointLoader


def load_from_local(filename: str, map_location: Optional[Any] = None) -> Any:
    """mmengine's local checkpoint loader with ``weights_only=False``."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return torch.load(filename, map_location=map_location, weights_only=False)


class AtomicLocalBackend(LocalBackend):
    """Local file backend whose ``put`` writes atomically (temp + rename)."""

    def put(self, obj: bytes, filepath: Union[str, os.PathLike]) -> None:
        filepath = str(filepath)
        folder = osp.dirname(osp.abspath(filepath))
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-',
                                   suffix=osp.basename(filepath))
        try:
            with os.fdopen(fd, 'wb') as f:
                f.write(obj)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, filepath)
        except BaseException:
            if osp.exists(tmp):
                os.remove(tmp)
            raise

    def put_text(self, obj: str, filepath: Union[str, os.PathLike],
                 encoding: str = 'utf-8') -> None:
        self.put(obj.encode(encoding), filepath)


def apply_checkpoint_io_patches() -> list:
    """Register both replacements (idempotent). Returns their names."""
    CheckpointLoader.register_scheme(prefixes='', force=True)(load_from_local)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
    # drop LocalBackend instances cached before the registration
    for key in [k for k in fileio_io.backend_instances if k.startswith(':')]:
        del fileio_io.backend_instances[key]
    return ['checkpoint_load_weights_only_false', 'atomic_checkpoint_write']
