"""Access to per-anchor head outputs as produced by ``AnchorHeadRows``."""
from __future__ import annotations

from typing import Mapping, Optional, Union

from torch import Tensor

__all__ = ['HeadOutputs', 'head_output']

#: ``dict(cls_scores=(B, N, K), bbox_preds=(B, N, code),
#: dir_cls_preds=(B, N, 2) or None)``, or a bare logit tensor.
HeadOutputs = Union[Mapping[str, Optional[Tensor]], Tensor]


def head_output(outputs: HeadOutputs, key: str, owner: str) -> Tensor:
    """``outputs[key]``; a bare tensor counts as ``cls_scores``."""
    if isinstance(outputs, Tensor):
        if key == 'cls_scores':
            return outputs
        raise TypeError(f'{owner} needs {key!r}: pass the head outputs as '
                        'a dict (rows=dict(type="AnchorHeadRows"))')
    value = outputs.get(key)
    if value is None:
        have = sorted(k for k, v in outputs.items() if v is not None)
        raise KeyError(f'{owner} needs {key!r}; the head outputs have '
                       f'{have}')
    return value
