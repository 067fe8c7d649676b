"""numpy 1.24+ removed the ``np.long`` alias that mmdet3d 1.4 still uses.

``mmdet3d/datasets/transforms/dbsampler.py`` (``DataBaseSampler.sample_all``,
run by the ``ObjectSample`` augmentation of every KITTI config) builds an
array with ``dtype=np.long`` and raises ``AttributeError`` under numpy 1.26.
mmdet3d 1.4 itself pins nothing that avoids it. This restores the alias as
``np.int64`` (what ``np.long`` meant on 64-bit Linux) when it is missing.
"""
import numpy as np

PATCH_NAME = 'numpy_long_alias'


def apply() -> list:
    """Add ``np.long`` if numpy lacks it. Returns the patch names applied."""
    if 'long' in np.__dict__:
        return []
    np.long = np.int64  # type: ignore[attr-defined]
    return [PATCH_NAME]
