"""SCI: self-calibrated illumination learning, for reference comparisons only.

Ma, Ma, Liu, Fan, Luo. *Toward Fast, Flexible, and Robust Low-Light Image Enhancement*, CVPR 2022. At test
time SCI keeps only its illumination estimator: ``u = clamp(x + F(x), 1e-4, 1)`` with a tiny convolutional
``F`` (3×3 conv + ReLU, one residual 3×3 conv + BatchNorm + ReLU, 3×3 conv + sigmoid, 3 channels
throughout), and the output is the Retinex division ``clamp(x / u, 0, 1)``. 258 parameters (plus
BatchNorm statistics). The self-calibration module is a training device and is not built.

Not registered and never shipped: it exists so that ``nightvision eval`` can put the official SCI weights
(``../shared/reference-weights/sci/{easy,medium,difficult}.pt``, MIT) in the same table as ours.
:func:`load_reference` maps their keys: ``enhance.in_conv.0`` → ``in_conv``, ``enhance.blocks.0.{0,1}`` →
``block.{0,1}``, ``enhance.out_conv.0`` → ``out_conv``; ``enhance.conv.*`` (the same tensors as
``enhance.blocks.0.*``, saved twice) and ``calibrate.*`` are dropped.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["SCI", "load_reference"]


class SCI(nn.Module):
    """SCI's test-time network: ``(B, 3, H, W)`` float RGB in ``[0, 1]`` → same shape and range, any H×W."""

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.in_conv = nn.Conv2d(3, channels, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())
        self.out_conv = nn.Conv2d(channels, 3, 3, padding=1)

    def illumination(self, x: torch.Tensor) -> torch.Tensor:
        """The estimated illumination ``u``, ``(B, 3, H, W)`` in ``[1e-4, 1]``."""
        f = torch.relu(self.in_conv(x))
        f = f + self.block(f)
        return torch.clamp(x + torch.sigmoid(self.out_conv(f)), 1e-4, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x / self.illumination(x), 0.0, 1.0)


def load_reference(path: str | Path) -> SCI:
    """An :class:`SCI` with the official weights at ``path``, in eval mode (``strict`` key check)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    renames = {"enhance.in_conv.0.": "in_conv.", "enhance.blocks.0.": "block.", "enhance.out_conv.0.": "out_conv."}
    mapped = {}
    for key, value in state.items():
        for old, new in renames.items():
            if key.startswith(old):
                mapped[new + key[len(old) :]] = value
    model = SCI()
    model.load_state_dict(mapped, strict=True)
    return model.eval()
