"""The Retinex-Net losses (Wei et al., BMVC 2018), for its two training phases.

Shapes: images ``S`` are ``(B, 3, H, W)`` float RGB in ``[0, 1]``; reflectances ``R`` the same;
illuminations ``I`` are ``(B, 1, H, W)`` in ``[0, 1]``. Every function returns a scalar tensor.

* Phase 1, Decom-Net on (low, high) pairs: :func:`decomposition_loss` = reconstruction of both images
  (``|R·I − S|``) + 0.001 × mutual reconstruction (each image from the other's reflectance) + 0.01 × equal
  reflectance (``|R_low − R_high|``) + 0.1 × structure-aware smoothness of both illuminations.
* Phase 2, Enhance-Net with Decom-Net frozen: :func:`relight_loss` = ``|R_low·Î − S_high|`` + 3 ×
  smoothness of Î.

:func:`illumination_smoothness_loss` weights the illumination's gradients by ``exp(−10·∇R)`` (R in grey,
its gradient averaged over 3×3), so that the illumination may change where the reflectance has edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nightvision.losses._checks import check_bchw, check_same_shape

__all__ = ["decomposition_loss", "illumination_smoothness_loss", "relight_loss"]

_GREY = (0.299, 0.587, 0.114)


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """|∂x| and |∂y| of ``(B, 1, H, W)``, zero-padded on the far side so the shape is kept."""
    dx = F.pad((x[..., :, 1:] - x[..., :, :-1]).abs(), (0, 1, 0, 0))
    dy = F.pad((x[..., 1:, :] - x[..., :-1, :]).abs(), (0, 0, 0, 1))
    return dx, dy


def illumination_smoothness_loss(illumination: torch.Tensor, reflectance: torch.Tensor) -> torch.Tensor:
    """``mean(|∇I| · exp(−10 · avg3(|∇R_grey|)))`` summed over the x and y directions.

    Args:
        illumination: ``(B, 1, H, W)``, float in ``[0, 1]``.
        reflectance: ``(B, 3, H, W)``, float in ``[0, 1]``, RGB.
    """
    check_bchw(illumination, "illumination", channels=1)
    check_bchw(reflectance, "reflectance")
    weights = reflectance.new_tensor(_GREY).view(1, 3, 1, 1)
    grey = (reflectance * weights).sum(1, keepdim=True)
    ix, iy = _gradients(illumination)
    rx, ry = _gradients(grey)
    rx, ry = (F.avg_pool2d(g, 3, stride=1, padding=1) for g in (rx, ry))
    return (ix * torch.exp(-10 * rx) + iy * torch.exp(-10 * ry)).mean()


def decomposition_loss(
    low: torch.Tensor,
    high: torch.Tensor,
    r_low: torch.Tensor,
    i_low: torch.Tensor,
    r_high: torch.Tensor,
    i_high: torch.Tensor,
    *,
    w_mutual: float = 0.001,
    w_equal_r: float = 0.01,
    w_smooth: float = 0.1,
) -> torch.Tensor:
    """Phase-1 loss of Decom-Net on a (low, high) pair and both decompositions (see the module docstring)."""
    check_bchw(low, "low")
    check_same_shape(low, high, "low, high")
    check_same_shape(low, r_low, "low, r_low")
    check_same_shape(r_low, r_high, "r_low, r_high")
    check_same_shape(i_low, i_high, "i_low, i_high")
    recon = (r_low * i_low - low).abs().mean() + (r_high * i_high - high).abs().mean()
    mutual = (r_high * i_low - low).abs().mean() + (r_low * i_high - high).abs().mean()
    equal_r = (r_low - r_high).abs().mean()
    smooth = illumination_smoothness_loss(i_low, r_low) + illumination_smoothness_loss(i_high, r_high)
    return recon + w_mutual * mutual + w_equal_r * equal_r + w_smooth * smooth


def relight_loss(
    r_low: torch.Tensor, i_hat: torch.Tensor, high: torch.Tensor, *, w_smooth: float = 3.0
) -> torch.Tensor:
    """Phase-2 loss of Enhance-Net: ``|R_low·Î − S_high| + w_smooth · smoothness(Î, R_low)``."""
    check_bchw(high, "high")
    check_same_shape(r_low, high, "r_low, high")
    return (r_low * i_hat - high).abs().mean() + w_smooth * illumination_smoothness_loss(i_hat, r_low)
