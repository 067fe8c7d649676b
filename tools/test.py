"""Evaluate a checkpoint with the metric of its config (KITTI, nuScenes...).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR]
        [--cfg-options k=v ...] [--launcher {none,pytorch,slurm,mpi}]

Distributed: ``bash tools/dist_test.sh CONFIG CHECKPOINT NPROC``.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import ConfigDict, DictAction  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401  (registers modules, CPU patches)
from pointdistiller_mm.utils import (ConfigError,  # noqa: E402
                                     adapt_config_to_machine,
                                     check_checkpoint, check_datasets,
                                     prepare_config, setup_cpu_distributed,
                                     skip_teacher_weights)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save metrics and logs')
    parser.add_argument('--show-dir', help='save painted results here')
    parser.add_argument('--score-thr', type=float, default=0.1,
                        help='bbox score threshold for --show-dir')
    parser.add_argument('--task', default='lidar_det',
                        choices=['lidar_det', 'lidar_seg', 'mono_det',
                                 'multi-view_det', 'multi-modality_det'],
                        help='visualisation task for --show-dir')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument(
        '--data-root', help='move every path under the config\'s data_root '
        'here (dataloaders, GT database, evaluators)')
    parser.add_argument('--allow-new-keys', action='store_true',
                        help='let --cfg-options add keys absent from the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true',
                        help='test time augmentation (segmentation)')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def build_runner(args: argparse.Namespace) -> Runner:
    cfg = prepare_config(args.config, args.cfg_options, args.allow_new_keys,
                         args.data_root, args.work_dir, args.launcher)
    check_checkpoint(args.checkpoint, args.config)
    cfg.load_from = args.checkpoint
    teacher_ckpt = skip_teacher_weights(cfg)
    if teacher_ckpt:
        print(f'Testing the student only: the teacher checkpoint '
              f'{teacher_ckpt} is not loaded.', flush=True)
    if args.show_dir:
        vis = cfg.default_hooks.get('visualization')
        if vis is None:
            raise ConfigError('--show-dir needs default_hooks.visualization '
                              "(dict(type='Det3DVisualizationHook')).")
        vis.update(draw=True, test_out_dir=args.show_dir, vis_task=args.task,
                   score_thr=args.score_thr)
    if args.tta:
        if 'tta_model' not in cfg or 'tta_pipeline' not in cfg:
            raise ConfigError('--tta needs tta_model and tta_pipeline in the '
                              'config.')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    check_datasets(cfg, ('test_dataloader', ))
    adapt_config_to_machine(cfg, args.launcher)
    setup_cpu_distributed(cfg, args.launcher)
    if 'runner_type' not in cfg:
        return Runner.from_cfg(cfg)
    return RUNNERS.build(cfg)


# nuScenes detection summary, in the column order of the PointDistiller
# paper's nuScenes table
NUSCENES_SUMMARY = ('mAP', 'NDS', 'mATE', 'mASE', 'mAOE', 'mAVE', 'mAAE')


def print_nuscenes_summary(metrics: dict) -> None:
    """One line per result name with mAP, NDS and the five TP errors, when
    ``metrics`` holds NuScenesMetric keys (``<name>_NuScenes/mAP``...)."""
    for key in sorted(k for k in metrics if k.endswith('_NuScenes/mAP')):
        prefix = key[:-len('mAP')]
        vals = '  '.join(f'{name} {float(metrics[prefix + name]):.4f}'
                         for name in NUSCENES_SUMMARY
                         if prefix + name in metrics)
        name = prefix[:-len('_NuScenes/')].split('/')[-1]
        print(f'nuScenes summary ({name}): {vals}', flush=True)


def main() -> None:
    args = parse_args()
    try:
        runner = build_runner(args)
    except ConfigError as err:
        sys.exit(f'error: {err}')
    metrics = runner.test()
    if metrics:
        print_nuscenes_summary(metrics)


if __name__ == '__main__':
    main()
