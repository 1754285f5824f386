"""Exposure control: the wanted brightness is reached, smoothly, without overshoot, and greys stay grey."""

from __future__ import annotations

import numpy as np
import pytest

from nightvision.errors import InputError
from nightvision.evaluation.metrics import mean_luma
from nightvision.stream.exposure import ExposureControl, target_luma, tone_curve


def _scene(level: float, *, seed: int = 0, grey: bool = False, size: tuple[int, int] = (90, 160)) -> np.ndarray:
    """A textured frame of mean ``level`` (uint8 BGR); colour unless ``grey``."""
    rng = np.random.default_rng(seed)
    h, w = size
    ramp = np.linspace(0.4, 1.6, w, dtype=np.float32)[None, :] * np.ones((h, 1), np.float32)
    tint = np.ones(3, np.float32) if grey else np.array([0.8, 1.0, 1.3], np.float32)
    img = level * ramp[:, :, None] * tint[None, None, :] + rng.normal(0, 1.0, (h, w, 1)).astype(np.float32)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def test_tone_curve_is_monotone_and_fixes_black_and_white() -> None:
    for a in (-1.0, -0.3, 0.0, 0.5, 1.0):
        lut = tone_curve(a).astype(int)
        assert lut[0] == 0 and lut[255] == 255
        assert np.all(np.diff(lut) >= 0)
    assert np.array_equal(tone_curve(0.0), np.arange(256))
    assert tone_curve(-0.5)[40] > 40 > tone_curve(0.5)[40]


def test_target_luma_lifts_dark_and_leaves_visible_alone() -> None:
    assert target_luma(5, target=110) == pytest.approx(110)
    assert target_luma(30, target=110) == pytest.approx(110)
    assert target_luma(80, target=110) == pytest.approx(80)
    assert target_luma(61, target=110) == pytest.approx(61, rel=0.25)
    mid = target_luma(45, target=110)
    assert 45 < mid < 110


@pytest.mark.parametrize("model_level", [20.0, 60.0, 140.0])
def test_dark_input_reaches_the_target_whatever_the_model_gave(model_level: float) -> None:
    control = ExposureControl(target=110, momentum=0.0)
    dark = _scene(5)
    out = control(_scene(model_level, seed=1), dark)
    assert mean_luma(out) == pytest.approx(110, abs=4)


def test_visible_input_is_left_near_its_own_brightness() -> None:
    control = ExposureControl(momentum=0.0)
    visible = _scene(80)
    washed_out = _scene(140, seed=2)  # what a curve model makes of an already visible frame
    out = control(washed_out, visible)
    assert mean_luma(out) == pytest.approx(mean_luma(visible), rel=0.1)


def test_step_converges_without_overshoot() -> None:
    """Input brightness steps (not a cut: the same scene, brighter); the output approaches monotonically."""
    control = ExposureControl(target=110, momentum=0.8, cut_threshold=10.0)  # no cut reset: test the smoothing
    lumas = []
    for i in range(60):
        level_in = 8.0 if i < 20 else 90.0  # dark → visible: the wanted brightness falls from 110 to ~90
        frame_in = _scene(level_in, seed=i)
        out = control(_scene(150, seed=100 + i), frame_in)  # the model's output stays bright
        lumas.append(mean_luma(out))
    before, after = np.array(lumas[:20]), np.array(lumas[20:])
    assert np.all(np.abs(before - 110) < 4)
    final = mean_luma(_scene(90))
    assert abs(after[-1] - final) < 4  # converged
    assert np.all(np.diff(after) <= 1.0)  # monotone approach (small tolerance for per-frame histogram noise)
    assert after.min() >= final - 4  # no overshoot below the new level


def test_a_cut_starts_at_the_new_level_without_a_ramp() -> None:
    control = ExposureControl(target=110, momentum=0.95)
    for i in range(10):
        control(_scene(150, seed=i), _scene(8, seed=i))
    visible = _scene(120, seed=50)
    out = control(_scene(200, seed=51), visible)  # a different, bright scene: a cut
    assert control.cuts == 1
    assert mean_luma(out) == pytest.approx(mean_luma(visible), rel=0.1)


def test_grey_source_stays_grey_even_when_the_model_tints_it() -> None:
    control = ExposureControl(momentum=0.0)
    grey_in = _scene(40, grey=True)
    tinted = _scene(160, seed=3)  # a model output with a colour cast
    out = control(tinted, grey_in)
    assert np.array_equal(out[:, :, 0], out[:, :, 1]) and np.array_equal(out[:, :, 1], out[:, :, 2])


def test_neutral_greys_stay_neutral_for_colour_sources() -> None:
    control = ExposureControl(momentum=0.0)
    frame_in = _scene(10)
    model_out = _scene(40, seed=4)
    model_out[:10, :10] = 37  # a neutral patch in the model's output
    out = control(model_out, frame_in)
    patch = out[:10, :10].astype(int)
    assert np.all(patch[:, :, 0] == patch[:, :, 1]) and np.all(patch[:, :, 1] == patch[:, :, 2])


@pytest.mark.parametrize("target", [0, 10, 250, -5])
def test_out_of_range_target_is_refused(target: float) -> None:
    with pytest.raises(InputError, match="exposure target"):
        ExposureControl(target=target)


def test_sixteen_bit_stills_keep_their_depth_and_reach_the_target() -> None:
    control = ExposureControl(target=110, momentum=0.0)
    dark16 = _scene(6).astype(np.uint16) * 257
    model16 = _scene(50, seed=5).astype(np.uint16) * 257
    out = control(model16, dark16)
    assert out.dtype == np.uint16
    assert mean_luma((out // 257).astype(np.uint8)) == pytest.approx(110, abs=5)


def test_in_the_pipeline_it_sees_the_models_input(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """As a post stage of a real pipeline run on a dark clip: the output reaches the target brightness."""
    from nightvision import Enhancer
    from nightvision.sample import make_sample_video
    from nightvision.stream.jobs import enhance_path

    clip = make_sample_video(tmp_path / "dark.mp4", width=160, height=96, seconds=1)
    report = enhance_path(clip, tmp_path / "out.mp4", enhancer=Enhancer("zero-dce++"), post_stages=[ExposureControl()])
    assert report.luma_in < 10
    assert report.luma_out == pytest.approx(110, abs=8)


def test_a_serve_camera_keeps_its_exposure_control_behind_the_16_bit_denoiser() -> None:
    """A camera's model does the exposure control itself (it needs the model's input); behind ``denoise`` that
    input is the denoiser's 16-bit frame (every model but curve-denoise's uint8 path), which skipped it."""
    from nightvision.cluster.camera import _ExposedEnhancer
    from nightvision.stream.denoise import TemporalDenoiser

    rng = np.random.default_rng(2)
    enhancer = _ExposedEnhancer("zero-dce++")
    assert enhancer.hand_off_dtype is np.uint16
    den = TemporalDenoiser(output_dtype=np.uint16)
    lumas = {}
    for target in (None, 110.0):
        enhancer.exposure = None if target is None else ExposureControl(target)
        den.reset()
        for _ in range(20):
            frame = np.clip(rng.normal(8.0, 2.0, (72, 128, 3)), 0, 255).astype(np.uint8)
            out = enhancer.postprocess(enhancer.infer(enhancer.preprocess(den(frame))))
        lumas[target] = mean_luma(out)
    assert abs(lumas[110.0] - 110.0) < 8.0 and abs(lumas[None] - 110.0) > 15.0, lumas
