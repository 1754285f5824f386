"""Fused per-pixel steps of the CPU temporal denoiser (:mod:`nightvision.stream.denoise`), compiled with numba
when it is installed (the ``fast`` extra: ``pip install "nightvision[fast]"``; the kernels themselves are in
:mod:`nightvision.stream.denoise_numba`).

Without them, each step of the recursion is a chain of OpenCV passes over the frame (the current frame in
fixed point, its difference to the history, the scaled ``|d|``; then the blend weights by a lookup table, their
product with ``d``, the sum with the history, and for the 8-bit output the history in 8 bits), each reading and
writing whole 16-bit planes. The kernels do the motion and the blend chains in one pass each and give the
**same bits** (tested): OpenCV's round-half-to-even of the scaled ``|d|``, of ``d·k/256`` and of the output,
and the blend weight's smoothstep evaluated in float32 exactly as
:meth:`~nightvision.stream.denoise.DenoiseParams.weight_table` builds its table. They release the GIL, so the
chroma planes run in the denoiser's worker thread beside the luma. Measured (`nightvision bench`'s denoiser
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
        blend_out: Callable[..., None],
        weight: Callable[..., Any],
    ) -> None:
        self._motion = motion
        self._blend = blend
        self._blend_out = blend_out
        self._weight = weight

    def motion(
        self, cur: np.ndarray, hist: np.ndarray, out: np.ndarray, alpha: float, region: tuple[slice, ...]
    ) -> None:
        """``out = min(255, round(|cur·64 − hist|·alpha))`` on the overlap ``region`` (rows and columns of the
        frame, then of the history, as :func:`~nightvision.stream.denoise.overlap` gives them); ``cur`` uint8,
        ``hist`` int16 (fixed point, 1/64 level), ``out`` uint8, all of the frame's shape."""
        self._motion(cur, hist, out, np.float32(alpha), *_offsets(region))

    def blend(
        self,
        cur: np.ndarray,
        hist: np.ndarray,
        a: np.ndarray,
        motion: np.ndarray,
        new: np.ndarray,
        terms: tuple[np.float32, np.float32, np.float32, np.float32],
        region: tuple[slice, ...],
        out: np.ndarray | None = None,
    ) -> None:
        """``new = hist + round(k·(cur·64 − hist) / 256)`` on the overlap ``region``, with the blend weight ``k``
        (in 1/256) of ``max(a, motion)`` (``terms``: :meth:`~nightvision.stream.denoise.DenoiseParams.weight_terms`,
        float32 as the kernels are compiled for;
        ``motion`` is ``a`` itself for the luma). ``new`` is indexed as the frame (it becomes the history).
        With ``out`` (uint8, the frame's shape), also ``out = round(new / 64)``: the 8-bit output plane, without
        another pass over the history."""
        if out is None:
            self._blend(cur, hist, a, motion, new, *terms, *_offsets(region))
        else:
            self._blend_out(cur, hist, a, motion, new, out, *terms, *_offsets(region))

    def weights(self, terms: tuple[np.float32, np.float32, np.float32, np.float32]) -> np.ndarray:
        """The blend weight of each averaged scaled ``|d|`` 0–255 as the blend kernel computes it (for tests)."""
        values = [self._weight(np.float32(a), *(np.float32(t) for t in terms)) for a in range(256)]
        return np.array(values, np.int16)


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
            jit = importlib.import_module("nightvision.stream.denoise_numba")
            kernels = FusedKernels(jit.motion, jit.blend, jit.blend_out, jit.weight)
            c8, h16 = np.zeros((2, 2), np.uint8), np.zeros((2, 2), np.int16)
            whole = (slice(0, 2), slice(0, 2), slice(0, 2), slice(0, 2))
            kernels.motion(c8, h16, c8.copy(), 1.0, whole)
            terms = (np.float32(40.0), np.float32(0.025), np.float32(0.15), np.float32(0.85))
            kernels.blend(c8, h16, c8, c8, h16.copy(), terms, whole)
            kernels.blend(c8, h16, c8, c8, h16.copy(), terms, whole, c8.copy())
            kernels.weights(terms)
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
