"""Temporal stability for video: smoothing curve maps across frames, and measuring flicker.

Per-frame curve estimation reacts to every flicker of noise in a dark frame, so the brightness of the
output pumps. :class:`CurveSmoother` keeps an exponential moving average of the (low-resolution) curve map
and resets it on scene cuts. Only the gain is smoothed: the curve is still applied to the current frame, so
motion stays sharp.

:func:`flicker` and :func:`motion` measure the two sides of that trade on a sequence of frames.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import cv2
import numpy as np

from nightvision.enhancer import FrameJob
from nightvision.evaluation.metrics import mean_luma

__all__ = ["CurveSmoother", "flicker", "motion"]


class CurveSmoother:
    """Exponential moving average of ``FrameJob.curve`` with scene-cut reset.

    Args:
        momentum: weight of the past, in ``[0, 1)``; 0.8 at 30 FPS settles in about 0.3 s.
        cut_threshold: a relative change of the estimator input ``mean|a − b| / mean(a + b)/2`` above this
            counts as a scene cut and restarts the average, if the change also exceeds ``min_change``.
        min_change: absolute floor of that change (the thumbnail's mean absolute difference, in ``[0, 1]``).
    """

    def __init__(self, momentum: float = 0.8, cut_threshold: float = 0.35, min_change: float = 4 / 255) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.cut_threshold = cut_threshold
        self.min_change = min_change
        self._curve: np.ndarray | None = None
        self._thumb: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self._curve = None
        self._thumb = None

    def __call__(self, job: FrameJob) -> FrameJob:
        if job.curve is None:
            return job
        # A coarse, area-averaged thumbnail: sensor noise of dark frames averages out, a cut does not.
        small = job.net_input[0].transpose(1, 2, 0)
        thumb = cv2.resize(small, (16, 9), interpolation=cv2.INTER_AREA) if min(small.shape[:2]) >= 9 else small
        if self._curve is None or self._curve.shape != job.curve.shape or self._is_cut(thumb):
            if self._curve is not None:
                self.cuts += 1
            self._curve = job.curve.copy()
        else:
            self._curve *= self.momentum
            self._curve += (1.0 - self.momentum) * job.curve
            job.curve = self._curve.copy()
        self._thumb = thumb
        return job

    def _is_cut(self, thumb: np.ndarray) -> bool:
        if self._thumb is None or self._thumb.shape != thumb.shape:
            return True
        change = float(np.abs(thumb - self._thumb).mean())
        level = float((thumb.mean() + self._thumb.mean()) / 2) + 1e-3
        # relative, so that cuts between dark scenes count; with a floor, so that noise in black frames does not
        return change / level > self.cut_threshold and change > self.min_change


def _lumas(frames: Sequence[np.ndarray]) -> np.ndarray:
    return np.array([mean_luma(f) for f in frames])


def flicker(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Brightness pumping of the output relative to the input's own variation.

    The mean absolute change of mean luma between consecutive frames, divided by the mean luma (so a steady
    gain scores like the input), output over input. 1 = no added flicker; above 1 = the enhancement adds it.
    """
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise ValueError("need two equally long sequences of at least 2 frames")
    li, lo = _lumas(inputs), _lumas(outputs)
    rel_in = np.abs(np.diff(li)).mean() / max(li.mean(), 1e-6)
    rel_out = np.abs(np.diff(lo)).mean() / max(lo.mean(), 1e-6)
    return float(rel_out / max(rel_in, 1e-9))


def motion(inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray]) -> float:
    """Pixel-level frame-to-frame change, relative to mean luma, output over input (motion kept ≈ 1)."""
    if len(inputs) != len(outputs) or len(inputs) < 2:
        raise ValueError("need two equally long sequences of at least 2 frames")

    def rel(frames: Sequence[np.ndarray]) -> float:
        grey = [f.mean(axis=2) if f.ndim == 3 else f.astype(np.float64) for f in frames]
        change = np.mean([np.abs(b - a).mean() for a, b in itertools.pairwise(grey)])
        return float(change / max(np.mean([g.mean() for g in grey]), 1e-6))

    return rel(outputs) / max(rel(inputs), 1e-9)
