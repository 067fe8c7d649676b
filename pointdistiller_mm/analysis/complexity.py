"""Parameters and FLOPs of one real forward pass, counted by forward hooks.

"FLOPs" here are multiply-accumulates (MACs), counted with the rules of
mmcv 1.x's ``get_model_complexity_info`` (the counter the PointDistiller
paper's Table 1 and mmdet3d 0.x's ``get_flops.py`` used):

============================  =============================================
module                        count
============================  =============================================
``Linear``                    ``input.numel() * out_features`` (no bias)
``Conv1d/2d/3d``              ``N * prod(out_spatial) * prod(k) * Cin/g *
                              Cout`` plus ``Cout * N * prod(out_spatial)``
                              with a bias
``ConvTranspose1d/2d/3d``     ``N * prod(in_spatial) * prod(k) * Cin *
                              Cout/g`` plus ``Cout * N * prod(out_spatial)``
                              with a bias
``BatchNorm / LayerNorm ...`` ``input.numel()``, twice with an affine
``ReLU`` family               ``output.numel()``
pooling                       ``input.numel()``
``Upsample``                  ``output.numel()``
spconv sparse convolutions    ``pairs * Cin * Cout`` (+ ``Cout * active
                              outputs`` with a bias), ``pairs`` being the
                              number of (input site, output site) index
                              pairs the convolution uses
============================  =============================================

Sparse convolutions: ``pairs`` is read from the index pairs spconv computes
(``indice_pair_num`` of the layer's ``indice_key`` entry; recomputed with
``spconv.pytorch.ops.get_indice_pairs`` when the layer has no key; for
submanifold convolutions the mirrored half spconv does not store and the
centre offset are added). Only when
neither is possible is it approximated by ``active outputs * kernel volume``
(an upper bound); the per-module report says which (``sparse_count``).

Operations done with ``torch`` functions rather than modules (the pillar
``max``, the scatter to the BEV canvas, box decoding) are not counted, as in
mmcv's counter; they are a negligible share of these detectors.

A :class:`~pointdistiller_mm.distillers.Distiller3D` is measured as its
student (the deployed model): the teacher and the distillation adapters are
not part of inference.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

import torch
from torch import Tensor, nn

__all__ = [
    'ModuleCount', 'count_parameters', 'deployed_model', 'model_complexity',
    'group_by_prefix', 'module_macs', 'mmdet3d_tensor_forward',
    'sparse_count_methods', 'build_deployed_model', 'val_scans',
    'config_complexity'
]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_DECONV = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_NORM = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm,
         nn.modules.instancenorm._InstanceNorm)
_ACT = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU)
_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
         nn.AvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
         nn.AdaptiveMaxPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
         nn.AdaptiveAvgPool3d)


@dataclass
class ModuleCount:
    """MACs of one leaf module, accumulated over the counted forwards.

    Attributes:
        type: The module's class name.
        macs: Multiply-accumulates summed over all calls.
        params: The module's own parameters.
        calls: Number of forward calls seen.
        sparse_count: For sparse convolutions, ``'pairs'`` (exact index
            pairs) or ``'approx'`` (active outputs x kernel volume);
            empty otherwise.
    """
    type: str
    macs: int = 0
    params: int = 0
    calls: int = 0
    sparse_count: str = ''


def _first_tensor(x: Any) -> Optional[Tensor]:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (tuple, list)):
        for item in x:
            t = _first_tensor(item)
            if t is not None:
                return t
    return None


def _numel(x: Any) -> int:
    t = _first_tensor(x)
    return int(t.numel()) if t is not None else 0


def _spconv_module_types() -> tuple:
    try:
        from spconv.pytorch.conv import SparseConvolution
    except ImportError:  # spconv is optional
        return ()
    return (SparseConvolution, )


def _is_sparse_tensor(x: Any) -> bool:
    return hasattr(x, 'features') and hasattr(x, 'indices') and hasattr(
        x, 'spatial_shape')


def _native_pairs(pair_num: Tensor, subm: bool, num_out: int) -> int:
    """Index pairs of spconv's native algorithm from ``indice_pair_num``.

    For submanifold convolutions spconv stores only the offsets before the
    kernel centre: offset ``i`` past the centre uses the pairs of the
    mirrored offset ``kv - 1 - i``, and the centre pairs every active site
    with itself (a plain matmul over all ``num_out`` sites).
    """
    counts = [int(v) for v in pair_num.reshape(-1).tolist()]
    if not subm:
        return sum(counts)
    centre = len(counts) // 2
    return 2 * sum(counts[:centre]) + int(num_out)


def _pair_count_from_data(data: Any) -> Optional[int]:
    """Index pairs held by a spconv ``IndiceData`` / implicit-GEMM entry."""
    num = getattr(data, 'indice_pair_num', None)
    if num is not None:
        return _native_pairs(num, bool(getattr(data, 'is_subm', False)),
                             int(data.out_indices.shape[0]))
    pair_fwd = getattr(data, 'pair_fwd', None)
    if isinstance(pair_fwd, Tensor) and pair_fwd.numel() > 0:
        return int((pair_fwd >= 0).sum().item())
    return None


def _sparse_pairs(module: nn.Module, inp: Any, out: Any) -> tuple:
    """(pairs, how) of one sparse convolution call."""
    key = getattr(module, 'indice_key', None)
    if getattr(module, 'conv1x1', False):
        return int(inp.features.shape[0]), 'pairs'
    if key is not None:
        data = getattr(out, 'indice_dict', {}).get(key)
        if data is None:
            data = getattr(inp, 'indice_dict', {}).get(key)
        if data is not None:
            pairs = _pair_count_from_data(data)
            if pairs is not None:
                return pairs, 'pairs'
    if not getattr(module, 'inverse', False):
        try:
            from spconv.core import ConvAlgo
            from spconv.pytorch import ops
            outids, _, pair_num = ops.get_indice_pairs(
                inp.indices, inp.batch_size, list(inp.spatial_shape),
                ConvAlgo.Native, list(module.kernel_size),
                list(module.stride), list(module.padding),
                list(module.dilation), list(module.output_padding),
                bool(module.subm), bool(module.transposed))
            return _native_pairs(pair_num, bool(module.subm),
                                 int(outids.shape[0])), 'pairs'
        except Exception:  # noqa: BLE001  (fall back to the upper bound)
            pass
    kernel_volume = int(math.prod(module.kernel_size))
    return int(out.features.shape[0]) * kernel_volume, 'approx'


def module_macs(module: nn.Module, inp: tuple, out: Any) -> tuple:
    """MACs of one call of a leaf module: ``(macs, sparse_count)``.

    Returns ``(None, '')`` for module types that are not counted.
    """
    sparse_types = _spconv_module_types()
    if sparse_types and isinstance(module, sparse_types):
        x = inp[0]
        pairs, how = _sparse_pairs(module, x, out)
        macs = pairs * module.in_channels * module.out_channels
        if getattr(module, 'bias', None) is not None:
            macs += module.out_channels * int(out.features.shape[0])
        return macs, how
    x = _first_tensor(inp)
    if isinstance(module, nn.Linear):
        return _numel(x) * module.out_features, ''
    if isinstance(module, _CONV):
        y = _first_tensor(out)
        batch, out_sites = y.shape[0], int(math.prod(y.shape[2:]))
        per_site = int(math.prod(module.kernel_size)) * module.in_channels * \
            (module.out_channels // module.groups)
        macs = per_site * batch * out_sites
        if module.bias is not None:
            macs += module.out_channels * batch * out_sites
        return macs, ''
    if isinstance(module, _DECONV):
        y = _first_tensor(out)
        batch, in_sites = x.shape[0], int(math.prod(x.shape[2:]))
        per_site = int(math.prod(module.kernel_size)) * module.in_channels * \
            (module.out_channels // module.groups)
        macs = per_site * batch * in_sites
        if module.bias is not None:
            macs += module.out_channels * batch * int(math.prod(y.shape[2:]))
        return macs, ''
    if isinstance(module, _NORM):
        x_numel = _numel(x) if not _is_sparse_tensor(x) else \
            int(x.features.numel())
        affine = getattr(module, 'affine', False) or getattr(
            module, 'elementwise_affine', False)
        return x_numel * (2 if affine else 1), ''
    if isinstance(module, _ACT):
        return _numel(out), ''
    if isinstance(module, _POOL):
        return _numel(x), ''
    if isinstance(module, nn.Upsample):
        return _numel(out), ''
    return None, ''


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters()
               if p.requires_grad or not trainable_only)


def deployed_model(model: nn.Module) -> nn.Module:
    """The network that runs at inference: a distiller's student, else
    the model itself (unwrapping DDP-style ``module`` wrappers)."""
    from mmengine.model import is_model_wrapper
    if is_model_wrapper(model):
        model = model.module
    student = getattr(model, 'student', None)
    return student if isinstance(student, nn.Module) else model


def _leaf_modules(model: nn.Module) -> Iterable[tuple]:
    sparse_types = _spconv_module_types()
    for name, module in model.named_modules():
        is_sparse = bool(sparse_types) and isinstance(module, sparse_types)
        if is_sparse or not list(module.children()):
            yield name, module


def model_complexity(
        model: nn.Module,
        data_batches: Any,
        forward: Optional[Callable[[nn.Module, Any], Any]] = None
) -> Dict[str, Any]:
    """Parameters and MACs of a model on real inputs.

    Args:
        model: A module; a distiller is measured as its student
            (:func:`deployed_model`).
        data_batches: One input, or a list of inputs, fed to ``forward``
            one at a time; MACs are averaged over them.
        forward: ``forward(model, batch)``; defaults to ``model(batch)``.
            For mmdet3d detectors pass a function that runs the data
            preprocessor and ``model(**data, mode='tensor')``
            (:func:`mmdet3d_tensor_forward`).

    Returns:
        dict: ``params`` (int), ``flops`` (mean MACs per input, float),
        ``flops_unit`` (``'MAC'``), ``num_inputs`` and ``per_module``
        (``{module path: ModuleCount}`` with MACs averaged per input).
    """
    net = deployed_model(model)
    batches = data_batches if isinstance(data_batches, list) else [
        data_batches
    ]
    if not batches:
        raise ValueError('model_complexity needs at least one input')
    forward = forward or (lambda m, b: m(b))
    counts: 'OrderedDict[str, ModuleCount]' = OrderedDict()
    handles = []

    def make_hook(name: str) -> Callable:
        def hook(module: nn.Module, inp: tuple, out: Any) -> None:
            macs, how = module_macs(module, inp, out)
            if macs is None:
                return
            entry = counts[name]
            entry.macs += int(macs)
            entry.calls += 1
            entry.sparse_count = how or entry.sparse_count
        return hook

    for name, module in _leaf_modules(net):
        counts[name] = ModuleCount(
            type=type(module).__name__,
            params=sum(p.numel() for p in module.parameters(recurse=False)))
        handles.append(module.register_forward_hook(make_hook(name)))
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for batch in batches:
                forward(net, batch)
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    n = len(batches)
    per_module = OrderedDict()
    for name, c in counts.items():
        if c.calls == 0:
            continue
        per_module[name] = ModuleCount(c.type, c.macs // n, c.params,
                                       c.calls, c.sparse_count)
    total = sum(c.macs for c in counts.values()) / n
    return dict(params=count_parameters(net), flops=total, flops_unit='MAC',
                num_inputs=n, per_module=per_module)


def _tensor_mode_broken(model: nn.Module) -> bool:
    """Detectors whose ``mode='tensor'`` fails in mmdet3d 1.4: PointRCNN
    (``TwoStage3DDetector._forward`` looks up a ``'neck_feats'`` key its
    ``extract_feat`` does not return) and ``MVXTwoStageDetector`` (nuScenes
    PointPillars; its ``_forward`` takes no inputs). Their ``predict`` runs
    the same modules plus box decoding."""
    from mmdet3d.models.detectors import MVXTwoStageDetector, PointRCNN
    return isinstance(model, (PointRCNN, MVXTwoStageDetector))


def mmdet3d_tensor_forward(model: nn.Module, data_batch: Mapping) -> Any:
    """Preprocess (voxelize) one dataloader batch and run ``mode='tensor'``
    (``extract_feat`` + head forward, no box decoding). PointRCNN runs
    ``mode='predict'`` instead: backbone, neck, RPN, proposal NMS and the
    RoI head on the proposals, the whole two-stage inference."""
    data = model.data_preprocessor(data_batch, False)
    mode = 'predict' if _tensor_mode_broken(model) else 'tensor'
    return model(data['inputs'], data.get('data_samples'), mode=mode)


def group_by_prefix(per_module: Mapping[str, ModuleCount],
                    depth: int = 1) -> 'OrderedDict[str, int]':
    """Sum per-module MACs over module-path prefixes of ``depth`` parts
    (``depth=1``: ``voxel_encoder``, ``backbone``, ``neck``, ...)."""
    out: 'OrderedDict[str, int]' = OrderedDict()
    for name, c in per_module.items():
        key = '.'.join(name.split('.')[:depth]) or '(root)'
        out[key] = out.get(key, 0) + c.macs
    return out


def sparse_count_methods(per_module: Mapping[str, ModuleCount]) -> List[str]:
    """The distinct ``sparse_count`` methods used (``[]`` without sparse
    convolutions)."""
    return sorted({c.sparse_count for c in per_module.values()
                   if c.sparse_count})


def build_deployed_model(cfg: Any) -> nn.Module:
    """Build the inference network of an mmengine config (a
    ``Distiller3D``'s student; the teacher is not built)."""
    import copy

    from mmdet3d.registry import MODELS
    model_cfg = copy.deepcopy(cfg.model)
    if model_cfg.get('type') == 'Distiller3D':
        model_cfg = model_cfg.student
    return MODELS.build(model_cfg)  # MACs and parameters need no init


def val_scans(cfg: Any, num_scans: int) -> List[dict]:
    """The first ``num_scans`` batches of one scan of the val split."""
    import copy

    from mmengine.runner import Runner
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    loader_cfg.update(batch_size=1, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg)
    scans: List[dict] = []
    for batch in loader:
        scans.append(batch)
        if len(scans) >= num_scans:
            break
    return scans


def config_complexity(cfg: Any, num_scans: int = 4) -> Dict[str, Any]:
    """:func:`model_complexity` of a config's deployed model on the first
    ``num_scans`` val scans (``mode='tensor'`` forward, mean over scans).

    Adds ``point_cloud_range`` and ``is_distiller`` to the result.
    """
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = build_deployed_model(cfg)
    scans = val_scans(cfg, num_scans)
    if not scans:
        raise ValueError('the val split has no scans')
    result = model_complexity(model, scans, forward=mmdet3d_tensor_forward)
    result['point_cloud_range'] = cfg.get('point_cloud_range')
    result['is_distiller'] = cfg.model.get('type') == 'Distiller3D'
    return result
