"""The numba kernels of :mod:`nightvision.stream.denoise_kernels` (imported only when numba is installed; kept
at module level, where numba can cache them on disk). What they compute, and why so: see that module.

Everything is computed in float32, exactly: ``|cur·64 − hist| < 2**14`` and ``|d·k| < 2**23``, so no product or
sum rounds; ``np.rint`` rounds half to even as OpenCV does, and LLVM vectorises it (integer tie-breaking with
shifts and masks made the blend half as fast). Each loop runs over a 1-D contiguous row slice, from whole planes
and offsets: a column-sliced 2-D view, or indices that might be negative, made the same loops ten times slower.
The colour conversion (:func:`to_bgr`) is the one step that rounds: its float32 sums are OpenCV
``transform``'s, whose SIMD lanes use fused multiply-adds, so the two differ by one unit on a few values.
"""

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True, boundscheck=False)

_ZERO, _ONE, _TWO, _THREE = np.float32(0.0), np.float32(1.0), np.float32(2.0), np.float32(3.0)
_TOP, _SCALE, _HALF = np.float32(255.0), np.float32(256.0), np.float32(0.5)
_FIXED, _UNSCALE = np.float32(64.0), np.float32(1.0 / 256.0)


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
def motion_sums(cur, hist, out, sums, alpha, y0, x0, hy0, hx0, rows, cols):
    """:func:`motion`, and ``sums[i, j] = Σ (cur·64 − hist)`` over the 4×4 pixels of each whole block ``(i, j)``
    of the overlap (``sums`` float32 ``(rows // 4, cols // 4)``: integers below 2**18, exact), from the same
    rows while they are in the cache."""
    bh, bw = sums.shape
    for y in range(rows):
        c, h, o = cur[y0 + y][x0 : x0 + cols], hist[hy0 + y][hx0 : hx0 + cols], out[y0 + y][x0 : x0 + cols]
        for x in range(cols):
            o[x] = np.uint8(np.rint(min(abs(np.float32(c[x]) * _FIXED - np.float32(h[x])) * alpha, _TOP)))
        i = y // 4
        if i < bh:
            s = sums[i]
            if y % 4 == 0:
                s[:] = 0.0
            for j in range(bw):
                t = np.int32(0)
                for q in range(4):
                    t += np.int32(c[4 * j + q]) * 64 - np.int32(h[4 * j + q])
                s[j] += t


@_jit
def spread_max(blocks, a, y0, x0, rows, cols):
    """``a = max(a, blocks[y // 4, x // 4])`` on the overlap (frame rows and columns from ``y0, x0``); rows and
    columns beyond the last whole block take the last one's."""
    bh, bw = blocks.shape
    wide = np.empty(cols, np.uint8)  # the block row, one value a pixel (the max below then vectorises)
    for y in range(rows):
        if y % 4 == 0 and y // 4 < bh:
            b = blocks[y // 4]
            for x in range(cols):
                wide[x] = b[min(x // 4, bw - 1)]
        o = a[y0 + y][x0 : x0 + cols]
        for x in range(cols):
            o[x] = max(o[x], wide[x])


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
def to_bgr(y, u, v, dst, m, top):
    """``dst = saturate(round(m · (Y, U, V, 1)), 0, top)`` per pixel: the I420 planes ``y (H, W)``, ``u``, ``v``
    ``(H/2, W/2)`` (uint16) to ``dst (H, W, 3)`` (uint8 or uint16, ``top`` its largest value as a float32), ``m``
    the 3×4 float32 colour matrix whose U column of R and V column of B are zero; each chroma sample covers 2×2
    pixels. The chroma terms of a row pair are computed once, summed in OpenCV ``transform``'s order (the last
    column first)."""
    rows, cols = y.shape
    half = cols // 2
    cb, cg, cr = np.empty(half, np.float32), np.empty(half, np.float32), np.empty(half, np.float32)
    for r in range(rows):
        if r % 2 == 0:
            ur, vr = u[r // 2], v[r // 2]
            for x in range(half):
                uu, vv = np.float32(ur[x]), np.float32(vr[x])
                cb[x] = uu * m[0, 1] + m[0, 3]
                cg[x] = uu * m[1, 1] + (vv * m[1, 2] + m[1, 3])
                cr[x] = vv * m[2, 2] + m[2, 3]
        yr, o = y[r], dst[r].reshape(-1)
        for x in range(half):
            for j in range(2):
                yy = np.float32(yr[2 * x + j])
                k = 6 * x + 3 * j
                o[k] = np.rint(min(max(yy * m[0, 0] + cb[x], _ZERO), top))
                o[k + 1] = np.rint(min(max(yy * m[1, 0] + cg[x], _ZERO), top))
                o[k + 2] = np.rint(min(max(yy * m[2, 0] + cr[x], _ZERO), top))


@_jit
def gaussian5(src, dst):
    """OpenCV's ``GaussianBlur(src, (5, 5), 0)`` (BORDER_REFLECT_101) of a 2-D plane of at least 3×3 into
    ``dst`` (not ``src``): the binomial taps 1 4 6 4 1 down, then across, ``(sum + 128) >> 8``: OpenCV's fixed
    point keeps these sums exact, so this is its result bit for bit."""
    rows, cols = src.shape
    acc = np.empty(cols + 4, np.int32)  # one row of vertical sums, two reflected columns on each side
    last = rows - 1
    for r in range(rows):
        r3, r4 = r + 1, r + 2
        if r3 > last:
            r3 = 2 * last - r3
        if r4 > last:
            r4 = 2 * last - r4
        a, b, c, d, e = src[abs(r - 2)], src[abs(r - 1)], src[r], src[r3], src[r4]
        for x in range(cols):
            acc[x + 2] = np.int32(a[x]) + np.int32(e[x]) + 4 * (np.int32(b[x]) + np.int32(d[x])) + 6 * np.int32(c[x])
        acc[0], acc[1] = acc[4], acc[3]
        acc[cols + 2], acc[cols + 3] = acc[cols], acc[cols - 1]
        o = dst[r]
        for x in range(cols):
            s = acc[x] + acc[x + 4] + 4 * (acc[x + 1] + acc[x + 3]) + 6 * acc[x + 2]
            o[x] = (s + 128) >> 8
