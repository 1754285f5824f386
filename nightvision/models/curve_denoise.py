"""CurveDenoise: a real-time model that brightens and denoises in one pass, sized for a CPU.

Our design (no paper re-implemented), after two published ideas:

* the heavy work happens on a small copy and predicts per-pixel *coefficients* that are applied at full
  resolution — Gharbi, Chen, Barron, Hasinoff, Durand, *Deep Bilateral Learning for Real-Time Image
  Enhancement* (HDRNet), SIGGRAPH 2017; here the coefficients are those of a tone curve and of a denoiser;
* a curve that maps ``[0, 1]`` onto itself, as Zero-DCE's (Guo et al., CVPR 2020), but in closed form: the
  rational curve ``y = g·z / (1 + (g − 1)·z)`` has slope ``g`` at black, keeps 0 and 1 fixed and never clips;
  composing two of them gives another one (gains multiply), so one application is as expressive as
  Zero-DCE's eight iterations of its quadratic;

and trained with the temporal-consistency term of Zhang et al., *Learning Temporal Consistency for Low Light
Video Enhancement from Single Images* (StableLLVE), CVPR 2021 (in ``training/curve_denoise.py``).

The graph, for ``x`` of ``(B, 3, H, W)`` float RGB in ``[0, 1]``, H and W multiples of ``downscale``:

1. **Full resolution, fixed ops** (a handful of passes over the frame, no convolution: ONNX Runtime's CPU
   convolutions on 3-channel full frames cost 17 ms at 720p, against 2–3 ms for a pooling or element-wise pass):
   ``base = box(x)``, a 3×3 box blur per channel (average pooling that counts only the pixels inside the
   frame); the luma ``Y`` (mean of R, G and B) and its detail ``d = Y − box(Y)``.
2. **Small copy** (``downscale``, 8 by default: 160×90 for 720p): ``avgpool(x)`` and ``avgpool(|d|)`` (the
   local amount of fine detail, mostly noise in the dark), both as logs relative to the frame's mean luma ``m``,
   and ``log m``, go through a small U-Net (two stride-2 levels, a global-context vector added at the bottom)
   that outputs two maps: the log-gain of the curve, ``log g`` in ``[−max_log_gain, max_log_gain]``, and the
   shrinkage threshold ``t`` of the detail, relative to ``m``.
3. **Back at full resolution**: both maps are resized bilinearly to ``H × W`` (explicit ``size=``); the
   detail is shrunk (``s = d·d² / (d² + t²)``: kept where it stands out of the noise, removed where it does not)
   and added back to every channel of ``base``, ``z = base + s``; then each channel's curve, taken at the base:
   ``y = z / (h + (1 − h)·base)`` with ``h = 1/g`` (for ``s = 0`` exactly the rational curve of ``base``; the
   detail gets its base's gain). A curve per channel, rather than one gain from the luma that keeps the RGB
   ratios, matters: with the best single gain per image, the first fits SICE's held-out pairs at 23.8 dB,
   the second at 21.6 dB (brighter exposures of a scene are less saturated in sRGB).

Colour: the chroma of the output is that of the blurred input (the 3×3 box leaves a third of the chroma
noise, the worst artefact of dark footage), the detail is added equally to R, G and B, and the same curve
serves the three channels, so a neutral grey input stays exactly neutral: the model cannot tint.

Nothing in the graph depends on the size other than through ``Shape``: any H×W that is a multiple of
``downscale`` runs (the runtime pads outside the graph). 34,410 parameters in the shipped configuration.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nightvision.models._registry import register_model

__all__ = ["CurveDenoise", "LowResNet", "curve_denoise"]

_EPS = 1e-3  # added before logs, in [0, 1] units (1/4 of an 8-bit level)


class LowResNet(nn.Module):
    """The coefficient predictor on the small copy: a two-level U-Net with a global-context vector.

    ``(B, in_channels, h, w)`` features → ``(B, out_channels, h, w)`` raw maps, for any h×w ≥ 1.

    Args:
        in_channels: input feature channels.
        out_channels: output maps.
        width: channels at the input level; 2× and 4× at the two lower levels.
        mid_blocks: 3×3 convolutions at the lowest level (1/4 of the small copy's side).
    """

    def __init__(self, in_channels: int = 5, out_channels: int = 2, width: int = 8, mid_blocks: int = 2) -> None:
        super().__init__()
        w1, w2, w3 = width, 2 * width, 4 * width
        self.enc1 = nn.Conv2d(in_channels, w1, 3, padding=1)
        self.enc2 = nn.Conv2d(w1, w2, 3, stride=2, padding=1)
        self.enc3 = nn.Conv2d(w2, w3, 3, stride=2, padding=1)
        self.context = nn.Linear(w3, w3)
        self.mid = nn.ModuleList([nn.Conv2d(w3, w3, 3, padding=1) for _ in range(mid_blocks)])
        self.dec2 = nn.Conv2d(w3 + w2, w2, 3, padding=1)
        self.dec1 = nn.Conv2d(w2 + w1, w1, 3, padding=1)
        self.head = nn.Conv2d(w1, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = F.relu(self.enc1(x))
        e2 = F.relu(self.enc2(e1))
        e3 = self.enc3(e2)
        pooled = F.relu(e3).mean((2, 3), keepdim=True).flatten(1)  # keepdim: a global pool tiling can share
        e3 = F.relu(e3 + self.context(pooled)[:, :, None, None])
        for conv in self.mid:
            e3 = e3 + F.relu(conv(e3))
        up3 = F.interpolate(e3, size=e2.shape[-2:], mode="bilinear", align_corners=False)
        d2 = F.relu(self.dec2(torch.cat([up3, e2], 1)))
        up2 = F.interpolate(d2, size=e1.shape[-2:], mode="bilinear", align_corners=False)
        d1 = F.relu(self.dec1(torch.cat([up2, e1], 1)))
        out: torch.Tensor = self.head(d1)
        return out


class CurveDenoise(nn.Module):
    """Brighten with a per-pixel rational curve and denoise by shrinking luma detail (module docstring).

    Args:
        width: channels of :class:`LowResNet` at its input level.
        mid_blocks: 3×3 convolutions at the lowest level of :class:`LowResNet`.
        downscale: side ratio of the small copy (average pooling); H and W must be multiples of it.
        blur: side of the box blur that makes the base (odd, ≥ 3).
        max_log_gain: bound of ``|log g|`` (5: gains from 1/148 to 148).
    """

    def __init__(
        self, width: int = 8, mid_blocks: int = 2, downscale: int = 8, blur: int = 3, max_log_gain: float = 5.0
    ) -> None:
        super().__init__()
        if blur < 3 or blur % 2 == 0:
            raise ValueError(f"blur must be an odd size of at least 3, got {blur}")
        if downscale < 1:
            raise ValueError(f"downscale must be a positive integer, got {downscale}")
        self.downscale = downscale
        self.blur = blur
        self.max_log_gain = max_log_gain
        self.net = LowResNet(5, 2, width, mid_blocks)
        head = self.net.head  # start with flat maps: g = 1 and t = m/10 everywhere
        nn.init.zeros_(head.weight)
        if head.bias is not None:
            nn.init.zeros_(head.bias)

    def _box(self, x: torch.Tensor) -> torch.Tensor:
        """Box blur of side ``blur``; at the border only the pixels inside count (no darkened edge)."""
        return F.avg_pool2d(x, self.blur, stride=1, padding=self.blur // 2, count_include_pad=False)

    def coefficients(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The blurred base, its luma, the luma detail and the small copy's maps.

        Args:
            x: ``(B, 3, H, W)`` float RGB in ``[0, 1]``, H and W multiples of ``downscale``.

        Returns:
            ``base`` ``(B, 3, H, W)``, its luma ``(B, 1, H, W)`` (the channel mean), the luma detail
            ``(B, 1, H, W)`` (signed, input units) and ``maps`` ``(B, 2, H/downscale, W/downscale)``:
            ``log g`` in ``[−max_log_gain, max_log_gain]`` and ``t²`` (squared shrinkage threshold, > 0).
        """
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        s = self.downscale
        if not torch.compiler.is_compiling() and not torch.jit.is_tracing() and (h % s or w % s):
            raise ValueError(f"height and width must be multiples of {s}, got {h}×{w}: pad first")
        base = self._box(x)
        r, g, b = torch.split(x, 1, dim=1)  # the channel mean as Split + Add: 2.5x faster than ReduceMean in ORT
        luma = (r + g + b) * (1.0 / 3.0)
        base_luma = self._box(luma)  # = base.mean(1): the blur is linear
        detail = luma - base_luma
        maps = self.small_maps(F.avg_pool2d(x, s), F.avg_pool2d(detail.abs(), s))
        return base, base_luma, detail, maps

    def small_maps(self, small: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        """The small copy's maps from its pooled features (the part of :meth:`coefficients` that learns; the
        CPU runtime exports it alone, :mod:`nightvision.curve_denoise_fast`).

        Args:
            small: ``avgpool(x)``, ``(B, 3, h, w)`` float RGB in ``[0, 1]``.
            texture: ``avgpool(|detail|)``, ``(B, 1, h, w)``, same units.

        Returns:
            ``(B, 2, h, w)``: ``log g`` in ``[−max_log_gain, max_log_gain]`` and ``t²`` (> 0).
        """
        # the frame's mean as a spatial pool, then over channels: tiling shares the spatial one between tiles
        log_m = torch.log(small.mean((2, 3), keepdim=True).mean(1, keepdim=True) + _EPS)
        feats = torch.cat(
            [torch.log(small + _EPS) - log_m, torch.log(texture + _EPS) - log_m, log_m.expand_as(texture)], 1
        )
        raw = self.net(feats)
        lim = self.max_log_gain
        log_gain = lim * torch.tanh(raw[:, :1] / lim)
        t2 = torch.exp(2.0 * (raw[:, 1:2].clamp(-10.0, 10.0) + log_m - 2.3))  # t = m·exp(raw)/10
        return torch.cat([log_gain, t2], 1)

    def forward_with_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The enhanced image (not clamped in training) and the small copy's maps (see :meth:`coefficients`)."""
        base, _, detail, maps = self.coefficients(x)
        size = x.shape[-2:]
        inv_gain = F.interpolate(torch.exp(-maps[:, :1]), size=size, mode="bilinear", align_corners=False)
        t2 = F.interpolate(maps[:, 1:], size=size, mode="bilinear", align_corners=False)
        d2 = detail * detail
        kept = detail * d2 / (d2 + t2)  # shrunk luma detail: |kept| <= |detail|
        # Each channel's curve taken at the base, y = z / (h + (1 − h)·base): the detail gets its base's gain,
        # and the denominator is >= min(h, 1) > 0 because the base is in [0, 1].
        y = (base + kept) / (inv_gain + (1.0 - inv_gain) * base)
        return (y if self.training else y.clamp(0.0, 1.0)), maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Enhance ``x``, ``(B, 3, H, W)`` float RGB in ``[0, 1]`` (H, W multiples of ``downscale``); returns
        the same shape, in ``[0, 1]`` (clamped in eval mode)."""
        return self.forward_with_maps(x)[0]


@register_model("curve-denoise")
def curve_denoise(**kwargs: float) -> CurveDenoise:
    """CurveDenoise: width 8, two middle blocks, 1/8 copy, 3×3 base blur."""
    return CurveDenoise(**kwargs)  # type: ignore[arg-type]
