"""Retinex-Net: a Decom-Net splits an image into reflectance and illumination, an Enhance-Net relights it.

Wei, Wang, Yang, Liu. *Deep Retinex Decomposition for Low-Light Enhancement*, BMVC 2018. The authors' code
(weichen582/RetinexNet, TensorFlow) is MIT-licensed; this is our own PyTorch re-statement of the paper's
architecture (the idea and reference code: copyright the authors, MIT licence).

* **Decom-Net**: the input and its channel maximum (4 channels) → 9×9 conv to 64 → five 3×3 convs of 64
  with ReLU → 3×3 conv to 4 → sigmoid; reflectance R = the first 3 channels, illumination I = the last.
  207,748 parameters.
* **Enhance-Net**: R and I (4 channels) → 3×3 conv to 64 → three stride-2 3×3 convs with ReLU (encoder) →
  three decoder steps (resize to the skip's explicit size, 3×3 conv + ReLU, add the skip) → the three decoder
  outputs resized to full size and concatenated (multi-scale concatenation) → 1×1 conv to 64 → 3×3 conv to
  the adjusted illumination Î. 236,865 parameters.

The enhanced image is ``R · Î`` (Î broadcast over the colour channels), clamped to ``[0, 1]`` in eval
(the paper's BM3D denoising of R is left out). 444,613 parameters in all; the paper states no count, and
the 0.555 M that later papers quote is not reproduced by the paper's layer list. H and W must be multiples
of 8 (the runtime pads). :meth:`RetinexNet.decompose` and :meth:`RetinexNet.forward_with_components` give
the auxiliary outputs the losses need; ``forward`` returns the enhanced image only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nightvision.models._registry import register_model

__all__ = ["DecomNet", "EnhanceNet", "RetinexNet", "retinexnet"]


class DecomNet(nn.Module):
    """Image → (reflectance ``(B, 3, H, W)``, illumination ``(B, 1, H, W)``), both in ``[0, 1]``."""

    def __init__(self, channels: int = 64, layers: int = 5) -> None:
        super().__init__()
        self.shallow = nn.Conv2d(4, channels, 9, padding=4)
        self.body = nn.Sequential(
            *[m for _ in range(layers) for m in (nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU())]
        )
        self.head = nn.Conv2d(channels, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.cat([x.amax(1, keepdim=True), x], dim=1)
        y = torch.sigmoid(self.head(self.body(self.shallow(y))))
        return y[:, :3], y[:, 3:]


class EnhanceNet(nn.Module):
    """(reflectance, illumination) → the adjusted illumination ``(B, 1, H, W)``."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        c = channels
        self.conv0 = nn.Conv2d(4, c, 3, padding=1)
        self.down = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1) for _ in range(3)])
        self.up = nn.ModuleList([nn.Conv2d(c, c, 3, padding=1) for _ in range(3)])
        self.fusion = nn.Conv2d(3 * c, c, 1)
        self.out = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, reflectance: torch.Tensor, illumination: torch.Tensor) -> torch.Tensor:
        y = self.conv0(torch.cat([reflectance, illumination], dim=1))
        skips = [y]
        for conv in self.down:
            y = F.relu(conv(y))
            skips.append(y)
        outs = []
        for conv, skip in zip(self.up, reversed(skips[:-1]), strict=True):
            y = F.relu(conv(F.interpolate(y, size=skip.shape[-2:], mode="nearest"))) + skip
            outs.append(y)
        size = outs[-1].shape[-2:]
        multi = [F.interpolate(o, size=size, mode="nearest") for o in outs[:-1]] + [outs[-1]]
        return self.out(self.fusion(torch.cat(multi, dim=1)))


class RetinexNet(nn.Module):
    """Decom-Net + Enhance-Net for ``(B, 3, H, W)`` float RGB in ``[0, 1]``, H and W multiples of 8."""

    def __init__(self, channels: int = 64, layers: int = 5) -> None:
        super().__init__()
        self.decom = DecomNet(channels, layers)
        self.enhance = EnhanceNet(channels)

    def decompose(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reflectance ``(B, 3, H, W)`` and illumination ``(B, 1, H, W)`` of ``x``."""
        return self.decom(x)

    def forward_with_components(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(enhanced, reflectance, illumination, adjusted illumination); enhanced is not clamped."""
        r, i = self.decom(x)
        i_hat = self.enhance(r, i)
        return r * i_hat, r, i, i_hat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` in ``[0, 1]`` → the enhanced image, same shape (clamped to ``[0, 1]`` in eval)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        y = self.forward_with_components(x)[0]
        return y if self.training else y.clamp(0.0, 1.0)


@register_model("retinexnet")
def retinexnet(**kwargs: int) -> RetinexNet:
    """Retinex-Net (Decom-Net + Enhance-Net), 444,613 parameters."""
    return RetinexNet(**kwargs)
