"""Check (and repair) the KITTI info files the demo evaluates with.

mmdet3d 1.4's ``update_infos_to_v2`` (KITTI) resets its set of ignored
class names for every frame, so ``metainfo['categories']`` only maps
``DontCare`` to -1 when the *last* frame of a split has a ``DontCare``
label. Instances of other frames still carry ``bbox_label = -1`` and
``KittiMetric`` then fails with ``KeyError: -1``. The repair adds the
missing ``DontCare: -1`` entry, which is what the converter writes when the
last frame has one.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import List

__all__ = ['repair_ignored_categories', 'INFO_SPLITS']

INFO_SPLITS = ('train', 'val', 'trainval', 'test')


def repair_ignored_categories(data_root: str, prefix: str = 'kitti',
                              ignored_name: str = 'DontCare') -> List[str]:
    """Add ``ignored_name: -1`` to ``metainfo['categories']`` of every
    ``{prefix}_infos_{split}.pkl`` whose instances use label -1 without a
    category for it. Returns the files changed."""
    changed = []
    for split in INFO_SPLITS:
        path = Path(data_root) / f'{prefix}_infos_{split}.pkl'
        if not path.is_file():
            continue
        with open(path, 'rb') as f:
            infos = pickle.load(f)
        cats = infos.get('metainfo', {}).get('categories')
        if cats is None or -1 in cats.values():
            continue
        uses_ignored = any(
            inst.get('bbox_label') == -1
            for frame in infos.get('data_list', [])
            for inst in frame.get('instances', []))
        if not uses_ignored:
            continue
        cats[ignored_name] = -1
        with open(path, 'wb') as f:
            pickle.dump(infos, f)
        changed.append(str(path))
    return changed
