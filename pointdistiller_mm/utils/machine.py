"""Fit a config to the machine it runs on (CPU-only or CUDA)."""
from __future__ import annotations

import logging

import torch
from mmengine.config import Config
from mmengine.logging import print_log

from ..compat.cpu_distributed import init_cpu_process_group


def adapt_config_to_machine(cfg: Config, launcher: str = 'none') -> None:
    """Switch a CUDA-oriented config to what works without CUDA.

    Without CUDA: the distributed backend becomes ``gloo`` and, for
    distributed runs, the model wrapper becomes
    ``CPUDistributedDataParallel``. With CUDA nothing changes.
    """
    if torch.cuda.is_available():
        return
    env = cfg.setdefault('env_cfg', {})
    dist_cfg = env.setdefault('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') != 'gloo':
        dist_cfg['backend'] = 'gloo'
    if launcher != 'none':
        wrapper = cfg.get('model_wrapper_cfg') or {}
        if wrapper.get('type', 'MMDistributedDataParallel') == \
                'MMDistributedDataParallel':
            wrapper = dict(wrapper, type='CPUDistributedDataParallel')
            cfg.model_wrapper_cfg = wrapper


def setup_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Start the gloo process group for ``--launcher pytorch`` on CPU."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs CUDA here; on a CPU-only machine '
            'use tools/dist_train.sh (--launcher pytorch, gloo backend).')
    timeout = cfg.get('env_cfg', {}).get('dist_cfg', {}).get('timeout', 1800)
    init_cpu_process_group(timeout_s=int(timeout))
    print_log('CPU-only machine: torch.distributed uses the gloo backend.',
              logger='current', level=logging.INFO)
