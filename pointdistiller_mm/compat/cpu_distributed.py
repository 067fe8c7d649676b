"""Distributed training on machines without CUDA.

mmengine 0.10 assumes CUDA for ``--launcher pytorch``: its process-group set-up
calls ``torch.cuda.set_device`` and its runner passes
``device_ids=[LOCAL_RANK]`` to ``DistributedDataParallel``, which torch refuses
for CPU modules. On a CPU-only machine this module

* initialises the process group itself with the ``gloo`` backend before the
  runner is built (mmengine then skips its own initialisation), and
* provides :class:`CPUDistributedDataParallel`, an
  ``MMDistributedDataParallel`` that drops ``device_ids`` for CPU modules.
"""
from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class CPUDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that also wraps modules living on CPU.

    ``device_ids`` and ``output_device`` are only valid for CUDA modules; they
    are dropped when the wrapped module's parameters are on the CPU.
    """

    def __init__(self, module: torch.nn.Module, **kwargs: Any) -> None:
        first = next(module.parameters(), None)
        if first is None or first.device.type == 'cpu':
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        super().__init__(module=module, **kwargs)


def init_cpu_process_group(timeout_s: int = 1800) -> None:
    """Initialise torch.distributed with gloo from torchrun's environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT`` as set
    by ``torch.distributed.run`` (``tools/dist_train.sh``). Does nothing if a
    process group already exists.
    """
    if dist.is_initialized():
        return
    missing = [k for k in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT')
               if k not in os.environ]
    if missing:
        raise RuntimeError(
            f'--launcher pytorch needs the environment variables {missing}; '
            'start the job with tools/dist_train.sh CONFIG NPROC (it runs '
            'torch.distributed.run), not with python tools/train.py directly.')
    dist.init_process_group(
        backend='gloo',
        rank=int(os.environ['RANK']),
        world_size=int(os.environ['WORLD_SIZE']),
        timeout=timedelta(seconds=timeout_s))
