"""Early, readable checks of configs, datasets and checkpoints.

Each check raises :class:`ConfigError` with a message that says what was
looked for, where, and the command or option that fixes it.
"""
from __future__ import annotations

import difflib
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from mmengine.config import Config


class ConfigError(RuntimeError):
    """A configuration, dataset or checkpoint problem the user must fix."""


def load_config(path: str) -> Config:
    """Load an mmengine config, turning common failures into clear errors."""
    if not osp.isfile(path):
        near = _nearby_files(path, '.py')
        hint = f' Did you mean: {", ".join(near)}?' if near else ''
        raise ConfigError(f'Config file not found: {osp.abspath(path)}.{hint}')
    try:
        return Config.fromfile(path)
    except ImportError as err:
        raise ConfigError(
            f'Loading {path} failed to import a module: {err}. If it is '
            "'pointdistiller_mm', install the plugin with `make setup` (or "
            '`pip install -e .` in the repository root); if it is a '
            "'projects.*' module, run the command from the repository root. "
            'Check the module path in the config\'s custom_imports.') from err


def _nearby_files(path: str, ext: str, n: int = 3) -> List[str]:
    folder = osp.dirname(path) or '.'
    if not osp.isdir(folder):
        return []
    names = [f for f in os.listdir(folder) if f.endswith(ext)]
    return [osp.join(folder, m) for m in
            difflib.get_close_matches(osp.basename(path), names, n=n)]


def check_cfg_options(cfg: Config, options: Optional[Mapping[str, Any]]) -> None:
    """Refuse ``--cfg-options`` keys that do not exist in the config.

    mmengine silently adds unknown keys, so a typo such as
    ``train_cfg.max_epoch=2`` would be ignored. Every dotted key must name an
    existing entry; the error lists the closest existing keys.
    """
    for key in (options or {}):
        node: Any = cfg._cfg_dict if isinstance(cfg, Config) else cfg
        walked: List[str] = []
        for part in key.split('.'):
            if isinstance(node, (list, tuple)) and part.isdigit():
                if int(part) >= len(node):
                    raise ConfigError(
                        f"--cfg-options key '{key}': index {part} is out of "
                        f"range for '{'.'.join(walked)}' (length {len(node)}).")
                node = node[int(part)]
            elif isinstance(node, Mapping) and part in node:
                node = node[part]
            else:
                siblings = list(node.keys()) if isinstance(node, Mapping) else []
                close = difflib.get_close_matches(part, siblings, n=3)
                prefix = '.'.join(walked)
                where = f"'{prefix}'" if prefix else 'the top level'
                hint = (' Closest keys: ' + ', '.join(
                    f"'{'.'.join(walked + [c])}'" for c in close) + '.'
                        if close else '')
                raise ConfigError(
                    f"--cfg-options key '{key}' does not exist in the config: "
                    f"'{part}' is not a key of {where}.{hint} Use "
                    '--allow-new-keys to add new keys on purpose.')
            walked.append(part)


_SPLITS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _dataset_files(node: Any, key: str) -> Iterator[Tuple[str, str, str]]:
    """Yield (config key, data_root, file) for info files under ``node``."""
    if isinstance(node, Mapping):
        root = node.get('data_root') or ''
        if node.get('ann_file'):
            yield f'{key}.data_root', root, node['ann_file']
        if node.get('info_path'):  # ObjectSample's db_sampler
            yield f'{key}.info_path', '', node['info_path']
        for k, v in node.items():
            if k not in ('data_root', 'ann_file', 'info_path'):
                yield from _dataset_files(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _dataset_files(v, f'{key}.{i}')


def _create_hint(dataset_type: str, data_root: str) -> str:
    root = data_root.rstrip('/') or 'data/demo_kitti'
    if 'SemanticKitti' in dataset_type:
        return (
            'Create synthetic SemanticKITTI-format data with:\n'
            '    python tools/create_demo_data.py --dataset semantickitti '
            f'--out-dir {root}\n'
            'or prepare real SemanticKITTI (sequences/) with:\n'
            f'    python tools/create_data.py semantickitti --root-path {root} '
            f'--out-dir {root} --extra-tag semantickitti')
    if 'NuScenes' in dataset_type:
        return (
            'Create synthetic nuScenes-format data with:\n'
            '    python tools/create_demo_data.py --dataset nuscenes '
            f'--out-dir {root}\n'
            'or prepare real nuScenes with:\n'
            f'    python tools/create_data.py nuscenes --root-path {root} '
            f'--out-dir {root} --extra-tag nuscenes')
    if 'Kitti' in dataset_type:
        return (
            'Create synthetic KITTI-format data with:\n'
            f'    python tools/create_demo_data.py --out-dir {root}\n'
            'or prepare real KITTI (training/, testing/, ImageSets/) with:\n'
            f'    python tools/create_data.py kitti --root-path {root} '
            f'--out-dir {root} --extra-tag kitti')
    return (f'Prepare the {dataset_type or "dataset"} with mmdet3d\'s '
            'create_data (python tools/create_data.py --help).')


def check_datasets(cfg: Config, splits: Tuple[str, ...] = _SPLITS) -> None:
    """Check that the info files of the given dataloaders exist on disk."""
    for split in splits:
        loader = cfg.get(split)
        if not loader:
            continue
        dataset = loader.get('dataset', {})
        for key, root, file in _dataset_files(dataset, f'{split}.dataset'):
            path = file if osp.isabs(file) or not root else osp.join(root, file)
            if osp.exists(path):
                continue
            dtype = _find_type(dataset)
            where = f"data_root='{root}', file='{file}'" if root else \
                f"file='{file}'"
            raise ConfigError(
                f'Dataset not found: {split} looks for {osp.abspath(path)} '
                f'({where}).\n'
                f'{_create_hint(dtype, root or osp.dirname(file))}\n'
                'or point the config at existing data with --data-root DIR '
                f'(or --cfg-options {key}=PATH).')


def _find_type(node: Any) -> str:
    while isinstance(node, Mapping):
        t = str(node.get('type', ''))
        if 'Dataset' in t and t not in ('RepeatDataset', 'CBGSDataset',
                                        'ConcatDataset', 'ClassBalancedDataset'):
            return t
        node = node.get('dataset')
    return ''


def replace_data_root(cfg: Config, new_root: str) -> int:
    """Point every path under the config's ``data_root`` at ``new_root``.

    mmengine resolves ``data_root`` into the dataloaders, the GT-database
    sampler and the evaluators when the file is parsed, so overriding the
    top-level key alone changes nothing. This rewrites every string that
    starts with the config's ``data_root``. Returns the number of strings
    changed.
    """
    old = cfg.get('data_root')
    if not old:
        raise ConfigError('--data-root needs a top-level data_root in the '
                          'config to know which paths to move.')
    old_norm = old.rstrip('/') + '/'
    new_norm = new_root.rstrip('/') + '/'

    def walk(node: Any) -> Tuple[Any, int]:
        if isinstance(node, str):
            if node == old or node.startswith(old_norm):
                return new_norm + node[len(old_norm):] \
                    if node.startswith(old_norm) else new_norm, 1
            return node, 0
        if isinstance(node, Mapping):
            total = 0
            for k in list(node.keys()):
                node[k], n = walk(node[k])
                total += n
            return node, total
        if isinstance(node, list):
            total = 0
            for i, v in enumerate(node):
                node[i], n = walk(v)
                total += n
            return node, total
        if isinstance(node, tuple):
            items = [walk(v) for v in node]
            return tuple(v for v, _ in items), sum(n for _, n in items)
        return node, 0

    _, changed = walk(cfg._cfg_dict)
    return changed


def check_checkpoint(path: Optional[str], config_path: str = '',
                     what: str = 'Checkpoint') -> None:
    """Check a local checkpoint path exists (URLs are left to the loader)."""
    if not path or '://' in path:
        return
    if not osp.isfile(path):
        name = osp.splitext(osp.basename(config_path))[0] or 'CONFIG'
        raise ConfigError(
            f'{what} not found: {osp.abspath(path)}. Train one with '
            f'`python tools/train.py {config_path or "CONFIG"}` (checkpoints '
            f'are written to work_dirs/{name}/, the newest is named in '
            f'work_dirs/{name}/last_checkpoint), or pass an existing .pth '
            'file or URL.')


def skip_teacher_weights(cfg: Config) -> Optional[str]:
    """Drop a distillation config's teacher checkpoint before testing.

    Testing and prediction run the student alone, so the teacher is built
    from its config without weights: a teacher checkpoint that is missing
    on the test machine does not stop the student's evaluation. Returns the
    dropped checkpoint (``None`` when the config has no teacher).
    """
    model = cfg.get('model')
    teacher = model.get('teacher') if isinstance(model, Mapping) else None
    if not isinstance(teacher, Mapping) or not teacher.get('checkpoint'):
        return None
    dropped = teacher['checkpoint']
    teacher['checkpoint'] = None
    return str(dropped)


def dataset_summary(cfg: Config) -> Dict[str, str]:
    """Map each dataloader to its dataset type (for log messages)."""
    return {s: _find_type(cfg.get(s, {}).get('dataset', {})) for s in _SPLITS
            if cfg.get(s)}


def prepare_config(path: str,
                   cfg_options: Optional[Mapping[str, Any]] = None,
                   allow_new_keys: bool = False,
                   data_root: Optional[str] = None,
                   work_dir: Optional[str] = None,
                   launcher: str = 'none') -> Config:
    """Load a config and apply the command-line options shared by the tools.

    ``--cfg-options`` keys must exist unless ``allow_new_keys``;
    ``data_root`` moves every path under the config's ``data_root``; the work
    dir is ``work_dir``, else the config's, else ``work_dirs/<config name>``.
    """
    cfg = load_config(path)
    cfg.launcher = launcher
    if cfg_options:
        if not allow_new_keys:
            check_cfg_options(cfg, cfg_options)
        cfg.merge_from_dict(cfg_options)
    if data_root:
        replace_data_root(cfg, data_root)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(path))[0])
    return cfg
