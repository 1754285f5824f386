"""Frame <-> tensor conversion: channel order, range, padding and cropping."""

from __future__ import annotations

import numpy as np
import pytest

from nightvision.errors import ShapeError
from nightvision.preprocess import from_tensor, pad_amounts, to_tensor


def test_to_tensor_swaps_to_rgb_and_scales() -> None:
    bgr = np.zeros((2, 3, 3), np.uint8)
    bgr[..., 0] = 255  # blue
    x = to_tensor(bgr)
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    assert np.allclose(x[0, 2], 1.0) and np.allclose(x[0, :2], 0.0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_round_trip_is_exact(dtype: type) -> None:
    rng = np.random.default_rng(0)
    top = np.iinfo(dtype).max
    bgr = rng.integers(0, top + 1, (31, 17, 3)).astype(dtype)
    assert np.array_equal(from_tensor(to_tensor(bgr), 31, 17, dtype), bgr)


def test_padding_reaches_the_multiple_and_is_cropped_back() -> None:
    assert pad_amounts(1080, 1920, 16) == (8, 0)
    bgr = np.random.default_rng(1).integers(0, 256, (1080, 1913, 3)).astype(np.uint8)
    x = to_tensor(bgr, multiple=16)
    assert x.shape == (1, 3, 1088, 1920)
    assert np.array_equal(from_tensor(x, 1080, 1913), bgr)


def test_out_of_range_values_saturate() -> None:
    x = np.full((1, 3, 2, 2), 1.7, np.float32)
    x[..., 0, 0] = -0.3
    out = from_tensor(x, 2, 2)
    assert out[1, 1, 0] == 255 and out[0, 0, 0] == 0


def test_wrong_shapes_are_refused() -> None:
    with pytest.raises(ShapeError, match=r"expected \(H, W, 3\) BGR"):
        to_tensor(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(ShapeError, match=r"expected \(1, 3, H, W\)"):
        from_tensor(np.zeros((3, 4, 4), np.float32), 4, 4)
