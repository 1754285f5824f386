"""The temporal denoiser's fused numba kernels (the ``fast`` extra) give the same bits as its OpenCV passes (the
output's colour conversion: within one unit, on few values)."""

from __future__ import annotations

import itertools
from typing import Any

import cv2
import numpy as np
import pytest

import nightvision.stream.denoise as denoise
from nightvision.stream.denoise import DenoiseParams, TemporalDenoiser
from tests.test_denoise import noisy, scene

pytest.importorskip("numba", reason="numba is not installed (the fast extra): the fused kernels are not built")


def clip(sigma: float, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Dark noisy frames that exercise every branch of a step: a pan (uncovered bands at the frame's edges), a
    still part, a pan again (the worker thread's guess of no shift is wrong), a moving bright square and a
    scene cut."""
    rng = np.random.default_rng(seed)
    big, other = scene(height + 80, width + 120, seed=seed), scene(height, width, seed=seed + 1, level=60.0)
    frames = []
    for t in range(22):
        x, y = min(t, 10) * 7, min(t, 10) * 3  # pans right and down, then stands still
        if 14 <= t < 17:
            x, y = 70 + (t - 13) * 6, 30 + (t - 13) * 2  # and pans again
        frame = big[y : y + height, x : x + width].copy()
        if t >= 17:
            frame[20:60, 10 + 9 * t : 50 + 9 * t] = 120.0  # an object moving on its own
        frames.append(noisy(other if t >= 19 else frame, sigma, rng))
    return frames


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(("sigma", "spatial"), [(0.8, "partial"), (6.0, "full")])
def test_fused_kernels_give_the_opencv_bits(
    dtype: type, threads: int, sigma: float, spatial: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Also with two threads, where the fused path measures a still camera's shift in the worker while it
    computes the luma's difference for no shift (and computes it again when the camera moved after all)."""
    shifts: list[tuple[int, int]] = []
    difference = TemporalDenoiser._luma_difference

    def spy(self: TemporalDenoiser, *args: Any) -> Any:
        if args[1].shape == (360, 640):  # (the frame size at which the worker thread runs)
            shifts.append(args[2])
        return difference(self, *args)

    monkeypatch.setattr(TemporalDenoiser, "_luma_difference", spy)
    fused = TemporalDenoiser(output_dtype=dtype, threads=threads, fused=True)
    passes = TemporalDenoiser(output_dtype=dtype, threads=threads, fused=False)
    assert fused.fused and not passes.fused
    weights = set()
    for size in ((360, 640), (181, 323)):  # the worker thread's size, and an odd one (4:2:0 pads it)
        for i, frame in enumerate(clip(sigma, *size)):
            mine, theirs = fused(frame), passes(frame)
            assert same(mine, theirs), f"frame {i} of {size} differs"
            for a, b in zip(fused._planes, passes._planes, strict=True):
                assert np.array_equal(a.hist, b.hist), f"the history of frame {i} of {size} differs"
            assert fused.noise == passes.noise
            weights.add(fused.control.spatial_weights()[1])
    # the spatial filter's two ways (mixed with the unfiltered plane, or the filtered plane alone) are covered
    assert any(0.2 < w < 0.8 for w in weights) if spatial == "partial" else 1.0 in weights
    assert fused.cuts == passes.cuts >= 1 and fused.resets == passes.resets == 1
    if threads == 2:  # a guess of no shift followed by the shift measured: the guess was wrong, and redone
        assert any(a == (0, 0) and b != (0, 0) for a, b in itertools.pairwise(shifts))
    grey = clip(sigma, 120, 160)
    for frame in grey:
        assert np.array_equal(fused(frame[:, :, 1]), passes(frame[:, :, 1]))


def same(mine: np.ndarray, theirs: np.ndarray) -> bool:
    """Equal, but for the colour conversion's rounding: one unit (of 255 or 65535), on few values."""
    off = np.abs(mine.astype(np.int32) - theirs)
    return int(off.max()) <= 1 and np.count_nonzero(off) <= off.size // 100


@pytest.mark.parametrize(("height", "width"), [(3, 3), (3, 70), (4, 5), (5, 3), (181, 323), (360, 640)])
def test_the_fused_gaussian_is_opencvs_bit_for_bit(height: int, width: int) -> None:
    """Over the whole 16-bit range, on the smallest planes it takes (the reflected border rows and columns are
    the plane's own) and on odd sizes; the denoiser leaves smaller planes to OpenCV."""
    from nightvision.stream.denoise_kernels import load

    kernels = load()
    assert kernels is not None
    plane = np.random.default_rng(height + width).integers(0, 65536, (height, width), dtype=np.uint16)
    out = np.empty_like(plane)
    kernels.gaussian5(plane, out)
    assert np.array_equal(out, cv2.GaussianBlur(plane, (5, 5), 0))


@pytest.mark.parametrize("depth", [np.uint8, np.uint16])
@pytest.mark.parametrize(("height", "width"), [(2, 2), (6, 70), (360, 640), (31 * 2, 33 * 2)])
def test_the_fused_colour_conversion_is_opencvs_within_a_unit(height: int, width: int, depth: type) -> None:
    """Random planes in the history's fixed point over its whole range, so that both ends saturate; and a row
    band starting at an even row, as the denoiser's two threads convert it."""
    from nightvision.stream.denoise import i420_fixed_to_bgr
    from nightvision.stream.denoise_kernels import load

    kernels = load()
    assert kernels is not None
    rng = np.random.default_rng(height * width)
    y = rng.integers(0, 256 * 64, (height, width), dtype=np.uint16)
    u, v = (rng.integers(0, 256 * 64, (height // 2, width // 2), dtype=np.uint16) for _ in range(2))
    theirs = i420_fixed_to_bgr(y, u, v, np.empty((height, width, 3), depth))
    mine = i420_fixed_to_bgr(y, u, v, np.empty((height, width, 3), depth), kernels)
    assert mine.shape == theirs.shape == (height, width, 3) and mine.dtype == depth
    assert same(mine, theirs)
    merged = cv2.merge([y, *(np.repeat(np.repeat(c, 2, 0), 2, 1) for c in (u, v))]).astype(np.float64)
    scale = 257.0 if depth == np.uint8 else 1.0
    exact = np.clip(cv2.transform(merged, denoise._BGR16 / scale), 0, np.iinfo(depth).max)
    slack = 0.02 if depth == np.uint16 else 0.001  # (float32 sums: a few hundredths of a unit at 65535)
    assert np.abs(mine - exact).max() <= 0.5 + slack  # rounded once
    if height * width > 100:
        assert {0, np.iinfo(depth).max} <= set(np.unique(mine))  # (saturated at both ends)
    top = height // 2 // 2 * 2
    band = np.zeros_like(mine)
    i420_fixed_to_bgr(y[top:], u[top // 2 :], v[top // 2 :], band[top:], kernels)
    assert np.array_equal(band[top:], mine[top:]) and not band[:top].any()


@pytest.mark.parametrize("strength", [0.0, 0.5, 0.85, 0.92, 0.99])
@pytest.mark.parametrize(("low", "high"), [(1.4, 2.8), (0.5, 4.0), (2.0, 2.1)])
def test_the_kernels_blend_weight_is_the_table(strength: float, low: float, high: float) -> None:
    from nightvision.stream.denoise_kernels import load

    kernels = load()
    assert kernels is not None
    params = DenoiseParams(motion_low=low, motion_high=high)
    table = params.weight_table(strength)
    assert np.array_equal(kernels.weights(params.weight_terms(strength)), table)
    assert table[0] == round((1 - strength) * 256) and table[-1] == 256  # static: k_min; moved: 1


def test_fused_without_numba_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(denoise, "load_kernels", lambda: None)
    with pytest.raises(ValueError, match=r"nightvision\[fast\]"):
        TemporalDenoiser(fused=True)
    assert not TemporalDenoiser().fused  # the default falls back to the OpenCV passes


def test_a_numba_that_cannot_build_the_kernels_falls_back(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A numba that does not import (a numpy it does not support, say) leaves the OpenCV passes, with a warning
    saying why; asking for the kernels then says to run doctor."""
    import sys

    import nightvision.stream.denoise_kernels as kernels

    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "_failure", None)
    monkeypatch.setitem(sys.modules, "nightvision.stream.denoise_numba", None)  # its import now fails
    with caplog.at_level("WARNING"):
        assert not TemporalDenoiser().fused
    assert "numba could not build the denoiser's kernels (ModuleNotFoundError" in caplog.text
    assert kernels.failure() is not None and kernels.load() is None  # not tried again
    with pytest.raises(ValueError, match="nightvision doctor"):
        TemporalDenoiser(fused=True)


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("motion", "scaled |d| differs"),
        ("blend", "history differs"),
        ("raises", "they failed on a test plane (RuntimeError: no LLVM)"),
        ("to_bgr", "uint8 colour conversion differs from OpenCV's by up to"),
        ("gaussian5", "5×5 Gaussian differs from OpenCV's"),
        ("motion_sums", "block sums differs"),
        ("spread_max", "coherent test differs"),
    ],
)
def test_kernels_that_differ_from_the_opencv_passes_are_not_used(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, broken: str, message: str
) -> None:
    """The first denoiser of a process checks the compiled kernels against the OpenCV passes on a small plane
    (numba compiles for the machine it runs on: a Jetson's ARM cores are not covered by this suite): a wrong
    kernel, any of them, or one that raises, leaves the OpenCV passes."""
    import nightvision.stream.denoise_kernels as kernels

    good = kernels.load()
    assert good is not None
    motion, blend, to_bgr, gaussian5 = good._motion, good._blend, good._to_bgr, good._gaussian5
    motion_sums, spread_max = good._motion_sums, good._spread_max

    def plus_one(jitted: Any) -> Any:
        def run(*args: Any) -> None:
            jitted(*args)
            args[4][...] += 1  # new (cur, hist, a, moved, new, ...): off by one level/64

        return run

    def off(cur: np.ndarray, hist: np.ndarray, out: np.ndarray, alpha: np.float32, *rest: Any) -> None:
        good._motion(cur, hist, out, np.float32(alpha * 1.01), *rest)

    def fails(*args: Any) -> None:
        raise RuntimeError("no LLVM")

    if broken == "motion":
        motion = off
    elif broken == "blend":
        blend = plus_one(good._blend)
    elif broken == "to_bgr":

        def to_bgr(y: np.ndarray, u: np.ndarray, v: np.ndarray, dst: np.ndarray, m: np.ndarray, top: Any) -> None:
            good._to_bgr(y, u, v, dst, m * np.float32(1.01), top)

    elif broken == "gaussian5":

        def gaussian5(src: np.ndarray, dst: np.ndarray) -> None:
            good._gaussian5(src, dst)
            dst[0, 0] ^= 1

    elif broken == "motion_sums":

        def motion_sums(cur: np.ndarray, hist: np.ndarray, out: np.ndarray, sums: np.ndarray, *rest: Any) -> None:
            good._motion_sums(cur, hist, out, sums, *rest)
            sums *= np.float32(1.01)  # off by 1 %

    elif broken == "spread_max":

        def spread_max(blocks: np.ndarray, a: np.ndarray, y0: int, x0: int, rows: int, cols: int) -> None:
            good._spread_max(blocks, a, y0, x0, rows - 1, cols)  # the last row left out

    else:
        motion = fails
    loaded = kernels.FusedKernels(motion, blend, good._weight, to_bgr, gaussian5, motion_sums, spread_max)
    monkeypatch.setattr(kernels, "_loaded", loaded)
    monkeypatch.setattr(kernels, "_failure", None)
    monkeypatch.setattr(denoise, "_kernels_checked", False)
    with caplog.at_level("WARNING"):
        assert not TemporalDenoiser().fused
    assert message in caplog.text
    monkeypatch.setattr(denoise, "_kernels_checked", False)
    monkeypatch.setattr(kernels, "_loaded", good)
    monkeypatch.setattr(kernels, "_failure", None)
    assert TemporalDenoiser().fused  # the real ones pass the check


def test_a_read_only_grey_frame_does_not_compile_the_kernels_again() -> None:
    """numba compiles a kernel afresh for read-only arrays (half a second in the middle of a stream): the
    denoiser copies such a frame first."""
    from nightvision.stream import denoise_numba

    frames = clip(2.0, 360, 640)
    fused, passes = TemporalDenoiser(fused=True), TemporalDenoiser(fused=False)
    compiled = (len(denoise_numba.motion.signatures), len(denoise_numba.blend.signatures))
    for frame in frames[:6]:
        grey = frame[:, :, 1].copy()
        grey.flags.writeable = False
        assert np.array_equal(fused(grey), passes(grey))
    assert (len(denoise_numba.motion.signatures), len(denoise_numba.blend.signatures)) == compiled


def test_the_output_compiles_each_kernel_once() -> None:
    """The colour conversion and the Gaussian get arrays of one type whatever the frame (whole planes, row bands,
    the history's own view, odd sizes): numba never compiles them again in the middle of a stream (the
    conversion: once for each output depth, at load)."""
    from nightvision.stream import denoise_numba

    for depth in (np.uint8, np.uint16):
        den = TemporalDenoiser(output_dtype=depth, fused=True)
        for size in ((360, 640), (181, 323)):
            for frame in clip(6.0, *size)[:8] + clip(0.8, *size)[:8]:
                den(frame)
    assert len(denoise_numba.to_bgr.signatures) == 2  # (8- and 16-bit outputs)
    assert len(denoise_numba.gaussian5.signatures) == 1


def test_the_unchecked_kernels_refuse_planes_that_do_not_fit() -> None:
    """numba compiles them without index checks: planes of the wrong shape are refused before they run."""
    from nightvision.stream.denoise_kernels import load

    kernels = load()
    assert kernels is not None
    m = np.zeros((3, 4), np.float32)
    y, c, out = np.zeros((4, 6), np.uint16), np.zeros((2, 3), np.uint16), np.zeros((4, 6, 3), np.uint16)
    kernels.to_bgr(y, c, c, out, m)
    for args in [(y[:3], c, c, out[:3]), (y, c[:1], c, out), (y, c, c[:, :2], out), (y, c, c, out[:2])]:
        with pytest.raises(ValueError, match="do not fit"):
            kernels.to_bgr(*args, m)
    kernels.gaussian5(y, y.copy())
    for src, dst in [(y, y[:3]), (y[:2], y[:2].copy()), (out, out.copy())]:
        with pytest.raises(ValueError, match="at least 3×3"):
            kernels.gaussian5(src, dst)


def test_numba_with_its_compiler_switched_off_leaves_the_opencv_passes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """NUMBA_DISABLE_JIT=1 (a debugging switch) would run the kernels as Python, about 1 s a small frame."""
    import numba

    import nightvision.stream.denoise_kernels as kernels

    monkeypatch.setattr(numba.config, "DISABLE_JIT", True)
    monkeypatch.setattr(kernels, "_loaded", None)
    monkeypatch.setattr(kernels, "_failure", None)
    with caplog.at_level("WARNING"):
        assert not TemporalDenoiser().fused
    assert kernels.failure() == "NUMBA_DISABLE_JIT is set" and "NUMBA_DISABLE_JIT is set" in caplog.text
    with pytest.raises(ValueError, match=r"cannot run here \(NUMBA_DISABLE_JIT is set\)"):
        TemporalDenoiser(fused=True)
