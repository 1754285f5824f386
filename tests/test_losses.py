"""Zero-reference losses on inputs whose values can be worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nightvision.errors import ShapeError  # noqa: E402
from nightvision.losses import (  # noqa: E402
    ExposureControlLoss,
    ZeroReferenceLoss,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    neutral_loss,
    spatial_consistency_loss,
)


def test_exposure_is_distance_to_well_exposed_level() -> None:
    assert float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.6))) == pytest.approx(0.0, abs=1e-6)
    assert float(exposure_control_loss(torch.full((2, 3, 32, 32), 0.1), power=1)) == pytest.approx(0.5)
    assert float(exposure_control_loss(torch.full((2, 3, 32, 32), 0.1))) == pytest.approx(0.25)  # squared
    # two 16x16 patches at 0.2 and 1.0: |0.2-0.6| and |1.0-0.6| average to 0.4, their squares to 0.16
    x = torch.cat([torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 1.0)], dim=3)
    assert float(ExposureControlLoss(power=1)(x)) == pytest.approx(0.4)
    assert float(ExposureControlLoss()(x)) == pytest.approx(0.16, abs=1e-6)


def test_colour_constancy_sums_squared_channel_differences() -> None:
    x = torch.empty(1, 3, 8, 8)
    x[:, 0], x[:, 1], x[:, 2] = 0.5, 0.3, 0.1
    assert float(colour_constancy_loss(x)) == pytest.approx(0.2**2 + 0.4**2 + 0.2**2)
    assert float(colour_constancy_loss(torch.full((1, 3, 8, 8), 0.4))) == 0.0


def test_spatial_consistency_counts_lost_contrast() -> None:
    original = torch.full((1, 3, 8, 8), 0.5)
    assert float(spatial_consistency_loss(original, original)) == 0.0
    enhanced = torch.zeros(1, 3, 8, 8)
    enhanced[..., 4:] = 1.0  # 2x2 regions: [[0, 1], [0, 1]]; the input has no contrast
    # two horizontal pairs differ by 1, counted from both sides, over 4 regions: 2 * 2 / 4
    assert float(spatial_consistency_loss(enhanced, original)) == pytest.approx(1.0)


def test_spatial_consistency_sees_inverted_contrast() -> None:
    original = torch.zeros(1, 3, 8, 8)
    original[..., 4:] = 0.5  # regions [[0, .5], [0, .5]]
    inverted = 0.5 - original  # the same contrast, the other way round
    # each of the two horizontal pairs: (−0.5 − 0.5)² = 1, counted from both sides, over 4 regions
    assert float(spatial_consistency_loss(inverted, original)) == pytest.approx(1.0)
    assert float(spatial_consistency_loss(inverted, original, signed=False)) == 0.0  # the paper's |.| form


def test_illumination_smoothness_of_a_ramp() -> None:
    assert float(illumination_smoothness_loss(torch.zeros(1, 24, 8, 8))) == 0.0
    ramp = (torch.arange(8.0) * 0.1).expand(1, 3, 8, 8)  # horizontal steps of 0.1 in each of 3 maps
    assert float(illumination_smoothness_loss(ramp)) == pytest.approx(2 * 3 * 0.01)  # summed over the maps
    eight = (torch.arange(8.0) * 0.1).expand(2, 24, 8, 8)  # Zero-DCE's 24 maps, a batch of 2
    assert float(illumination_smoothness_loss(eight)) == pytest.approx(2 * 24 * 0.01)


def test_neutral_loss_sees_a_tinted_grey_and_ignores_colour_inputs() -> None:
    grey_in = torch.rand(1, 1, 8, 8).expand(1, 3, 8, 8).contiguous()
    colour_in = torch.rand(1, 3, 8, 8)
    x = torch.cat([grey_in, colour_in])
    y = x.clone()
    y[:, 2] += 0.3  # blue added everywhere: per pixel, |−0.1| + |−0.1| + |0.2| = 0.4 from the channel mean
    assert float(neutral_loss(y, x)) == pytest.approx(0.4 / 2)  # only the grey input counts, over a batch of 2
    assert float(neutral_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    assert float(neutral_loss(y[1:], x[1:])) == 0.0  # a colour input may come out in any colour
    _, parts = ZeroReferenceLoss(w_neutral=10.0, patch=4)(y, x, torch.zeros(2, 3, 8, 8))
    assert float(parts["neutral"]) == pytest.approx(0.2)
    assert "neutral" not in ZeroReferenceLoss(patch=4)(y, x, torch.zeros(2, 3, 8, 8))[1]  # off by default


def test_total_uses_the_weights() -> None:
    x = torch.full((1, 3, 16, 16), 0.1)
    y = torch.full((1, 3, 16, 16), 0.1)
    curves = torch.zeros(1, 3, 16, 16)
    total, parts = ZeroReferenceLoss(w_exposure=10.0)(y, x, curves)
    assert float(parts["exposure"]) == pytest.approx(0.25)
    assert float(total) == pytest.approx(2.5)


def test_bad_shapes_are_reported() -> None:
    with pytest.raises(ShapeError, match=r"expected \(B, 3, H, W\), got \(1, 4, 64, 64\)"):
        exposure_control_loss(torch.zeros(1, 4, 64, 64))
    with pytest.raises(ShapeError, match="same shape"):
        spatial_consistency_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="floating"):
        colour_constancy_loss(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


# --- paired losses and their metrics


def test_charbonnier_and_l1_on_known_values() -> None:
    from nightvision.losses import charbonnier_loss, l1_loss

    pred = torch.zeros(1, 3, 4, 4)
    target = torch.full((1, 3, 4, 4), 0.3)
    assert float(l1_loss(pred, target)) == pytest.approx(0.3)
    assert float(charbonnier_loss(pred, target)) == pytest.approx((0.09 + 1e-6) ** 0.5)
    assert float(charbonnier_loss(target, target)) == pytest.approx(1e-3)  # eps where the images agree


def test_psnr_on_a_known_value_and_its_loss() -> None:
    from nightvision.losses import psnr, psnr_loss

    target = torch.zeros(2, 3, 8, 8)
    pred = torch.full_like(target, 0.1)  # MSE 0.01 → 20 dB
    assert psnr(pred, target).tolist() == pytest.approx([20.0, 20.0], abs=1e-4)
    assert float(psnr_loss(pred, target)) == pytest.approx(-2.0, abs=1e-5)


def test_ssim_matches_scikit_image_and_the_numpy_metric() -> None:
    skimage = pytest.importorskip("skimage.metrics")
    from nightvision.evaluation.metrics import ssim as ssim_np
    from nightvision.losses import ssim, ssim_loss

    rng = np.random.default_rng(0)
    a = rng.random((48, 64, 3))
    b = np.clip(a + rng.normal(0, 0.1, a.shape), 0, 1)
    ta = torch.from_numpy(a).permute(2, 0, 1)[None]
    tb = torch.from_numpy(b).permute(2, 0, 1)[None]
    ref = skimage.structural_similarity(
        a, b, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert float(ssim(ta, tb)) == pytest.approx(ref, abs=1e-6)
    assert float(ssim(ta, tb)) == pytest.approx(ssim_np(a * 255, b * 255), abs=1e-3)
    assert float(ssim_loss(ta, ta)) == pytest.approx(0.0, abs=1e-6)


def test_paired_losses_check_shapes() -> None:
    from nightvision.errors import ShapeError
    from nightvision.losses import charbonnier_loss

    with pytest.raises(ShapeError, match=r"pred, target: expected the same shape"):
        charbonnier_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9))


# --- Retinex-Net


def test_retinex_smoothness_on_known_values() -> None:
    from nightvision.losses import retinex_smoothness_loss

    flat_r = torch.full((1, 3, 6, 6), 0.5)
    ramp = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 6, 6) * 0.1  # ∂x = 0.1 on 5 of 6 columns
    assert float(retinex_smoothness_loss(ramp, flat_r)) == pytest.approx(0.1 * 5 / 6, abs=1e-6)
    edge_r = flat_r.clone()
    edge_r[..., 3:] = 1.0  # a reflectance edge excuses the illumination's change near it
    assert float(retinex_smoothness_loss(ramp, edge_r)) < float(retinex_smoothness_loss(ramp, flat_r))


def test_decomposition_loss_is_zero_for_a_perfect_decomposition() -> None:
    from nightvision.losses import decomposition_loss, relight_loss

    r = torch.rand(1, 3, 8, 8)
    i_low, i_high = torch.full((1, 1, 8, 8), 0.2), torch.full((1, 1, 8, 8), 0.8)
    low, high = r * i_low, r * i_high
    assert float(decomposition_loss(low, high, r, i_low, r, i_high)) == pytest.approx(0.0, abs=1e-7)
    assert float(relight_loss(r, i_high, high)) == pytest.approx(0.0, abs=1e-7)
    # a wrong illumination costs its reconstruction error plus the mutual term (weight 0.001)
    off = decomposition_loss(low, high, r, i_low + 0.1, r, i_high)
    expected = float((r * 0.1).abs().mean()) * (1 + 0.001)
    assert float(off) == pytest.approx(expected, rel=1e-5)
