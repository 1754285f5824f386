"""Motion-adaptive recursive temporal noise reduction (3DNR) for dark video, on the CPU (numpy + OpenCV, and
numba's fused kernels when installed: :mod:`nightvision.stream.denoise_kernels`, the same history bit for bit and
the same output within one unit, its colour conversion's rounding).

It runs on the dark input, before the model brightens it (noise is removed before it is amplified), in a
handful of passes per frame on 8- and 16-bit data. Per frame:

1. **Colour space.** BGR → YUV 4:2:0 (BT.601, OpenCV's I420): luma at full resolution, the two chroma
   planes at half resolution (chroma speckle is the worst artefact of brightened noise, and chroma has little
   fine detail). Luma and chroma have their own strength and noise estimate.
2. **Alignment.** The global translation between the previous and the current frame is measured by phase
   correlation on an area-downscaled luma copy (about 90 px on its shorter side) and accumulated; the
   history is addressed with the rounded offset, so camera pans and hand shake do not count as motion and the
   rounding error (at most half a pixel) does not accumulate. A shift below ``min_shift`` of a thumbnail pixel
   is within the estimate's own noise and counts as none; a frame without a shift re-bases the offset to zero
   (the history stays where it is), so a still camera keeps a zero offset and the offset's sub-pixel part
   does not carry over from the past. Zoom, rotation and parallax are left to step 3.
3. **Motion detection against the history.** ``d = current − history``; ``|d|`` in units of the estimated
   temporal noise, averaged over 5×5 pixels, is mapped to a blend weight ``k`` by a lookup table: ``k_min``
   (strong averaging) where noise explains the difference, rising smoothly to 1 (the current frame, no
   averaging: nothing ghosts) where it does not. A change too faint for that, a dark object passing over a
   background of nearly its brightness, is seen by its sign: ``d`` summed over 12×12 pixels (3×3 blocks of
   4×4) in units of that sum's own noise, measured online (the encoder's noise is correlated between
   neighbours); it counts as motion from ``coherent`` standard errors on, and the larger of the two decides.
   Without it such an object drew a dark trail as long as itself. Chroma moves where the luma moved or where
   its own difference (3×3) is beyond its noise, with its own ``k_min``.
4. **Recursive blend.** ``history ← history + k·d`` in 16-bit fixed point (1/64 level), so averaging keeps
   sub-level precision on dark frames (levels 0–10 are multiplied about tenfold by the model afterwards).
5. **Spatial filter.** The output is the history blended with a 5×5 Gaussian of itself (luma and, at half
   resolution, chroma): fully where the frame moved (the spatial fallback: there is no history to average),
   by ``spatial_static`` where it is static (H.264 freezes part of the noise of still regions from frame to
   frame, which no temporal filter removes). Both scale with the noise relative to the picture's level, so
   clean or bright footage is left alone; on very noisy footage the chroma's filter widens further (a box
   filter after the Gaussian, up to σ 3 chroma pixels), where a 5×5 Gaussian leaves coloured blotches.
6. **Noise estimate, online.** The median of the non-zero ``|d|`` on a sparse grid (zeros are the encoder's
   skip blocks) gives the temporal noise, robust to moving parts while they cover less than half the frame;
   it is smoothed over frames.
7. **Resets.** The state restarts on a scene cut (most of the frame moved beyond noise and the coarse picture
   changed), a change of frame size or layout (a camera switching mode, grey ↔ colour), and on
   :meth:`TemporalDenoiser.reset` (the pipeline calls it when a source reconnects and when a looped input
   starts again).

:mod:`nightvision.stream.denoise_torch` is the same algorithm in PyTorch for the GPU path (tested to agree);
both share :class:`DenoiseParams` and the per-frame decisions of :class:`DenoiseControl`.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import TypeVar

import cv2
import numpy as np

from nightvision.errors import ShapeError
from nightvision.stream.denoise_kernels import FusedKernels
from nightvision.stream.denoise_kernels import failure as kernels_failure
from nightvision.stream.denoise_kernels import load as load_kernels
from nightvision.stream.denoise_kernels import reject as reject_kernels

__all__ = ["DenoiseControl", "DenoiseParams", "TemporalDenoiser"]

log = logging.getLogger(__name__)
_Here = TypeVar("_Here")
_There = TypeVar("_There")

UNIT = 32.0  # |d| is scaled so that one noise σ is this many uint8 steps before the motion lookup
COHERENT_SPAN = 12.0  # the coherent test sums d over 12×12 pixels: √144 times one pixel's σ for independent noise
FIXED = 64  # fixed point of the history: 1/64 level
WEIGHT_ONE = 256  # blend weights are integers, 256 = 1
_PARALLEL_PIXELS = 640 * 360  # below this, handing the chroma to a thread costs more than it saves
_MAD = 0.6745  # median of |N(0, 1)|
_MEAN_ABS = math.sqrt(2.0 / math.pi)  # mean of |N(0, 1)|


@dataclass(frozen=True)
class DenoiseParams:
    """The denoiser's settings (defaults measured on the synthetic video benchmark,
    :mod:`nightvision.evaluation.video`).

    Attributes:
        luma_strength, chroma_strength: weight of the history where the scene is static, in ``[0, 1)``; the
            current frame's weight there is ``k_min = 1 − strength`` (0.85 averages about 12 frames of noise).
        motion_low, motion_high: the 5×5-averaged ``|d|``, in multiples of its pure-noise mean, below which a
            pixel is static (``k = k_min``) and above which it moved (``k = 1``), smoothstep between.
        spatial: weight of the spatially filtered luma where the frame moved, at full noise.
        spatial_static: weight of the spatially filtered luma where it is static, at full noise.
        chroma_spatial: weight of the spatially filtered chroma, at full noise.
        chroma_sigma_max: the chroma's spatial filter widens on very noisy footage: beyond the relative noise at
            which the spatial weights are full (``relative_noise[1]``), its σ (1 chroma pixel, the 5×5 Gaussian)
            grows in proportion to the relative chroma noise, up to this many chroma pixels (half resolution;
            a box filter after the Gaussian, :meth:`DenoiseControl.chroma_box`). Chroma has little fine
            detail, and at these noise levels the 5×5 Gaussian leaves coloured blotches. 1 keeps the Gaussian.
        relative_noise: the spatial weights ramp from 0 to full as the noise relative to the mean level,
            ``σ / (level + 1)``, goes from the first to the second value: clean or bright footage is left
            alone, dark noisy footage (which the model will brighten) is smoothed.
        align: estimate and follow the global translation.
        max_shift: largest global shift followed per frame, as a fraction of the frame's shorter side.
        min_shift: smallest global shift followed per frame, in thumbnail pixels (the thumbnail's shorter side is
            about 90 px: 0.2 is 0.8 luma pixel at 360p, 1.6 at 720p). The phase correlation of two noisy dark
            thumbnails scatters by about 0.1 thumbnail pixel (p90 0.15-0.2) from frame to frame on a still
            scene; below this, a measured shift counts as none (a slower pan is left to the motion detection:
            no ghosting, less averaging on its edges).
        coherent: the coherent-change test of step 3: the sum of ``d`` over 12×12 pixels counts as motion from
            this many of its noise standard errors on (it enters the ramp of ``|d|`` at ``motion_low`` there, and
            reaches ``motion_high`` at ``motion_high / motion_low`` times as many); 0 switches the test off.
        cut_fraction, cut_change: a scene cut is a frame in which more than ``cut_fraction`` of the luma moved
            and whose coarse thumbnail changed by more than ``cut_change`` of its level.
        noise_floor: the noise estimate never goes below this (8-bit levels); a clean clip sits on it.
        noise_memory: weight of the past in the running noise estimate.
    """

    luma_strength: float = 0.85
    chroma_strength: float = 0.92
    motion_low: float = 1.4
    motion_high: float = 2.8
    spatial: float = 1.0
    spatial_static: float = 1.0
    chroma_spatial: float = 1.0
    chroma_sigma_max: float = 3.0
    relative_noise: tuple[float, float] = (0.02, 0.06)
    align: bool = True
    max_shift: float = 0.125
    min_shift: float = 0.2
    coherent: float = 3.0
    cut_fraction: float = 0.6
    cut_change: float = 0.25
    noise_floor: float = 0.3
    noise_memory: float = 0.8

    def __post_init__(self) -> None:
        for name in ("luma_strength", "chroma_strength"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {v}")
        if not 0.0 < self.motion_low < self.motion_high:
            raise ValueError(f"need 0 < motion_low < motion_high, got {self.motion_low} and {self.motion_high}")
        for name in ("spatial", "spatial_static", "chroma_spatial", "noise_memory", "cut_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {v}")
        lo, hi = self.relative_noise
        if not 0.0 <= lo < hi:
            raise ValueError(f"relative_noise must be two increasing non-negative numbers, got {self.relative_noise}")
        if self.min_shift < 0.0:
            raise ValueError(f"min_shift must be non-negative, got {self.min_shift}")
        if not 0.0 < self.max_shift <= 1.0:
            raise ValueError(f"max_shift must be in (0, 1] (a fraction of the shorter side), got {self.max_shift}")
        if self.noise_floor <= 0.0:
            raise ValueError(f"noise_floor must be positive, got {self.noise_floor}")
        if self.coherent != 0.0 and not 1.0 <= self.coherent <= 20.0:
            raise ValueError(f"coherent must be 0 (off) or in [1, 20] standard errors, got {self.coherent}")
        if not 1.0 <= self.chroma_sigma_max <= 8.0:
            raise ValueError(f"chroma_sigma_max must be in [1, 8], got {self.chroma_sigma_max}")

    def replace(self, **overrides: object) -> DenoiseParams:
        """A copy with some fields changed (unknown names are an error)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown denoiser setting(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return DenoiseParams(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **overrides})

    @property
    def motion_steps(self) -> tuple[float, float]:
        """``motion_low`` and ``motion_high`` in the scaled steps of ``|d|`` (one noise σ = :data:`UNIT`)."""
        mean_noise = UNIT * _MEAN_ABS
        return self.motion_low * mean_noise, self.motion_high * mean_noise

    @property
    def moved_step(self) -> int:
        """The averaged scaled ``|d|`` from which a pixel counts as moved (halfway up the ramp)."""
        lo, hi = self.motion_steps
        return math.ceil((lo + hi) / 2)

    def weight_terms(self, strength: float) -> tuple[np.float32, np.float32, np.float32, np.float32]:
        """``(lo, 1 / (hi − lo), k_min, strength)`` of the blend weight's smoothstep, in float32: the fused
        kernel (:mod:`nightvision.stream.denoise_kernels`) evaluates it per pixel, :meth:`weight_table`
        tabulates it."""
        lo, hi = self.motion_steps
        f32 = np.float32
        return f32(lo), f32(1.0) / (f32(hi) - f32(lo)), f32(1.0 - strength), f32(strength)

    def weight_table(self, strength: float) -> np.ndarray:
        """The 256-entry int16 lookup from the averaged scaled ``|d|`` to the blend weight ``k`` in units of
        1/256 (smoothstep from ``k_min = 1 − strength`` to 1), in float32 operations in the order of the fused
        kernel, which computes it per pixel and must give the same integers."""
        lo, inv, k_min, s = self.weight_terms(strength)
        a = np.arange(256, dtype=np.float32)
        t = np.minimum(np.maximum((a - lo) * inv, np.float32(0.0)), np.float32(1.0))
        k = (k_min + s * t * t * (np.float32(3.0) - np.float32(2.0) * t)) * np.float32(WEIGHT_ONE) + np.float32(0.5)
        return k.astype(np.int16)  # truncation: the kernel's int32 conversion of a positive value

    def ramp(self, sigma: float, level: float) -> float:
        """Spatial strength in ``[0, 1]`` for noise ``sigma`` at mean level ``level`` (8-bit levels)."""
        lo, hi = self.relative_noise
        return min(1.0, max(0.0, (sigma / (level + 1.0) - lo) / (hi - lo)))


class DenoiseControl:
    """The per-frame decisions of the denoiser, shared by the CPU and torch implementations: global shift,
    per-plane integer offsets, noise estimates, scene cuts and spatial strengths (host-side scalars)."""

    def __init__(self, params: DenoiseParams) -> None:
        self.params = params
        self.window: np.ndarray | None = None
        self.restart()
        self.sigma = [params.noise_floor, params.noise_floor]  # luma, chroma: σ of the temporal difference
        self.level = 0.0
        # σ of the coherent test's 12×12 sums of d over what 144 independent pixels would give: the encoder's
        # noise is correlated between neighbours (about 2 on H.264 clips); measured online, at least 1
        self.coherent_ratio = 2.0

    def restart(self) -> None:
        """New history: offsets back to zero (the noise estimate is kept)."""
        self.offset = np.zeros(2)  # accumulated global shift (x, y) in luma pixels
        self.plane_offsets = [(0, 0), (0, 0)]  # rounded offsets of luma and of chroma
        self.last_move = (0, 0)  # how far the luma history moved on the latest frame (x, y), in pixels
        self.frames = 0

    @staticmethod
    def factor(height: int, width: int) -> int:
        """Downscale factor of the thumbnail: its shorter side is about 90 px."""
        return max(1, round(min(height, width) / 90))

    def set_level(self, small: np.ndarray, grey: bool) -> None:
        """Mean level of the frame in 8-bit units of the source, from the thumbnail (I420 luma is 16-235)."""
        mean = float(small.mean())
        self.level = mean if grey else max(mean - 16.0, 0.0) * 255.0 / 219.0

    def shifts(
        self, prev: np.ndarray, small: np.ndarray, factor: tuple[float, float]
    ) -> tuple[tuple[int, int], tuple[int, int]]:
        """Integer shifts of the luma and chroma histories for this frame, from the phase correlation of two
        thumbnails (float32, same shape) accumulated and rounded. ``factor``: luma pixels per thumbnail pixel.

        A frame without a shift (none measured, or one :meth:`measure` rejects) leaves the histories where they
        are and re-bases the offset to zero: the offset is the history's displacement since the camera last
        stood still, and no sub-pixel remainder of the past carries over (two denoisers started at different
        frames of a still scene make the same decisions)."""
        sx, sy = self.measure(prev, small)
        if sx == 0.0 and sy == 0.0:
            self.offset = np.zeros(2)
            self.plane_offsets = [(0, 0), (0, 0)]
            self.last_move = (0, 0)
            return (0, 0), (0, 0)
        self.offset += (sx * factor[0], sy * factor[1])
        moves = []
        for i, scale in enumerate((1.0, 2.0)):
            ox, oy = self.plane_offsets[i]
            nx, ny = round(self.offset[0] / scale), round(self.offset[1] / scale)
            self.plane_offsets[i] = (nx, ny)
            moves.append((nx - ox, ny - oy))
        self.last_move = moves[0]
        return moves[0], moves[1]

    def measure(self, prev: np.ndarray, small: np.ndarray) -> tuple[float, float]:
        """The global shift ``(x, y)`` of ``small`` against ``prev`` in thumbnail pixels, or ``(0, 0)`` where
        alignment is off, the thumbnail is too small, or the measurement is unreliable, beyond ``max_shift``,
        below ``min_shift`` or does not match the picture better than no shift (:func:`_shift_helps`)."""
        p = self.params
        if not p.align or min(small.shape) < 8:
            return 0.0, 0.0
        if self.window is None or self.window.shape != small.shape:
            self.window = cv2.createHanningWindow((small.shape[1], small.shape[0]), cv2.CV_32F)
        # (phaseCorrelate multiplies its inputs by the window in place: give it copies)
        (sx, sy), response = cv2.phaseCorrelate(prev.copy(), small.copy(), self.window)
        if response < 0.05 or not (math.isfinite(sx) and math.isfinite(sy)):
            return 0.0, 0.0
        size = max(abs(sx), abs(sy))
        if size < p.min_shift or size > p.max_shift * min(small.shape) or not _shift_helps(prev, small, sx, sy):
            return 0.0, 0.0
        return float(sx), float(sy)

    def is_cut(self, moved_fraction: float, prev: np.ndarray, small: np.ndarray) -> bool:
        """Most of the frame moved beyond noise, and the coarse picture changed too (not a noise burst)."""
        if moved_fraction <= self.params.cut_fraction:
            return False
        change = float(np.abs(small - prev).mean())
        return change > self.params.cut_change * (float(small.mean()) + 1.0)

    def update_sigma(self, index: int, median_scaled: float, sigma_used: float) -> None:
        """Fold a new measurement (median of the scaled non-zero ``|d|``) into the running noise estimate."""
        if not math.isfinite(median_scaled):
            return
        # the median |d| of Gaussian noise is 0.6745 σ; the scaled steps are |d|·UNIT/σ_used (saturating at 255)
        estimate = median_scaled / UNIT * sigma_used / _MAD
        memory = self._memory()
        self.sigma[index] = max(memory * self.sigma[index] + (1 - memory) * estimate, self.params.noise_floor)

    def _memory(self) -> float:
        """Weight of the past in the running estimates: less on the first frames, which have little past."""
        return self.params.noise_memory if self.frames > 3 else 0.3

    def coherent_se(self, sigma: float) -> float:
        """The standard error of the coherent test's sums (fixed point) for the luma noise ``sigma``."""
        return self.coherent_ratio * sigma * FIXED * COHERENT_SPAN

    def update_coherent(self, median_sums: float, median_pixels: float) -> None:
        """Fold a new measurement into the running ratio: ``median_sums``, the median of the non-zero sums in
        steps of ``UNIT`` per standard error of the current ratio (:func:`coherent_motion`), against
        ``median_pixels``, the same frame's median of the scaled non-zero ``|d|`` (both scaled by the σ in use,
        which cancels: a σ still far from the truth on the first frames does not enter the ratio). A change of
        the whole frame (an exposure ramp, flicker) raises the measured ratio too, so the test then holds back,
        as it should where everything moved alike."""
        if not (math.isfinite(median_sums) and math.isfinite(median_pixels)) or median_pixels <= 0.0:
            return
        ratio = self.coherent_ratio * median_sums / median_pixels
        memory = self._memory()
        self.coherent_ratio = max(memory * self.coherent_ratio + (1 - memory) * ratio, 1.0)

    def spatial_weights(self) -> tuple[float, float, float]:
        """Weights of the spatially filtered planes: luma where moved, luma where static, chroma."""
        if self.frames <= 1:
            return 0.0, 0.0, 0.0
        p = self.params
        ry, rc = p.ramp(self.sigma[0], self.level), p.ramp(self.sigma[1], self.level)
        return p.spatial * ry, p.spatial_static * ry, p.chroma_spatial * rc

    def chroma_box(self) -> int:
        """Width of the box filter that follows the chroma's 5×5 Gaussian (0: none), from the relative chroma
        noise: the target σ is ``noise / relative_noise[1]`` chroma pixels, at most ``chroma_sigma_max``; the
        Gaussian gives 1 (variance 1) and a box of width ``w`` adds ``(w² − 1) / 12``. (One box costs half of
        two and measured the same on the video benchmark.)"""
        p = self.params
        if self.frames <= 1:
            return 0
        sigma = min(p.chroma_sigma_max, self.sigma[1] / (self.level + 1.0) / p.relative_noise[1])
        if sigma <= 1.0:
            return 0
        width = 2 * round((math.sqrt(12.0 * (sigma * sigma - 1.0) + 1.0) - 1.0) / 2.0) + 1
        return width if width >= 3 else 0


def _shift_helps(prev: np.ndarray, small: np.ndarray, sx: float, sy: float) -> bool:
    """Whether shifting the previous thumbnail by ``(sx, sy)`` matches the current one clearly better than
    not shifting it, by the median absolute difference over the pixels both cover. The median follows the
    majority of the picture: a bright object moving over a still, smooth background can win the phase
    correlation, and following it would misalign the background. (The bilinear shift smooths the noise of
    ``prev`` a little, so on a noisy thumbnail any sub-pixel shift scores slightly better than none: this test
    alone does not keep still footage still, ``min_shift`` does.)"""
    h, w = small.shape
    moved = cv2.warpAffine(prev, np.array([[1, 0, sx], [0, 1, sy]], np.float32), (w, h), flags=cv2.INTER_LINEAR)
    x0, x1 = math.ceil(max(0.0, sx)), w - math.ceil(max(0.0, -sx))
    y0, y1 = math.ceil(max(0.0, sy)), h - math.ceil(max(0.0, -sy))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return False
    cur = small[y0:y1:4, x0:x1:4]  # one pixel in 16 is plenty for a median
    still = float(np.median(np.abs(cur - prev[y0:y1:4, x0:x1:4])))
    shifted = float(np.median(np.abs(cur - moved[y0:y1:4, x0:x1:4])))
    return shifted < 0.9 * still


def coherent_motion(sums: np.ndarray, se: float, params: DenoiseParams) -> tuple[np.ndarray, float]:
    """The coherent-change test (step 3 of the module docstring) on the block sums of ``d`` (float32
    ``(H/4, W/4)``, fixed point, whole 4×4 blocks): their sums over 3×3 blocks, in the units of the averaged
    scaled ``|d|`` (uint8: ``motion_low`` at ``params.coherent`` standard errors ``se``), and the median of the
    non-zero ones in steps of ``UNIT`` per ``se`` (the measurement of their noise). The sums of integers are
    exact in float32, so the CPU and torch paths agree to the bit."""
    total = cv2.boxFilter(sums, -1, (3, 3), normalize=False, borderType=cv2.BORDER_REFLECT_101)
    steps = cv2.convertScaleAbs(total[::2, ::2], alpha=UNIT / se)  # (one block in four: plenty for a median)
    median = median_nonzero(np.bincount(steps.ravel(), minlength=256))
    return cv2.convertScaleAbs(total, alpha=params.motion_steps[0] / (params.coherent * se)), median


def spread_max(blocks: np.ndarray, a: np.ndarray) -> None:
    """``a = max(a, the value of its 4×4 block)`` in place, ``blocks`` uint8 ``(rows // 4, cols // 4)`` of
    ``a (rows, cols)``; the rows and columns beyond the last whole block take the last one's."""
    bh, bw = blocks.shape
    up = cv2.resize(blocks, (4 * bw, 4 * bh), interpolation=cv2.INTER_NEAREST)
    core = a[: 4 * bh, : 4 * bw]
    cv2.max(core, up, dst=core)
    np.maximum(a[4 * bh :, : 4 * bw], up[-1:], out=a[4 * bh :, : 4 * bw])
    np.maximum(a[:, 4 * bw :], np.vstack([up[:, -1:], np.repeat(up[-1:, -1:], a.shape[0] - 4 * bh, 0)]),
               out=a[:, 4 * bw :])  # fmt: skip


def median_nonzero(counts: np.ndarray) -> float:
    """Median of the non-zero values of a 256-bin histogram of uint8 values (``nan`` with too few samples);
    zeros are left out because they are where the encoder repeated the previous frame (skip blocks), which
    says nothing about the noise."""
    counts = counts.copy()
    counts[0] = 0
    total = int(counts.sum())
    if total < 16:
        return math.nan
    return float(np.searchsorted(np.cumsum(counts), (total + 1) / 2))


def overlap(h: int, w: int, dx: int, dy: int) -> tuple[slice, slice, slice, slice]:
    """Rows and columns of the current frame, and of the history, that see the same content after the
    content moved by ``(dx, dy)``: current pixel ``(x, y)`` was at history pixel ``(x − dx, y − dy)``."""
    return (
        slice(max(0, dy), h + min(0, dy)),
        slice(max(0, dx), w + min(0, dx)),
        slice(max(0, -dy), h + min(0, -dy)),
        slice(max(0, -dx), w + min(0, -dx)),
    )


def uncovered(h: int, w: int, dx: int, dy: int) -> list[tuple[slice, slice]]:
    """Row and column bands of a frame with no history after the content moved by ``(dx, dy)``."""
    bands = []
    if dy > 0:
        bands.append((slice(0, dy), slice(0, w)))
    elif dy < 0:
        bands.append((slice(h + dy, h), slice(0, w)))
    if dx > 0:
        bands.append((slice(0, h), slice(0, dx)))
    elif dx < 0:
        bands.append((slice(0, h), slice(w + dx, w)))
    return bands


class _Plane:
    """The recursive history of one plane (luma, or one chroma plane) in fixed point, and its per-pixel steps:
    the fused kernels of :mod:`nightvision.stream.denoise_kernels` when given, else a chain of OpenCV passes
    (the same bits)."""

    def __init__(self, plane: np.ndarray, kernels: FusedKernels | None) -> None:
        self.kernels = kernels
        self.hist = np.multiply(plane, FIXED, dtype=np.int16)
        self.spare = np.empty_like(self.hist)
        self.a = np.full(plane.shape, 255, np.uint8)  # averaged scaled |d|; 255 where there is no history
        self.source = plane  # the current frame's plane (uint8), from the latest step
        self.sums: np.ndarray | None = None  # the coherent test's block sums (luma only)
        if kernels is None:  # scratch of the OpenCV passes
            self.cur = np.empty_like(self.hist)
            self.d = np.empty_like(self.hist)
            self.k = np.empty_like(self.hist)

    def step(self, cur: np.ndarray, shift: tuple[int, int]) -> tuple[slice, slice, slice, slice] | None:
        """Take the frame's plane ``cur`` (uint8), fill what has no history; return the overlap, ``None`` if
        none."""
        h, w = cur.shape
        dx, dy = shift
        self.source = cur
        if self.kernels is None:
            np.multiply(cur, FIXED, out=self.cur, dtype=np.int16)
        if abs(dx) >= w or abs(dy) >= h:
            np.multiply(cur, FIXED, out=self.spare, dtype=np.int16)
            self.a.fill(255)
            self.hist, self.spare = self.spare, self.hist
            return None
        for rows, cols in uncovered(h, w, dx, dy):
            np.multiply(cur[rows, cols], FIXED, out=self.spare[rows, cols], dtype=np.int16)
            self.a[rows, cols] = 255
        return overlap(h, w, dx, dy)

    def motion(self, region: tuple[slice, slice, slice, slice], alpha: float, block_sums: bool = False) -> np.ndarray:
        """The scaled ``|d| = |cur − hist|·alpha`` (uint8, saturated) on the overlap, into :attr:`a`; returns
        that view (the caller averages it). With ``block_sums``, also the sums of ``d`` over its whole 4×4
        blocks into :attr:`sums` (``None`` where the overlap is under 12×12 pixels), for :meth:`coherent`."""
        ys, xs, yh, xh = region
        a = self.a[ys, xs]
        bh, bw = (ys.stop - ys.start) // 4, (xs.stop - xs.start) // 4
        sums = None
        if block_sums and bh >= 3 and bw >= 3:
            if self.sums is None or self.sums.shape != (bh, bw):
                self.sums = np.empty((bh, bw), np.float32)
            sums = self.sums
        if self.kernels is not None:
            if sums is not None:
                self.kernels.motion_sums(self.source, self.hist, self.a, sums, alpha, region)
            else:
                self.kernels.motion(self.source, self.hist, self.a, alpha, region)
        else:
            d = self.d[ys, xs]
            cv2.subtract(self.cur[ys, xs], self.hist[yh, xh], dst=d)
            cv2.convertScaleAbs(d, dst=a, alpha=alpha)
            if sums is not None:  # (INTER_AREA at exactly 4× is each block's mean: exact in float32, as its ×16)
                cv2.resize(d[: 4 * bh, : 4 * bw].astype(np.float32), (bw, bh), dst=sums, interpolation=cv2.INTER_AREA)
                sums *= 16.0
        if sums is None:
            self.sums = None
        return a

    def coherent(self, region: tuple[slice, slice, slice, slice], se: float, params: DenoiseParams) -> float:
        """The coherent-change test on the overlap (after :meth:`motion` with its block sums, and the average of
        :attr:`a`): raise :attr:`a` where the sum of ``d`` over 12×12 pixels is beyond its noise
        (:func:`coherent_motion`); returns the measurement of that noise (``nan`` without block sums)."""
        if self.sums is None:
            return math.nan
        blocks, median = coherent_motion(self.sums, se, params)
        if self.kernels is not None:
            self.kernels.spread_max(blocks, self.a, region)
        else:
            spread_max(blocks, self.a[region[0], region[1]])
        return median

    def blend(
        self, region: tuple[slice, slice, slice, slice], weights: _Weights, moved: np.ndarray | None = None
    ) -> None:
        """``new = hist + k·d`` on the overlap, ``k`` the blend weight of the averaged scaled ``|d|`` (of its
        maximum with ``moved`` where given: the chroma moves where the luma moved); swap the buffers."""
        ys, xs, yh, xh = region
        if self.kernels is not None:
            motion = self.a if moved is None else moved
            self.kernels.blend(self.source, self.hist, self.a, motion, self.spare, weights.terms, region)
        else:
            a, k, d = self.a[ys, xs], self.k[ys, xs], self.d[ys, xs]
            if moved is not None:
                cv2.max(a, moved[ys, xs], dst=a)
            cv2.LUT(a, weights.table, dst=k)
            cv2.multiply(d, k, dst=d, scale=1.0 / WEIGHT_ONE)
            cv2.add(self.hist[yh, xh], d, dst=self.spare[ys, xs])
        self.hist, self.spare = self.spare, self.hist


@dataclass(frozen=True)
class _Weights:
    """The blend weight of one kind of plane: its smoothstep's terms (the fused kernel) and table (OpenCV)."""

    terms: tuple[np.float32, np.float32, np.float32, np.float32]
    table: np.ndarray

    @classmethod
    def of(cls, params: DenoiseParams, strength: float) -> _Weights:
        return cls(params.weight_terms(strength), params.weight_table(strength))


@dataclass
class _LumaDifference:
    """What :meth:`TemporalDenoiser._luma_difference` computed, and for which plane state and shift."""

    plane: _Plane
    shift: tuple[int, int]
    region: tuple[slice, slice, slice, slice] | None
    median: float
    sigma: float
    coherent: float  # the coherent test's noise measurement (``nan``: none)


@dataclass
class _ChromaMotion:
    """What :meth:`TemporalDenoiser._chroma_motion` leaves for :meth:`TemporalDenoiser._chroma_finish`: the
    chroma planes' states and overlaps, their noise medians and the σ they were scaled with."""

    states: list[_Plane]
    regions: list[tuple[slice, slice, slice, slice] | None]
    medians: list[float]
    sigma: float


class TemporalDenoiser:
    """Temporal denoiser for a stream of dark frames; call it on each frame, in order.

    Args:
        params: settings (:class:`DenoiseParams`).
        output_dtype: ``np.uint8``, ``np.uint16`` (the denoised value ×257, keeping the sub-level precision of
            the average for a model that brightens it; it costs as much as the 8-bit output) or ``"auto"``
            (default): what the model of
            the pipeline it runs in takes best (:attr:`nightvision.Enhancer.hand_off_dtype`, set by
            :meth:`fit_to`), ``np.uint8`` until a pipeline sets it.
        threads: 2 (default) runs the chroma planes, half the rows of the colour conversion and of the
            luma's mix with its spatial filter, and (with the fused kernels, on a still camera) the global shift's
            measurement in a worker thread while the luma runs in the caller's, on frames of 640×360 and more
            (OpenCV and the kernels release the GIL); 1 keeps everything in the caller's. Same output either way.
        fused: run the per-pixel steps in the fused kernels of :mod:`nightvision.stream.denoise_kernels`
            (``True``: numba must be installed, the ``fast`` extra) or in OpenCV passes (``False``); ``None``
            (default) uses the kernels when numba is installed. Both give the same history, and the same output
            within one unit (its colour conversion's rounding); the kernels are about twice as fast.
        **overrides: settings to change from ``params`` (or from the defaults), e.g. ``luma_strength=0.9``.

    >>> den = TemporalDenoiser()
    >>> clean = [den(frame) for frame in frames]     # (H, W, 3) uint8 BGR in, same out
    """

    name = "3dnr"
    temporal = True  # the pipeline passes still images by (a first frame is only a lossy 4:2:0 round trip)

    def __init__(
        self,
        params: DenoiseParams | None = None,
        *,
        output_dtype: type | str = "auto",
        threads: int = 2,
        fused: bool | None = None,
        **overrides: object,
    ) -> None:
        self.params = (params or DenoiseParams()).replace(**overrides) if overrides else (params or DenoiseParams())
        if isinstance(threads, bool | np.bool_) or not isinstance(threads, int | np.integer) or threads < 1:
            raise ValueError(f"threads must be a whole number, at least 1, got {threads!r}")
        if fused is not None and not isinstance(fused, bool | np.bool_):
            raise ValueError(f"fused must be True, False or None (numba's kernels when installed), got {fused!r}")
        self.threads = int(threads)
        self._executor: ThreadPoolExecutor | None = None
        self._auto = isinstance(output_dtype, str) and output_dtype == "auto"
        if not self._auto and output_dtype not in (np.uint8, np.uint16):
            raise ValueError(f'output_dtype must be numpy.uint8, numpy.uint16 or "auto", got {output_dtype!r}')
        self.output_dtype: type = np.uint8 if self._auto else output_dtype  # type: ignore[assignment]
        self._kernels = fused_kernels() if fused is None or fused else None
        if fused and self._kernels is None:
            why = kernels_failure()
            if why is not None:
                raise ValueError(f"fused=True: numba's kernels cannot run here ({why}); nightvision doctor tells more")
            raise ValueError('fused=True needs numba: pip install "nightvision[fast]" (nightvision doctor tells more)')
        self._luma_weights = _Weights.of(self.params, self.params.luma_strength)
        self._chroma_weights = _Weights.of(self.params, self.params.chroma_strength)
        self.resets = 0  # layout changes
        self.cuts = 0  # scene cuts
        self._layout: tuple[int, ...] | None = None
        self.reset()

    def fit_to(self, enhancer: object) -> None:
        """With ``output_dtype="auto"``, hand frames over in the dtype ``enhancer`` takes best (its
        ``hand_off_dtype``; 8 bits for anything else, or no model): the pipeline calls this before the first
        frame."""
        if self._auto:
            dtype = getattr(enhancer, "hand_off_dtype", np.uint8)
            if dtype != self.output_dtype:
                self.output_dtype = np.uint16 if dtype == np.uint16 else np.uint8
                self.reset()

    def reset(self) -> None:
        """Forget the history and the noise estimate (the next frame starts afresh); the pipeline calls this
        when a source reconnects."""
        self.control = DenoiseControl(self.params)
        self._planes: list[_Plane] = []
        self._small: np.ndarray | None = None
        self._prev: np.ndarray | None = None
        self._buffers: dict[str, np.ndarray] = {}  # reused from frame to frame (fresh large arrays page-fault)
        self._luma_region: tuple[slice, slice, slice, slice] | None = None
        self._luma_shift = (0, 0)
        self._chroma_shift = (0, 0)

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[name] = np.empty(shape, dtype)
        return buf

    @property
    def fused(self) -> bool:
        """Whether the per-pixel steps run in the fused kernels (numba) rather than in OpenCV passes."""
        return self._kernels is not None

    @property
    def noise(self) -> tuple[float, float]:
        """The current estimates of the temporal-difference noise σ (luma, chroma), in 8-bit levels."""
        return self.control.sigma[0], self.control.sigma[1]

    @property
    def frames(self) -> int:
        """Frames in the current history (1 right after a reset or a cut)."""
        return self.control.frames

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        """Denoise one frame.

        Args:
            frame: ``(H, W, 3)`` uint8 BGR (or ``(H, W)`` / ``(H, W, 1)`` grey, or ``(H, W, 4)`` BGRA whose
                alpha is passed through). A frame narrower or lower than 2 pixels, which has no 4:2:0 chroma, is
                passed through (in :attr:`output_dtype`).

        Returns:
            The denoised frame in the layout of ``frame``, dtype :attr:`output_dtype`. A change of size or
            layout resets the state first.
        """
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            got = str(frame.dtype) if isinstance(frame, np.ndarray) else type(frame).__name__
            raise ShapeError(f"the denoiser takes uint8 frames, got {got}")
        if frame.ndim == 3 and frame.shape[2] == 4:
            out = self(np.ascontiguousarray(frame[:, :, :3]))
            alpha = frame[:, :, 3] if out.dtype == np.uint8 else frame[:, :, 3].astype(np.uint16) * 257
            return np.dstack([out, alpha])
        grey = frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1)
        if not grey and not (frame.ndim == 3 and frame.shape[2] == 3):
            raise ShapeError(f"expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {frame.shape}")
        if frame.shape != self._layout:
            if self._layout is not None:
                log.info("denoiser reset: the frame layout changed from %s to %s", self._layout, frame.shape)
                self.resets += 1
            self.reset()
            self._layout = frame.shape
        if frame.shape[0] < 2 or frame.shape[1] < 2:
            return frame.copy() if self.output_dtype == np.uint8 else frame.astype(np.uint16) * 257
        h, w = frame.shape[:2]
        if grey:
            planes = [np.ascontiguousarray(frame.reshape(h, w))]
            if not planes[0].flags.writeable:  # (numba would compile its kernels afresh for read-only arrays)
                copy = self._buffer("grey_in", (h, w), np.uint8)
                np.copyto(copy, planes[0])
                planes = [copy]
        else:
            src = frame
            if h % 2 or w % 2:  # 4:2:0 needs even sizes: pad by one row/column, cropped again at the end
                src = cv2.copyMakeBorder(frame, 0, h % 2, 0, w % 2, cv2.BORDER_REPLICATE)
            hh, ww = src.shape[:2]
            yuv = cv2.cvtColor(src, cv2.COLOR_BGR2YUV_I420, dst=self._buffer("yuv_in", (hh * 3 // 2, ww), np.uint8))
            planes = _i420_planes(yuv, hh, ww)
        two = self.threads > 1 and h * w >= _PARALLEL_PIXELS
        motion: Future[_ChromaMotion | None] | None = None
        chroma: Future[None] | None = None
        try:
            guess = None
            if two and self._kernels is not None and self._planes and self._luma_shift == (0, 0):
                # the camera stood still on the latest frame: the worker measures the global shift (thumbnail and
                # phase correlation) and goes on to the chroma, while the luma's difference for no shift is
                # computed here (used if the shift is none again, else computed afresh)
                luma = self._planes[0]  # (before the worker may start a new state)
                begun: Future[bool] = Future()
                motion = self._pool().submit(self._begin_then_chroma, planes, grey, begun)
                guess = self._luma_difference(luma, planes[0], (0, 0))
                started = begun.result()
            else:
                started = self._begin(planes)
                if two and not started and not grey:  # (the states now: a cut may replace them meanwhile)
                    motion = self._pool().submit(self._chroma_motion, planes, self._planes[1:])
            chroma_due = not started and not grey
            if not started and self._luma_motion(planes, guess):
                if motion is not None:  # (its work is dropped with the old state)
                    motion.result()
                    motion = None
                chroma_due = False
            if chroma_due and motion is not None:
                chroma = self._pool().submit(self._chroma_finish, motion)
            self._luma()
            if chroma_due and chroma is None:
                self._chroma_finish(self._chroma_motion(planes, self._planes[1:]))
            return self._output(h, w, frame.shape, chroma)
        except BaseException:
            for task in (motion, chroma):  # do not leave the worker writing into the state
                if task is not None:
                    task.exception()
            raise

    def _begin_then_chroma(self, planes: list[np.ndarray], grey: bool, begun: Future[bool]) -> _ChromaMotion | None:
        """The worker's part of a frame whose luma difference is guessed in the caller's thread: the global
        shift (:meth:`_begin`, whose result goes to ``begun`` at once), then the chroma's difference."""
        try:
            started = self._begin(planes)
            states = self._planes[1:]  # (before the caller may cut and replace them)
        except BaseException as err:
            begun.set_exception(err)
            raise
        begun.set_result(started)
        return None if started or grey else self._chroma_motion(planes, states)

    # --- the recursion

    def _thumbnail(self, luma: np.ndarray, f: int) -> tuple[np.ndarray, tuple[float, float]]:
        """Area-averaged float32 copy of the luma (of a subset of its rows, :func:`row_step`) and the luma
        pixels per thumbnail pixel in x and y."""
        h, w = luma.shape
        rows = luma[:: row_step(f)]
        as_float = self._buffer("rows", rows.shape, np.float32)
        np.copyto(as_float, rows)
        small = cv2.resize(as_float, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        return small, (w / small.shape[1], h / small.shape[0])

    def _begin(self, planes: list[np.ndarray]) -> bool:
        """The thumbnail, the level and the global shifts of the frame; returns whether the state started
        afresh instead (a first frame, or a new thumbnail size)."""
        c = self.control
        small, factor = self._thumbnail(planes[0], c.factor(*planes[0].shape))
        self._prev, self._small = self._small, small
        c.set_level(small, len(planes) == 1)
        if not self._planes or self._prev is None or self._prev.shape != small.shape:
            self._start(planes)
            return True
        self._luma_shift, self._chroma_shift = c.shifts(self._prev, small, factor)
        return False

    def _luma_difference(self, luma: _Plane, cur: np.ndarray, shift: tuple[int, int]) -> _LumaDifference:
        """The luma's difference to its history for a global ``shift``: the averaged scaled ``|d|`` (in
        ``luma.a``) and the median of the scaled non-zero ``|d|`` (the noise measurement)."""
        sigma = self.control.sigma[0]
        region = luma.step(cur, shift)
        median = coherent = math.nan
        if region is not None:
            coherent_test = self.params.coherent > 0.0
            a = luma.motion(region, UNIT / (sigma * FIXED), block_sums=coherent_test)
            median = median_nonzero(np.bincount(a[::8, ::8].ravel(), minlength=256))
            cv2.blur(a, (5, 5), dst=a)
            if coherent_test:
                coherent = luma.coherent(region, self.control.coherent_se(sigma), self.params)
        return _LumaDifference(luma, shift, region, median, sigma, coherent)

    def _luma_motion(self, planes: list[np.ndarray], guess: _LumaDifference | None = None) -> bool:
        """The luma's difference to its history (``guess`` when it was computed for this frame's shift), the
        noise estimate and the cut decision; returns whether the frame is a cut (the state then started
        afresh)."""
        c = self.control
        luma = self._planes[0]
        diff = guess
        if diff is None or diff.plane is not luma or diff.shift != self._luma_shift:
            diff = self._luma_difference(luma, planes[0], self._luma_shift)
        region, median_y, sigma_y = diff.region, diff.median, diff.sigma
        sample = luma.a[::4, ::4]
        moved = float(np.count_nonzero(sample >= self.params.moved_step)) / sample.size
        assert self._prev is not None and self._small is not None
        if c.is_cut(moved, self._prev, self._small):
            log.info("denoiser reset: scene cut (%.0f%% of the frame moved)", 100 * moved)
            self.cuts += 1
            self._start(planes)
            return True
        c.update_coherent(diff.coherent, median_y)
        c.update_sigma(0, median_y, sigma_y)
        c.frames += 1
        self._luma_region = region
        return False

    def _luma(self) -> None:
        """The luma's blend weights and new history (after :meth:`_luma_motion`)."""
        luma, region = self._planes[0], self._luma_region
        if region is not None:
            luma.blend(region, self._luma_weights)

    def _chroma_motion(self, planes: list[np.ndarray], states: list[_Plane]) -> _ChromaMotion:
        """The chroma planes' (``states``) differences to their histories and their own averaged scaled ``|d|``
        (3×3): the part of their step that does not wait for the luma's, nor for the cut decision (it commits
        nothing: on a cut the state starts afresh, with new planes)."""
        sigma_c = self.control.sigma[1]
        regions: list[tuple[slice, slice, slice, slice] | None] = []
        medians = []
        for state, cur in zip(states, planes[1:], strict=True):
            region = state.step(cur, self._chroma_shift)
            regions.append(region)
            if region is None:
                continue
            a = state.motion(region, UNIT / (sigma_c * FIXED))
            medians.append(median_nonzero(np.bincount(a[::4, ::4].ravel(), minlength=256)))
            cv2.blur(a, (3, 3), dst=a)
        return _ChromaMotion(states, regions, medians, sigma_c)

    def _chroma_finish(self, motion: _ChromaMotion | Future[_ChromaMotion | None]) -> None:
        """The rest of the chroma planes' step (after :meth:`_luma_motion`, on a frame that is no cut): they
        move where the luma moved or where their own difference is beyond their noise, with their own
        ``k_min``."""
        m = motion.result() if isinstance(motion, Future) else motion
        assert m is not None  # (none only for a grey frame or a new state, which have no chroma step)
        hc, wc = m.states[0].hist.shape
        luma_motion = cv2.resize(self._planes[0].a, (wc, hc), interpolation=cv2.INTER_AREA)
        for state, region in zip(m.states, m.regions, strict=True):
            if region is not None:
                state.blend(region, self._chroma_weights, luma_motion)
        finite = [v for v in m.medians if math.isfinite(v)]
        self.control.update_sigma(1, float(np.mean(finite)) if finite else math.nan, m.sigma)

    def _start(self, planes: list[np.ndarray]) -> None:
        """First frame (or after a reset or a cut): the history is the frame."""
        self._luma_region = None
        self._planes = [_Plane(p, self._kernels) for p in planes]
        self.control.restart()
        self.control.frames = 1

    # --- output

    def _fully_filtered(self, index: int) -> bool:
        """Whether output plane ``index`` (0 = luma) is the spatially filtered history everywhere (dark, noisy
        footage)."""
        w_move, w_static, w_chroma = self.control.spatial_weights()
        return (w_static >= 1.0 and w_move >= 1.0) if index == 0 else w_chroma >= 1.0

    def _filter(self, o: np.ndarray, index: int, dst: np.ndarray | None = None) -> np.ndarray:
        """The spatial filter of one output plane ``o`` (0 = luma) into ``dst``, in place without it (the plane
        is then the output's own); ``o`` itself where the filter is off."""
        dst = o if dst is None else dst
        w_move, w_static, w_chroma = self.control.spatial_weights()
        weight = w_static if index == 0 else w_chroma
        if weight <= 0.0 and (index > 0 or w_move <= 0.0):
            return o
        if self._fully_filtered(index):
            return self._blur(o, index, dst)
        blurred = self._blur(o, index, self._buffer(f"blur{index}", o.shape, o.dtype.type))
        mixed_move = None
        if index == 0 and w_move != w_static:
            mixed_move = cv2.addWeighted(o, 1.0 - w_move, blurred, w_move, 0.0)
        mid = split_row(*o.shape) if index == 0 and self.threads > 1 and o.size >= _PARALLEL_PIXELS else None
        if mid is None:
            _mix(o, blurred, weight, dst)
        else:  # the mix is per pixel: half the rows in the worker (its chroma is done by now, or nearly)
            self._both(
                lambda: _mix(o[:mid], blurred[:mid], weight, dst[:mid]),
                lambda: _mix(o[mid:], blurred[mid:], weight, dst[mid:]),
            )
        if mixed_move is not None:
            _, moved = cv2.threshold(self._planes[0].a, self.params.moved_step - 1, 255, cv2.THRESH_BINARY)
            cv2.copyTo(mixed_move, moved, dst)
        return dst

    def _blur(self, src: np.ndarray, index: int, dst: np.ndarray) -> np.ndarray:
        """The spatial filter of plane ``index`` (0 = luma) into ``dst`` (which may be ``src``): the 5×5
        Gaussian, for the chroma widened on very noisy footage by a box filter (:meth:`DenoiseControl.
        chroma_box`)."""
        width = self.control.chroma_box() if index > 0 else 0
        if not width:
            return self._gaussian(src, dst)
        gauss = self._gaussian(src, self._buffer(f"gauss{index}", src.shape, src.dtype.type))
        out: np.ndarray = cv2.blur(gauss, (width, width), dst=dst)
        return out

    def _gaussian(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """The 5×5 Gaussian of ``src`` into ``dst``: the fused kernel for 16-bit planes (the same bits, faster than
        OpenCV's 16-bit one), else OpenCV's."""
        k = self._kernels
        if k is None or src.dtype != np.uint16 or min(src.shape) < 3 or np.may_share_memory(src, dst):
            return cv2.GaussianBlur(src, (5, 5), 0, dst=dst)
        k.gaussian5(src, dst)
        return dst

    def _plane_out(self, index: int, dst: np.ndarray | None) -> np.ndarray:
        """Output plane ``index``: uint8 into ``dst`` (grey frames), or, when ``dst`` is ``None``, uint16 in the
        history's own fixed point (1/64 level; the history never goes below 0)."""
        hist = self._planes[index].hist
        if dst is not None:
            return self._filter(cv2.convertScaleAbs(hist, dst=dst, alpha=1.0 / FIXED), index)
        # filtered from the history into a buffer (the history itself where nothing is filtered): no copy first
        return self._filter(hist.view(np.uint16), index, self._buffer(f"fixed{index}", hist.shape, np.uint16))

    def _output(self, h: int, w: int, shape: tuple[int, ...], chroma: Future[None] | None) -> np.ndarray:
        """The output frame; ``chroma``: the chroma step running in the worker thread, if any. A colour frame is
        converted from the planes in fixed point and rounded once, to 8 or 16 bits: planes rounded to 8 bits
        first, then converted, shifted dark flat colours by up to a level (each plane's rounding error times
        the colour matrix's gains of up to 2), a cast the model then brightens tenfold."""
        hh, ww = self._planes[0].hist.shape
        eight = self.output_dtype == np.uint8
        if len(self._planes) == 1:
            if eight:
                return self._plane_out(0, np.empty((hh, ww), np.uint8)).reshape(shape)
            return cv2.transform(self._plane_out(0, None)[:, :, None], _GREY16).reshape(shape)
        if chroma is not None:  # the luma's output here while the chroma's finishes there
            y, (u, v) = self._both(lambda: self._plane_out(0, None), lambda: self._chroma_out(chroma))
        else:
            y, u, v = (self._plane_out(i, None) for i in range(3))
        bgr = np.empty((hh, ww, 3), np.uint8 if eight else np.uint16)
        k = self._kernels
        if chroma is not None and (mid := split_row(hh, ww)) is not None:
            # two row bands, one in each thread (no band needs its neighbour's rows)
            m, c = mid, mid // 2
            self._both(
                lambda: i420_fixed_to_bgr(y[:m], u[:c], v[:c], bgr[:m], k),
                lambda: i420_fixed_to_bgr(y[m:], u[c:], v[c:], bgr[m:], k),
            )
        else:
            i420_fixed_to_bgr(y, u, v, bgr, k)
        return bgr[:h, :w] if (hh, ww) != (h, w) else bgr

    def _both(self, here: Callable[[], _Here], there: Callable[[], _There]) -> tuple[_Here, _There]:
        """``there`` in the worker thread while ``here`` runs in this one; both have finished when this returns
        or raises (the worker never goes on writing into buffers after an error here)."""
        task = self._pool().submit(there)
        try:
            mine = here()
        finally:
            task.exception()  # waits, without raising
        return mine, task.result()

    def _chroma_out(self, step: Future[None]) -> tuple[np.ndarray, np.ndarray]:
        step.result()
        return self._plane_out(1, None), self._plane_out(2, None)

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="3dnr-chroma")
            weakref.finalize(self, self._executor.shutdown, wait=False)
        return self._executor


def split_row(height: int, width: int) -> int | None:
    """Where to split a ``(height, width)`` plane into two row bands for two threads: the even row nearest the
    middle above which the pixels are a multiple of 64. OpenCV's per-pixel functions run SIMD lanes over most of
    a call's pixels and scalar code over the last few, and the two round some values differently (the FMA of
    the lanes): with the top band a multiple of any lane count, each pixel is computed the same way as in one
    call over the whole plane (a 16-bit output of the two threads differed from one thread's by a unit).
    ``None`` where no such row is inside the plane (a very wide, very short frame): one thread then."""
    step = 2 * 64 // math.gcd(2 * width, 64)  # rows: even, and rows × width a multiple of 64
    return max(step, round(height / 2 / step) * step) if height > step else None


_kernels_checked = False
_kernels_lock = threading.Lock()


def fused_kernels() -> FusedKernels | None:
    """The fused kernels (:mod:`nightvision.stream.denoise_kernels`) when numba is installed and, on a small
    test here, they give the bits of the OpenCV passes (once per process: numba compiles for this machine's CPU,
    which the test suite does not cover); else ``None`` (a warning says why)."""
    global _kernels_checked
    with _kernels_lock:  # (two threads making denoisers at once: one loads and checks, the other waits)
        kernels = load_kernels()
        if kernels is not None and not _kernels_checked:
            try:
                problem = _kernels_differ(kernels)
            except Exception as err:  # a kernel that fails to run is as unusable as a wrong one
                problem = f"they failed on a test plane ({type(err).__name__}: {err})"
            _kernels_checked = True
            if problem is not None:
                reject_kernels(problem)
                return None
        return kernels


def _kernels_differ(kernels: FusedKernels) -> str | None:
    """What differs between one step of a small plane through ``kernels`` and through the OpenCV passes."""
    rng = np.random.default_rng(7)
    h, w = 36, 70  # (columns for the vector loops and for their scalar remainders)
    cur = rng.integers(0, 256, (h, w), dtype=np.uint8)
    hist = rng.integers(0, 255 * FIXED + 1, (h, w)).astype(np.int16)
    moved = rng.integers(0, 256, (h, w), dtype=np.uint8)
    weights = _Weights.of(DenoiseParams(), 0.85)
    results = []
    for k in (kernels, None):
        plane = _Plane(cur, k)
        plane.hist[:] = hist
        region = plane.step(cur, (3, -3))  # (33 rows: some past the last whole 4×4 block)
        assert region is not None
        values = [plane.motion(region, 0.37).copy()]
        plane.motion(region, 0.004, block_sums=True)  # (small steps: the coherent test raises some of them)
        sums = np.array(plane.sums)
        median = plane.coherent(region, 40000.0, DenoiseParams())
        values += [sums, plane.a.copy(), np.array(median)]
        plane.blend(region, weights, moved)
        results.append([*values, plane.hist])
    if not math.isfinite(float(results[1][3])):  # pragma: no cover - the plane above is made to give one
        return "the check plane gave the coherent test no noise measurement"
    names = ("scaled |d|", "block sums", "coherent test", "coherent noise measurement", "history")
    for name, mine, theirs in zip(names, *results, strict=True):
        if not np.array_equal(mine, theirs, equal_nan=True):
            return f"their {name} differs from OpenCV's on {np.count_nonzero(mine != theirs)} pixels"
    plane16 = rng.integers(0, 65536, (h, w), dtype=np.uint16)
    blurred = np.empty_like(plane16)
    kernels.gaussian5(plane16, blurred)
    if not np.array_equal(blurred, cv2.GaussianBlur(plane16, (5, 5), 0)):
        return "their 5×5 Gaussian differs from OpenCV's"
    # the colour conversion rounds its own way (one unit at most), saturation at both ends
    y = rng.integers(0, 256 * FIXED, (h, w), dtype=np.uint16)
    u, v = (rng.integers(0, 256 * FIXED, (h // 2, w // 2), dtype=np.uint16) for _ in range(2))
    for depth in (np.uint8, np.uint16):
        mine, theirs = (i420_fixed_to_bgr(y, u, v, np.empty((h, w, 3), depth), k) for k in (kernels, None))
        off = np.abs(mine.astype(np.int32) - theirs)
        if off.max() > 1:
            return f"their {depth.__name__} colour conversion differs from OpenCV's by up to {off.max()} units"
    return None


def _mix(o: np.ndarray, blurred: np.ndarray, weight: float, dst: np.ndarray) -> None:
    """``dst ← (1 − weight)·o + weight·blurred`` (``dst`` may be ``o``)."""
    cv2.addWeighted(o, 1.0 - weight, blurred, weight, 0.0, dst=dst)


def row_step(f: int) -> int:
    """Rows of the luma the thumbnail averages: every 4th at 8× reduction and more, every 2nd at 4×, else all
    (each thumbnail pixel still averages at least 16 luma pixels, enough for the noise of dark frames)."""
    return 4 if f >= 8 else 2 if f >= 4 else 1


def _i420_planes(yuv: np.ndarray, h: int, w: int) -> list[np.ndarray]:
    """Views of the Y ``(h, w)``, U and V ``(h/2, w/2)`` planes of an OpenCV I420 buffer ``(3h/2, w)``."""
    flat = yuv.reshape(-1)
    n, q = h * w, (h // 2) * (w // 2)
    return [flat[:n].reshape(h, w), flat[n : n + q].reshape(h // 2, w // 2), flat[n + q :].reshape(h // 2, w // 2)]


_TO16 = 257.0 / FIXED  # fixed-point levels → 16-bit levels (8-bit level × 257)
_GREY16 = np.array([[_TO16, 0.0]])
_Y, _U, _V, _K = 1.164 * _TO16, 128.0 * FIXED, 128.0 * FIXED, 16.0 * FIXED  # BT.601 limited range, fixed point
_BGR16 = np.array(
    [
        [_Y, 2.018 * _TO16, 0.0, -_Y * _K - 2.018 * _TO16 * _U],
        [_Y, -0.391 * _TO16, -0.813 * _TO16, -_Y * _K + 0.391 * _TO16 * _U + 0.813 * _TO16 * _V],
        [_Y, 0.0, 1.596 * _TO16, -_Y * _K - 1.596 * _TO16 * _V],
    ]
)
_BGR16_32 = _BGR16.astype(np.float32)  # (as cv2.transform takes it for 16-bit data)
_BGR8_32 = (_BGR16 / 257.0).astype(np.float32)


def i420_fixed_to_bgr(
    y: np.ndarray, u: np.ndarray, v: np.ndarray, dst: np.ndarray, kernels: FusedKernels | None = None
) -> np.ndarray:
    """Limited-range BT.601 YUV 4:2:0 planes in the history's fixed point (uint16, 1/64 level; OpenCV's I420
    convention: ``B = 1.164 (Y − 16) + 2.018 (U − 128)``, ...) → ``dst``, ``(H, W, 3)`` BGR, C-contiguous: uint8,
    or uint16 in 8-bit levels × 257. Returns ``dst``.

    The chroma is repeated over each 2×2 pixels, as OpenCV's ``COLOR_YUV2BGR_I420`` does (a nearest-neighbour
    resize), and the colour matrix applied with saturation, rounded once: in one pass by the fused kernel when
    ``kernels`` are given (0.6 ms a 720p frame on one core here), else by OpenCV (the chroma resized, the planes
    merged, one ``cv2.transform`` to 16 bits: 1.2–1.5 ms; then the 8-bit output from that), the two within one
    unit. (A bilinear chroma cost the denoiser about 2 ms more a 720p frame on one core, for 0.04 dB PSNR and a
    temporal error of 3.30 instead of 3.55 % behind zero-dce++ on the synthetic video set.)
    """
    hh, ww = y.shape
    eight = dst.dtype == np.uint8
    if kernels is not None and hh % 2 == 0 and ww % 2 == 0:
        kernels.to_bgr(y, u, v, dst, _BGR8_32 if eight else _BGR16_32)
        return dst
    uu, vv = (cv2.resize(c, (ww, hh), interpolation=cv2.INTER_NEAREST) for c in (u, v))
    bgr16: np.ndarray = cv2.transform(cv2.merge([y, uu, vv]), _BGR16, dst=None if eight else dst)
    if eight:
        cv2.convertScaleAbs(bgr16, dst=dst, alpha=1.0 / 257.0)
    return dst
