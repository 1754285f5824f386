"""The paired video benchmark (synthesis, camera geometry, figures, peers) and the noise / colour / flicker
measures it reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision.errors import InputError
from nightvision.evaluation.metrics import colour_cast, flicker, lab_offset, noise_ratio, noise_sigma
from nightvision.evaluation.noise import NoiseLevels, degrade
from nightvision.evaluation.video import (
    MOTIONS,
    SyntheticClip,
    _noise_free,
    camera_path,
    ffmpeg_filter,
    gt_mean,
    region_psnr,
    synthesize_clip,
    temporal_error,
)
from tests.conftest import run_cli, shared_path


def source_image(seed: int = 0) -> np.ndarray:
    """A textured 320×320 BGR 'photo': smooth colour fields plus edges."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 230, (12, 12, 3), dtype=np.uint8)
    img = cv2.resize(small, (320, 320), interpolation=cv2.INTER_CUBIC)
    for _ in range(12):
        x, y = rng.integers(0, 300, 2)
        cv2.rectangle(
            img, (int(x), int(y)), (int(x) + 20, int(y) + 14), tuple(int(c) for c in rng.integers(0, 255, 3)), -1
        )
    return img


def make(motion: str, *, seed: int = 1, bpp: float | None = None, frames: int = 10) -> SyntheticClip:
    return synthesize_clip(
        source_image(),
        motion,
        frames=frames,
        size=(160, 96),
        exposure=1 / 30,
        levels=NoiseLevels(2e-3, 1e-5),
        seed=seed,
        bpp=bpp,
    )


def test_the_noise_free_input_is_the_dark_clip_without_noise_in_8_or_16_bits() -> None:
    """The bound row's input: the clip's darkening alone. In 8 bits it is degrade() without noise; in 16 bits
    the same values, finer (what a perfect denoiser with a 16-bit hand-off could give the model)."""
    clip = make("pan", frames=3)
    eight, sixteen = _noise_free(clip), _noise_free(clip, bits=16)
    rng = np.random.default_rng(0)
    darkened = np.stack([degrade(f, exposure=clip.exposure, levels=NoiseLevels(0.0, 0.0), rng=rng) for f in clip.clean])
    assert eight.dtype == np.uint8 and np.array_equal(eight, darkened)
    assert sixteen.dtype == np.uint16 and sixteen.shape == eight.shape
    assert np.abs(sixteen / 257.0 - eight).max() <= 0.5 + 1e-6  # the same values ...
    assert len(np.unique(sixteen)) > 4 * len(np.unique(eight))  # ... without the 8-bit steps


def test_synthesis_is_deterministic() -> None:
    a, b, c = make("object"), make("object"), make("object", seed=2)
    assert np.array_equal(a.clean, b.clean) and np.array_equal(a.noisy, b.noisy)
    assert np.array_equal(a.homographies, b.homographies)
    assert not np.array_equal(a.noisy, c.noisy)
    assert a.clean.shape == a.noisy.shape == (10, 96, 160, 3)
    assert a.noisy.mean() < a.clean.mean() / 3  # dark: 1/30 of the light


def test_h264_input_is_deterministic() -> None:
    a, b = make("pan", bpp=0.3, frames=6), make("pan", bpp=0.3, frames=6)
    assert np.array_equal(a.noisy, b.noisy)
    raw = make("pan", bpp=None, frames=6)
    assert np.abs(a.noisy.astype(float).mean() - raw.noisy.astype(float).mean()) < 1.0  # no level shift


@pytest.mark.parametrize("motion", MOTIONS)
def test_known_camera_motion_warps_each_frame_onto_the_next(motion: str) -> None:
    clip = make(motion)
    floor = temporal_error(clip, list(clip.clean))
    assert floor < 2.5, floor  # warping and resampling only (percent of the level)
    if motion in ("static", "object"):
        assert floor == 0.0
    else:  # the frames do move: without the homography they would not match
        shifted = SyntheticClip(**{**clip.__dict__, "homographies": np.repeat(clip.homographies[:1], 10, axis=0)})
        assert temporal_error(shifted, list(clip.clean)) > 2 * floor + 0.5


def test_camera_paths_stay_inside_the_source() -> None:
    rng = np.random.default_rng(0)
    for motion in MOTIONS:
        hs = camera_path(motion, 60, (448, 256), (512, 512), rng)
        corners = np.array([[0, 0, 1], [447, 0, 1], [0, 255, 1], [447, 255, 1]], float).T
        xy = np.einsum("tij,jk->tik", hs, corners)
        xy = xy[:, :2] / xy[:, 2:]
        assert xy.min() >= -0.5 and xy.max() <= 511.5


def test_temporal_error_sees_flicker_and_region_psnr_sees_ghosts() -> None:
    clip = make("object")
    rng = np.random.default_rng(3)
    noisy = [np.clip(f + rng.normal(0, 8, f.shape), 0, 255).astype(np.uint8) for f in clip.clean]
    assert temporal_error(clip, noisy) > 3 * temporal_error(clip, list(clip.clean)) + 1.0
    assert region_psnr(clip, list(clip.clean)) == float("inf")
    pairs = zip(clip.clean, clip.clean[1:], strict=False)
    ghost = [clip.clean[0]] + [((a.astype(int) + b) // 2).astype(np.uint8) for a, b in pairs]
    assert region_psnr(clip, ghost) < 40.0  # the object left a trail
    assert np.isnan(region_psnr(make("pan"), list(make("pan").clean)))


def test_gt_mean_matches_the_mean_luma() -> None:
    from nightvision.evaluation.metrics import mean_luma

    target = source_image()
    dark = (target * 0.3).astype(np.uint8)
    assert mean_luma(gt_mean(dark, target)) == pytest.approx(mean_luma(target), rel=0.01)


# --- the measures


def test_noise_sigma_estimates_gaussian_noise() -> None:
    rng = np.random.default_rng(4)
    flat = np.full((200, 300), 100.0)
    for sigma in (2.0, 5.0):
        assert noise_sigma(flat + rng.normal(0, sigma, flat.shape)) == pytest.approx(sigma, rel=0.05)
    assert noise_sigma(np.tile(np.linspace(0, 255, 300), (200, 1))) < 0.01  # a ramp is not noise


def test_noise_ratio_is_one_for_plain_gain_and_lower_for_a_denoiser() -> None:
    rng = np.random.default_rng(5)
    dark = np.clip(20 + rng.normal(0, 3, (120, 160, 3)), 0, 255).astype(np.uint8)
    gained = np.clip(dark.astype(float) * 4 + 0.5, 0, 255).astype(np.uint8)
    assert noise_ratio(gained, dark) == pytest.approx(1.0, abs=0.05)
    smoothed = cv2.GaussianBlur(gained, (5, 5), 0)
    assert noise_ratio(smoothed, dark) < 0.5


def test_colour_cast_is_zero_for_grey_and_catches_a_tint() -> None:
    grey = np.full((50, 50, 3), 90, np.uint8)
    assert colour_cast(grey) < 0.5
    tinted = grey.copy()
    tinted[:, :, 0] = 120  # more blue
    _, b = lab_offset(tinted)
    assert b < -5 and colour_cast(tinted) > 5


def test_flicker_measures_brightness_pumping() -> None:
    steady = [np.full((8, 8, 3), 100, np.uint8)] * 5
    assert flicker(steady) == 0.0
    pumping = [np.full((8, 8, 3), v, np.uint8) for v in (100, 110, 100, 110)]
    assert flicker(pumping) == pytest.approx(10 / 105, rel=1e-3)
    with pytest.raises(ValueError):
        flicker(steady[:1])


# --- peers


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary (apt-get install ffmpeg)")
def test_ffmpeg_filters_run_on_yuv_without_shifting_levels() -> None:
    frames = make("static").noisy
    through_i420 = np.stack(
        [cv2.cvtColor(cv2.cvtColor(f, cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420) for f in frames]
    )
    assert np.array_equal(ffmpeg_filter(frames, "null"), through_i420)  # the pipes are exact
    denoised = ffmpeg_filter(frames, "hqdn3d")
    assert denoised.shape == frames.shape
    assert noise_sigma(denoised[-1]) < noise_sigma(frames[-1])


# --- the whole benchmark on the real data


@pytest.mark.shared
@pytest.mark.slow
def test_video_set_is_built_from_test_scenes_and_cached(tmp_path: pytest.TempPathFactory) -> None:
    from nightvision.evaluation.pairs import build_pairs
    from nightvision.evaluation.video import build_video_set

    sice = shared_path("data", "sice")
    clips = build_video_set(sice, frames=6, cache_root=tmp_path)
    again = build_video_set(sice, frames=6, cache_root=tmp_path)  # from the cache
    assert [c.motion for c in clips] == list(MOTIONS)
    for a, b in zip(clips, again, strict=True):
        assert np.array_equal(a.noisy, b.noisy) and np.array_equal(a.clean, b.clean)
    train = {str(p.high) for p in build_pairs(sice) if p.split == "train"} | {
        str(p.low) for p in build_pairs(sice) if p.split == "train"
    }
    assert not {c.source for c in clips} & train


@pytest.mark.shared
def test_a_bracket_folder_with_too_few_test_scenes_is_one_line_and_caches_nothing(tmp_path: Path) -> None:
    """The first 130 SICE images hold one test scene: a ValueError from the sampler, and an empty folder left in
    the cache at each try."""
    from nightvision.evaluation.video import build_video_set

    sice = shared_path("data", "sice")
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted(sice.glob("*.jpg"), key=lambda p: int(p.stem))[:130]:
        shutil.copy(path, few / path.name)
    cache = tmp_path / "cache"
    with pytest.raises(InputError, match=r"test scene\(s\); the video set needs 6 .*give the whole SICE folder"):
        build_video_set(few, frames=4, cache_root=cache)
    assert not cache.exists() or not any(cache.iterdir())


@pytest.mark.shared
@pytest.mark.slow
def test_eval_video_command_writes_the_table_and_refuses_to_overwrite(tmp_path: Path) -> None:
    sice, clip = shared_path("data", "sice"), shared_path("videos", "dim-room-audio.mp4")
    out = tmp_path / "video"
    args = ["eval", "--video", "--data", str(sice), "--models", "zero-dce++", "--frames", "3", "--no-peers"]
    env = {"NIGHTVISION_CACHE": str(tmp_path / "cache")}
    done = run_cli(*args, "--no-fps", "--clips", str(clip), "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    rows = {r["method"]: r for r in json.loads((out / "video.json").read_text())["rows"]}
    assert {"zero-dce++", "zero-dce++ + 3dnr"} <= set(rows)
    assert rows["zero-dce++"]["psnr"] > rows["input (dark, no enhancement)"]["psnr"] + 3  # it brightens
    real = json.loads((out / "video.json").read_text())["real"]
    assert {r["clip"] for r in real} == {clip.name} and all(r["frames"] == 3 for r in real)
    assert cv2.imread(str(out / "contact-sheet.jpg")) is not None and "| zero-dce++ + 3dnr |" in done.stdout
    again = run_cli(*args, "--no-fps", "-o", str(out), env=env)
    assert again.returncode == 2 and "already exist" in again.stderr and len(again.stderr.strip().splitlines()) == 1
