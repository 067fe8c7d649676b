"""The PointDistiller paper's Table 1 compute figures (KITTI, full range)."""
from __future__ import annotations

import os.path as osp
import re
from typing import Dict, Optional, Tuple

__all__ = ['PAPER_TABLE1', 'KITTI_RANGES', 'match_paper_key']

#: ``{detector-compression: (GFLOPs, params in M)}`` of Table 1; GFLOPs are
#: multiply-accumulates as counted by mmcv 1.x.
PAPER_TABLE1: Dict[str, Tuple[float, float]] = {
    'pointpillars-teacher': (34.3, 4.8),
    'pointpillars-4x': (9.0, 1.3),
    'pointpillars-16x': (2.5, 0.3),
    'second-teacher': (69.8, 5.3),
    'second-4x': (17.8, 1.4),
    'second-16x': (4.6, 0.4),
    'pointrcnn-teacher': (104.9, 4.1),
    'pointrcnn-8x': (13.7, 0.5),
    'pointrcnn-16x': (7.1, 0.3),
}

#: Point-cloud ranges of mmdet3d's KITTI configs the paper measured.
KITTI_RANGES: Dict[str, Tuple[float, ...]] = {
    'pointpillars': (0.0, -39.68, -3.0, 69.12, 39.68, 1.0),
    'second': (0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
    'pointrcnn': (0.0, -40.0, -3.0, 70.4, 40.0, 1.0),
}

_OTHER_DATASETS = ('nus', 'waymo', 'lyft', 'scannet', 'sunrgbd', 's3dis',
                   'semantickitti')
_RATIO = re.compile(r'(?<![0-9a-z])(4|8|16)x(?![0-9a-z])')


def match_paper_key(config: str) -> Optional[str]:
    """Table 1 row for a config file name, or None.

    The detector comes from the name (``pointpillars``, ``second``,
    ``pointrcnn``), the compression from a ``4x`` / ``8x`` / ``16x`` token
    (``8xb6`` batch tokens do not count); no token means the teacher.
    Configs of other data sets than KITTI do not match.
    """
    name = osp.splitext(osp.basename(config))[0].lower()
    if any(d in name for d in _OTHER_DATASETS):
        return None
    detector = next((d for d in ('pointpillars', 'pointrcnn', 'second')
                     if d in name), None)
    if detector is None:
        return None
    ratio = _RATIO.search(name)
    key = f'{detector}-{ratio.group(1)}x' if ratio else f'{detector}-teacher'
    return key if key in PAPER_TABLE1 else None
