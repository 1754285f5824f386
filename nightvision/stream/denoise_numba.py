"""The numba kernels of :mod:`nightvision.stream.denoise_kernels` (imported only when numba is installed; kept
at module level, where numba can cache them on disk). What they compute, and why so: see that module.

Everything is computed in float32, exactly: ``|cur·64 − hist| < 2**14`` and ``|d·k| < 2**23``, so no product or
sum rounds; ``np.rint`` rounds half to even as OpenCV does, and LLVM vectorises it (integer tie-breaking with
shifts and masks made the blend half as fast). Each loop runs over a 1-D contiguous row slice, from whole planes
and offsets: a column-sliced 2-D view, or indices that might be negative, made the same loops ten times slower.
"""

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True, boundscheck=False)

_ZERO, _ONE, _TWO, _THREE = np.float32(0.0), np.float32(1.0), np.float32(2.0), np.float32(3.0)
_TOP, _SCALE, _HALF = np.float32(255.0), np.float32(256.0), np.float32(0.5)
_FIXED, _UNSCALE, _TO8 = np.float32(64.0), np.float32(1.0 / 256.0), np.float32(1.0 / 64.0)


@_jit
def weight(a, lo, inv, k_min, strength):
    """The blend weight (1/256) of the averaged scaled ``|d|`` ``a`` (a float32, as are the terms)."""
    # the same float32 operations, in the same order, as DenoiseParams.weight_table (then truncated)
    t = min(max((a - lo) * inv, _ZERO), _ONE)
    return np.floor((k_min + strength * t * t * (_THREE - _TWO * t)) * _SCALE + _HALF)


@_jit
def motion(cur, hist, out, alpha, y0, x0, hy0, hx0, rows, cols):
    """``out = min(255, round(|cur·64 − hist|·alpha))`` on the overlap (frame rows and columns from ``y0, x0``,
    history ones from ``hy0, hx0``)."""
    for y in range(rows):
        c, h, o = cur[y0 + y][x0 : x0 + cols], hist[hy0 + y][hx0 : hx0 + cols], out[y0 + y][x0 : x0 + cols]
        for x in range(cols):
            o[x] = np.uint8(np.rint(min(abs(np.float32(c[x]) * _FIXED - np.float32(h[x])) * alpha, _TOP)))


@_jit
def blended(c, h, a, m, lo, inv, k_min, strength):
    """One pixel's new history value (a float32 holding an integer)."""
    k = weight(np.float32(max(a, m)), lo, inv, k_min, strength)
    hv = np.float32(h)
    return hv + np.rint((np.float32(c) * _FIXED - hv) * k * _UNSCALE)


@_jit
def blend(cur, hist, a, moved, new, lo, inv, k_min, strength, y0, x0, hy0, hx0, rows, cols):
    """``new = hist + round(k·(cur·64 − hist) / 256)``, ``k`` the weight of ``max(a, moved)``, on the overlap."""
    for y in range(rows):
        c, h = cur[y0 + y][x0 : x0 + cols], hist[hy0 + y][hx0 : hx0 + cols]
        aa, m, n = a[y0 + y][x0 : x0 + cols], moved[y0 + y][x0 : x0 + cols], new[y0 + y][x0 : x0 + cols]
        for x in range(cols):
            n[x] = np.int16(blended(c[x], h[x], aa[x], m[x], lo, inv, k_min, strength))


@_jit
def blend_out(cur, hist, a, moved, new, out, lo, inv, k_min, strength, y0, x0, hy0, hx0, rows, cols):
    """:func:`blend`, and the 8-bit output ``out = round(new / 64)``."""
    for y in range(rows):
        c, h = cur[y0 + y][x0 : x0 + cols], hist[hy0 + y][hx0 : hx0 + cols]
        aa, m, n = a[y0 + y][x0 : x0 + cols], moved[y0 + y][x0 : x0 + cols], new[y0 + y][x0 : x0 + cols]
        o = out[y0 + y][x0 : x0 + cols]
        for x in range(cols):
            v = blended(c[x], h[x], aa[x], m[x], lo, inv, k_min, strength)
            n[x] = np.int16(v)
            o[x] = np.uint8(np.rint(v * _TO8))  # the history is never negative
