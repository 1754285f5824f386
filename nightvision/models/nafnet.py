"""NAFNet: a nonlinear-activation-free network for image restoration.

Chen, Chu, Zhang, Sun. *Simple Baselines for Image Restoration*, ECCV 2022. The original code
(megvii-research/NAFNet) is MIT-licensed; this file is our own re-statement of the architecture from the
paper (copyright of the idea and reference code: Megvii Inc., MIT licence), adapted for export:
LayerNorm as plain ops (:class:`~nightvision.models.layers.LayerNorm2d`), no dropout, and a clamp to
``[0, 1]`` in eval mode.

A U-Net of NAF blocks. Each block: LayerNorm → 1×1 conv (C→2C) → 3×3 depthwise conv → SimpleGate (split in
two halves and multiply) → simplified channel attention (global average → 1×1 conv → scale) → 1×1 conv →
residual scaled by a learnt β; then LayerNorm → 1×1 conv (C→2C) → SimpleGate → 1×1 conv → residual scaled
by γ. Downsampling: 2×2 stride-2 conv doubling channels; upsampling: 1×1 conv doubling channels and a
pixel shuffle halving them; skips are added. The output is the input plus the predicted residual.

The ``nafnet-s`` preset (width 16, encoder (1, 1, 1, 1), 1 middle block, decoder (1, 1, 1, 1), the small
configuration of the ``restorers`` library) has **1,137,203 parameters** (no count is published for this
preset; the test re-derives it from the block formula). Height and width must be multiples of
``2 ** len(enc_blocks)`` (16): the runtime pads outside the graph and crops back.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nightvision.models._registry import register_model
from nightvision.models.layers import LayerNorm2d

__all__ = ["NAFBlock", "NAFNet", "nafnet", "nafnet_s"]


class _SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class NAFBlock(nn.Module):
    """One NAF block at ``channels`` channels (see the module docstring)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        c, dw = channels, 2 * channels
        self.norm1 = LayerNorm2d(c)
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.gate = _SimpleGate()
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c, 1))
        self.conv3 = nn.Conv2d(c, c, 1)
        self.norm2 = LayerNorm2d(c)
        self.conv4 = nn.Conv2d(c, 2 * c, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(self.conv2(self.conv1(self.norm1(x))))
        y = self.conv3(y * self.sca(y))
        x = x + y * self.beta
        y = self.conv5(self.gate(self.conv4(self.norm2(x))))
        return x + y * self.gamma


class NAFNet(nn.Module):
    """NAFNet for ``(B, 3, H, W)`` float RGB in ``[0, 1]``; H and W multiples of ``2 ** len(enc_blocks)``.

    Args:
        width: channels at full resolution; doubled at each level.
        enc_blocks: NAF blocks per encoder level.
        middle_blocks: NAF blocks at the lowest resolution.
        dec_blocks: NAF blocks per decoder level (same length as ``enc_blocks``).
    """

    def __init__(
        self,
        width: int = 16,
        enc_blocks: Sequence[int] = (1, 1, 1, 1),
        middle_blocks: int = 1,
        dec_blocks: Sequence[int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        if len(enc_blocks) != len(dec_blocks):
            raise ValueError(f"enc_blocks and dec_blocks need the same length, got {enc_blocks} and {dec_blocks}")
        self.multiple = 2 ** len(enc_blocks)
        self.intro = nn.Conv2d(3, width, 3, padding=1)
        self.encoders, self.downs = nn.ModuleList(), nn.ModuleList()
        c = width
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
            self.downs.append(nn.Conv2d(c, 2 * c, 2, stride=2))
            c *= 2
        self.middle = nn.Sequential(*[NAFBlock(c) for _ in range(middle_blocks)])
        self.ups, self.decoders = nn.ModuleList(), nn.ModuleList()
        for n in dec_blocks:
            self.ups.append(nn.Sequential(nn.Conv2d(c, 2 * c, 1, bias=False), nn.PixelShuffle(2)))
            c //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(c) for _ in range(n)]))
        self.ending = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` → the enhanced image, same shape (clamped to ``[0, 1]`` in eval)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        if not torch.compiler.is_compiling() and (h % self.multiple or w % self.multiple):
            raise ValueError(f"height and width must be multiples of {self.multiple}, got {h}×{w}: pad first")
        y = self.intro(x)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            y = encoder(y)
            skips.append(y)
            y = down(y)
        y = self.middle(y)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            y = decoder(up(y) + skip)
        y = self.ending(y) + x
        return y if self.training else y.clamp(0.0, 1.0)


@register_model("nafnet")
def nafnet(**kwargs: object) -> NAFNet:
    """NAFNet with any width and block counts (defaults: the ``nafnet-s`` configuration)."""
    return NAFNet(**kwargs)  # type: ignore[arg-type]


@register_model("nafnet-s")
def nafnet_s(**kwargs: object) -> NAFNet:
    """NAFNet-S: width 16, encoder (1, 1, 1, 1), 1 middle block, decoder (1, 1, 1, 1); 1,137,203 parameters."""
    preset: dict[str, object] = {
        "width": 16,
        "enc_blocks": (1, 1, 1, 1),
        "middle_blocks": 1,
        "dec_blocks": (1, 1, 1, 1),
    }
    return NAFNet(**{**preset, **kwargs})  # type: ignore[arg-type]
