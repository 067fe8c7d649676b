"""The demo's BEV variant of PointDistiller (first backbone stage instead of
the pillar features): the config builds, differs from the pillar config only
in the recipe and one training step distils occupied BEV cells."""
import torch
from mmengine.config import Config

from tests.test_baseline_configs import (REPO, _batch, _build,  # noqa: F401
                                         _without_recipe, mmdet3d_scope)

CONFIG = 'configs/demo/pointpillars_4x_pointdistiller_bev.py'
PILLARS = 'configs/demo/pointpillars_4x_pointdistiller.py'


def test_bev_config_changes_only_the_recipe():
    cfg, model = _build(CONFIG)
    assert list(model.distill_losses) == ['bev0']
    base = Config.fromfile(str(REPO / PILLARS))
    assert _without_recipe(cfg) == _without_recipe(base)


def test_bev_config_loss_step_samples_occupied_cells():
    cfg, model = _build(CONFIG)
    model.init_weights()
    model.train()
    loss = model.distill_losses['bev0']
    seen = {}
    forward = loss.forward

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return forward(*args, **kwargs)

    loss.forward = spy
    data = model.data_preprocessor(_batch(cfg, n_points=20000), True)
    losses = model.loss(**data)
    value = losses['distill.loss_bev0']
    assert torch.isfinite(value) and value.requires_grad
    # rows of the 64 x 64 stride-2 map, 32 student / 64 teacher channels
    assert seen['student_feats'].shape == (2 * 64 * 64, 32)
    assert seen['teacher_feats'].shape == (2 * 64 * 64, 64)
    scores = seen['scores'].reshape(2, -1)
    # 20,000 uniform points fill more than 512 cells of each sample: the
    # top-512 cells by point count all hold points
    top = scores.topk(512, dim=1).values
    assert (top > 0).all()
    value.backward()
    grads = [p.grad for p in model.student.backbone.parameters()]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    assert all(p.grad is None for p in model.teacher.parameters())
