"""No-reference image figures, torch-free: mean luma and clipped fraction of uint8 BGR frames."""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["clipped_fraction", "mean_luma"]

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
