"""A physically based model of a dark, noisy camera frame, made from a well-exposed 8-bit sRGB image.

The recipe of Brooks et al., *Unprocessing Images for Learned Raw Denoising* (CVPR 2019), applied to sRGB
images (no mosaic, no white balance): per pixel and channel,

1. **inverse sRGB** (IEC 61966-2-1) to linear light ``x`` in ``[0, 1]``;
2. **exposure**: ``x ← e·x``, ``e`` in ``[1/100, 1/10]`` (log-uniform when sampled);
3. **heteroscedastic sensor noise**: ``x ← x + n``, ``n ~ N(0, shot·x + read)`` (Poisson shot noise in its
   Gaussian approximation plus read noise), with the camera levels drawn as in Unprocessing:
   ``log shot ~ U[log 1e-4, log 0.012]`` and ``log read = 2.18·log shot + 1.20 + N(0, 0.26²)``;
4. clip to ``[0, 1]`` (a sensor reports no negative light), **sRGB** encoding and **8-bit** quantisation.

Noise is independent per pixel and channel (no demosaicing correlation); the video benchmark adds H.264
coding on top (:mod:`nightvision.evaluation.video`). Everything is numpy and deterministic for a given
``numpy.random.Generator``; float work is float32 unless stated.

>>> rng = np.random.default_rng(0)
>>> levels = sample_levels(rng)
>>> dark = degrade(clean_bgr, exposure=1 / 30, levels=levels, rng=rng)   # uint8, same shape
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nightvision.errors import ShapeError

__all__ = [
    "EXPOSURE_RANGE",
    "SHOT_RANGE",
    "NoiseLevels",
    "add_sensor_noise",
    "degrade",
    "linear_to_srgb",
    "noise_std",
    "sample_exposure",
    "sample_levels",
    "srgb_noise_std",
    "srgb_to_linear",
]

SHOT_RANGE = (1e-4, 0.012)  # Unprocessing: shot-noise level range (variance per unit of linear signal)
EXPOSURE_RANGE = (1 / 100, 1 / 10)  # exposure scale of the dark frame, relative to the well-exposed image
_READ_SLOPE, _READ_OFFSET, _READ_SIGMA = 2.18, 1.20, 0.26  # log read = slope·log shot + offset + N(0, sigma²)


@dataclass(frozen=True)
class NoiseLevels:
    """Sensor noise in linear light: the variance of a pixel of value ``x`` in ``[0, 1]`` is ``shot·x + read``."""

    shot: float
    read: float


def srgb_to_linear(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in ``[0, 1]`` → linear light in ``[0, 1]`` (the exact piecewise curve), float32."""
    s = np.asarray(srgb, dtype=np.float32)
    lin: np.ndarray = np.where(s <= 0.04045, s / 12.92, ((s + 0.055) / 1.055) ** 2.4).astype(np.float32)
    return lin


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Linear light in ``[0, 1]`` → sRGB-encoded values in ``[0, 1]`` (negative inputs give 0), float32."""
    x = np.maximum(np.asarray(linear, dtype=np.float32), 0.0)
    s: np.ndarray = np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)
    return s


def sample_levels(rng: np.random.Generator, *, u: float | None = None) -> NoiseLevels:
    """Draw camera noise levels with the Unprocessing recipe.

    Args:
        rng: the random source (consumed: one uniform unless ``u`` is given, and one normal).
        u: optional quantile in ``[0, 1]`` of ``log shot`` over its range, instead of a uniform draw
            (stratified sampling: a few clips that cover the range evenly).
    """
    lo, hi = math.log(SHOT_RANGE[0]), math.log(SHOT_RANGE[1])
    q = float(rng.uniform()) if u is None else float(u)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"u must be in [0, 1], got {u}")
    log_shot = lo + q * (hi - lo)
    log_read = _READ_SLOPE * log_shot + _READ_OFFSET + float(rng.normal(0.0, _READ_SIGMA))
    return NoiseLevels(shot=math.exp(log_shot), read=math.exp(log_read))


def sample_exposure(rng: np.random.Generator, *, u: float | None = None) -> float:
    """Draw an exposure scale, log-uniform in :data:`EXPOSURE_RANGE` (``u``: a given quantile instead)."""
    lo, hi = math.log(EXPOSURE_RANGE[0]), math.log(EXPOSURE_RANGE[1])
    q = float(rng.uniform()) if u is None else float(u)
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"u must be in [0, 1], got {u}")
    return math.exp(lo + q * (hi - lo))


def noise_std(linear: np.ndarray | float, levels: NoiseLevels) -> np.ndarray:
    """Standard deviation of the sensor noise at linear value(s) ``linear``: ``sqrt(shot·x + read)``."""
    x = np.maximum(np.asarray(linear, dtype=np.float64), 0.0)
    std: np.ndarray = np.sqrt(levels.shot * x + levels.read)
    return std


def add_sensor_noise(linear: np.ndarray, levels: NoiseLevels, rng: np.random.Generator) -> np.ndarray:
    """``linear`` (float, any shape, values in ``[0, 1]``) plus heteroscedastic Gaussian noise; not clipped."""
    x = np.asarray(linear, dtype=np.float32)
    std = np.sqrt(np.float32(levels.shot) * np.maximum(x, 0.0) + np.float32(levels.read))
    noisy: np.ndarray = x + std * rng.standard_normal(x.shape, dtype=np.float32)
    return noisy


def degrade(clean: np.ndarray, *, exposure: float, levels: NoiseLevels, rng: np.random.Generator) -> np.ndarray:
    """A dark, noisy 8-bit frame from a well-exposed one.

    Args:
        clean: ``(H, W, 3)`` (any channel order: channels are treated alike) or ``(H, W)`` uint8 sRGB image.
        exposure: linear-light scale in ``(0, 1]``.
        levels: sensor noise levels (:func:`sample_levels`).
        rng: random source for the noise.

    Returns:
        uint8 array of ``clean``'s shape: inverse sRGB, × ``exposure``, + noise, clipped, sRGB, rounded.
    """
    if clean.dtype != np.uint8 or clean.ndim not in (2, 3):
        raise ShapeError(f"expected an (H, W, 3) or (H, W) uint8 image, got {clean.shape} {clean.dtype}")
    if not 0.0 < exposure <= 1.0:
        raise ValueError(f"exposure must be in (0, 1], got {exposure}")
    lut = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0) * np.float32(exposure)
    noisy = np.clip(add_sensor_noise(lut[clean], levels, rng), 0.0, 1.0)
    out: np.ndarray = np.floor(linear_to_srgb(noisy) * 255.0 + 0.5).astype(np.uint8)
    return out


def srgb_noise_std(linear: np.ndarray | float, levels: NoiseLevels) -> np.ndarray:
    """Predicted standard deviation, in 8-bit sRGB levels, of :func:`degrade`'s output for a flat patch at
    linear value ``linear`` (after exposure): the sensor noise through the sRGB slope (first-order), plus
    the 8-bit rounding (variance 1/12). Accurate when the noise is small against the curve's bend and the
    patch is far from 0 (where clipping biases it)."""
    x = np.maximum(np.asarray(linear, dtype=np.float64), 1e-12)
    slope = np.where(x <= 0.0031308, 12.92, 1.055 / 2.4 * x ** (1 / 2.4 - 1))
    std: np.ndarray = np.sqrt((255.0 * slope * noise_std(x, levels)) ** 2 + 1.0 / 12.0)
    return std
