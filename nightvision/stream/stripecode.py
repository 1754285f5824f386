"""A 32-bit number drawn into a frame as black and white stripes, and read back: frame numbers and capture
timestamps that survive H.264, JPEG and an enhancement model (for glass-to-glass latency and counting lost
frames; more robust than OCR of a drawn clock).

Layout, from the top of the frame: a band of :data:`BAND` rows with 32 cells, one per bit, most significant
first (white = 1, black = 0), each ``width // 32`` pixels wide; then a band of the same height with every
cell inverted. A read takes the mean of the middle of each cell and accepts the number only when every cell
differs clearly from its complement, so a damaged or absent code reads as None, never as a wrong number.

>>> frame = np.zeros((90, 160, 3), np.uint8)
>>> draw_code(frame, 123456)
>>> read_code(frame)
123456
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["BAND", "BITS", "MIN_WIDTH", "code_ms", "draw_code", "ms_since", "read_code"]

BITS = 32
BAND = 16  # rows per band (a macroblock high, so H.264 codes each band cleanly)
MIN_WIDTH = 4 * BITS  # at least 4 pixels per cell
_MARGIN = 40  # a cell must differ from its complement by this much (0-255) to count


def _check(frame: np.ndarray) -> None:
    if frame.ndim not in (2, 3) or frame.shape[0] < 2 * BAND or frame.shape[1] < MIN_WIDTH:
        raise ValueError(f"a stripe code needs a frame of at least {MIN_WIDTH}x{2 * BAND}, got shape {frame.shape}")


def draw_code(frame: np.ndarray, value: int) -> None:
    """Draw ``value`` (taken modulo 2**32) into the top ``2 * BAND`` rows of ``frame``, in place.

    Args:
        frame: ``(H, W)`` or ``(H, W, C)`` uint8, at least ``MIN_WIDTH`` wide and ``2 * BAND`` high.
        value: the number; only its low 32 bits are drawn.
    """
    _check(frame)
    value %= 2**BITS
    cell = frame.shape[1] // BITS
    bits = np.array([(value >> (BITS - 1 - i)) & 1 for i in range(BITS)], np.uint8)
    row = np.repeat(bits * 255, cell)
    frame[:BAND, : row.size] = row.reshape((1, -1) + (1,) * (frame.ndim - 2))
    frame[BAND : 2 * BAND, : row.size] = (255 - row).reshape((1, -1) + (1,) * (frame.ndim - 2))
    frame[: 2 * BAND, row.size :] = 0


def read_code(frame: np.ndarray) -> int | None:
    """The number :func:`draw_code` drew into ``frame`` (any colour order, any size it was drawn at), or
    None when there is no readable code."""
    _check(frame)
    grey = frame if frame.ndim == 2 else frame.mean(axis=2)
    cell = frame.shape[1] // BITS
    lo, hi = cell // 4, max(cell // 4 + 1, cell - cell // 4)
    r0, r1 = BAND // 4, BAND - BAND // 4
    top = grey[r0:r1, : cell * BITS].reshape(r1 - r0, BITS, cell)[:, :, lo:hi].mean(axis=(0, 2))
    bottom = grey[BAND + r0 : BAND + r1, : cell * BITS].reshape(r1 - r0, BITS, cell)[:, :, lo:hi].mean(axis=(0, 2))
    diff = top - bottom
    if np.any(np.abs(diff) < _MARGIN):
        return None
    value = 0
    for bit in diff > 0:
        value = (value << 1) | int(bit)
    return value


def code_ms(now: float | None = None) -> int:
    """The monotonic clock (``time.monotonic()``, shared by every process on a machine) in milliseconds,
    modulo 2**32: the timestamp to draw."""
    return int((time.monotonic() if now is None else now) * 1000) % 2**BITS


def ms_since(stamp: int, now: float | None = None) -> int:
    """Milliseconds from a :func:`code_ms` stamp to ``now`` (wrap-around handled)."""
    return (code_ms(now) - stamp) % 2**BITS
