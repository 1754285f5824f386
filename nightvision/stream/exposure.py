"""Exposure control: bring any model's output to a target brightness, smoothly over time.

The models decide *how* a frame is brightened (which regions, which colours); this stage decides *how much*.
Per frame it measures the input's mean luma ``L`` and chooses the brightness the output should have:

* dark input (``L ≤ dark``, 30/255 by default): the target (110/255 by default), so very dark footage is
  lifted enough whatever the model does on its own;
* visible input (``L ≥ visible``, 60/255): ``L`` itself, so footage that is already visible (an infrared
  camera, a lit street) is left nearly alone instead of being washed out;
* in between: a smooth blend of the two in log space.

That brightness is smoothed over time (an exponential moving average in log space, about half a second at
30 FPS; reset on a scene cut, so a cut's first frame is already right and no old level ramps into it), and
then reached *exactly* on every frame by one monotone tone curve applied to the model's output. Since the
curve is solved per frame, brightness pumping of the model's own output is removed too, and a step in the
input's brightness is followed without overshoot.

The tone curve is the Zero-DCE light-enhancement curve ``x ← x + a·(x² − x)``, four times with one ``a``: it
fixes black and white, is monotone in ``x`` and in ``a``, brightens for ``a < 0`` and darkens for ``a > 0``,
and its slope at black is finite (at most 16), so shadows are lifted without the infinite gain of a gamma.
The same curve is applied to the three channels (one lookup table), so neutral greys stay neutral; a grey
source (an infrared camera: its three channels equal) gets a grey output even when the model tinted it.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from nightvision.errors import InputError, ShapeError

__all__ = ["DEFAULT_TARGET", "ExposureControl", "target_luma", "tone_curve"]

DEFAULT_TARGET = 110.0
"""The mean luma (0-255) dark input is brought to unless told otherwise: a normally exposed picture."""

_BT601 = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # B, G, R
_ITERATIONS = 4
_LEVELS = np.arange(256, dtype=np.float64) / 255.0


def tone_curve(a: float) -> np.ndarray:
    """The 256-entry uint8 lookup table of ``x ← x + a·(x² − x)`` applied four times, ``a`` in ``[-1, 1]``."""
    x = _LEVELS.copy()
    for _ in range(_ITERATIONS):
        x = x + a * (x * x - x)
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def _curve_mean(hist: np.ndarray, a: float) -> float:
    """Mean level (0–255) of a luma histogram after the tone curve with parameter ``a``."""
    x = _LEVELS.copy()
    for _ in range(_ITERATIONS):
        x = x + a * (x * x - x)
    return float(255.0 * (hist * x).sum() / max(hist.sum(), 1e-9))


def target_luma(input_luma: float, *, target: float, dark: float = 30.0, visible: float = 60.0) -> float:
    """The output brightness (mean luma, 0–255) wanted for an input of mean luma ``input_luma``.

    ``target`` for inputs darker than ``dark``, the input's own brightness for inputs brighter than
    ``visible``, a smooth blend in log space in between (see the module docstring).
    """
    lum = max(input_luma, 0.5)
    t = (math.log(lum) - math.log(dark)) / (math.log(visible) - math.log(dark))
    t = min(max(t, 0.0), 1.0)
    w = t * t * (3.0 - 2.0 * t)  # smoothstep: no kink at either end
    return math.exp(w * math.log(lum) + (1.0 - w) * math.log(target))


class ExposureControl:
    """A post-inference stage: ``control(output, original) -> output`` at the wanted brightness.

    Args:
        target: mean luma (0–255) wanted for dark input; the default 110 is a normally exposed picture.
        dark, visible: input brightness (0–255) below which ``target`` applies and above which the input's
            own brightness is kept (see :func:`target_luma`).
        momentum: weight of the past in the per-frame smoothing of the wanted brightness, in ``[0, 1)``; 0.9
            at 30 FPS settles in about half a second. 0 for still images.
        cut_threshold: a relative change of the input's 16×9 thumbnail above this restarts the smoothing.

    Frames are ``(H, W, 3)`` uint8 BGR (``original`` is the model's input, of the same size). Call
    :meth:`reset` between unrelated images or clips.
    """

    name = "exposure"
    takes_input = True  # the pipeline calls it as control(output, model_input)

    def __init__(
        self,
        target: float = DEFAULT_TARGET,
        *,
        dark: float = 30.0,
        visible: float = 60.0,
        momentum: float = 0.9,
        cut_threshold: float = 0.35,
    ) -> None:
        if not 20.0 <= target <= 235.0:
            raise InputError(f"the exposure target must be a mean luma between 20 and 235, got {target:g}")
        if not 0.0 < dark < visible < 255.0:
            raise InputError(f"expected 0 < dark < visible < 255, got dark={dark:g}, visible={visible:g}")
        if not 0.0 <= momentum < 1.0:
            raise InputError(f"momentum must be in [0, 1), got {momentum:g}")
        self.target = target
        self.dark, self.visible = dark, visible
        self.momentum = momentum
        self.cut_threshold = cut_threshold
        self._log_level: float | None = None  # smoothed log of the wanted brightness
        self._thumb: np.ndarray | None = None
        self.cuts = 0
        self.last_a = 0.0

    def reset(self) -> None:
        """Forget the history (a new clip, a new image, a reconnected source)."""
        self._log_level = None
        self._thumb = None

    def __call__(self, output: np.ndarray, original: np.ndarray) -> np.ndarray:
        """``output`` brought to the wanted brightness; ``original`` is the frame the model enhanced.

        Both ``(H, W, 3)`` BGR (or ``(H, W)`` grey), uint8 or uint16 (16-bit still images); the result has the
        layout and dtype of ``output``.
        """
        if output.ndim not in (2, 3) or output.dtype not in (np.uint8, np.uint16):
            raise ShapeError(f"expected (H, W, 3) uint8 or uint16 BGR, got {output.shape} {output.dtype}")
        if original.shape[:2] != output.shape[:2]:
            raise ShapeError(f"expected the model's input at {output.shape[:2]}, got {original.shape[:2]}")
        thumb_in = _as8(_thumbnail(original))
        thumb_out = _as8(_thumbnail(output))
        grey = thumb_in.ndim == 2 or _is_grey(thumb_in)
        wanted = target_luma(_luma(thumb_in), target=self.target, dark=self.dark, visible=self.visible)
        self._smooth(math.log(wanted), thumb_in)
        assert self._log_level is not None
        hist = cv2.calcHist([_luma_u8(thumb_out)], [0], None, [256], [0, 256]).ravel().astype(np.float64)
        a = _solve(hist, math.exp(self._log_level))
        self.last_a = a
        if output.dtype == np.uint16:  # still images: the curve itself, no 8-bit table
            x = output.astype(np.float32) / 65535.0
            if grey and x.ndim == 3:
                x = np.repeat(cv2.cvtColor(x, cv2.COLOR_BGR2GRAY)[:, :, None], 3, axis=2)
            for _ in range(_ITERATIONS):
                x = x + a * (x * x - x)
            return np.clip(np.rint(x * 65535.0), 0, 65535).astype(np.uint16)
        lut = tone_curve(a)
        if output.ndim == 2:
            return cv2.LUT(output, lut)
        if grey:
            y = cv2.LUT(cv2.cvtColor(output, cv2.COLOR_BGR2GRAY), lut)
            return cv2.merge([y, y, y])
        return cv2.LUT(output, lut)

    def _smooth(self, log_wanted: float, thumb: np.ndarray) -> None:
        cut = self._thumb is not None and self._is_cut(thumb)
        if self._log_level is None or cut or self._thumb is None or self._thumb.shape != thumb.shape:
            self.cuts += int(cut)
            self._log_level = log_wanted
        else:
            self._log_level = self.momentum * self._log_level + (1.0 - self.momentum) * log_wanted
        self._thumb = thumb

    def _is_cut(self, thumb: np.ndarray) -> bool:
        assert self._thumb is not None
        if self._thumb.shape != thumb.shape:
            return True
        a, b = thumb.astype(np.float32), self._thumb.astype(np.float32)
        change = float(np.abs(a - b).mean())
        level = float(a.mean() + b.mean()) / 2.0 + 1.0
        return change / level > self.cut_threshold and change > 4.0


def _thumbnail(image: np.ndarray) -> np.ndarray:
    """A small area-averaged copy (about 64 px wide) of every few rows: cheap statistics, sensor noise averaged
    out. Each thumbnail pixel still averages a quarter of the pixels it covers (80 of a 720p frame's 400); the
    rows left out save three quarters of the reading (two 720p thumbnails: 1.4 -> 0.4 ms)."""
    h, w = image.shape[:2]
    scale = min(1.0, 64.0 / max(w, 1))
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    step = max(1, min(int(1.0 / scale) // 4, h // size[1]))
    return cv2.resize(image[::step], size, interpolation=cv2.INTER_AREA)


def _as8(image: np.ndarray) -> np.ndarray:
    """uint16 → uint8 (levels scaled), uint8 unchanged."""
    return (image // 257).astype(np.uint8) if image.dtype == np.uint16 else image


def _luma_u8(bgr: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY) if bgr.ndim == 3 else bgr


def _luma(thumb: np.ndarray) -> float:
    if thumb.ndim == 2:
        return float(thumb.mean())
    return float((thumb.reshape(-1, 3).astype(np.float32) @ _BT601).mean())


def _is_grey(thumb: np.ndarray) -> bool:
    """Channels equal within a level on average: an infrared or monochrome camera."""
    if thumb.ndim == 2:
        return True
    t = thumb.astype(np.int16)
    return bool(np.abs(t[:, :, 0] - t[:, :, 1]).mean() < 1.0 and np.abs(t[:, :, 1] - t[:, :, 2]).mean() < 1.0)


def _solve(hist: np.ndarray, wanted: float) -> float:
    """The curve parameter ``a`` in ``[-1, 1]`` that brings the histogram's mean to ``wanted`` (bisection)."""
    lo, hi = -1.0, 1.0  # mean decreases as a grows
    if _curve_mean(hist, lo) <= wanted:
        return lo
    if _curve_mean(hist, hi) >= wanted:
        return hi
    for _ in range(24):
        mid = (lo + hi) / 2.0
        if _curve_mean(hist, mid) > wanted:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
