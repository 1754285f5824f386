"""Paired (supervised) losses and the differentiable metrics they reuse.

Images are ``(B, C, H, W)`` float tensors in ``[0, 1]`` (RGB for colour); prediction and target have the
same shape. Metrics return one value per image, ``(B,)``; losses return a scalar averaged over the batch.

:func:`ssim` is the setting of Wang et al. 2004 (11×11 Gaussian window, σ = 1.5, K1 = 0.01, K2 = 0.03,
population statistics), the same as :func:`nightvision.evaluation.metrics.ssim` and scikit-image with
``gaussian_weights=True, use_sample_covariance=False``, except at the border: here the window is not
reflected, only the valid region (the image less half a window on each side) is averaged, which is what
scikit-image's mean covers anyway.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nightvision.losses._checks import check_bchw, check_same_shape

__all__ = [
    "CharbonnierLoss",
    "L1Loss",
    "PSNRLoss",
    "SSIMLoss",
    "charbonnier_loss",
    "l1_loss",
    "psnr",
    "psnr_loss",
    "ssim",
    "ssim_loss",
]


def _check(pred: torch.Tensor, target: torch.Tensor) -> None:
    check_bchw(pred, "pred", channels=None)
    check_same_shape(pred, target, "pred, target")


def psnr(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0, eps: float = 1e-10) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image, ``(B,)``; ``eps`` keeps identical images finite."""
    _check(pred, target)
    mse = ((pred - target) ** 2).mean((1, 2, 3))
    return 10.0 * torch.log10(data_range**2 / (mse + eps))


def _gaussian_window(channels: int, like: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """Mean structural similarity per image, ``(B,)``, channels averaged; H and W at least 11."""
    _check(pred, target)
    if min(pred.shape[-2:]) < 11:
        raise ValueError(f"ssim needs images of at least 11×11 pixels, got {tuple(pred.shape[-2:])}")
    c = pred.shape[1]
    window = _gaussian_window(c, pred)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, window, groups=c)

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mx, my = blur(pred), blur(target)
    vx = blur(pred * pred) - mx * mx
    vy = blur(target * target) - my * my
    cov = blur(pred * target) - mx * my
    s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean((1, 2, 3))


def charbonnier_loss(pred: torch.Tensor, target: torch.Tensor, *, eps: float = 1e-3) -> torch.Tensor:
    """``mean(sqrt((pred − target)² + eps²))``: a smooth L1 (Charbonnier penalty)."""
    _check(pred, target)
    return torch.sqrt((pred - target) ** 2 + eps * eps).mean()


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error."""
    _check(pred, target)
    return (pred - target).abs().mean()


def ssim_loss(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """``1 − SSIM``, averaged over the batch."""
    return (1.0 - ssim(pred, target, data_range=data_range)).mean()


def psnr_loss(pred: torch.Tensor, target: torch.Tensor, *, data_range: float = 1.0) -> torch.Tensor:
    """``−PSNR / 10`` averaged over the batch (the scale of NAFNet's PSNR loss): lower is better."""
    return -psnr(pred, target, data_range=data_range).mean() / 10.0


class CharbonnierLoss(nn.Module):
    """Module form of :func:`charbonnier_loss`."""

    def __init__(self, *, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return charbonnier_loss(pred, target, eps=self.eps)


class L1Loss(nn.Module):
    """Module form of :func:`l1_loss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l1_loss(pred, target)


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ssim_loss(pred, target)


class PSNRLoss(nn.Module):
    """Module form of :func:`psnr_loss`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return psnr_loss(pred, target)
