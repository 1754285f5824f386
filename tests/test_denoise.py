"""The temporal denoiser: lowers noise where the scene is still, leaves clean footage alone, does not trail
moving things, follows camera pans, resets on cuts and bad input; the torch path agrees with the CPU path."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nightvision.errors import ShapeError
from nightvision.evaluation.metrics import noise_sigma, psnr
from nightvision.stream.denoise import DenoiseParams, TemporalDenoiser


def scene(height: int, width: int, seed: int = 0, level: float = 30.0) -> np.ndarray:
    """A smooth, coloured, dark float32 BGR scene (mean about ``level``) with some edges."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = level * (1 + 0.5 * np.sin(x / 9.0 + rng.uniform(0, 6)) * np.cos(y / 11.0 + rng.uniform(0, 6)))
    img = np.stack([base * 0.8, base, base * 1.1], axis=2)
    img[height // 4 : height // 2, width // 5 : width // 3] += level  # a brighter block: edges
    return img


def noisy(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)))


def test_lowers_noise_on_a_static_noisy_clip() -> None:
    rng = np.random.default_rng(0)
    clean = scene(96, 128)
    truth = np.clip(clean, 0, 255).round().astype(np.uint8)
    den = TemporalDenoiser()
    outs = [den(noisy(clean, 4.0, rng)) for _ in range(20)]
    before = rmse(noisy(clean, 4.0, rng), truth)
    after = rmse(outs[-1], truth)
    assert before > 3.5
    assert after < 0.4 * before, (before, after)
    # σ of the temporal difference of the luma: σ 4 per channel is 4·|(0.257, 0.504, 0.098)| = 2.3 levels of
    # I420 luma, times √(1 + k/(2 − k)) ≈ 1.04 against a converged history
    assert den.noise[0] == pytest.approx(2.4, rel=0.2)


@pytest.mark.parametrize("motion", ["static", "pan"])
def test_leaves_a_clean_clip_unchanged(motion: str) -> None:
    big = np.clip(scene(120, 200, seed=1), 0, 255).round().astype(np.uint8)
    den = TemporalDenoiser()
    for t in range(15):
        dx = 3 * t if motion == "pan" else 0
        frame = np.ascontiguousarray(big[10:106, dx : dx + 150])
        out = den(frame)
        assert psnr(out, frame) >= 45.0, (t, psnr(out, frame))


def _chroma_error(out: np.ndarray, truth: np.ndarray) -> float:
    """RMS difference of the I420 chroma planes of two 8-bit BGR frames."""
    h, w = out.shape[:2]
    n = h * w
    a, b = (cv2.cvtColor(x, cv2.COLOR_BGR2YUV_I420).reshape(-1)[n:] for x in (out, truth))
    return rmse(a, b)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_the_chroma_filter_widens_on_very_noisy_footage_only(dtype: type) -> None:
    """Very noisy dark footage (σ 7 at level 12): the widened chroma filter leaves less colour noise than the
    5×5 Gaussian alone (``chroma_sigma_max=1``); moderately noisy footage (σ 1.5 at level 40) is untouched."""
    clean = scene(96, 128, seed=3, level=12.0)
    truth = np.clip(clean, 0, 255).round().astype(np.uint8)
    frames = [noisy(clean, 7.0, np.random.default_rng(t)) for t in range(12)]
    wide, narrow = TemporalDenoiser(output_dtype=dtype), TemporalDenoiser(output_dtype=dtype, chroma_sigma_max=1.0)
    for frame in frames:
        a, b = wide(frame), narrow(frame)
    assert wide.control.chroma_box() >= 5  # (σ of the chroma's temporal difference over its level: ≥ 3× the
    assert narrow.control.chroma_box() == 0  # relative noise at which the spatial filter is full)
    as8 = (lambda x: x) if dtype == np.uint8 else (lambda x: np.floor(x / 257.0 + 0.5).astype(np.uint8))
    assert _chroma_error(as8(a), truth) < 0.8 * _chroma_error(as8(b), truth)
    mild = scene(96, 128, seed=3, level=40.0)
    wide, narrow = TemporalDenoiser(output_dtype=dtype), TemporalDenoiser(output_dtype=dtype, chroma_sigma_max=1.0)
    for t in range(12):
        frame = noisy(mild, 1.5, np.random.default_rng(t))
        assert np.array_equal(wide(frame), narrow(frame))
    assert wide.control.chroma_box() == 0


def test_does_not_trail_a_moving_square() -> None:
    rng = np.random.default_rng(2)
    clean = scene(96, 160, seed=3, level=20.0)
    den = TemporalDenoiser()
    side, speed = 16, 5
    for t in range(20):
        frame = clean.copy()
        x0 = 10 + speed * t
        frame[40 : 40 + side, x0 : x0 + side] = 200.0
        out = den(noisy(frame, 3.0, rng)).astype(np.float64)
    truth = np.clip(frame, 0, 255)
    # the spatial fallback blurs the square's edges (a 5×5 Gaussian): look 3 pixels inside and outside them
    square = (slice(43, 40 + side - 3), slice(x0 + 3, x0 + side - 3))
    trail = (slice(40, 40 + side), slice(x0 - 3 * speed, x0 - 3))  # where it was in the last 3 frames
    background = (slice(70, 90), slice(10, 150))
    assert np.abs(out[square] - 200).mean() < 3.0  # the square is where it is, at its level
    trail_error = np.abs(out[trail] - truth[trail]).mean()
    assert trail_error < 3.0, trail_error  # no ghost of a level-200 square over a level-20 background
    assert np.abs(out[background] - truth[background]).mean() < 1.5


@pytest.mark.parametrize("fused", [False, None])
def test_a_faint_object_keeps_its_contrast_and_leaves_no_trail(fused: bool | None) -> None:
    """A dark object 2 levels below a flat background, under noise of σ 3 a channel (its |d| is within the
    noise): the coherent test sees it by its sign. Without the test the object kept half its contrast and
    drew a trail of half its contrast behind it (measured: −1.16 and −0.99 levels)."""
    rng = np.random.default_rng(0)
    den = TemporalDenoiser(output_dtype=np.uint16, fused=fused)
    speed, width = 4, 40
    for t in range(30):
        frame = np.full((96, 192, 3), 12.0, np.float32)
        x0 = 8 + speed * t
        frame[36:60, x0 : x0 + width] -= 2.0
        out = den(noisy(frame, 3.0, rng)) / 257.0
    background = out[70:90, 10:180].mean()
    inside = out[40:56, x0 + 4 : x0 + width - 4].mean() - background
    trail = out[40:56, x0 - 3 * speed - 12 : x0 - 4].mean() - background  # where it was 1 to 6 frames ago
    assert inside == pytest.approx(-2.0, abs=0.4)
    assert abs(trail) < 0.3, trail


def test_follows_a_camera_pan() -> None:
    rng = np.random.default_rng(4)
    big = scene(120, 260, seed=5)
    den = TemporalDenoiser()
    errors = []
    for t in range(16):
        frame = np.ascontiguousarray(big[10:106, 4 * t : 4 * t + 160])
        out = den(noisy(frame, 4.0, rng))
        errors.append(rmse(out[8:-8, 20:-20], np.clip(frame, 0, 255)[8:-8, 20:-20]))
    assert den.control.offset[0] == pytest.approx(-4 * 15, abs=2.0)  # content moved left by 4 px a frame
    assert errors[-1] < 0.5 * errors[0], errors


def test_a_still_camera_keeps_a_zero_offset() -> None:
    """Phase correlation of two noisy thumbnails scatters by about 0.1 thumbnail pixel; those shifts are not
    followed, so the history of a still scene is never moved (it once drifted by a pixel every few dozen
    frames, and two denoisers started at different frames then disagreed for good)."""
    rng = np.random.default_rng(12)
    clean = scene(180, 320, seed=12)
    den = TemporalDenoiser()
    for t in range(150):
        den(noisy(clean, 4.0, rng))
        assert den.control.plane_offsets == [(0, 0), (0, 0)], t
    assert den.control.offset.tolist() == [0.0, 0.0]


@pytest.mark.parametrize(("height", "width", "step"), [(180, 320, (2, 0)), (180, 320, (3, -1)), (360, 640, (4, 2))])
def test_follows_an_integer_pan(height: int, width: int, step: tuple[int, int]) -> None:
    """A pan of ``step`` pixels a frame: the history moves with it, within a pixel on nearly every frame (a
    frame whose shift is not trusted leaves the history where it is; the motion detection takes over)."""
    rng = np.random.default_rng(13)
    frames = 30
    big = scene(height + 2 * frames * abs(step[1]), width + frames * step[0], seed=13, level=20.0)
    y0 = frames * abs(step[1])
    den = TemporalDenoiser()
    moves: list[tuple[int, int]] = []
    for t in range(frames):
        y, x = y0 + step[1] * t, step[0] * t
        den(noisy(big[y : y + height, x : x + width], 3.0, rng))
        if t:
            moves.append(den.control.last_move)
    off = [t for t, (mx, my) in enumerate(moves) if abs(mx + step[0]) > 1 or abs(my + step[1]) > 1]
    assert len(off) <= 2, (off, moves)
    total, truth = np.sum(moves, axis=0), -np.array(step) * (frames - 1)
    assert np.abs(total - truth).max() <= 0.05 * np.abs(truth).max() + 1.0, (total, truth)


def test_scene_cut_restarts_the_history(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    a, b = scene(96, 128, seed=6, level=25.0), scene(96, 128, seed=7, level=70.0)[:, ::-1]
    den = TemporalDenoiser()
    for _ in range(8):
        den(noisy(a, 3.0, rng))
    with caplog.at_level(logging.INFO, logger="nightvision.stream.denoise"):
        first = den(noisy(b, 3.0, rng))
    assert den.cuts == 1 and "scene cut" in caplog.text
    assert rmse(first, np.clip(b, 0, 255)) < 4.5  # the new scene, not a blend with the old one


def test_bad_input_resets_and_goes_on() -> None:
    rng = np.random.default_rng(6)
    den = TemporalDenoiser()
    one = noisy(scene(64, 80), 3.0, rng)
    first = TemporalDenoiser()(one)  # a 1-frame clip: nothing to average yet, the frame itself
    assert first.shape == one.shape and first.dtype == np.uint8
    i420 = cv2.cvtColor(cv2.cvtColor(one, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)
    # (through 4:2:0, which drops the per-pixel chroma noise; rounded its own way, within a level of OpenCV's)
    assert np.abs(first.astype(int) - i420).max() <= 1
    for _ in range(3):
        den(one)
    other = noisy(scene(70, 90), 3.0, rng)  # a camera switching mode: a new size mid-stream
    assert den(other).shape == other.shape and den.resets == 1 and den.frames == 1
    grey = other[:, :, 1].copy()
    out = den(grey)  # a grey source: grey out, state reset
    assert out.shape == grey.shape and den.resets == 2
    for _ in range(5):
        out = den(grey)
    assert out.shape == grey.shape
    assert den(grey[:, :, None]).shape == (70, 90, 1)
    odd = noisy(scene(33, 47), 3.0, rng)
    assert den(odd).shape == odd.shape and den(odd).shape == odd.shape
    bgra = np.dstack([other, np.full(other.shape[:2], 77, np.uint8)])
    out4 = den(bgra)
    assert out4.shape == bgra.shape and (out4[:, :, 3] == 77).all()
    den.reset()
    assert den.frames == 0
    with pytest.raises(ShapeError, match="uint8"):
        den(other.astype(np.float32))
    with pytest.raises(ShapeError, match="expected"):
        den(np.zeros((8, 8, 2), np.uint8))
    thin = np.arange(24, dtype=np.uint8).reshape(1, 8, 3)  # no 4:2:0 chroma: passed through, state reset
    resets = den.resets
    assert np.array_equal(den(thin), thin) and den.resets == resets + 1 and den.frames == 0
    assert np.array_equal(
        TemporalDenoiser(output_dtype=np.uint16)(thin[0, :, None]), thin[0, :, None].astype(np.uint16) * 257
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fused": 0}, "fused must be True, False or None"),
        ({"threads": np.float64(2.0)}, "threads must be a whole number"),
        ({"fused": "no"}, "fused must be True, False or None"),
        ({"threads": 2.5}, "threads must be a whole number"),
        ({"threads": True}, "threads must be a whole number"),
        ({"threads": 0}, "threads must be a whole number"),
        ({"output_dtype": np.float32}, "output_dtype must be"),
        ({"output_dtype": "uint16"}, "output_dtype must be"),
        ({"max_shift": -1.0}, "max_shift must be in"),
        ({"max_shift": 0.0}, "max_shift must be in"),
    ],
)
def test_settings_that_would_not_do_what_they_say_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TemporalDenoiser(**kwargs)  # type: ignore[arg-type]


def test_sixteen_bit_output_keeps_sub_level_precision() -> None:
    """A static dark patch whose true level is 4.4: the 8-bit output rounds it, the 16-bit one keeps it."""
    rng = np.random.default_rng(8)
    truth = np.full((64, 64, 3), 4.4, np.float32)
    den8, den16 = TemporalDenoiser(), TemporalDenoiser(output_dtype=np.uint16)
    for _ in range(30):
        frame = noisy(truth, 1.5, rng)
        out8, out16 = den8(frame), den16(frame)
    assert out16.dtype == np.uint16 and out8.dtype == np.uint8
    centre = (slice(16, 48), slice(16, 48))
    err16 = np.abs(out16[centre] / 257.0 - 4.4).mean()
    err8 = np.abs(out8[centre].astype(np.float64) - 4.4).mean()
    assert err16 < 0.6 * err8, (err8, err16)


@pytest.mark.parametrize(
    ("model", "options", "asked", "expected"),
    [
        ("curve-denoise", {}, "auto", np.uint8),
        ("curve-denoise", {"exact": True}, "auto", np.uint16),
        ("curve-denoise", {"backend": "torch"}, "auto", np.uint16),  # where backend auto goes on a GPU machine
        ("zero-dce++", {}, "auto", np.uint16),
        ("zero-dce++", {}, np.uint8, np.uint8),
    ],
)
def test_the_pipeline_hands_frames_to_its_model_in_the_dtype_it_takes_best(
    tmp_path: Path, model: str, options: dict[str, object], asked: object, expected: type
) -> None:
    """8 bits only to curve-denoise's uint8 coefficients path; 16 bits to every other model and path (its full
    graph with ``exact``, or on PyTorch); a dtype asked for is kept."""
    from nightvision import Enhancer, enhance_path

    if options.get("backend") == "torch":
        pytest.importorskip("torch", reason="the torch backend needs torch")
    enhancer = Enhancer(model, **options)  # type: ignore[arg-type]
    assert enhancer.hand_off_dtype is expected or asked != "auto"
    den = TemporalDenoiser(output_dtype=asked)  # type: ignore[arg-type]
    assert den.output_dtype is np.uint8  # (until a pipeline sets it)
    report = enhance_path(dark_clip(tmp_path), tmp_path / "out.mp4", enhancer=enhancer, pre_stages=[den])
    assert report.frames == 6 and den.output_dtype is expected


def test_only_the_last_pre_stage_hands_the_model_16_bits(tmp_path: Path) -> None:
    """A denoiser followed by another pre stage hands that stage 8 bits, as every pre stage gets them."""
    from nightvision import Enhancer, enhance_path

    seen: list[np.dtype] = []

    class Looks:
        name = "looks"

        def __call__(self, frame: np.ndarray) -> np.ndarray:
            seen.append(frame.dtype)
            return frame

        def reset(self) -> None:
            pass

    first, second = TemporalDenoiser(), TemporalDenoiser(luma_strength=0.5)
    report = enhance_path(
        dark_clip(tmp_path), tmp_path / "out.mp4", enhancer=Enhancer("zero-dce++"), pre_stages=[first, Looks(), second]
    )
    assert report.frames == 6 and set(seen) == {np.dtype(np.uint8)}
    assert first.output_dtype is np.uint8 and second.output_dtype is np.uint16


def dark_clip(folder: Path) -> Path:
    import cv2

    clip = folder / "dark.mp4"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for frame in noisy_clip():
        writer.write(frame)
    writer.release()
    return clip


def noisy_clip() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [noisy(scene(48, 64), 2.0, rng) for _ in range(6)]


def test_the_hand_off_to_a_curve_model_keeps_the_sub_levels() -> None:
    """zero-dce++ after the denoiser, through the staged API as the pipeline runs it: on a static dark ramp
    the 16-bit hand-off leaves a smooth picture, the 8-bit one the rounded levels' steps, multiplied."""
    from nightvision import Enhancer

    rng = np.random.default_rng(5)
    ramp = np.tile(np.linspace(2.0, 9.0, 256, dtype=np.float32), (96, 1))
    truth = np.repeat(ramp[:, :, None], 3, axis=2)
    enhancer = Enhancer("zero-dce++")
    outs = {}
    for dtype in (np.uint8, np.uint16):
        den = TemporalDenoiser(output_dtype=dtype)
        for _ in range(24):
            handed = den(noisy(truth, 1.5, rng))
        outs[dtype] = enhancer.postprocess(enhancer.infer(enhancer.preprocess(handed)))
    # what is left beside the smooth ramp: the 8-bit hand-off's steps, multiplied by the model
    rough = {}
    for dtype, out in outs.items():
        o = out[8:-8, 8:-8].astype(np.float32)
        rough[dtype] = float(np.abs(o - cv2.GaussianBlur(o, (0, 0), 8)).mean()), noise_sigma(out[8:-8, 8:-8])
    assert rough[np.uint16][0] < 0.6 * rough[np.uint8][0] and rough[np.uint16][1] < 0.75 * rough[np.uint8][1], rough


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("size", [(360, 640), (361, 643)])
@pytest.mark.parametrize("sigma", [1.0, 3.0])
def test_chroma_in_a_worker_thread_changes_nothing(dtype: type, size: tuple[int, int], sigma: float) -> None:
    """From 640×360 the chroma, half the rows of the 16-bit colour conversion and of the luma's mix with its
    spatial filter (σ 1: mixed; σ 3: the filtered plane alone) run in a second thread: same output as in one
    thread (odd sizes too, which 4:2:0 pads)."""
    rng = np.random.default_rng(12)
    big = scene(400, 700, seed=13)
    one, two = TemporalDenoiser(threads=1, output_dtype=dtype), TemporalDenoiser(threads=2, output_dtype=dtype)
    h, w = size
    for t in range(6):
        frame = noisy(big[20 : 20 + h, 5 * t : 5 * t + w], sigma, rng)
        assert np.array_equal(one(frame), two(frame))
    assert (0.0 < two.control.spatial_weights()[1] < 1.0) == (sigma == 1.0)
    assert two._executor is not None and one._executor is None


def test_an_error_returns_only_when_the_worker_has_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the luma's output fails, the chroma's output in the worker thread has finished before the error
    reaches the caller (it would go on writing into the denoiser's buffers)."""
    events: list[str] = []
    chroma_out = TemporalDenoiser._chroma_out
    plane_out = TemporalDenoiser._plane_out

    def slow_chroma(self: TemporalDenoiser, *args: Any) -> Any:
        time.sleep(0.05)
        result = chroma_out(self, *args)
        events.append("chroma done")
        return result

    fail = False

    def failing(self: TemporalDenoiser, index: int, dst: Any) -> Any:
        if index == 0 and fail:
            raise RuntimeError("luma output failed")
        return plane_out(self, index, dst)

    monkeypatch.setattr(TemporalDenoiser, "_chroma_out", slow_chroma)
    monkeypatch.setattr(TemporalDenoiser, "_plane_out", failing)
    den = TemporalDenoiser()
    rng = np.random.default_rng(3)
    clean = scene(360, 640)
    for _ in range(3):
        den(noisy(clean, 2.0, rng))
    events.clear()
    fail = True
    with pytest.raises(RuntimeError, match="luma output failed"):
        den(noisy(clean, 2.0, rng))
    events.append("error reached the caller")
    assert events == ["chroma done", "error reached the caller"]


def test_a_very_wide_short_frame_runs_in_one_thread() -> None:
    """No row splits a 2-row plane into bands whose pixels are a multiple of 64: one thread (it raised)."""
    rng = np.random.default_rng(4)
    frames = [rng.integers(0, 40, (2, 115200, 3), dtype=np.uint8) for _ in range(3)]
    for dtype in (np.uint8, np.uint16):
        one, two = TemporalDenoiser(threads=1, output_dtype=dtype), TemporalDenoiser(threads=2, output_dtype=dtype)
        for frame in frames:
            assert np.array_equal(one(frame), two(frame))


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="luma_strength"):
        DenoiseParams(luma_strength=1.0)
    with pytest.raises(ValueError, match="unknown denoiser setting"):
        TemporalDenoiser(luma_strenght=0.5)
    with pytest.raises(ValueError, match="output_dtype"):
        TemporalDenoiser(output_dtype=np.float32)
    with pytest.raises(ValueError, match="threads"):
        TemporalDenoiser(threads=0)
    with pytest.raises(ValueError, match="chroma_sigma_max"):
        DenoiseParams(chroma_sigma_max=0.5)
    for coherent in (0.5, -1.0, 25.0):  # (under one standard error it would call the noise itself motion)
        with pytest.raises(ValueError, match="coherent"):
            DenoiseParams(coherent=coherent)
    assert DenoiseParams(coherent=0.0).coherent == 0.0  # off
    table = DenoiseParams(luma_strength=0.8).weight_table(0.8)
    assert table[0] == round(0.2 * 256) and table[-1] == 256 and (np.diff(table) >= 0).all()


# --- the torch path


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_torch_and_cpu_paths_agree(dtype: type) -> None:
    """Both paths do the same integer arithmetic and share the per-frame decisions, so they agree exactly
    except where OpenCV's float rounding of ``addWeighted`` differs from torch's on a near-tie (one level,
    on at most a few pixels in a thousand)."""
    torch = pytest.importorskip("torch")
    from nightvision.stream.denoise_torch import TorchTemporalDenoiser

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tensors are small: a thread pool only waits on a busy machine
    try:
        _compare(torch, TorchTemporalDenoiser, dtype)
    finally:
        torch.set_num_threads(threads)


def _compare(torch: Any, torch_denoiser: Any, dtype: type) -> None:
    rng = np.random.default_rng(9)
    big = scene(140, 260, seed=10, level=18.0)
    cpu, gpu_path = TemporalDenoiser(output_dtype=dtype), torch_denoiser(output_dtype=dtype)
    scale = 257.0 if dtype == np.uint16 else 1.0
    for t in range(12):
        frame = big[10 : 10 + 96, 3 * t : 3 * t + 128].copy()
        frame[40:60, 5 * t : 5 * t + 20] = 90.0  # and something moving on its own
        x = noisy(frame, 3.0, rng)
        a, b = cpu(x), gpu_path(x)
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        diff = np.abs(a.astype(np.float64) - b.astype(np.float64)) / scale
        assert diff.max() <= 1.0 + 1e-6, (t, diff.max())
        # (the colour is rounded once from the planes: in fixed point here, in float there; ties go either way)
        assert (diff > 0.5).mean() < (1.5e-2 if dtype == np.uint8 else 3e-3)
    assert cpu.noise == pytest.approx(gpu_path.noise)
    assert cpu.control.coherent_ratio == gpu_path.control.coherent_ratio != 2.0  # (measured, the same)
    assert cpu.control.plane_offsets == gpu_path.control.plane_offsets
    tensor = torch.from_numpy(x)
    assert isinstance(gpu_path(tensor), torch.Tensor)


def test_torch_colour_conversion_is_opencvs() -> None:
    torch = pytest.importorskip("torch")
    from nightvision.stream.denoise_torch import bgr_to_i420

    bgr = np.random.default_rng(11).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    y, u, v = bgr_to_i420(torch.from_numpy(bgr))
    n, q = 32 * 48, 16 * 24
    assert np.array_equal(y.numpy(), yuv[:n].reshape(32, 48))
    assert np.array_equal(u.numpy(), yuv[n : n + q].reshape(16, 24))
    assert np.array_equal(v.numpy(), yuv[n + q :].reshape(16, 24))


@pytest.mark.parametrize("fused", [None, False])
def test_a_dark_flat_colour_keeps_its_colour(fused: bool | None) -> None:
    """The 8-bit output is rounded once, from the planes in fixed point: rounding the planes to 8 bits first
    and then converting them shifted this colour's red by 0.9 level (each plane's rounding error times the
    colour matrix's gains), which the model then brightens tenfold into a cast. What is left is the rounding
    of one flat value to 8 bits (below half a level); the 16-bit output keeps the colour."""
    truth = np.array([6.3, 5.15, 7.96])
    rng = np.random.default_rng(0)
    den8, den16 = TemporalDenoiser(output_dtype=np.uint8, fused=fused), TemporalDenoiser(output_dtype=np.uint16)
    for _ in range(20):
        frame = np.clip(np.round(truth + rng.normal(0.0, 2.0, (180, 320, 3))), 0, 255).astype(np.uint8)
        out8, out16 = den8(frame), den16(frame)
    assert np.abs(out8.reshape(-1, 3).mean(0) - truth).max() < 0.35
    assert np.abs(out16.reshape(-1, 3).mean(0) / 257.0 - truth).max() < 0.05
