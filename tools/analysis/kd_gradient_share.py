"""Gradient a distillation term sends into a student module, against the
task loss's, on a few training batches.

    python tools/analysis/kd_gradient_share.py \\
        configs/demo/pointpillars_4x_pointdistiller.py \\
        [--checkpoint work_dirs/.../epoch_8.pth] [--module voxel_encoder] \\
        [--batches 3] [--data-root data/demo_kitti] [--cfg-options k=v ...]

Without ``--checkpoint`` the student and adapters are at initialisation;
with one, at that point of training. The teacher comes from the config's
``model.teacher.checkpoint``.
"""
from __future__ import annotations

import argparse
import itertools
import os.path as osp
import sys
import warnings
from typing import Optional, Sequence

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from mmengine.config import DictAction  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='a Distiller3D config')
    p.add_argument('--checkpoint', help='distillation checkpoint (student '
                   'and adapters); default: initialisation')
    p.add_argument('--module', default='voxel_encoder',
                   help='student module path whose gradient is measured')
    p.add_argument('--batches', type=int, default=3)
    p.add_argument('--data-root', help='move the config\'s data_root here')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config settings, key=value')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> list:
    args = parse_args(argv)
    import torch
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import pointdistiller_mm  # noqa: F401
    from mmdet3d.registry import MODELS
    from pointdistiller_mm.analysis.gradient_share import (
        gradient_share, load_trained_state, mean_ratios)
    from pointdistiller_mm.utils import (ConfigError, check_datasets,
                                         load_config, replace_data_root)
    try:
        cfg = load_config(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
        if args.data_root:
            replace_data_root(cfg, args.data_root)
        check_datasets(cfg, ('train_dataloader', ))
    except ConfigError as err:
        raise SystemExit(f'error: {err}')
    init_default_scope('mmdet3d')
    torch.manual_seed(args.seed)
    model = MODELS.build(cfg.model)
    if args.checkpoint:
        load_trained_state(model, args.checkpoint)
    loader_cfg = cfg.train_dataloader.copy()
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=args.seed)
    shares = gradient_share(model, itertools.islice(loader, args.batches),
                            args.module)
    state = args.checkpoint or 'initialisation'
    print(f'{args.config} at {state}: gradient norm on student.{args.module}')
    for i, s in enumerate(shares):
        terms = '; '.join(
            f'{n} loss {t["loss"]:.5g} |grad| {t["grad"]:.4g} '
            f'({100 * t["ratio"]:.2f} % of task)'
            for n, t in s.terms.items())
        print(f'batch {i}: task loss {s.task_loss:.4g} |grad| '
              f'{s.task_grad:.4g}; {terms}')
    for n, r in mean_ratios(shares).items():
        print(f'mean share of {n}: {100 * r:.2f} % of the task gradient')
    return shares


if __name__ == '__main__':
    main()
