"""CurveDenoise on a CPU without its full graph: OpenCV does the full-resolution part, ONNX Runtime the small one.

The exported CurveDenoise graph (:mod:`nightvision.models.curve_denoise`) spends almost all its time in ~25
element-wise passes over the whole frame; the learnt network only sees a 1/8 copy. :class:`FastCurveDenoise`
runs the same computation as three steps, the full-resolution ones in strips of rows that stay in cache:

1. :meth:`~FastCurveDenoise.features` (one pass over the uint8 frame): the luma ``Y`` (channel mean), its
   detail ``d = Y − box(Y)`` (kept for step 3), and the 1/8 copy's features: ``avgpool(x)`` and
   ``avgpool(|d|)``, a ``(1, 4, H/8, W/8)`` float32 blob, RGB then texture, in ``[0, 1]`` units;
2. the *coefficients graph* (``spec.coefficients_onnx``, :func:`nightvision.export.export_curve_coefficients`)
   maps that blob to the two maps ``log g`` and ``t²`` at 1/8 size;
3. :meth:`~FastCurveDenoise.apply` (one pass): the maps are resized bilinearly (``cv2.resize``, whose
   ``INTER_LINEAR`` is the graph's ``align_corners=False`` resize, clamped at the borders), the detail is shrunk,
   ``k = d·d²/(d² + t²)``, and each channel's curve ``y = (base + k) / (h + (1 − h)·base)``, ``h = 1/g``, is
   written straight to uint8 by ``cv2.divide`` (rounding and saturation as the graph's clamp and rounding).

The 3×3 box blur is ``avg_pool2d(count_include_pad=False)``: ``cv2.boxFilter`` with zero borders, its first and
last rows and columns scaled by 9/6 (the pixels inside the frame). The frame is padded exactly as the full graph's
input is (reflect to a multiple of 8 and at least ``min_side``), so the output is the full graph's within float
rounding: at most one grey level apart, on a few pixels (tested).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from nightvision.backends.base import Backend
from nightvision.errors import ShapeError
from nightvision.preprocess import pad_amounts

__all__ = ["STRIP_ROWS", "DenoiseFeatures", "FastCurveDenoise"]

STRIP_ROWS = 32
"""Rows per strip (a multiple of the downscale): a strip's float rows stay in cache between the passes (32 was
the fastest of 16–720 at 720p)."""

_LUMA = np.full((1, 3), 1.0 / 3.0, np.float32)  # cv2.transform: the channel mean
_EDGE = np.float32(1.5)  # a box sum over 2 of 3 rows (columns) inside the frame: 9/6 of the zero-bordered mean


@dataclass
class DenoiseFeatures:
    """What step 1 leaves for step 3 (:class:`FastCurveDenoise`).

    Attributes:
        planes: the B, G and R planes of the frame padded to the graph's size, ``(H', W')`` uint8 each.
        detail: the luma detail ``Y − box(Y)``, ``(H', W')`` float32 in 8-bit units.
        blob: the coefficients graph's input, ``(1, 4, H'/s, W'/s)`` float32: pooled R, G, B and ``|detail|``,
            in ``[0, 1]`` units.
        height: rows of the unpadded frame.
        width: columns of the unpadded frame.
    """

    planes: list[np.ndarray]
    detail: np.ndarray
    blob: np.ndarray
    height: int
    width: int


def _box(plane: np.ndarray, top: bool, bottom: bool, dst: np.ndarray | None = None) -> np.ndarray:
    """3×3 mean over the pixels inside the frame (``avg_pool2d(count_include_pad=False)``), float32.

    ``plane`` is a strip of a one-channel image with one extra row above and below where the frame has them;
    ``top`` and ``bottom`` say whether its first and last rows are the frame's own (no row beyond them); ``dst``,
    float32 of the plane's shape, receives the result.
    """
    out: np.ndarray = cv2.boxFilter(plane, cv2.CV_32F, (3, 3), dst=dst, normalize=True, borderType=cv2.BORDER_CONSTANT)
    out[:, 0] *= _EDGE
    out[:, -1] *= _EDGE
    if top:
        out[0] *= _EDGE
    if bottom:
        out[-1] *= _EDGE
    return out


class FastCurveDenoise:
    """Enhance uint8 BGR frames with CurveDenoise's coefficients graph and OpenCV (module docstring).

    Args:
        coefficients: a backend whose graph maps the ``(1, 4, h, w)`` pooled features to the ``(1, 2, h, w)``
            maps (``log g``, ``t²``).
        downscale: side ratio of the small copy (the model's ``downscale``).
        pad_multiple: the frame is padded to a multiple of this (as the full graph's input).
        min_side: and to at least this many pixels.
    """

    def __init__(self, coefficients: Backend, *, downscale: int = 8, pad_multiple: int = 8, min_side: int = 0) -> None:
        if STRIP_ROWS % downscale:
            raise ValueError(f"the strip height {STRIP_ROWS} must be a multiple of the downscale, got {downscale}")
        self.coefficients = coefficients
        self.downscale = downscale
        self.pad_multiple = pad_multiple
        self.min_side = min_side
        self._local = threading.local()  # each thread's strip buffers: enhance() may run on several at once

    # --- step 1 ---------------------------------------------------------------------------------------------

    def features(self, bgr: np.ndarray) -> DenoiseFeatures:
        """Pad the frame, compute its luma detail and the coefficients graph's input (step 1)."""
        if bgr.dtype != np.uint8 or bgr.ndim != 3 or bgr.shape[2] != 3:
            raise ShapeError(f"expected (H, W, 3) uint8 BGR, got {bgr.shape} {bgr.dtype}")
        h, w = bgr.shape[:2]
        pad_h, pad_w = pad_amounts(h, w, self.pad_multiple, self.min_side)
        padded = bgr
        if pad_h or pad_w:  # as preprocess.to_tensor pads the full graph's input
            border = cv2.BORDER_REFLECT_101 if min(h, w) > 1 else cv2.BORDER_REPLICATE
            padded = cv2.copyMakeBorder(bgr, 0, pad_h, 0, pad_w, border)
        hp, wp = padded.shape[:2]
        s = self.downscale
        detail = np.empty((hp, wp), np.float32)
        pooled = np.empty((hp // s, wp // s, 4), np.float32)  # B, G, R, |detail|: 8-bit units
        self._each_strip(hp, lambda r0, r1: self._features_strip(padded, detail, pooled, r0, r1))
        pooled *= np.float32(1.0 / 255.0)
        blob = np.ascontiguousarray(pooled[:, :, [2, 1, 0, 3]].transpose(2, 0, 1)[None])
        return DenoiseFeatures(list(cv2.split(padded)), detail, blob, h, w)

    def _features_strip(self, padded: np.ndarray, detail: np.ndarray, pooled: np.ndarray, r0: int, r1: int) -> None:
        hp, wp = padded.shape[:2]
        lo, hi = max(r0 - 1, 0), min(r1 + 1, hp)
        x = padded[lo:hi].astype(np.float32)
        luma = cv2.transform(x, _LUMA)
        core = slice(r0 - lo, r1 - lo)
        cv2.subtract(luma[core], _box(luma, lo == 0, hi == hp)[core], dst=detail[r0:r1])
        s = self.downscale
        small = (wp // s, (r1 - r0) // s)
        pooled[r0 // s : r1 // s, :, :3] = cv2.resize(x[core], small, interpolation=cv2.INTER_AREA)
        pooled[r0 // s : r1 // s, :, 3] = cv2.resize(np.abs(detail[r0:r1]), small, interpolation=cv2.INTER_AREA)

    # --- step 3 ---------------------------------------------------------------------------------------------

    def apply(self, feats: DenoiseFeatures, maps: np.ndarray) -> np.ndarray:
        """The enhanced ``(H, W, 3)`` uint8 BGR frame from step 1's features and the graph's ``(1, 2, h, w)``
        maps (step 3)."""
        hp, wp = feats.detail.shape
        s = self.downscale
        if maps.shape != (1, 2, hp // s, wp // s):
            raise ShapeError(f"expected maps of shape {(1, 2, hp // s, wp // s)}, got {maps.shape}")
        inv_gain = np.exp(-maps[0, 0])
        small = (  # each map's bilinear resize is linear: (1 − h)/255 resized is (1 − resized h)/255
            inv_gain,
            (np.float32(1.0) - inv_gain) * np.float32(1.0 / 255.0),
            maps[0, 1] * np.float32(255.0 * 255.0),  # t² in 8-bit units
        )
        full = [cv2.resize(m, (wp, hp), interpolation=cv2.INTER_LINEAR) for m in small]
        out = np.empty((feats.height, feats.width, 3), np.uint8)
        self._each_strip(feats.height, lambda r0, r1: self._apply_strip(feats, full, out, r0, r1))
        return out

    def _apply_strip(self, feats: DenoiseFeatures, full: list[np.ndarray], out: np.ndarray, r0: int, r1: int) -> None:
        hp, wp = feats.detail.shape
        lo, hi = max(r0 - 1, 0), min(r1 + 1, hp)
        n, width = r1 - r0, feats.width
        buf = self._scratch(wp)
        h, a, t2 = (m[r0:r1] for m in full)
        d = feats.detail[r0:r1]
        d2, kept, top, den = (buf[k][:n] for k in ("d2", "kept", "top", "den"))
        cv2.multiply(d, d, dst=d2)
        cv2.multiply(d2, d, dst=kept)
        cv2.add(d2, t2, dst=d2)
        cv2.divide(kept, d2, dst=kept)  # d·d²/(d² + t²)
        result = []
        for c, plane in enumerate(feats.planes):
            base = _box(plane[lo:hi], lo == 0, hi == hp, buf["box"][: hi - lo])[r0 - lo : r1 - lo]
            cv2.add(base, kept, dst=top)
            cv2.multiply(base, a, dst=den)
            cv2.add(den, h, dst=den)  # h + (1 − h)·base
            y = buf[f"y{c}"][:n, :width]
            result.append(cv2.divide(top[:, :width], den[:, :width], dst=y, dtype=cv2.CV_8U))
        cv2.merge(result, dst=out[r0:r1])

    def _scratch(self, wp: int) -> dict[str, np.ndarray]:
        """This thread's buffers for a strip of a frame ``wp`` pixels wide (kept between frames)."""
        buf: dict[str, np.ndarray] | None = getattr(self._local, "buf", None)
        rows = STRIP_ROWS + 2
        if buf is None or buf["box"].shape != (rows, wp):
            f32 = {k: np.empty((rows, wp), np.float32) for k in ("box", "d2", "kept", "top", "den")}
            planes = {f"y{c}": np.empty((STRIP_ROWS, wp), np.uint8) for c in range(3)}
            buf = {**f32, **planes}
            self._local.buf = buf
        return buf

    def __call__(self, bgr: np.ndarray) -> np.ndarray:
        feats = self.features(bgr)
        return self.apply(feats, self.coefficients.run(feats.blob))

    # --- strips -------------------------------------------------------------------------------------------

    @staticmethod
    def _each_strip(rows: int, work: Callable[[int, int], None]) -> None:
        """Run ``work(r0, r1)`` over strips of :data:`STRIP_ROWS` rows (OpenCV shares each call between cores)."""
        for r0 in range(0, rows, STRIP_ROWS):
            work(r0, min(rows, r0 + STRIP_ROWS))
