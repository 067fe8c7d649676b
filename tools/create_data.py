"""Prepare a real dataset with mmdet3d 1.4's own ``create_data`` tool.

    python tools/create_data.py kitti --root-path ./data/kitti \
        --out-dir ./data/kitti --extra-tag kitti

Every argument goes to mmdet3d's ``tools/create_data.py`` (shipped inside
the mmdet3d wheel under ``mmdet3d/.mim/tools``), which runs unmodified; this
wrapper only makes its ``tools.dataset_converters`` imports resolve to
mmdet3d's copy instead of this repository's ``tools`` folder, and sets the
``mmdet3d`` default scope its GT-database step needs. For synthetic
KITTI-format data use ``tools/create_demo_data.py`` instead.
"""
import os.path as osp
import runpy
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.registry import init_default_scope  # noqa: E402

import pointdistiller_mm  # noqa: E402,F401  (numpy alias fix)
from pointdistiller_mm.datasets.synthetic_kitti import (  # noqa: E402
    _mmdet3d_tools_dir, _mmdet3d_tools_package)


def main() -> None:
    script = _mmdet3d_tools_dir() / 'create_data.py'
    init_default_scope('mmdet3d')
    sys.argv = [str(script)] + sys.argv[1:]
    with _mmdet3d_tools_package():
        runpy.run_path(str(script), run_name='__main__')


if __name__ == '__main__':
    main()
