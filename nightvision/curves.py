"""Fast application of a shared curve map (Zero-DCE++) on uint8 frames, without torch.

Zero-DCE++ applies one curve map ``a`` eight times: ``x ← x + a·(x² − x)``. Evaluated literally at full
resolution that is 32 element-wise passes over the frame, and on a CPU those memory-bound passes cost far
more than the network, which sees only a downscaled copy. Because the map is shared by all iterations, the
output is a function of two numbers per pixel and channel, ``f(x, a)``: :class:`CurveTable` tabulates it
once for the 256 input levels and ``levels`` values of ``a``, and :meth:`CurveTable.apply` looks every pixel
up with one ``cv2.remap`` (x falls on table columns exactly; a is interpolated linearly). For a given curve
map the lookup is within one grey level of the literal evaluation, and so is the whole path against the single
exported graph (tested).

:class:`FastCurvePath` is the whole per-frame path: resize down, run the curve estimator graph, resize the
map up, look up.
"""

from __future__ import annotations

import cv2
import numpy as np

from nightvision.backends.base import Backend
from nightvision.errors import ShapeError

__all__ = ["CurveTable", "FastCurvePath"]


class CurveTable:
    """``f(x, a)`` of ``iterations`` curve steps, for uint8 ``x`` and ``a`` in ``[-1, 1]``.

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
        """Enhance ``bgr`` with a curve map given as table rows.

        Args:
            bgr: ``(H, W, 3)`` uint8 frame.
            rows: ``(H, W, 3)`` float32 curve map in BGR order, as fractional table rows
                (:meth:`alpha_to_rows` of values in ``[-1, 1]``).
        """
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ShapeError(f"expected (H, W, 3) uint8, got {bgr.shape} {bgr.dtype}")
        if rows.shape != bgr.shape:
            raise ShapeError(f"expected a curve map of shape {bgr.shape}, got {rows.shape}")
        h, w, _ = bgr.shape
        map_x = bgr.reshape(h, w * 3).astype(np.float32)
        map_y = rows.reshape(h, w * 3)
        out = cv2.remap(self.table, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return cv2.convertScaleAbs(out).reshape(h, w, 3)

    def alpha_to_rows(self, alpha: np.ndarray) -> np.ndarray:
        """Convert curve values in ``[-1, 1]`` to (fractional) table rows, in place when float32."""
        scale = (self.levels - 1) / 2.0
        rows: np.ndarray = (alpha + np.float32(1.0)) * np.float32(scale)
        return rows


class FastCurvePath:
    """Enhance uint8 BGR frames with a curve-estimator graph and a :class:`CurveTable`.

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
        self.table = CurveTable(iterations)

    def factor(self, height: int, width: int) -> int:
        """The downscale factor used for a frame of this size."""
        if self.downscale is not None:
            return self.downscale
        return max(1, round(min(height, width) / self.curve_side))

    def small_input(self, bgr: np.ndarray) -> np.ndarray:
        """The estimator's input: the downscaled frame as a ``(1, 3, h, w)`` float32 RGB blob in ``[0, 1]``."""
        h, w = bgr.shape[:2]
        s = self.factor(h, w)
        # Resize in float: rounding the small copy to uint8 biases the estimator on dark frames by up to a
        # grey level in the output (measured), and the exported graph resizes in float too.
        small = bgr if s == 1 else cv2.resize(bgr.astype(np.float32), (-(-w // s), -(-h // s)))
        blob: np.ndarray = cv2.dnn.blobFromImage(small, scalefactor=1.0 / 255.0, swapRB=True)
        return blob

    def rows_from_output(self, alpha_rgb: np.ndarray) -> np.ndarray:
        """The estimator's ``(1, 3, h, w)`` output → low-resolution table rows, ``(h, w, 3)`` float32 BGR."""
        a = alpha_rgb[0]
        return self.table.alpha_to_rows(cv2.merge([a[2], a[1], a[0]]))

    def apply_small(self, bgr: np.ndarray, rows_small: np.ndarray) -> np.ndarray:
        """Upsample a low-resolution curve map (table rows) to the frame and apply it."""
        h, w = bgr.shape[:2]
        rows = rows_small if rows_small.shape[:2] == (h, w) else cv2.resize(rows_small, (w, h))
        return self.table.apply(bgr, rows)

    def curve_map(self, bgr: np.ndarray) -> np.ndarray:
        """The full-resolution curve map of a frame as table rows, ``(H, W, 3)`` float32, BGR order."""
        h, w = bgr.shape[:2]
        rows_small = self.rows_from_output(self.estimator.run(self.small_input(bgr)))
        return rows_small if rows_small.shape[:2] == (h, w) else cv2.resize(rows_small, (w, h))

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        return self.apply_small(bgr, self.rows_from_output(self.estimator.run(self.small_input(bgr))))
