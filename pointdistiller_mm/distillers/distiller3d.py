"""Distiller3D: one frozen teacher, one student, configurable KD terms."""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Mapping, Optional, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmdet3d.registry import MODELS, TASK_UTILS

from ..recorders import RecorderManager
from .background import BackgroundCall
from .early_exit import EarlyExit
from .teacher import build_teacher, check_same_voxelization


def _clone_tensors(data: Any) -> Any:
    """``data`` with every tensor in its dicts, lists and tuples cloned."""
    if isinstance(data, Tensor):
        return data.clone()
    if isinstance(data, Mapping):
        return {k: _clone_tensors(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(_clone_tensors(v) for v in data)
    return data


def _scaled(loss: Any, weight: float) -> Any:
    """A loss value (a tensor or a list of tensors) times ``weight``."""
    if isinstance(loss, (list, tuple)):
        return type(loss)(v * weight for v in loss)
    return loss * weight


def _extract_feat(model: nn.Module, inputs: Any, data_samples: list) -> Any:
    """``model.extract_feat`` with the arguments its signature asks for:
    mmdet3d's single-stage detectors take the batch inputs only,
    ``MVXTwoStageDetector`` (nuScenes PointPillars) also the input metas."""
    params = inspect.signature(model.extract_feat).parameters
    if 'batch_input_metas' in params:
        return model.extract_feat(inputs,
                                  [s.metainfo for s in data_samples])
    return model.extract_feat(inputs)


def _takes_data_samples(loss: nn.Module) -> bool:
    """Whether a loss's forward names a ``data_samples`` parameter."""
    return 'data_samples' in inspect.signature(loss.forward).parameters


@MODELS.register_module()
class Distiller3D(BaseModel):
    """Knowledge distillation wrapper for mmdet3d detectors and segmentors.

    Training step::

        batch -> data_preprocessor (the student's; voxelize once)
              -> teacher.<teacher_forward>(inputs)   eval, no_grad, recorded
              -> student.loss(inputs, data_samples)  recorded
              -> each distill term: rows(student rec, teacher rec) -> loss
        losses: ``student.*`` plus ``distill.loss_<term>``

    ``predict`` / ``tensor`` (validation, test, export) run the student only.
    The teacher is not a submodule: it is absent from ``state_dict``,
    ``parameters()`` and ``init_weights``, so checkpoints hold the student
    and the distillation modules (adapters, connectors) only.

    Args:
        student: mmdet3d model config of the student.
        teacher: ``dict(config=PATH or model dict, checkpoint=PATH or URL)``.
            The checkpoint is loaded strictly; a mismatch raises with the
            missing / unexpected keys.
        student_recorders: ``{name: recorder config}`` on the student, e.g.
            ``dict(pillars=dict(source='voxel_encoder'))``.
        teacher_recorders: the same on the teacher.
        distill_terms: ``{term: dict(student=REC, teacher=REC, rows=CFG,
            loss=CFG)}``: ``rows`` is a ``TASK_UTILS`` builder such as
            ``VoxelRows`` turning the recorded features into the loss's
            keyword arguments; ``loss`` is a ``MODELS`` loss. A loss whose
            forward has a ``data_samples`` parameter also gets the batch's
            data samples; a loss with a ``bind_models(student, teacher)``
            method is given both models once they are built.
        teacher_forward: ``'extract_feat'`` (backbone features),
            ``'tensor'`` (the teacher's raw head outputs) or ``'loss'``
            (the teacher's training forward, losses discarded: for
            segmentors such as Cylinder3D whose ``tensor`` mode does not
            take the voxelized batch; needs labelled data samples).
        check_voxelization: refuse a teacher whose data preprocessor
            voxelizes differently from the student's.
        teacher_early_exit: leave the teacher's forward once every teacher
            recorder holds its data (the later layers feed nothing the
            distillation reads; see :class:`EarlyExit`: exact, and used
            only when each recorded module runs once per forward).
        concurrent_teacher: run the teacher's forward in a second thread
            while the student computes its forward and losses (the results
            are the same bit for bit). It pays off on a CPU run with one
            intra-op thread (``OMP_NUM_THREADS=1``) and a core to spare;
            with more intra-op threads the two forwards compete for them.
        data_preprocessor: defaults to the student's.

    The loss-weight hook (``DistillLossWeightHook``) scales all distill terms
    through the attribute ``distill_loss_scale``; at 0 the teacher and the
    distill terms are skipped.

    A distill loss may define a float attribute ``task_loss_weight``: while
    the distill terms run, the student's own losses (``student.*`` keys that
    contain ``'loss'``) are multiplied by it (by the product over the losses
    that define it). This is how Hinton-style mixing
    ``alpha * L_task + (1 - alpha) * L_KD`` scales the task loss by alpha
    from the KD loss's config alone; when the distill terms are skipped
    (scale 0) the student's losses are left unscaled.
    """

    def __init__(self,
                 student: Mapping,
                 teacher: Mapping,
                 student_recorders: Mapping[str, Mapping],
                 teacher_recorders: Mapping[str, Mapping],
                 distill_terms: Mapping[str, Mapping],
                 teacher_forward: str = 'extract_feat',
                 check_voxelization: bool = True,
                 teacher_early_exit: bool = True,
                 concurrent_teacher: bool = False,
                 data_preprocessor: Optional[Mapping] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = student.get('data_preprocessor')
        super().__init__(data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if teacher_forward not in ('extract_feat', 'tensor', 'loss'):
            raise ValueError("teacher_forward must be 'extract_feat', "
                             f"'tensor' or 'loss', got {teacher_forward!r}")
        self.student = MODELS.build(student)
        teacher_model, teacher_cfg = build_teacher(
            teacher['config'], teacher.get('checkpoint'))
        if check_voxelization:
            check_same_voxelization(student, teacher_cfg)
        # Kept out of _modules: not saved, not optimised, not re-initialised.
        self.__dict__['teacher'] = teacher_model
        self.teacher_forward = teacher_forward
        self.concurrent_teacher = bool(concurrent_teacher)

        self.student_recorders = RecorderManager(student_recorders,
                                                 self.student)
        self.teacher_recorders = RecorderManager(teacher_recorders,
                                                 teacher_model)
        self.teacher_exit = EarlyExit(teacher_model, self.teacher_recorders,
                                      teacher_early_exit)
        self.distill_losses = nn.ModuleDict()
        self.distill_rows: Dict[str, Any] = {}
        self.distill_sources: Dict[str, tuple] = {}
        self.distill_takes_samples: Dict[str, bool] = {}
        for name, term in distill_terms.items():
            for side, recs in (('student', self.student_recorders),
                               ('teacher', self.teacher_recorders)):
                if term[side] not in recs:
                    raise KeyError(
                        f"distill term '{name}': {side} recorder "
                        f"'{term[side]}' is not defined; {side}_recorders "
                        f'has {recs.names}')
            self.distill_sources[name] = (term['student'], term['teacher'])
            self.distill_rows[name] = TASK_UTILS.build(
                term.get('rows', dict(type='FeaturePair')))
            loss = MODELS.build(term['loss'])
            if hasattr(loss, 'bind_models'):  # e.g. OFD reads teacher BNs
                loss.bind_models(self.student, teacher_model)
            self.distill_losses[name] = loss
            self.distill_takes_samples[name] = _takes_data_samples(loss)
        self.distill_loss_scale = 1.0

    # --------------------------------------------------------------- device
    def _apply(self, fn, *args, **kwargs):  # type: ignore[override]
        """Move / cast the teacher together with the distiller."""
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True) -> 'Distiller3D':
        super().train(mode)
        self.teacher.eval()  # BatchNorm statistics of the teacher never move
        return self

    # -------------------------------------------------------------- forward
    def forward(self,
                inputs: Union[dict, Tensor],
                data_samples: Optional[list] = None,
                mode: str = 'tensor') -> Any:
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode in ('predict', 'tensor'):
            return self.student(inputs, data_samples, mode=mode)
        raise RuntimeError(f'Invalid mode "{mode}". Only supports loss, '
                           'predict and tensor mode')

    def _context(self, inputs: Mapping, data_samples: list) -> Dict[str, Any]:
        context: Dict[str, Any] = dict(batch_size=len(data_samples))
        voxel_layer = getattr(self.data_preprocessor, 'voxel_layer', None)
        # (x, y, z) cells: mmdet3d's VoxelizationByGridShape has grid_shape,
        # mmcv's Voxelization grid_size
        grid = getattr(voxel_layer, 'grid_shape', None)
        if grid is None:
            grid = getattr(voxel_layer, 'grid_size', None)
        if grid is not None:
            context['grid_shape'] = (int(grid[1]), int(grid[0]))
        return context

    def run_teacher(self, inputs: Mapping, data_samples: list,
                    full: bool = False, copy_inputs: bool = True) -> None:
        """Forward the teacher on the student's batch (no_grad, recorded).

        The forward stops once every teacher recorder holds its data
        (``teacher_early_exit``); ``full=True`` runs it to the end.

        The teacher gets its own copy of the batch tensors: some mmdet3d
        encoders write into their input (``PillarFeatureNet`` with
        ``legacy=True``, the default, overwrites the voxels' xyz with the
        offsets to the pillar centre), which would otherwise hand the
        student different voxels in training than at test time
        (``copy_inputs=False``: ``inputs`` is such a copy already).
        """
        self.teacher.eval()
        teacher_inputs = _clone_tensors(inputs) if copy_inputs else inputs

        def forward() -> None:
            if self.teacher_forward == 'extract_feat':
                _extract_feat(self.teacher, teacher_inputs, data_samples)
            else:
                self.teacher(teacher_inputs, data_samples,
                             mode=self.teacher_forward)

        with torch.no_grad(), self.teacher_recorders:
            if full:
                forward()
            else:
                self.teacher_exit(forward)

    def loss(self, inputs: Mapping, data_samples: list) -> Dict[str, Tensor]:
        """Student losses (``student.*``) plus distillation losses."""
        scale = float(self.distill_loss_scale)
        if scale != 0:
            # copied here, before the student may write into the batch
            teacher_inputs = _clone_tensors(inputs)
            with BackgroundCall(
                    lambda: self.run_teacher(teacher_inputs, data_samples,
                                             copy_inputs=False),
                    enabled=self.concurrent_teacher, name='teacher-forward'):
                with self.student_recorders:
                    student_losses = self.student.loss(inputs, data_samples)
        else:
            student_losses = self.student.loss(inputs, data_samples)
        losses = {f'student.{k}': v for k, v in student_losses.items()}
        if scale != 0:
            task_weight = self.task_loss_weight()
            if task_weight != 1.0:
                losses = {k: _scaled(v, task_weight) if 'loss' in k else v
                          for k, v in losses.items()}
            context = self._context(inputs, data_samples)
            for name, loss_fn in self.distill_losses.items():
                s_rec, t_rec = self.distill_sources[name]
                kwargs = self.distill_rows[name](
                    self.student_recorders.get(s_rec),
                    self.teacher_recorders.get(t_rec), inputs, context)
                if self.distill_takes_samples[name]:
                    kwargs.setdefault('data_samples', data_samples)
                losses[f'distill.loss_{name}'] = loss_fn(**kwargs) * scale
            self.student_recorders.reset()
            self.teacher_recorders.reset()
        return losses

    def task_loss_weight(self) -> float:
        """Weight of the student's own losses while distilling: the product
        of the distill losses' ``task_loss_weight`` attributes (1 if none)."""
        weight = 1.0
        for loss_fn in self.distill_losses.values():
            weight *= float(getattr(loss_fn, 'task_loss_weight', 1.0))
        return weight

    def predict(self, inputs: Mapping, data_samples: list) -> list:
        """Student predictions."""
        return self.student.predict(inputs, data_samples)

    def student_state_dict(self) -> Dict[str, Tensor]:
        """The student's weights alone, as stock mmdet3d expects them."""
        return self.student.state_dict()
