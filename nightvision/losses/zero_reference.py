"""The four zero-reference losses of Zero-DCE (Guo et al., CVPR 2020), which need no ground truth, and a fifth
of ours that keeps grey inputs grey.

Each loss is a plain function with keyword-only options and a thin ``nn.Module`` that stores them.
Inputs are ``(B, 3, H, W)`` float RGB images in ``[0, 1]``; curve maps are ``(B, 3·n, H', W')`` in
``[-1, 1]``.
Every function returns a scalar tensor averaged over the batch.

Neighbourhoods follow one convention: a term summed "over the 4 neighbours" of every region or pixel counts
each adjacent pair twice (once from each side), and pairs across the image border do not exist.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nightvision.losses._checks import check_bchw, check_same_shape

__all__ = [
    "ColourConstancyLoss",
    "ExposureControlLoss",
    "IlluminationSmoothnessLoss",
    "SpatialConsistencyLoss",
    "ZeroReferenceLoss",
    "colour_constancy_loss",
    "exposure_control_loss",
    "illumination_smoothness_loss",
    "neutral_loss",
    "spatial_consistency_loss",
]


def _pair_sums(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical differences between adjacent pixels of ``x`` (…, H, W)."""
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def spatial_consistency_loss(
    enhanced: torch.Tensor, original: torch.Tensor, *, region: int = 4, signed: bool = True
) -> torch.Tensor:
    """Keep the contrast between neighbouring regions of the input in the output.

    ``L = 1/K Σ_i Σ_{j ∈ 4-neighbours(i)} ((Y_i − Y_j) − (I_i − I_j))²`` where ``Y`` and ``I`` are the
    means of the enhanced and original images over ``region × region`` blocks (and over channels) and ``K``
    the number of blocks.

    The paper writes the differences in absolute value, ``(|Y_i − Y_j| − |I_i − I_j|)²``; that form does not
    see a region that turns brighter than a neighbour it was darker than, and curve models trained with it
    learn exactly that (a flat, embossed picture: 11.6 dB on our SICE test split, against 17.8 for the official
    weights; training/README.md). Default: signed differences, which forbid the inversion; ``signed=False``
    is the paper's form.

    Args:
        enhanced: ``(B, 3, H, W)``, float in ``[0, 1]``, RGB.
        original: same shape as ``enhanced``.
        region: side of the square blocks (the paper uses 4).
        signed: compare signed differences (default) or their absolute values (the paper's text).
    """
    check_bchw(enhanced, "enhanced")
    check_same_shape(enhanced, original, "enhanced, original")
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), region)
    i = F.avg_pool2d(original.mean(1, keepdim=True), region)
    yh, yv = _pair_sums(y)
    ih, iv = _pair_sums(i)
    if not signed:
        yh, yv, ih, iv = yh.abs(), yv.abs(), ih.abs(), iv.abs()
    per_pair = ((yh - ih) ** 2).sum((1, 2, 3)) + ((yv - iv) ** 2).sum((1, 2, 3))
    regions = y.shape[-1] * y.shape[-2]
    return (2 * per_pair / regions).mean()


def exposure_control_loss(
    enhanced: torch.Tensor, *, patch: int = 16, well_exposed: float = 0.6, power: int = 2
) -> torch.Tensor:
    """Pull the mean intensity of every ``patch × patch`` block towards ``well_exposed``.

    ``L = 1/M Σ_k |Y_k − E|^p`` over the M non-overlapping blocks, Y averaged over channels. The paper writes
    p = 1; the official training code, whose loss weights we use, squares (p = 2), which makes the term
    several times weaker for the same weight (0.09 against |0.3|). Default: p = 2, as the code, with which
    our shipped Zero-DCE and Zero-DCE++ were trained.

    Args:
        enhanced: ``(B, 3, H, W)``, float in ``[0, 1]``, RGB.
        patch: block side (the paper uses 16).
        well_exposed: target level E (the paper uses 0.6).
        power: p, 1 (the paper) or 2 (the official code).
    """
    check_bchw(enhanced, "enhanced")
    y = F.avg_pool2d(enhanced.mean(1, keepdim=True), patch)
    return ((y - well_exposed).abs() ** power).mean()


def colour_constancy_loss(enhanced: torch.Tensor) -> torch.Tensor:
    """Grey-world prior: the channel means should agree.

    ``L = (J_R − J_G)² + (J_R − J_B)² + (J_G − J_B)²`` with ``J_c`` the mean of channel c.

    Args:
        enhanced: ``(B, 3, H, W)``, float in ``[0, 1]``, RGB.
    """
    check_bchw(enhanced, "enhanced")
    r, g, b = enhanced.mean((2, 3)).unbind(1)
    return ((r - g) ** 2 + (r - b) ** 2 + (g - b) ** 2).mean()


def neutral_loss(enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """A grey input must give a grey output, pixel by pixel (ours; the grey-world term only sees the means).

    For each image whose input is exactly neutral (R = G = B everywhere: an infrared camera, or a training crop
    made grey), the mean over pixels of ``Σ_c |J_c − mean_c J|``; other images count 0. Averaged over the batch.
    Without this term, curve models trained on SICE (whose scenes lean yellow) learn to add blue everywhere,
    grey included.

    Args:
        enhanced: ``(B, 3, H, W)``, float in ``[0, 1]``, RGB.
        original: ``(B, 3, H, W)``, the input of the model.
    """
    check_bchw(enhanced, "enhanced")
    check_same_shape(enhanced, original, "enhanced, original")
    grey = (original.amax(1) - original.amin(1)).flatten(1).amax(1) == 0  # (B,)
    spread = (enhanced - enhanced.mean(1, keepdim=True)).abs().sum(1).mean((1, 2))  # (B,)
    return (spread * grey).mean()


def illumination_smoothness_loss(curves: torch.Tensor) -> torch.Tensor:
    """Keep the curve maps smooth: ``Σ_maps mean_pixels Σ_{j ∈ 4-neighbours} (A_i − A_j)²``, averaged over the batch.

    Equal to ``2 · Σ_c (mean(∇x A_c²) + mean(∇y A_c²))``: summed over the maps (3 for Zero-DCE++, 24 for
    Zero-DCE's 8 iterations), averaged over pixels. That is the normalisation of the official training code,
    which the weights 200 (Zero-DCE) and 1600 (Zero-DCE++) were tuned with. (We first averaged over the maps
    too, which made the term 3× weaker for Zero-DCE++ and 24× for Zero-DCE; the curves it let through
    followed the image content and flattened it: training/README.md.)

    Args:
        curves: ``(B, 3·n, H, W)``, float in ``[-1, 1]``: the curve maps of n iterations.
    """
    check_bchw(curves, "curves", channels=None)
    dh, dv = _pair_sums(curves)
    return 2 * ((dh**2).sum(1).mean() + (dv**2).sum(1).mean())


class SpatialConsistencyLoss(nn.Module):
    """Module form of :func:`spatial_consistency_loss`."""

    def __init__(self, *, region: int = 4, signed: bool = True) -> None:
        super().__init__()
        self.region = region
        self.signed = signed

    def forward(self, enhanced: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
        return spatial_consistency_loss(enhanced, original, region=self.region, signed=self.signed)


class ExposureControlLoss(nn.Module):
    """Module form of :func:`exposure_control_loss`."""

    def __init__(self, *, patch: int = 16, well_exposed: float = 0.6, power: int = 2) -> None:
        super().__init__()
        self.patch = patch
        self.well_exposed = well_exposed
        self.power = power

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return exposure_control_loss(enhanced, patch=self.patch, well_exposed=self.well_exposed, power=self.power)


class ColourConstancyLoss(nn.Module):
    """Module form of :func:`colour_constancy_loss`."""

    def forward(self, enhanced: torch.Tensor) -> torch.Tensor:
        return colour_constancy_loss(enhanced)


class IlluminationSmoothnessLoss(nn.Module):
    """Module form of :func:`illumination_smoothness_loss`."""

    def forward(self, curves: torch.Tensor) -> torch.Tensor:
        return illumination_smoothness_loss(curves)


class ZeroReferenceLoss(nn.Module):
    """The weighted sum used to train Zero-DCE / Zero-DCE++.

    Default weights are those of the official training code (which the released weights were trained with):
    ``smoothness·200 (1600 for Zero-DCE++) + spatial·1 + colour·5 + exposure·10``, with the code's squared
    exposure term (``exposure_power=2``) and signed spatial differences (``spatial_signed=True``).
    ``w_neutral`` adds :func:`neutral_loss` (off by default; it only acts on grey inputs).

    ``forward`` returns the total and a dict of the unweighted parts, for logging.
    """

    def __init__(
        self,
        *,
        w_smoothness: float = 200.0,
        w_spatial: float = 1.0,
        w_colour: float = 5.0,
        w_exposure: float = 10.0,
        region: int = 4,
        patch: int = 16,
        well_exposed: float = 0.6,
        exposure_power: int = 2,
        spatial_signed: bool = True,
        w_neutral: float = 0.0,
    ) -> None:
        super().__init__()
        self.exposure_power = exposure_power
        self.spatial_signed = spatial_signed
        self.weights = {
            "smoothness": w_smoothness,
            "spatial": w_spatial,
            "colour": w_colour,
            "exposure": w_exposure,
        }
        if w_neutral:
            self.weights["neutral"] = w_neutral
        self.region = region
        self.patch = patch
        self.well_exposed = well_exposed

    def forward(
        self, enhanced: torch.Tensor, original: torch.Tensor, curves: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = {
            "smoothness": illumination_smoothness_loss(curves),
            "spatial": spatial_consistency_loss(enhanced, original, region=self.region, signed=self.spatial_signed),
            "colour": colour_constancy_loss(enhanced),
            "exposure": exposure_control_loss(
                enhanced, patch=self.patch, well_exposed=self.well_exposed, power=self.exposure_power
            ),
        }
        if "neutral" in self.weights:
            parts["neutral"] = neutral_loss(enhanced, original)
        total = sum((self.weights[k] * v for k, v in parts.items()), start=torch.zeros((), device=enhanced.device))
        return total, parts
