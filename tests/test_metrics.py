"""Metrics: PSNR and SSIM agree with scikit-image; no-reference figures on known images."""

from __future__ import annotations

import numpy as np
import pytest

from nightvision.errors import ShapeError
from nightvision.evaluation.metrics import clipped_fraction, mean_luma, psnr, ssim
from tests.conftest import dark_frame, shared_path

skimage_metrics = pytest.importorskip("skimage.metrics")


def pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    out = []
    for seed, shape in [(1, (64, 80, 3)), (2, (33, 47, 3)), (3, (50, 50))]:
        a = dark_frame(shape[0], shape[1], seed=seed)
        a = a if len(shape) == 3 else a[:, :, 1]
        b = np.clip(a.astype(int) * 3 + rng.normal(0, 9, a.shape), 0, 255).astype(np.uint8)
        out.append((a, b))
    return out


@pytest.mark.parametrize("pair", pairs())
def test_agrees_with_scikit_image(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    channel_axis = -1 if a.ndim == 3 else None
    ref_ssim = skimage_metrics.structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=channel_axis
    )
    assert ssim(a, b) == pytest.approx(ref_ssim, abs=1e-3)
    assert psnr(a, b) == pytest.approx(skimage_metrics.peak_signal_noise_ratio(a, b, data_range=255), abs=1e-3)


@pytest.mark.shared
def test_agrees_on_a_real_exposure_pair() -> None:
    import cv2

    folder = shared_path("data", "sice")
    a, b = cv2.imread(str(folder / "2.jpg")), cv2.imread(str(folder / "5.jpg"))
    ref = skimage_metrics.structural_similarity(
        a, b, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=-1
    )
    assert ssim(a, b) == pytest.approx(ref, abs=1e-3)


def test_known_values() -> None:
    a = np.full((16, 16, 3), 100, np.uint8)
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    assert psnr(a, a + 1) == pytest.approx(10 * np.log10(255**2))
    assert mean_luma(a) == pytest.approx(100.0)
    b = a.copy()
    b[:4, :, 2] = 255
    assert clipped_fraction(b) == pytest.approx(0.25)
    with pytest.raises(ShapeError, match="same shape"):
        psnr(a, a[:8])
    with pytest.raises(ShapeError, match="at least 11"):
        ssim(a[:8, :8], a[:8, :8])
