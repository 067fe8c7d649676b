"""Channel connectors: trainable 1x1 maps between student and teacher."""
from typing import Optional

from mmdet3d.registry import MODELS
from torch import Tensor, nn

__all__ = ['LinearConnector', 'Conv1x1Connector']


@MODELS.register_module()
class LinearConnector(nn.Module):
    """Per-row linear map (..., C_in) -> (..., C_out), optional BatchNorm.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        bias (bool): linear bias (default True unless ``norm``).
        norm (bool): BatchNorm1d over all rows after the linear map.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 bias: Optional[bool] = None,
                 norm: bool = False) -> None:
        super().__init__()
        bias = (not norm) if bias is None else bias
        self.linear = nn.Linear(in_channels, out_channels, bias=bias)
        self.bn = nn.BatchNorm1d(out_channels) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        """Map the last dim of ``x``."""
        y = self.linear(x)
        if self.bn is not None:
            shape = y.shape
            y = self.bn(y.reshape(-1, shape[-1])).view(shape)
        return y


@MODELS.register_module()
class Conv1x1Connector(nn.Module):
    """1x1 conv (B, C_in, H, W) -> (B, C_out, H, W), optional BatchNorm2d.

    Args:
        in_channels (int): C_in.
        out_channels (int): C_out.
        bias (bool): conv bias (default True unless ``norm``).
        norm (bool): BatchNorm2d after the conv.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int,
                 bias: Optional[bool] = None,
                 norm: bool = False) -> None:
        super().__init__()
        bias = (not norm) if bias is None else bias
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
        self.bn = nn.BatchNorm2d(out_channels) if norm else None

    def forward(self, x: Tensor) -> Tensor:
        """Map the channels of a (B, C, H, W) map."""
        y = self.conv(x)
        return self.bn(y) if self.bn is not None else y
