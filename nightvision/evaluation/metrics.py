"""Image figures, torch-free.

No-reference: :func:`mean_luma`, :func:`clipped_fraction`, the noise figures :func:`noise_sigma` and
:func:`noise_ratio`, :func:`colour_cast` (with :func:`lab_offset`) and, on a sequence of frames,
:func:`flicker`. Full-reference (paired data): :func:`psnr` and
:func:`ssim`, the latter in the setting of Wang et al. 2004 (11×11 Gaussian window, σ = 1.5, K1 = 0.01,
K2 = 0.03, population statistics), which is what scikit-image computes with ``gaussian_weights=True,
use_sample_covariance=False, sigma=1.5`` (tested to agree within 1e-3).

The noise figures follow J. Immerkær, *Fast Noise Variance Estimation*, CVIU 64(2), 1996: the image is
filtered with ``[[1, −2, 1], [−2, 4, −2], [1, −2, 1]]`` (the difference of two Laplacians, which cancels
smooth content) and ``σ = √(π/2) · Σ|response| / (6 (W − 2)(H − 2))`` over the interior pixels. Fine
texture counts as noise too, so compare methods on the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from nightvision.errors import ShapeError

__all__ = [
    "clipped_fraction",
    "colour_cast",
    "flicker",
    "lab_offset",
    "luma",
    "mean_luma",
    "noise_ratio",
    "noise_sigma",
    "psnr",
    "ssim",
]

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


# --- noise, colour and flicker (no reference)

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def luma(image: np.ndarray) -> np.ndarray:
    """BT.601 luma of an ``(H, W, 3)`` BGR or ``(H, W)`` grey image as float32 ``(H, W)``, in the image's units
    (not rounded, so dark frames keep their sub-level variation)."""
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ShapeError(f"expected an (H, W, 3) BGR or (H, W) grey image, got {image.shape}")
    y: np.ndarray = cv2.transform(image.astype(np.float32), np.array([_BT601], np.float32))
    return y.reshape(image.shape[:2])


def noise_sigma(image: np.ndarray) -> float:
    """Immerkær's noise estimate (see the module docstring) of an image's luma, in its units (levels for uint8).

    Args:
        image: ``(H, W, 3)`` BGR or ``(H, W)`` grey, uint8 or float; at least 3×3.
    """
    y = luma(image)
    h, w = y.shape
    if h < 3 or w < 3:
        raise ShapeError(f"the noise estimate needs at least 3×3 pixels, got {image.shape}")
    response = cv2.filter2D(y, cv2.CV_32F, _IMMERKAER)[1:-1, 1:-1]
    total = float(cv2.norm(response, cv2.NORM_L1))
    return math.sqrt(math.pi / 2.0) * total / (6.0 * (w - 2) * (h - 2))


def noise_ratio(output: np.ndarray, source: np.ndarray) -> float:
    """Noise of an enhanced frame relative to plain amplification of its input.

    The :func:`noise_sigma` of ``output`` divided by that of ``source`` multiplied by one gain that brings
    its mean luma to the output's (then clipped to 255, as a plain brightening would be).
    Below 1: the method removes noise that plain amplification would show; 1: it amplifies it like a gain.

    Args:
        output: the enhanced ``(H, W, 3)`` BGR or ``(H, W)`` uint8 frame.
        source: the frame it was made from, same shape.
    """
    if output.shape != source.shape:
        raise ShapeError(f"expected an output and its source of the same shape, got {output.shape} and {source.shape}")
    y_in = luma(source)
    gain = float(luma(output).mean()) / max(float(y_in.mean()), 1e-6)
    amplified = np.clip(y_in * np.float32(gain), 0.0, 255.0)
    reference = noise_sigma(amplified)
    return noise_sigma(output) / max(reference, 1e-6)


def lab_offset(bgr: np.ndarray) -> tuple[float, float]:
    """Mean ``(a* − 128, b* − 128)`` of a BGR uint8 image in OpenCV's 8-bit CIELAB (0, 0 = neutral grey)."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise ShapeError(f"expected an (H, W, 3) uint8 BGR image, got {bgr.shape} {bgr.dtype}")
    _, a, b, _ = cv2.mean(cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB))
    return a - 128.0, b - 128.0


def colour_cast(bgr: np.ndarray) -> float:
    """Distance of the mean ``(a*, b*)`` from neutral in OpenCV's 8-bit CIELAB (0 for a grey image;
    :func:`lab_offset` gives the two components)."""
    a, b = lab_offset(bgr)
    return math.hypot(a, b)


def flicker(frames: Sequence[np.ndarray]) -> float:
    """Brightness pumping of a sequence: the mean over consecutive frames of ``|Δ mean luma|``, divided by the
    mean luma of the sequence (0 for a steady brightness; 0.01 = 1 % of the brightness per frame).

    :func:`nightvision.stream.temporal.flicker` is this figure of an output over that of its input.
    """
    if len(frames) < 2:
        raise ValueError(f"flicker needs at least 2 frames, got {len(frames)}")
    levels = np.array([mean_luma(f) for f in frames])
    return float(np.abs(np.diff(levels)).mean() / max(levels.mean(), 1e-6))
