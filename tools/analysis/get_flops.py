"""Parameters and GFLOPs of a detector on real scans of its val split.

Builds the model of CONFIG (a distiller config is measured as its student,
the deployed model), voxelizes N scans of the val split and counts
multiply-accumulates of one ``mode='tensor'`` forward (``extract_feat`` +
head) per scan with forward hooks, reporting the mean. "GFLOPs" are GMACs,
as in mmcv 1.x's counter and the PointDistiller paper's Table 1, whose
figures are printed beside ours for the detectors it lists.

    python tools/analysis/get_flops.py CONFIG [--data-root DIR]
        [--num-scans N] [--paper KEY] [--per-module] [--cfg-options k=v ...]

FLOPs of the dense BEV layers scale with the pillar / voxel grid: configs
with a smaller point-cloud range than KITTI's (the demo configs) give fewer
FLOPs than the paper for the same network.
"""
from __future__ import annotations

import argparse
import os.path as osp
import sys
from typing import Any, Dict, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, REPO)

from mmengine.config import DictAction  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401  (registers modules, CPU patches)
from pointdistiller_mm.analysis import (KITTI_RANGES,  # noqa: E402
                                        PAPER_TABLE1, config_complexity,
                                        group_by_prefix, match_paper_key,
                                        sparse_count_methods)
from pointdistiller_mm.utils import (ConfigError,  # noqa: E402
                                     check_cfg_options, load_config,
                                     replace_data_root)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--data-root', help='move the config\'s data_root')
    parser.add_argument('--num-scans', type=int, default=4,
                        help='val scans to average over')
    parser.add_argument('--paper', choices=sorted(PAPER_TABLE1),
                        help='paper row to print beside the measurement '
                        '(default: matched from the config name)')
    parser.add_argument('--per-module', action='store_true',
                        help='also print MACs per top-level module')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value (keys '
                        'must exist)')
    return parser.parse_args(argv)


def measure(config: str, data_root: Optional[str] = None,
            num_scans: int = 4,
            cfg_options: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Load a config (with overrides, moving its data root) and measure
    it."""
    cfg = load_config(config)
    if cfg_options:
        check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if data_root:
        replace_data_root(cfg, data_root)
    try:
        return config_complexity(cfg, num_scans)
    except ValueError as err:
        raise ConfigError(f'{config}: {err}') from err


def format_report(config: str, result: Dict[str, Any],
                  paper_key: Optional[str], per_module: bool = False) -> str:
    """Lines printed by the tool."""
    params_m = result['params'] / 1e6
    gflops = result['flops'] / 1e9
    lines = [f'config:      {config}' +
             (' (student of the distiller)' if result.get('is_distiller')
              else ''),
             f'scans:       {result["num_inputs"]} (val split, mean)',
             f'params:      {params_m:.3f} M',
             f'GFLOPs:      {gflops:.2f} (GMACs, mmcv counter rules)']
    methods = sparse_count_methods(result['per_module'])
    if methods:
        lines.append('sparse conv: ' + ', '.join(
            'exact index pairs' if m == 'pairs' else
            'approx (active sites x kernel volume)' for m in methods))
    if paper_key:
        flops, params = PAPER_TABLE1[paper_key]
        lines.append(f'paper:       {flops:.1f} GFLOPs / {params:.1f} M '
                     f'(PointDistiller Table 1, {paper_key}, full KITTI '
                     'range)')
        pcr = result.get('point_cloud_range')
        detector = paper_key.split('-')[0]
        full = KITTI_RANGES.get(detector)
        if pcr is not None and full is not None and \
                [round(float(v), 2) for v in pcr] != list(full):
            lines.append(f'note:        point_cloud_range {list(pcr)} is not '
                         f'the KITTI range {list(full)}: dense BEV FLOPs '
                         'scale with the grid area.')
    if per_module:
        for name, macs in group_by_prefix(result['per_module']).items():
            lines.append(f'  {name:<20} {macs / 1e9:8.3f} GFLOPs')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    try:
        result = measure(args.config, args.data_root, args.num_scans,
                         args.cfg_options)
    except ConfigError as err:
        sys.exit(f'error: {err}')
    key = args.paper or match_paper_key(args.config)
    print(format_report(args.config, result, key, args.per_module))
    return result


if __name__ == '__main__':
    main()
