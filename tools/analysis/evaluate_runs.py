"""Evaluate finished training runs on a val set and tabulate them.

Each run's last checkpoint goes through ``tools/test.py CONFIG CKPT
--data-root DIR`` (the config mmengine dumped in the run's work dir);
moderate AP40 per class (3D and BEV, strict IoU) and the means are written
to ``OUT/evaluated.md`` and ``OUT/evaluated.json``. Finished evaluations of
the same checkpoint on the same data are reused.

    python tools/analysis/evaluate_runs.py --data-root data/demo_kitti \\
        --out work_dirs/eval teacher=work_dirs/demo/teacher \\
        student=work_dirs/demo/student 'student + KD=work_dirs/demo/distill'
"""
from __future__ import annotations

import argparse
import json
import os.path as osp
import sys
import warnings
from pathlib import Path
from typing import Optional, Sequence

warnings.filterwarnings('ignore', message='pkg_resources is deprecated')
sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))

from pointdistiller_mm.analysis.evaluate_runs import (  # noqa: E402
    evaluate_run, parse_run_spec, run_config)
from pointdistiller_mm.demo.table import build_row, markdown_table  # noqa


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('runs', nargs='+', metavar='[NAME=]WORK_DIR',
                   help='training work dirs, optionally named')
    p.add_argument('--data-root', required=True,
                   help='data set whose val split (the configs\' test '
                   'split) is evaluated')
    p.add_argument('--out', default='work_dirs/evaluated',
                   help='test work dirs and the table go here')
    return p.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    try:
        runs = [parse_run_spec(s) for s in args.runs]
        configs = [run_config(r.work_dir) for r in runs]
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f'error: {err}')
    out = Path(args.out)
    rows, table = [], []
    for run, config in zip(runs, configs):
        ap = evaluate_run(run, args.data_root, out)
        rows.append(build_row(run.name, str(config), ap))
        table.append(dict(name=run.name, work_dir=str(run.work_dir), ap=ap))
    md = markdown_table(rows)
    print('\n' + md)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'evaluated.md').write_text(
        f'Data `{args.data_root}` (val split), moderate AP40, strict IoU; '
        '`tools/test.py` on each run\'s last checkpoint.\n\n' + md + '\n')
    result = dict(data_root=args.data_root, runs=table)
    (out / 'evaluated.json').write_text(json.dumps(result, indent=2))
    print(f'wrote {out / "evaluated.md"} and evaluated.json')
    return result


if __name__ == '__main__':
    main()
