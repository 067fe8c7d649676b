"""Write a student-only checkpoint from a distillation checkpoint.

    python tools/export_student.py CONFIG CKPT OUT

CONFIG is the distillation config (``model.type='Distiller3D'``), CKPT a
checkpoint it wrote. OUT holds the student's weights under the key names of
the stock mmdet3d student config (``model.student``), verified by a strict
load before it is written; distillation adapters and the teacher are left
out. The file is written to a temporary name and renamed, so it is either
complete or absent.
"""
import argparse
import os
import os.path as osp
import sys
from collections import OrderedDict

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import torch  # noqa: E402
from mmengine.runner.checkpoint import CheckpointLoader  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401
from pointdistiller_mm.distillers.teacher import strip_state_prefix  # noqa: E402
from pointdistiller_mm.utils import (ConfigError, check_checkpoint,  # noqa: E402
                                     load_config)
from mmdet3d.registry import MODELS  # noqa: E402


def student_state_dict(checkpoint: dict) -> 'OrderedDict[str, torch.Tensor]':
    """Keys under ``student.`` with the prefix removed; the module metadata
    (spconv kernel layout versions) is renamed alongside."""
    state = checkpoint.get('state_dict', checkpoint)
    if state and all(k.startswith('module.') for k in state):
        state = strip_state_prefix(state, 'module.')
    return strip_state_prefix(state, 'student.')


def export(config: str, checkpoint: str, out: str) -> None:
    cfg = load_config(config)
    if cfg.model.get('type') != 'Distiller3D':
        raise ConfigError(f'{config} is not a distillation config '
                          "(model.type is not 'Distiller3D').")
    check_checkpoint(checkpoint, config)
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = student_state_dict(ckpt)
    if not state:
        raise ConfigError(f'{checkpoint} has no student.* weights: is it a '
                          'checkpoint of this distillation config?')
    student = MODELS.build(cfg.model.student)
    student.load_state_dict(state, strict=True)  # proves it fits
    meta = dict(ckpt.get('meta', {}))
    meta.update(exported_from=osp.abspath(checkpoint), distill_config=config)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    tmp = out + '.tmp'
    torch.save({'state_dict': state, 'meta': meta}, tmp)
    os.replace(tmp, out)
    n = sum(v.numel() for v in state.values() if v.is_floating_point())
    print(f'wrote {out}: {len(state)} tensors, {n / 1e6:.3f} M values '
          '(student only)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='distillation config')
    parser.add_argument('checkpoint', help='checkpoint written by it')
    parser.add_argument('out', help='output student checkpoint (.pth)')
    args = parser.parse_args()
    try:
        export(args.config, args.checkpoint, args.out)
    except ConfigError as err:
        sys.exit(f'error: {err}')


if __name__ == '__main__':
    main()
