"""Building blocks shared by several models."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["DepthwiseSeparableConv", "LayerNorm2d", "apply_curve"]


def apply_curve(x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """One light-enhancement curve step, ``LE(x) = x + a * (x^2 - x)``.

    Written as ``x + a*(x*x - x)`` so that it exports to a handful of element-wise ONNX ops. For ``x`` in
    ``[0, 1]`` and ``a`` in ``[-1, 1]`` the result stays in ``[0, 1]``; negative ``a`` brightens.

    Args:
        x: image, ``(B, 3, H, W)``, float in ``[0, 1]``.
        alpha: curve parameters, broadcastable to ``x``, float in ``[-1, 1]``.
    """
    return x + alpha * (x * x - x)


class DepthwiseSeparableConv(nn.Module):
    """A 3×3 depthwise convolution followed by a 1×1 pointwise convolution, both with bias."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class LayerNorm2d(nn.Module):
    """Layer normalisation over the channels of a ``(B, C, H, W)`` tensor, written as plain element-wise ops.

    ``(x - mean_c) / sqrt(var_c + eps) * weight + bias``, with mean and (biased) variance over C at each
    pixel. Plain ops instead of a fused LayerNorm so that every exporter and TensorRT version sees the same
    graph, and so that an fp16 export can keep exactly these ops in fp32.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.float16, torch.bfloat16):  # normalise in fp32: fp16 variance overflows (NaN)
            return self._normalise(x.float()).to(x.dtype)
        return self._normalise(x)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        centred = x - mean
        var = (centred * centred).mean(1, keepdim=True)
        return centred / torch.sqrt(var + self.eps) * self.weight.float() + self.bias.float()
