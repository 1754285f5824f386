"""Frames ↔ network tensors: OpenCV's HWC BGR in, ``(1, 3, H, W)`` float32 RGB in ``[0, 1]`` out, and back.

Padding to the model's multiple happens here (reflect), outside the graph, and is cropped off afterwards.
"""

from __future__ import annotations

import cv2
import numpy as np

from nightvision.errors import ShapeError

__all__ = ["check_float_range", "from_tensor", "pad_amounts", "to_tensor"]


def pad_amounts(height: int, width: int, multiple: int, min_side: int = 0) -> tuple[int, int]:
    """Rows and columns to add at the bottom and right so both sides are multiples of ``multiple`` and at least
    ``min_side``."""
    h, w = max(height, min_side), max(width, min_side)
    return h - height + (-h) % multiple, w - width + (-w) % multiple


_SLACK = 1e-3  # a quarter of an 8-bit level: float rounding of in-range data, not a forgotten scale


def check_float_range(frame: np.ndarray) -> None:
    """Refuse a float frame that is not in ``[0, 1]`` (the networks' input range) or holds NaN.

    Why: such a frame is accepted by every graph and comes back corrupted, not refused. The usual cause,
    ``cv2.imread(...).astype(np.float32)`` without ``/ 255``, overflows the curve models into NaN and saturates
    CurveDenoise to 1.0; one NaN or a slightly negative value spreads to the whole frame through the models'
    global pooling. Costs a min and a max pass, so it is for float frames only (uint8 and uint16 are in range
    by construction).

    Raises:
        ShapeError: saying what is wrong and what to do.
    """
    if frame.size == 0:
        return
    lo, hi = float(frame.min()), float(frame.max())  # NaN anywhere makes both NaN
    if lo >= -_SLACK and hi <= 1.0 + _SLACK:  # (a resize of a 1.0 region gives 1.0000001: not a mistake)
        return
    if np.isnan(lo) or np.isnan(hi):
        raise ShapeError("float frames must be in [0, 1], and this one contains NaN: replace them (np.nan_to_num)")
    if hi > 1.0:
        if hi == np.inf:
            raise ShapeError("float frames must be in [0, 1], and this one contains infinity")
        if hi <= 2.0:  # just over: overshoot of some processing, not 8- or 16-bit levels
            raise ShapeError(
                f"float frames must be in [0, 1] (got values up to {hi:.6g}: clip them, np.clip(frame, 0, 1))"
            )
        scale = "255" if hi <= 255.0 else "65535"
        raise ShapeError(f"float frames must be in [0, 1] (got values up to {hi:.6g}: divide by {scale})")
    raise ShapeError(f"float frames must be in [0, 1] (got values down to {lo:g}: clip them, np.clip(frame, 0, 1))")


def to_tensor(bgr: np.ndarray, *, multiple: int = 1, min_side: int = 0, check: bool = True) -> np.ndarray:
    """``(H, W, 3)`` BGR, uint8 or uint16 or float in [0, 1] → ``(1, 3, H', W')`` float32 RGB in ``[0, 1]``.

    ``H'`` and ``W'`` are ``H`` and ``W`` raised to at least ``min_side`` and rounded up to ``multiple`` by
    reflect padding. A float frame's range is checked (:func:`check_float_range`) unless ``check`` is false:
    for a caller that checked the whole frame already (each check is a pass over it: 1.9 ms at 1080p).
    """
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ShapeError(f"expected (H, W, 3) BGR, got {bgr.shape}")
    if check and bgr.dtype.kind == "f":
        check_float_range(bgr)
    pad_h, pad_w = pad_amounts(bgr.shape[0], bgr.shape[1], multiple, min_side)
    if pad_h or pad_w:
        bgr = cv2.copyMakeBorder(
            bgr,
            0,
            pad_h,
            0,
            pad_w,
            cv2.BORDER_REFLECT_101 if min(bgr.shape[:2]) > 1 else cv2.BORDER_REPLICATE,
        )
    if bgr.dtype == np.uint8:
        # One fused pass: scale, BGR→RGB and HWC→NCHW.
        blob: np.ndarray = cv2.dnn.blobFromImage(bgr, scalefactor=1.0 / 255.0, swapRB=True)
        return blob
    if bgr.dtype == np.uint16:
        scale = 1.0 / 65535.0
    elif bgr.dtype in (np.float32, np.float64):
        scale = 1.0
    else:
        raise ShapeError(f"expected uint8, uint16 or float pixels, got {bgr.dtype}")
    rgb = bgr[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) * np.float32(scale)
    return np.ascontiguousarray(rgb[None])


def from_tensor(x: np.ndarray, height: int, width: int, dtype: np.dtype | type = np.uint8) -> np.ndarray:
    """``(1, 3, H', W')`` float RGB in ``[0, 1]`` → ``(height, width, 3)`` BGR of ``dtype`` (cropped)."""
    if x.ndim != 4 or x.shape[:2] != (1, 3):
        raise ShapeError(f"expected (1, 3, H, W), got {x.shape}")
    planes = x[0, :, :height, :width]
    if np.dtype(dtype) == np.uint8:
        # Negative values to 0 first (convertScaleAbs takes |x|), then scale, round and saturate to 255.
        bgr32 = cv2.merge([planes[2], planes[1], planes[0]])
        np.maximum(bgr32, 0.0, out=bgr32)
        return cv2.convertScaleAbs(bgr32, alpha=255.0)
    bgr = np.clip(planes[::-1].transpose(1, 2, 0), 0.0, 1.0)
    if np.dtype(dtype) == np.uint16:
        return (bgr * 65535.0 + 0.5).astype(np.uint16)
    return bgr.astype(dtype)
