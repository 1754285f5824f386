"""The sensor-noise model: sRGB curves, Unprocessing's level sampling, and the measured noise of flat patches
against the formula it claims."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nightvision.errors import ShapeError
from nightvision.evaluation.noise import (
    EXPOSURE_RANGE,
    SHOT_RANGE,
    NoiseLevels,
    add_sensor_noise,
    degrade,
    linear_to_srgb,
    noise_std,
    sample_exposure,
    sample_levels,
    srgb_noise_std,
    srgb_to_linear,
)


def test_srgb_curves_invert_each_other_and_hit_known_points() -> None:
    x = np.linspace(0.0, 1.0, 1001, dtype=np.float32)
    assert np.abs(linear_to_srgb(srgb_to_linear(x)) - x).max() < 1e-5
    assert float(srgb_to_linear(np.array(0.5))) == pytest.approx(0.21404, abs=1e-4)  # the IEC 61966-2-1 curve
    assert float(linear_to_srgb(np.array(0.002))) == pytest.approx(12.92 * 0.002, rel=1e-5)  # linear toe
    assert float(linear_to_srgb(np.array(-0.1))) == 0.0


def test_levels_follow_the_unprocessing_recipe() -> None:
    rng = np.random.default_rng(0)
    draws = [sample_levels(rng) for _ in range(2000)]
    shot = np.log([d.shot for d in draws])
    read = np.log([d.read for d in draws])
    assert math.log(SHOT_RANGE[0]) <= shot.min() and shot.max() <= math.log(SHOT_RANGE[1])
    # log read = 2.18 log shot + 1.20 + N(0, 0.26²)
    residual = read - (2.18 * shot + 1.20)
    assert abs(residual.mean()) < 0.03 and residual.std() == pytest.approx(0.26, rel=0.1)
    # uniform in log shot: quartiles where they should be
    q = (shot - math.log(SHOT_RANGE[0])) / (math.log(SHOT_RANGE[1]) - math.log(SHOT_RANGE[0]))
    assert np.percentile(q, [25, 50, 75]) == pytest.approx([0.25, 0.5, 0.75], abs=0.04)
    assert sample_levels(rng, u=0.0).shot == pytest.approx(SHOT_RANGE[0])
    assert sample_exposure(rng, u=1.0) == pytest.approx(EXPOSURE_RANGE[1])
    assert EXPOSURE_RANGE[0] <= sample_exposure(rng) <= EXPOSURE_RANGE[1]
    with pytest.raises(ValueError, match="u must be"):
        sample_levels(rng, u=1.5)


@pytest.mark.parametrize("levels", [NoiseLevels(1e-3, 1e-6), NoiseLevels(0.01, 2e-4)])
def test_linear_noise_variance_matches_the_formula_on_flat_patches(levels: NoiseLevels) -> None:
    rng = np.random.default_rng(1)
    for x in (0.002, 0.02, 0.2):
        patch = np.full((256, 256), x, np.float32)
        measured = add_sensor_noise(patch, levels, rng).var()
        assert measured == pytest.approx(levels.shot * x + levels.read, rel=0.03)
        assert float(noise_std(x, levels)) ** 2 == pytest.approx(levels.shot * x + levels.read)


@pytest.mark.parametrize(("grey", "exposure", "levels"), [(200, 1 / 10, NoiseLevels(1e-3, 1e-6)),
                                                         (160, 1 / 20, NoiseLevels(4e-4, 3e-7))])  # fmt: skip
def test_8bit_noise_matches_the_model_through_the_srgb_curve(grey: int, exposure: float, levels: NoiseLevels) -> None:
    """A flat patch through degrade(): mean and standard deviation in 8-bit levels as the model predicts
    (first order through the sRGB slope, plus rounding), where clipping at 0 is negligible."""
    clean = np.full((300, 300, 3), grey, np.uint8)
    out = degrade(clean, exposure=exposure, levels=levels, rng=np.random.default_rng(2)).astype(np.float64)
    x = float(srgb_to_linear(np.array(grey / 255.0))) * exposure
    assert float(noise_std(x, levels)) < x / 4  # the regime the first-order prediction is for
    assert out.mean() == pytest.approx(255.0 * float(linear_to_srgb(np.array(x))), abs=0.3)
    assert out.std() == pytest.approx(float(srgb_noise_std(x, levels)), rel=0.06)


def test_degrade_is_deterministic_and_checks_its_input() -> None:
    clean = np.random.default_rng(3).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    levels = NoiseLevels(2e-3, 1e-5)
    a = degrade(clean, exposure=0.05, levels=levels, rng=np.random.default_rng(7))
    b = degrade(clean, exposure=0.05, levels=levels, rng=np.random.default_rng(7))
    c = degrade(clean, exposure=0.05, levels=levels, rng=np.random.default_rng(8))
    assert a.dtype == np.uint8 and a.shape == clean.shape
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert a.mean() < clean.mean() / 3  # 1/20 of the light
    noiseless = degrade(clean, exposure=0.05, levels=NoiseLevels(0.0, 0.0), rng=np.random.default_rng(0))
    expected = np.floor(255 * linear_to_srgb(srgb_to_linear(clean / 255.0) * 0.05) + 0.5)
    assert np.abs(noiseless - expected).max() <= 1
    with pytest.raises(ShapeError):
        degrade(clean.astype(np.float32), exposure=0.05, levels=levels, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="exposure"):
        degrade(clean, exposure=0.0, levels=levels, rng=np.random.default_rng(0))
