"""Train a detector, segmentor or distiller from an mmdet3d-style config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Distributed: ``bash tools/dist_train.sh CONFIG NPROC`` (gloo on CPU).
"""
import argparse
import logging
import os
import os.path as osp
import sys

import torch  # noqa: E402

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402
from mmengine.logging import print_log  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401  (registers modules, CPU patches)
from pointdistiller_mm.utils import (ConfigError,  # noqa: E402
                                     adapt_config_to_machine,
                                     check_checkpoint, check_datasets,
                                     prepare_config, setup_cpu_distributed)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Train a 3D model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument('--amp', action='store_true',
                        help='enable automatic-mixed-precision training')
    parser.add_argument('--sync_bn', choices=['none', 'torch', 'mmcv'],
                        default='none', help='convert BatchNorm to SyncBN')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='enable automatically scaling LR')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from CKPT, or from the latest checkpoint in the work '
        'directory when no path is given')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value (keys must exist)')
    parser.add_argument(
        '--data-root', help='move every path under the config\'s data_root '
        'here (dataloaders, GT database, evaluators)')
    parser.add_argument('--allow-new-keys', action='store_true',
                        help='let --cfg-options add keys absent from the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_runner(args: argparse.Namespace) -> Runner:
    cfg = prepare_config(args.config, args.cfg_options, args.allow_new_keys,
                         args.data_root, args.work_dir, args.launcher)

    if args.amp:
        if not torch.cuda.is_available():
            raise ConfigError('--amp needs a CUDA device (mmengine\'s '
                              'AmpOptimWrapper); drop --amp on this machine.')
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.',
                      logger='current', level=logging.WARNING)
        elif wrapper != 'OptimWrapper':
            raise ConfigError('--amp works with optim_wrapper type '
                              f'OptimWrapper, the config uses {wrapper}.')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.sync_bn != 'none':
        cfg.sync_bn = args.sync_bn
    if args.auto_scale_lr:
        if not cfg.get('auto_scale_lr', {}).get('base_batch_size'):
            raise ConfigError('--auto-scale-lr needs auto_scale_lr.'
                              'base_batch_size in the config.')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        check_checkpoint(args.resume, args.config, 'Resume checkpoint')
        cfg.resume = True
        cfg.load_from = args.resume
    else:
        check_checkpoint(cfg.get('load_from'), args.config, 'load_from')

    splits = ['train_dataloader']
    if cfg.get('val_cfg') is not None and cfg.get('val_dataloader'):
        splits.append('val_dataloader')
    check_datasets(cfg, tuple(splits))
    adapt_config_to_machine(cfg, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)

    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


def main() -> None:
    args = parse_args()
    try:
        runner = build_runner(args)
    except ConfigError as err:
        sys.exit(f'error: {err}')
    runner.train()


if __name__ == '__main__':
    main()
