"""A hook that writes, per rank, a checksum of the trained weights and the
sample indices of its shard (used by the distributed training test)."""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet3d.registry import HOOKS


@HOOKS.register_module()
class ParamChecksumHook(Hook):
    """Write ``param_checksum_rank{r}.txt`` and ``shard_rank{r}.txt`` (the
    dataset indices the rank's sampler yields in epoch 1) into the work
    dir."""

    def before_train(self, runner):
        sampler = runner.train_dataloader.sampler
        self._write(runner, 'shard', ' '.join(map(str, iter(sampler))))

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        with torch.no_grad():
            total = sum(p.double().abs().sum().item() * (i + 1)
                        for i, p in enumerate(model.parameters()))
        self._write(runner, 'param_checksum', repr(total))

    @staticmethod
    def _write(runner, name, text):
        path = osp.join(runner.work_dir, f'{name}_rank{get_rank()}.txt')
        with open(path, 'w') as f:
            f.write(text)
