"""Feature recorders: forward hooks on module paths with removable handles.

A recorder watches one submodule of a model, named by its dotted path
(``'pts_voxel_encoder'``, ``'pts_backbone.blocks.0'``), and keeps what the
module returned (or received) while a recording window is open::

    recorder = ModuleOutputRecorder('pts_backbone', index=0).register(model)
    with recorder:            # clears old data, records inside the block
        model(inputs)
    feats = recorder.data     # the last call's output, indexed with ``index``
    recorder.remove()         # handle removed, data dropped

Index spec
----------
``index`` picks a piece of a nested output and is applied when the module is
called, so only that piece is kept in memory. It is ``None`` (the whole
output), a single key, or a sequence of keys applied left to right:

* on a mapping (``dict``, ``ConfigDict``...), any key is a mapping key;
* otherwise an ``int`` is an item index (tuples, lists, tensors) and a
  ``str`` is an attribute name (``'features'`` or ``'indices'`` of an
  spconv ``SparseConvTensor``, fields of a named tuple or data element).

For example ``(0, 0, 'heatmap')`` picks the first task's heatmap from
CenterHead's ``list[list[dict]]`` output and ``'features'`` picks the
``(N, C)`` feature matrix of a sparse tensor.

With ``record='input'`` the recorder keeps the module's inputs instead: an
``int`` first key indexes the positional arguments, a ``str`` first key names
a keyword argument, and no index gives the tuple of positional arguments.
"""
from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch.utils.hooks import RemovableHandle

from .registry import RECORDERS

IndexKey = Union[int, str]
IndexSpec = Union[None, IndexKey, Sequence[IndexKey]]

#: How many close module paths and children an error message lists.
_MAX_LISTED = 20


class ModulePathError(ValueError):
    """A recorder names a module path that the model does not have."""


class RecordIndexError(LookupError):
    """An index spec does not fit the object a module returned."""


def normalize_index(index: IndexSpec) -> Tuple[IndexKey, ...]:
    """Turn an index spec into a tuple of keys.

    Args:
        index: ``None``, an ``int`` / ``str`` key, or a sequence of them.

    Returns:
        The keys as a tuple (empty for ``None``).
    """
    if index is None:
        return ()
    keys = tuple(index) if isinstance(index, (list, tuple)) else (index, )
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            raise TypeError(
                f'index keys must be int or str, got {key!r} '
                f'({type(key).__name__}) in index {index!r}')
    return keys


def _describe(obj: Any) -> str:
    """A short description of an object for error messages."""
    if isinstance(obj, Mapping):
        return f'{type(obj).__name__} with keys {list(obj.keys())}'
    if isinstance(obj, torch.Tensor):
        return f'Tensor of shape {tuple(obj.shape)}'
    if isinstance(obj, (list, tuple)):
        return f'{type(obj).__name__} of length {len(obj)}'
    attrs = [a for a in getattr(obj, '__dict__', {}) if not a.startswith('_')]
    if attrs:
        return f'{type(obj).__name__} with attributes {attrs}'
    return type(obj).__name__


def _step(obj: Any, key: IndexKey) -> Any:
    """Apply one key of an index spec (see the module docstring)."""
    if isinstance(obj, Mapping):
        return obj[key]
    if isinstance(key, str):
        return getattr(obj, key)
    return obj[key]


def select(obj: Any, index: IndexSpec, context: str = '') -> Any:
    """Pick a piece of a nested object with an index spec.

    Args:
        obj: The object to index (a module's output, for instance).
        index: An index spec (see the module docstring).
        context: Prefix for error messages (e.g. which recorder failed).

    Returns:
        The selected piece; ``obj`` itself for an empty spec.

    Raises:
        RecordIndexError: A key does not fit the object at its step; the
            message names the step and describes the object found there.
    """
    keys = normalize_index(index)
    for depth, key in enumerate(keys):
        try:
            obj = _step(obj, key)
        except (KeyError, IndexError, AttributeError, TypeError) as err:
            raise RecordIndexError(
                f'{context}index {keys!r} fails at step {depth} (key '
                f'{key!r}) on a {_describe(obj)}: '
                f'{type(err).__name__}: {err}') from None
    return obj


def _limited(names: Sequence[str]) -> str:
    shown = ', '.join(names[:_MAX_LISTED])
    if len(names) > _MAX_LISTED:
        shown += f', ... ({len(names) - _MAX_LISTED} more)'
    return shown


def missing_path_message(model: nn.Module, path: str) -> str:
    """Explain that ``path`` is not a module of ``model``, with suggestions.

    Lists module paths that end with ``path`` (a missing prefix such as
    ``student.``), the closest paths by ``difflib``, and the children of the
    deepest prefix of ``path`` that does exist.
    """
    names = [n for n, _ in model.named_modules(remove_duplicate=False) if n]
    suffix = [n for n in names if n.endswith('.' + path)]
    close = difflib.get_close_matches(path, names, n=5, cutoff=0.6)
    suggestions = suffix + [n for n in close if n not in suffix]

    module, prefix = model, ''
    for part in path.split('.'):
        child = module._modules.get(part)
        if child is None:
            break
        module, prefix = child, f'{prefix}.{part}' if prefix else part
    children = [
        f'{prefix}.{n}' if prefix else n for n, _ in module.named_children()
    ]

    msg = f"module path '{path}' does not exist in {type(model).__name__}."
    if suggestions:
        msg += f' Closest module paths: {_limited(suggestions)}.'
    where = f"'{prefix}'" if prefix else 'the model root'
    msg += (f' The deepest existing prefix is {where} '
            f'({type(module).__name__}); its children: '
            f'{_limited(children) if children else "none"}.')
    return msg


def resolve_module(model: nn.Module, path: str) -> nn.Module:
    """Return the submodule at dotted ``path`` (``''`` is the model itself).

    Raises:
        ModulePathError: ``path`` does not name a submodule; the message
            lists the closest existing paths.
    """
    if path == '':
        return model
    try:
        return model.get_submodule(path)
    except AttributeError:
        raise ModulePathError(missing_path_message(model, path)) from None


@RECORDERS.register_module()
class ModuleOutputRecorder:
    """Record the output (or input) of the submodule at a dotted path.

    Recording happens only inside a recording window (``with recorder:``),
    which clears the previous data on entry, so evaluation passes outside
    the window cost nothing. The recorded object is the module's own output
    (no copy, no detach): gradients flow through it, and outputs made under
    ``torch.no_grad`` stay without grad.

    Args:
        source: Dotted module path inside the model given to
            :meth:`register` (``''`` for the model itself).
        index: Index spec applied to each recorded call (module docstring).
        record: ``'output'`` (forward hook) or ``'input'`` (forward pre-hook).
        keep_all: Keep every call inside the window (a module called several
            times per forward) instead of only the last one.
        name: Name used in messages; defaults to ``source``.
    """

    RECORD_CHOICES = ('output', 'input')

    def __init__(self,
                 source: str,
                 index: IndexSpec = None,
                 record: str = 'output',
                 keep_all: bool = False,
                 name: Optional[str] = None) -> None:
        if not isinstance(source, str):
            raise TypeError(f'source must be a dotted module path (str), '
                            f'got {source!r}')
        if record not in self.RECORD_CHOICES:
            raise ValueError(f"record must be one of {self.RECORD_CHOICES}, "
                             f'got {record!r}')
        self.source = source
        self.index = normalize_index(index)
        self.record = record
        self.keep_all = bool(keep_all)
        self.name = name if name is not None else source
        self._handle: Optional[RemovableHandle] = None
        self._records: List[Any] = []
        self._recording = False

    # ------------------------------------------------------------ lifecycle
    @property
    def registered(self) -> bool:
        """Whether the hook is attached to a module."""
        return self._handle is not None

    @property
    def recording(self) -> bool:
        """Whether a recording window is open."""
        return self._recording

    def register(self, model: nn.Module) -> 'ModuleOutputRecorder':
        """Attach the hook to ``model``'s submodule at :attr:`source`.

        Raises:
            ModulePathError: The path does not exist (closest paths listed).
            RuntimeError: The recorder is already registered.
        """
        if self._handle is not None:
            raise RuntimeError(f"recorder '{self.name}' is already "
                               'registered; call remove() first')
        module = resolve_module(model, self.source)
        if self.record == 'output':
            self._handle = module.register_forward_hook(self._output_hook)
        else:
            self._handle = module.register_forward_pre_hook(
                self._input_hook, with_kwargs=True)
        return self

    def remove(self) -> None:
        """Detach the hook and drop recorded data. Safe to call twice."""
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._records.clear()
        self._recording = False

    def reset(self) -> None:
        """Drop recorded data (the hook stays attached)."""
        self._records.clear()

    def __enter__(self) -> 'ModuleOutputRecorder':
        self.reset()
        self._recording = True
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._recording = False

    # ---------------------------------------------------------------- hooks
    def _store(self, value: Any) -> None:
        if self.keep_all:
            self._records.append(value)
        else:
            self._records[:] = [value]

    def _context(self) -> str:
        return f"recorder '{self.name}' on '{self.source}' ({self.record}): "

    def _output_hook(self, module: nn.Module, args: Tuple,
                     output: Any) -> None:
        if self._recording:
            self._store(select(output, self.index, self._context()))

    def _input_hook(self, module: nn.Module, args: Tuple,
                    kwargs: Dict[str, Any]) -> None:
        if not self._recording:
            return None
        if not self.index:
            self._store(args)
            return None
        first, rest = self.index[0], self.index[1:]
        if isinstance(first, str):
            if first not in kwargs:
                raise RecordIndexError(
                    f'{self._context()}keyword argument {first!r} was not '
                    f'passed; keyword arguments: {sorted(kwargs)}, '
                    f'positional arguments: {len(args)}')
            value = kwargs[first]
        else:
            value = select(args, first, self._context())
        self._store(select(value, rest, self._context()))
        return None

    # ----------------------------------------------------------------- data
    @property
    def num_calls(self) -> int:
        """How many calls are held (at most 1 unless ``keep_all``)."""
        return len(self._records)

    def _no_data_message(self) -> str:
        if not self.registered:
            why = 'it is not registered on a model'
        elif not self._recording:
            why = ('nothing was recorded in the last recording window; '
                   "run the model inside 'with recorder:'")
        else:
            why = 'the module has not been called in this recording window'
        return f'{self._context()}no data: {why}'

    @property
    def data(self) -> Any:
        """The last recorded call, or the list of all calls if ``keep_all``.

        Raises:
            RuntimeError: Nothing was recorded (the message says why).
        """
        if not self._records:
            raise RuntimeError(self._no_data_message())
        return list(self._records) if self.keep_all else self._records[-1]

    def get(self, call: int = -1) -> Any:
        """One recorded call by its position (default: the last one)."""
        if not self._records:
            raise RuntimeError(self._no_data_message())
        try:
            return self._records[call]
        except IndexError:
            raise IndexError(f'{self._context()}call {call} requested, '
                             f'{len(self._records)} recorded') from None

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(source={self.source!r}, '
                f'index={self.index!r}, record={self.record!r}, '
                f'keep_all={self.keep_all}, registered={self.registered})')


RecorderCfg = Union[dict, ModuleOutputRecorder]


def build_recorder(cfg: RecorderCfg,
                   name: Optional[str] = None) -> ModuleOutputRecorder:
    """Build a recorder from a config dict (``type`` defaults to
    ``'ModuleOutputRecorder'``) or pass a built one through."""
    if not isinstance(cfg, Mapping):
        if hasattr(cfg, 'register') and hasattr(cfg, 'remove'):
            return cfg
        raise TypeError(f'a recorder config must be a dict or a recorder, '
                        f'got {type(cfg).__name__}')
    args = dict(cfg)
    type_name = args.pop('type', 'ModuleOutputRecorder')
    cls = RECORDERS.get(type_name) if isinstance(type_name, str) else type_name
    if cls is None:
        raise KeyError(f'unknown recorder type {type_name!r}; registered '
                       f'types: {sorted(RECORDERS.module_dict)}')
    if name is not None:
        args.setdefault('name', name)
    return cls(**args)


class RecorderManager:
    """A named set of recorders registered on one model together.

    Args:
        recorders: ``{name: config dict or recorder}``, e.g.
            ``dict(voxel=dict(type='ModuleOutputRecorder',
            source='pts_voxel_encoder'))``.
        model: If given, every recorder is registered on it at once; all
            paths are checked first, so a wrong path raises before any hook
            is attached.

    ``with manager:`` opens a recording window on every recorder.
    """

    def __init__(self,
                 recorders: Mapping[str, RecorderCfg],
                 model: Optional[nn.Module] = None) -> None:
        if not isinstance(recorders, Mapping):
            raise TypeError('recorders must be a mapping name -> config, '
                            f'got {type(recorders).__name__}')
        self._recorders: Dict[str, ModuleOutputRecorder] = {
            str(name): build_recorder(cfg, str(name))
            for name, cfg in recorders.items()
        }
        if model is not None:
            self.register(model)

    def register(self, model: nn.Module) -> 'RecorderManager':
        """Check every path on ``model``, then attach every hook.

        Raises:
            ModulePathError: One or more paths do not exist; the message has
                one line per wrong recorder with the closest paths.
        """
        errors = []
        for name, recorder in self._recorders.items():
            if recorder.registered:
                raise RuntimeError(f"recorder '{name}' is already registered;"
                                   ' call remove() first')
            try:
                resolve_module(model, recorder.source)
            except ModulePathError as err:
                errors.append(f"recorder '{name}': {err}")
        if errors:
            raise ModulePathError('\n'.join(errors))
        for recorder in self._recorders.values():
            recorder.register(model)
        return self

    def remove(self) -> None:
        """Detach every hook and drop all data."""
        for recorder in self._recorders.values():
            recorder.remove()

    def reset(self) -> None:
        """Drop all recorded data (hooks stay attached)."""
        for recorder in self._recorders.values():
            recorder.reset()

    def __enter__(self) -> 'RecorderManager':
        for recorder in self._recorders.values():
            recorder.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        for recorder in self._recorders.values():
            recorder.__exit__(*exc_info)

    @property
    def registered(self) -> bool:
        """Whether every recorder is registered."""
        return all(r.registered for r in self._recorders.values())

    @property
    def names(self) -> List[str]:
        return list(self._recorders)

    def __getitem__(self, name: str) -> ModuleOutputRecorder:
        try:
            return self._recorders[name]
        except KeyError:
            raise KeyError(f'no recorder named {name!r}; recorders: '
                           f'{self.names}') from None

    def get(self, name: str, call: Optional[int] = None) -> Any:
        """Data of recorder ``name``: its :attr:`~ModuleOutputRecorder.data`,
        or one call if ``call`` is given."""
        recorder = self[name]
        return recorder.data if call is None else recorder.get(call)

    def __contains__(self, name: object) -> bool:
        return name in self._recorders

    def __iter__(self) -> Iterator[str]:
        return iter(self._recorders)

    def __len__(self) -> int:
        return len(self._recorders)

    def items(self) -> Iterator[Tuple[str, ModuleOutputRecorder]]:
        return iter(self._recorders.items())

    def __repr__(self) -> str:
        inner = ', '.join(f'{n}={r!r}' for n, r in self._recorders.items())
        return f'{type(self).__name__}({inner})'


__all__ = [
    'IndexSpec', 'ModulePathError', 'RecordIndexError', 'normalize_index',
    'select', 'missing_path_message', 'resolve_module',
    'ModuleOutputRecorder', 'build_recorder', 'RecorderManager'
]
