"""Image figures, torch-free.

No-reference: :func:`mean_luma`, :func:`clipped_fraction`. Full-reference (paired data): :func:`psnr` and
:func:`ssim`, the latter in the setting of Wang et al. 2004 (11×11 Gaussian window, σ = 1.5, K1 = 0.01,
K2 = 0.03, population statistics), which is what scikit-image computes with ``gaussian_weights=True,
use_sample_covariance=False, sigma=1.5`` (tested to agree within 1e-3).
"""

from __future__ import annotations

import cv2
import numpy as np

from nightvision.errors import ShapeError

__all__ = ["clipped_fraction", "mean_luma", "psnr", "ssim"]

_BT601 = (0.114, 0.587, 0.299)  # B, G, R weights of luma


def mean_luma(bgr: np.ndarray) -> float:
    """Mean BT.601 luma of an ``(H, W, 3)`` BGR or ``(H, W)`` grey uint8 image, in ``[0, 255]``."""
    if bgr.ndim == 2:
        return float(cv2.mean(bgr)[0])
    b, g, r, _ = cv2.mean(bgr)
    return _BT601[0] * b + _BT601[1] * g + _BT601[2] * r


def clipped_fraction(bgr: np.ndarray, *, high: int = 255) -> float:
    """Fraction of pixels with at least one channel at ``high`` or above (blown out)."""
    mask = np.asarray(bgr >= high)
    if bgr.ndim == 3:
        mask = np.asarray(mask.any(axis=2))
    return float(mask.mean())


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ShapeError(f"expected two images of the same shape, got {a.shape} and {b.shape}")
    if a.ndim not in (2, 3):
        raise ShapeError(f"expected (H, W) or (H, W, C) images, got {a.shape}")
    return a.astype(np.float64), b.astype(np.float64)


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB of two images of the same shape (``inf`` when identical)."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    return float("inf") if mse == 0 else float(10.0 * np.log10(data_range**2 / mse))


def ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """Mean structural similarity of two images of the same shape; colour channels are averaged.

    Uses an 11×11 Gaussian window (σ = 1.5) and population statistics; the border of half a window is left
    out of the mean, as in scikit-image.
    """
    x, y = _pair(a, b)
    if x.ndim == 2:
        x, y = x[:, :, None], y[:, :, None]
    if min(x.shape[:2]) < 11:
        raise ShapeError(f"SSIM needs images of at least 11×11 pixels, got {x.shape[:2]}")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(img: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)
        return out

    scores = []
    for c in range(x.shape[2]):
        xc, yc = np.ascontiguousarray(x[:, :, c]), np.ascontiguousarray(y[:, :, c])
        mx, my = blur(xc), blur(yc)
        vx = blur(xc * xc) - mx * mx
        vy = blur(yc * yc) - my * my
        cov = blur(xc * yc) - mx * my
        s = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        scores.append(s[5:-5, 5:-5].mean())
    return float(np.mean(scores))
