"""Fast application of a shared curve map (Zero-DCE++) on 8- and 16-bit frames, without torch.

Zero-DCE++ applies one curve map ``a`` eight times: ``x ← x + a·(x² − x)``. Evaluated literally at full
resolution that is 32 element-wise passes over the frame, and on a CPU those memory-bound passes cost far
more than the network, which sees only a downscaled copy. Because the map is shared by all iterations, the
output is a function of two numbers per pixel and channel, ``f(x, a)``: :class:`CurveTable` tabulates it
once for the 256 input levels and ``levels`` values of ``a``, and :meth:`CurveTable.apply` looks every pixel
up with one ``cv2.remap``: 8-bit ``x`` falls on table columns exactly, 16-bit ``x`` (e.g. a denoiser's output
that keeps sub-level precision on dark frames) between them and is interpolated linearly, like ``a``. For a
given curve map the lookup is within one grey level of the literal evaluation, and so is the whole path
against the single exported graph (tested).

:class:`FastCurvePath` is the whole per-frame path: resize down, run the curve estimator graph, resize the
map up, look up. Its memory does not grow with the frame beyond the frame itself and its output: the
downscaled copy is made from the few rows it samples, and large frames are resized up and looked up in strips
of at most :data:`STRIP_PIXELS` pixels (a 64-megapixel frame needs about 100 MB of temporaries, not 3 GB).
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from nightvision.backends.base import Backend
from nightvision.errors import ShapeError

__all__ = ["STRIP_PIXELS", "CurveTable", "FastCurvePath", "literal_curve", "upsampled_strips"]

STRIP_PIXELS = 1 << 21
"""Frames larger than this (2 megapixels: 1080p is one strip) are resized up and looked up in strips."""

_REMAP_MAX = 32767 - 1  # cv2.remap refuses maps with a side of SHRT_MAX or more


def _scale_of(dtype: np.dtype) -> float:
    """The value of white for a frame of ``dtype`` (uint8 255, uint16 65535, float 1)."""
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if dtype in (np.float32, np.float64):
        return 1.0
    raise ShapeError(f"expected uint8, uint16 or float pixels, got {dtype}")


class CurveTable:
    """``f(x, a)`` of ``iterations`` curve steps, for ``x`` on the 256 8-bit levels and ``a`` in ``[-1, 1]``.

    Args:
        iterations: curve applications (8 for Zero-DCE++).
        levels: samples of ``a`` over ``[-1, 1]``; the lookup interpolates linearly between them.
    """

    def __init__(self, iterations: int = 8, levels: int = 1024) -> None:
        self.iterations = iterations
        self.levels = levels
        a = np.linspace(-1.0, 1.0, levels, dtype=np.float64)[:, None]
        x = np.arange(256, dtype=np.float64)[None, :] / 255.0
        y = np.broadcast_to(x, (levels, 256)).copy()
        for _ in range(iterations):
            y = y + a * (y * y - y)
        # float32 table: interpolating along a before rounding keeps the error under one level
        self.table = (np.clip(y, 0.0, 1.0) * 255.0).astype(np.float32)

    def apply(self, bgr: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Enhance ``bgr`` with a curve map given as table rows; returns ``(H, W, 3)`` uint8.

        Args:
            bgr: ``(H, W, 3)`` frame, uint8 or uint16 (16-bit levels between two 8-bit ones are interpolated
                linearly between the table's columns, not truncated).
            rows: ``(H, W, 3)`` float32 curve map in BGR order, as fractional table rows
                (:meth:`alpha_to_rows` of values in ``[-1, 1]``).
        """
        if bgr.dtype not in (np.uint8, np.uint16) or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ShapeError(f"expected (H, W, 3) uint8 or uint16, got {bgr.shape} {bgr.dtype}")
        if rows.shape != bgr.shape:
            raise ShapeError(f"expected a curve map of shape {bgr.shape}, got {rows.shape}")
        h, w, _ = bgr.shape
        if h > _REMAP_MAX or 3 * w > _REMAP_MAX:  # cv2.remap's limit: look up in blocks
            out = np.empty((h, w, 3), np.uint8)
            step_y, step_x = _REMAP_MAX, _REMAP_MAX // 3
            for y0 in range(0, h, step_y):
                for x0 in range(0, w, step_x):
                    block = (slice(y0, y0 + step_y), slice(x0, x0 + step_x))
                    out[block] = self.apply(np.ascontiguousarray(bgr[block]), np.ascontiguousarray(rows[block]))
            return out
        if bgr.dtype == np.uint8:
            map_x = bgr.reshape(h, w * 3).astype(np.float32)
        else:  # to fractional 8-bit levels, the table's columns (one pass)
            map_x = np.multiply(bgr.reshape(h, w * 3), np.float32(255.0 / 65535.0), dtype=np.float32)
        map_y = np.ascontiguousarray(rows).reshape(h, w * 3)
        out32 = cv2.remap(self.table, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.convertScaleAbs(out32).reshape(h, w, 3)

    def alpha_to_rows(self, alpha: np.ndarray) -> np.ndarray:
        """Convert curve values in ``[-1, 1]`` to (fractional) table rows, in place when float32."""
        scale = (self.levels - 1) / 2.0
        rows: np.ndarray = (alpha + np.float32(1.0)) * np.float32(scale)
        return rows

    def rows_to_alpha(self, rows: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`alpha_to_rows`: table rows → curve values in ``[-1, 1]`` (float32)."""
        alpha: np.ndarray = rows * np.float32(2.0 / (self.levels - 1)) - np.float32(1.0)
        return alpha


def upsampled_strips(
    rows_small: np.ndarray, height: int, width: int, *, max_pixels: int = STRIP_PIXELS
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Bilinear upsampling of a low-resolution map to ``height × width``, in horizontal strips.

    Yields ``(y0, y1, strip)`` with ``strip`` the rows ``y0:y1`` of ``cv2.resize(rows_small, (width, height))``
    (``(y1 − y0, width, C)`` float32; equal to it within float rounding). A frame of at most ``max_pixels``
    pixels is one strip made by ``cv2.resize`` itself; larger ones are resized horizontally once (``(h, width)``,
    small) and interpolated vertically strip by strip, so no full-size map is ever held.
    """
    hs = rows_small.shape[0]
    step = max(1, min(max_pixels // max(width, 1), _REMAP_MAX))
    if step >= height:
        full = rows_small if rows_small.shape[:2] == (height, width) else cv2.resize(rows_small, (width, height))
        yield 0, height, full
        return
    wide = rows_small if rows_small.shape[1] == width else cv2.resize(rows_small, (width, hs))
    if wide.ndim == 2:
        wide = wide[:, :, None]
    scale = hs / height
    for y0 in range(0, height, step):
        y1 = min(height, y0 + step)
        # cv2.resize's INTER_LINEAR: half-pixel centres, clamped at both ends
        src = np.clip((np.arange(y0, y1, dtype=np.float64) + 0.5) * scale - 0.5, 0.0, hs - 1)
        i0 = np.floor(src).astype(np.intp)
        i1 = np.minimum(i0 + 1, hs - 1)
        frac = (src - i0).astype(np.float32)[:, None, None]
        top = wide[i0]
        top += (wide[i1] - top) * frac
        yield y0, y1, top.reshape(y1 - y0, width, *rows_small.shape[2:])


def literal_curve(bgr: np.ndarray, alpha: np.ndarray, iterations: int) -> np.ndarray:
    """Apply ``x ← x + a·(x² − x)`` ``iterations`` times in float32; returns a frame of ``bgr``'s dtype.

    Args:
        bgr: ``(H, W, 3)`` uint8, uint16 or float in ``[0, 1]``.
        alpha: ``(H, W, 3)`` float32 curve map in ``[-1, 1]``, same channel order.
    """
    top = _scale_of(bgr.dtype)
    x = bgr.astype(np.float32)
    if top != 1.0:
        x *= np.float32(1.0 / top)
    for _ in range(iterations):
        x += alpha * (x * x - x)
    np.clip(x, 0.0, 1.0, out=x)
    if bgr.dtype == np.uint8:
        return cv2.convertScaleAbs(x, alpha=255.0)
    if bgr.dtype == np.uint16:
        x *= np.float32(65535.0)
        x += np.float32(0.5)
        return x.astype(np.uint16)
    return x.astype(bgr.dtype)


class FastCurvePath:
    """Enhance 8- or 16-bit BGR frames with a curve-estimator graph and a :class:`CurveTable`.

    Args:
        estimator: a backend whose graph maps a ``(1, 3, h, w)`` RGB image to its ``(1, 3, h, w)`` curve map.
        downscale: the estimator sees a ``ceil(H/downscale) × ceil(W/downscale)`` copy; ``None`` picks the
            factor per frame so that the copy's shorter side is about ``curve_side`` pixels.
        curve_side: see ``downscale``.
        iterations: curve applications.
    """

    def __init__(self, estimator: Backend, *, downscale: int | None, curve_side: int = 96, iterations: int = 8) -> None:
        if downscale is None and curve_side < 1:
            raise ValueError("give a downscale factor or a positive curve_side")
        self.estimator = estimator
        self.downscale = downscale
        self.curve_side = curve_side
        self.iterations = iterations
        self.table = CurveTable(iterations)

    def factor(self, height: int, width: int) -> int:
        """The downscale factor used for a frame of this size."""
        if self.downscale is not None:
            return self.downscale
        return max(1, round(min(height, width) / self.curve_side))

    def small_input(self, bgr: np.ndarray) -> np.ndarray:
        """The estimator's input: the downscaled frame as a ``(1, 3, h, w)`` float32 RGB blob in ``[0, 1]``.

        ``bgr`` is ``(H, W, 3)`` uint8, uint16 or float in ``[0, 1]``. The copy is ``cv2.resize(frame as float,
        (ceil(W/s), ceil(H/s)))`` (bilinear, as the exported graph resizes), computed from the two source rows
        that each output row samples: no full-size float copy of the frame is made.
        """
        h, w = bgr.shape[:2]
        s = self.factor(h, w)
        scale = np.float32(1.0 / _scale_of(bgr.dtype))
        if s == 1:
            small = bgr.astype(np.float32)
        else:
            # Resize in float: rounding the small copy to uint8 biases the estimator on dark frames by up to a
            # grey level in the output (measured), and the exported graph resizes in float too.
            hs, ws = -(-h // s), -(-w // s)
            src = np.clip((np.arange(hs, dtype=np.float64) + 0.5) * (h / hs) - 0.5, 0.0, h - 1)
            i0 = np.floor(src).astype(np.intp)
            i1 = np.minimum(i0 + 1, h - 1)
            frac = (src - i0).astype(np.float32)[:, None, None]
            rows = bgr[i0].astype(np.float32)
            rows += (bgr[i1].astype(np.float32) - rows) * frac
            small = cv2.resize(rows, (ws, hs))
        small *= scale
        blob: np.ndarray = cv2.dnn.blobFromImage(small, swapRB=True)
        return blob

    def rows_from_output(self, alpha_rgb: np.ndarray) -> np.ndarray:
        """The estimator's ``(1, 3, h, w)`` output → low-resolution table rows, ``(h, w, 3)`` float32 BGR."""
        a = alpha_rgb[0]
        return self.table.alpha_to_rows(cv2.merge([a[2], a[1], a[0]]))

    def apply_small(self, bgr: np.ndarray, rows_small: np.ndarray) -> np.ndarray:
        """Upsample a low-resolution curve map (table rows) to the frame and look it up; returns uint8.

        ``bgr`` is ``(H, W, 3)`` uint8 or uint16; frames over :data:`STRIP_PIXELS` go in strips.
        """
        h, w = bgr.shape[:2]
        strips = upsampled_strips(rows_small, h, w)
        y0, y1, rows = next(strips)
        if y1 == h:
            return self.table.apply(bgr, rows)
        out = np.empty((h, w, 3), np.uint8)
        out[y0:y1] = self.table.apply(bgr[y0:y1], rows)
        for y0, y1, rows in strips:
            out[y0:y1] = self.table.apply(bgr[y0:y1], rows)
        return out

    def apply_literal(self, frame: np.ndarray, rows_small: np.ndarray) -> np.ndarray:
        """Apply the curve map exactly (float32, no table), in strips; returns a frame of ``frame``'s dtype.

        For 16-bit and float frames whose output keeps their precision (``Enhancer.enhance``).
        """
        h, w = frame.shape[:2]
        out = np.empty_like(frame)
        for y0, y1, rows in upsampled_strips(rows_small, h, w):
            out[y0:y1] = literal_curve(frame[y0:y1], self.table.rows_to_alpha(rows), self.iterations)
        return out

    def curve_map(self, bgr: np.ndarray) -> np.ndarray:
        """The full-resolution curve map of a frame as table rows, ``(H, W, 3)`` float32, BGR order."""
        h, w = bgr.shape[:2]
        rows_small = self.rows_from_output(self.estimator.run(self.small_input(bgr)))
        return rows_small if rows_small.shape[:2] == (h, w) else cv2.resize(rows_small, (w, h))

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        return self.apply_small(bgr, self.rows_from_output(self.estimator.run(self.small_input(bgr))))
