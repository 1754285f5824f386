"""Zero-DCE and Zero-DCE++: zero-reference deep curve estimation.

Re-implemented from the papers (the official code is non-commercial and was not copied):

* Guo, Li, Guo, Loy, Hou, Kwong, Cong. *Zero-Reference Deep Curve Estimation for Low-Light Image
  Enhancement*, CVPR 2020. DCE-Net: seven 3×3 convolutions of 32 channels with ReLU, symmetric skip
  concatenations (1↔6, 2↔5, 3↔4), a tanh head giving 24 curve maps = 8 iterations × 3 channels.
  79,416 parameters.
* Li, Guo, Loy. *Learning to Enhance Low-Light Image via Zero-Reference Deep Curve Estimation*, TPAMI 2021
  (Zero-DCE++). The same topology with depthwise-separable convolutions, one 3-channel curve map shared by
  all 8 iterations, estimated on a downscaled copy of the input and resized back. 10,561 parameters.

Both networks map ``(B, 3, H, W)`` float RGB in ``[0, 1]`` to the same shape and range, for any H×W.

Loading the official weights (``../shared/reference-weights``, never shipped) goes through
:func:`map_reference_keys`, which documents the key mapping:
``e_conv{i}.*`` → ``convs.{i-1}.*``, and for Zero-DCE++ ``depth_conv`` → ``depthwise``,
``point_conv`` → ``pointwise``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from nightvision.models._registry import register_model
from nightvision.models.layers import DepthwiseSeparableConv, apply_curve

__all__ = ["ZeroDCE", "ZeroDCEPP", "load_reference", "map_reference_keys", "zero_dce", "zero_dce_pp"]


class _DCENet(nn.Module):
    """The 7-layer curve estimator shared by both variants; ``conv`` builds one layer."""

    def __init__(self, out_channels: int, separable: bool, width: int = 32) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> nn.Module:
            return DepthwiseSeparableConv(cin, cout) if separable else nn.Conv2d(cin, cout, 3, padding=1)

        w = width
        self.convs = nn.ModuleList(
            [
                conv(3, w),
                conv(w, w),
                conv(w, w),
                conv(w, w),
                conv(2 * w, w),  # cat(x3, x4)
                conv(2 * w, w),  # cat(x2, x5)
                conv(2 * w, out_channels),  # cat(x1, x6)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.convs
        x1 = F.relu(c[0](x))
        x2 = F.relu(c[1](x1))
        x3 = F.relu(c[2](x2))
        x4 = F.relu(c[3](x3))
        x5 = F.relu(c[4](torch.cat([x3, x4], 1)))
        x6 = F.relu(c[5](torch.cat([x2, x5], 1)))
        return torch.tanh(c[6](torch.cat([x1, x6], 1)))


class ZeroDCE(nn.Module):
    """Zero-DCE: 8 curve iterations, each with its own per-pixel, per-channel curve map.

    Args:
        iterations: number of curve applications (the paper uses 8).
        width: channels of the hidden convolutions (the paper uses 32).
    """

    def __init__(self, iterations: int = 8, width: int = 32) -> None:
        super().__init__()
        self.iterations = iterations
        self.net = _DCENet(3 * iterations, separable=False, width=width)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """Curve maps, ``(B, 3*iterations, H, W)`` in ``[-1, 1]``."""
        out: torch.Tensor = self.net(x)
        return out

    def forward_with_curves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The enhanced image and the curve maps (for the illumination smoothness loss)."""
        alphas = self.curves(x)
        y = x
        for alpha in torch.split(alphas, 3, dim=1):
            y = apply_curve(y, alpha)
        return y, alphas

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance ``x``, ``(B, 3, H, W)`` float RGB in ``[0, 1]``; returns the same shape and range."""
        return self.forward_with_curves(x)[0]


class ZeroDCEPP(nn.Module):
    """Zero-DCE++: one curve map shared by all iterations, estimated on a downscaled copy.

    Args:
        iterations: number of curve applications (the paper uses 8).
        width: channels of the hidden convolutions (the paper uses 32).
        downscale: the curve map is estimated on a copy of ``ceil(H/downscale) × ceil(W/downscale)`` pixels
            and resized back to ``H × W`` (bilinear, explicit ``size=``). 1 disables resampling. The cost
            of the network falls with the square of this factor; the curve is applied at full resolution.
    """

    def __init__(self, iterations: int = 8, width: int = 32, downscale: int = 1) -> None:
        super().__init__()
        if downscale < 1:
            raise ValueError(f"downscale must be a positive integer, got {downscale}")
        self.iterations = iterations
        self.downscale = downscale
        self.net = _DCENet(3, separable=True, width=width)

    def curves(self, x: torch.Tensor) -> torch.Tensor:
        """The shared curve map at the input's size, ``(B, 3, H, W)`` in ``[-1, 1]``."""
        if self.downscale == 1:
            out: torch.Tensor = self.net(x)
            return out
        h, w = x.shape[-2:]
        s = self.downscale
        small = F.interpolate(x, size=((h + s - 1) // s, (w + s - 1) // s), mode="bilinear", align_corners=False)
        alpha = self.net(small)
        return F.interpolate(alpha, size=(h, w), mode="bilinear", align_corners=False)

    def forward_with_curves(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The enhanced image and the curve map (for the illumination smoothness loss)."""
        alpha = self.curves(x)
        y = x
        for _ in range(self.iterations):
            y = apply_curve(y, alpha)
        return y, alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance ``x``, ``(B, 3, H, W)`` float RGB in ``[0, 1]``; returns the same shape and range."""
        return self.forward_with_curves(x)[0]


def map_reference_keys(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an official Zero-DCE / Zero-DCE++ state dict to ours.

    ``e_conv{i}.weight`` → ``net.convs.{i-1}.weight``;
    ``e_conv{i}.depth_conv.*`` → ``net.convs.{i-1}.depthwise.*``;
    ``e_conv{i}.point_conv.*`` → ``net.convs.{i-1}.pointwise.*``.
    Keys that match none of these are kept as they are, so a strict load reports them.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.removeprefix("module.")
        m = re.fullmatch(r"e_conv(\d)\.(.+)", key)
        if m:
            rest = m.group(2).replace("depth_conv.", "depthwise.").replace("point_conv.", "pointwise.")
            key = f"net.convs.{int(m.group(1)) - 1}.{rest}"
        out[key] = value
    return out


def load_reference(path: str, *, plus_plus: bool, downscale: int = 1) -> nn.Module:
    """Build Zero-DCE (``plus_plus=False``) or Zero-DCE++ and load an official checkpoint, strictly.

    For fidelity tests and side-by-side comparisons only: the official weights are non-commercial.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    model: nn.Module = ZeroDCEPP(downscale=downscale) if plus_plus else ZeroDCE()
    model.load_state_dict(map_reference_keys(state), strict=True)
    return model.eval()


@register_model("zero-dce")
def zero_dce(**kwargs: int) -> ZeroDCE:
    """Zero-DCE, 79,416 parameters."""
    return ZeroDCE(**kwargs)


@register_model("zero-dce++")
def zero_dce_pp(**kwargs: int) -> ZeroDCEPP:
    """Zero-DCE++, 10,561 parameters, curve estimated on a 1/4-scale copy by default."""
    return ZeroDCEPP(**kwargs)
