"""Zero-reference losses on inputs whose values can be worked out by hand."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from nightvision.errors import ShapeError  # noqa: E402
from nightvision.losses import (  # noqa: E402
    ExposureControlLoss,
    ZeroReferenceLoss,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    spatial_consistency_loss,
)


def test_exposure_is_distance_to_well_exposed_level() -> None:
    assert float(exposure_control_loss(torch.full((1, 3, 32, 32), 0.6))) == pytest.approx(0.0, abs=1e-6)
    assert float(exposure_control_loss(torch.full((2, 3, 32, 32), 0.1))) == pytest.approx(0.5)
    # two 16x16 patches at 0.2 and 1.0: |0.2-0.6| and |1.0-0.6| average to 0.4
    x = torch.cat([torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 1.0)], dim=3)
    assert float(ExposureControlLoss()(x)) == pytest.approx(0.4)


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


def test_illumination_smoothness_of_a_ramp() -> None:
    assert float(illumination_smoothness_loss(torch.zeros(1, 24, 8, 8))) == 0.0
    ramp = (torch.arange(8.0) * 0.1).expand(1, 3, 8, 8)  # horizontal steps of 0.1
    assert float(illumination_smoothness_loss(ramp)) == pytest.approx(2 * 0.01)


def test_total_uses_the_weights() -> None:
    x = torch.full((1, 3, 16, 16), 0.1)
    y = torch.full((1, 3, 16, 16), 0.1)
    curves = torch.zeros(1, 3, 16, 16)
    total, parts = ZeroReferenceLoss(w_exposure=10.0)(y, x, curves)
    assert float(parts["exposure"]) == pytest.approx(0.5)
    assert float(total) == pytest.approx(5.0)


def test_bad_shapes_are_reported() -> None:
    with pytest.raises(ShapeError, match=r"expected \(B, 3, H, W\), got \(1, 4, 64, 64\)"):
        exposure_control_loss(torch.zeros(1, 4, 64, 64))
    with pytest.raises(ShapeError, match="same shape"):
        spatial_consistency_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ShapeError, match="floating"):
        colour_constancy_loss(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
