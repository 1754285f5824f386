"""Fused per-pixel steps of the CPU temporal denoiser (:mod:`nightvision.stream.denoise`), compiled with numba
when it is installed (the ``fast`` extra: ``pip install "nightvision[fast]"``; the kernels themselves are in
:mod:`nightvision.stream.denoise_numba`).

Without them, each step of the recursion is a chain of OpenCV passes over the frame (the current frame in
fixed point, its difference to the history, the scaled ``|d|``; then the blend weights by a lookup table, their
product with ``d``, the sum with the history), each reading and writing whole 16-bit planes; and the output's
colour conversion is three more (the chroma repeated, the planes merged, the colour matrix). The kernels do each
chain in one pass, and the 5×5 Gaussian of the 16-bit planes in one pass on one core (OpenCV's 16-bit Gaussian
is half as fast as its 8-bit one, and its own two threads contend with the denoiser's). The motion, the blend
and the Gaussian give the **same bits** (tested): OpenCV's round-half-to-even of the scaled ``|d|`` and of
``d·k/256``, the blend weight's smoothstep evaluated in float32 exactly as
:meth:`~nightvision.stream.denoise.DenoiseParams.weight_table` builds its table, and the Gaussian's exact
fixed-point sums; the colour conversion rounds once, to 8 or 16 bits, within one unit of OpenCV's (whose own
SIMD and scalar code differ as much). They release the GIL, so the chroma planes run in the denoiser's worker
thread beside the luma. Measured (`nightvision bench`'s denoiser
rows, 720p, 2 cores): README, "Temporal denoiser".
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["FusedKernels", "load"]

log = logging.getLogger(__name__)


class FusedKernels:
    """The compiled kernels (:func:`load`)."""

    def __init__(
        self,
        motion: Callable[..., None],
        blend: Callable[..., None],
        weight: Callable[..., Any],
        to_bgr: Callable[..., None],
        gaussian5: Callable[..., None],
        motion_sums: Callable[..., None],
        spread_max: Callable[..., None],
    ) -> None:
        self._motion_sums = motion_sums
        self._spread_max = spread_max
        self._motion = motion
        self._blend = blend
        self._weight = weight
        self._to_bgr = to_bgr
        self._gaussian5 = gaussian5

    def motion(
        self, cur: np.ndarray, hist: np.ndarray, out: np.ndarray, alpha: float, region: tuple[slice, ...]
    ) -> None:
        """``out = min(255, round(|cur·64 − hist|·alpha))`` on the overlap ``region`` (rows and columns of the
        frame, then of the history, as :func:`~nightvision.stream.denoise.overlap` gives them); ``cur`` uint8,
        ``hist`` int16 (fixed point, 1/64 level), ``out`` uint8, all of the frame's shape."""
        self._motion(cur, hist, out, np.float32(alpha), *_offsets(region))

    def motion_sums(
        self,
        cur: np.ndarray,
        hist: np.ndarray,
        out: np.ndarray,
        sums: np.ndarray,
        alpha: float,
        region: tuple[slice, ...],
    ) -> None:
        """:meth:`motion`, and ``sums[i, j] = Σ (cur·64 − hist)`` over the 4×4 pixels of each whole block
        ``(i, j)`` of the overlap (``sums`` float32, exact) in the same pass."""
        y0, x0, hy0, hx0, rows, cols = _offsets(region)
        h, w = cur.shape
        inside = min(y0, x0, hy0, hx0) >= 0 and max(y0, hy0) + rows <= h and max(x0, hx0) + cols <= w
        fits = sums.dtype == np.float32 and sums.shape == (rows // 4, cols // 4) and hist.shape == out.shape == (h, w)
        if not (inside and fits):  # (the kernel does not check its indices)
            raise ValueError(f"motion_sums: {sums.shape} {sums.dtype} does not fit an overlap of {rows}×{cols}")
        self._motion_sums(cur, hist, out, sums, np.float32(alpha), y0, x0, hy0, hx0, rows, cols)

    def spread_max(self, blocks: np.ndarray, a: np.ndarray, region: tuple[slice, ...]) -> None:
        """``a = max(a, the value of its 4×4 block in blocks)`` on the overlap ``region`` of ``a`` (uint8, the
        frame's shape), as :func:`~nightvision.stream.denoise.spread_max` does on that view."""
        y0, x0, _, _, rows, cols = _offsets(region)
        inside = a.dtype == np.uint8 and min(y0, x0) >= 0 and y0 + rows <= a.shape[0] and x0 + cols <= a.shape[1]
        if blocks.dtype != np.uint8 or blocks.shape != (rows // 4, cols // 4) or min(blocks.shape) < 1 or not inside:
            raise ValueError(f"spread_max: blocks {blocks.shape} do not fit an overlap of {rows}×{cols}")
        self._spread_max(blocks, a, y0, x0, rows, cols)

    def blend(
        self,
        cur: np.ndarray,
        hist: np.ndarray,
        a: np.ndarray,
        motion: np.ndarray,
        new: np.ndarray,
        terms: tuple[np.float32, np.float32, np.float32, np.float32],
        region: tuple[slice, ...],
    ) -> None:
        """``new = hist + round(k·(cur·64 − hist) / 256)`` on the overlap ``region``, with the blend weight ``k``
        (in 1/256) of ``max(a, motion)`` (``terms``: :meth:`~nightvision.stream.denoise.DenoiseParams.weight_terms`,
        float32 as the kernels are compiled for;
        ``motion`` is ``a`` itself for the luma). ``new`` is indexed as the frame (it becomes the history)."""
        self._blend(cur, hist, a, motion, new, *terms, *_offsets(region))

    def to_bgr(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, dst: np.ndarray, matrix: np.ndarray) -> None:
        """``dst = saturate(round(matrix · (Y, U, V, 1)))``: I420 planes (uint16; ``y (H, W)`` with ``H`` and ``W``
        even, ``u`` and ``v`` ``(H/2, W/2)``, each sample repeated over 2×2 pixels) to ``dst (H, W, 3)``, uint8 or
        uint16, all C-contiguous; ``matrix`` 3×4 float32 with a zero U term for R and a zero V term for B (YUV →
        BGR). Rounded once; within one unit of OpenCV's ``transform`` of the merged planes, in one pass instead
        of three."""
        h, w = y.shape
        if h % 2 or w % 2 or not u.shape == v.shape == (h // 2, w // 2) or dst.shape != (h, w, 3):
            # (the kernel does not check its indices)
            raise ValueError(f"to_bgr: planes {y.shape}, {u.shape}, {v.shape} and output {dst.shape} do not fit")
        top = _TOPS.get(dst.dtype)
        if top is None:
            raise ValueError(f"to_bgr: a uint8 or uint16 output, got {dst.dtype}")
        self._to_bgr(y, u, v, dst, matrix, top)

    def gaussian5(self, src: np.ndarray, dst: np.ndarray) -> None:
        """``dst = cv2.GaussianBlur(src, (5, 5), 0)`` bit for bit, for a C-contiguous uint16 plane of at least
        3×3 and a ``dst`` that does not overlap it (one pass on one core: 0.4 ms a 720p plane against OpenCV's
        0.65 for 16 bits; for 8 bits OpenCV is as fast)."""
        if src.ndim != 2 or min(src.shape) < 3 or dst.shape != src.shape:  # (the kernel does not check its indices)
            raise ValueError(f"gaussian5: a plane of at least 3×3 and an output of its shape: {src.shape} {dst.shape}")
        self._gaussian5(src, dst)

    def weights(self, terms: tuple[np.float32, np.float32, np.float32, np.float32]) -> np.ndarray:
        """The blend weight of each averaged scaled ``|d|`` 0–255 as the blend kernel computes it (for tests)."""
        values = [self._weight(np.float32(a), *(np.float32(t) for t in terms)) for a in range(256)]
        return np.array(values, np.int16)


_TOPS = {np.dtype(np.uint8): np.float32(255.0), np.dtype(np.uint16): np.float32(65535.0)}  # (to_bgr's outputs)


def _offsets(region: tuple[slice, ...]) -> tuple[int, int, int, int, int, int]:
    ys, xs, yh, xh = region
    return ys.start, xs.start, yh.start, xh.start, ys.stop - ys.start, xs.stop - xs.start


def load() -> FusedKernels | None:
    """The compiled kernels, or ``None`` when numba is not installed or cannot build them (a warning says why).
    The first call in a process imports numba and compiles the kernels, or loads them from numba's on-disk cache
    (about 1.5 s the first time on a machine, then about 0.6 s), so that a live stream's first frames do not
    wait for it."""
    global _loaded, _failure
    if _loaded is None and _failure is None and importlib.util.find_spec("numba") is not None:
        started = time.perf_counter()
        try:
            if importlib.import_module("numba").config.DISABLE_JIT:
                # (its kernels would run as Python, a thousand times slower than the OpenCV passes)
                _failure = "NUMBA_DISABLE_JIT is set"
                log.warning("the denoiser's numba kernels are not used: %s; it runs its OpenCV passes", _failure)
                return None
            jit = importlib.import_module("nightvision.stream.denoise_numba")
            kernels = FusedKernels(
                jit.motion, jit.blend, jit.weight, jit.to_bgr, jit.gaussian5, jit.motion_sums, jit.spread_max
            )
            c8, h16 = np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int16)
            whole = (slice(0, 2), slice(0, 2), slice(0, 2), slice(0, 2))
            kernels.motion(c8, h16, c8.copy(), 1.0, whole)
            terms = (np.float32(40.0), np.float32(0.025), np.float32(0.15), np.float32(0.85))
            kernels.blend(c8, h16, c8, c8, h16.copy(), terms, whole)
            kernels.weights(terms)
            y16, c16 = np.zeros((2, 2), np.uint16), np.zeros((1, 1), np.uint16)
            for depth in (np.uint8, np.uint16):
                kernels.to_bgr(y16, c16, c16, np.zeros((2, 2, 3), depth), np.zeros((3, 4), np.float32))
            kernels.gaussian5(np.zeros((3, 3), np.uint16), np.zeros((3, 3), np.uint16))
            c4, h4, whole4 = np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.int16), (slice(0, 4),) * 4
            kernels.motion_sums(c4, h4, c4.copy(), np.zeros((1, 1), np.float32), 1.0, whole4)
            kernels.spread_max(np.zeros((1, 1), np.uint8), c4, whole4)
        except Exception as err:  # a numba that does not fit this numpy, or no LLVM for this CPU
            _failure = f"{type(err).__name__}: {err}".splitlines()[0]
            log.warning("numba could not build the denoiser's kernels (%s); it runs its OpenCV passes", _failure)
            return None
        _loaded = kernels
        log.debug("denoiser kernels ready in %.2f s", time.perf_counter() - started)
    return _loaded


def failure() -> str | None:
    """Why :func:`load` found numba but could not build the kernels, if it did."""
    return _failure


def reject(reason: str) -> None:
    """Stop using the kernels in this process (their output differed from the OpenCV passes': ``reason``)."""
    global _loaded, _failure
    _loaded, _failure = None, reason
    log.warning("the denoiser's numba kernels are not used: %s; it runs its OpenCV passes", reason)


_loaded: FusedKernels | None = None
_failure: str | None = None
