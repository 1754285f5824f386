"""CurveDenoise's fast path (coefficients graph + OpenCV) against its full graph: within one grey level at odd
sizes, greys stay grey, the strips and threads change nothing, and the shipped coefficients graph is the shipped
weights'."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from nightvision.curve_denoise_fast import STRIP_ROWS, FastCurveDenoise
from nightvision.enhancer import Enhancer
from nightvision.specs import get_spec, sha256_of
from tests.conftest import dark_frame, shared_path

NAME = "curve-denoise"


@pytest.fixture(scope="module")
def fast() -> Enhancer:
    enhancer = Enhancer(NAME, "onnxruntime", threads=2)
    assert enhancer._denoise is not None
    return enhancer


@pytest.fixture(scope="module")
def exact() -> Enhancer:
    enhancer = Enhancer(NAME, "onnxruntime", exact=True, threads=2)
    assert enhancer._denoise is None
    return enhancer


def scene(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A dark frame with what a night scene has: flat areas, coloured patches with hard edges, a lamp, noise."""
    rng = np.random.default_rng(seed)
    img = dark_frame(height, width, seed).astype(np.float32)
    for _ in range(6):
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        img[y0 : y0 + height // 3, x0 : x0 + width // 4] += rng.uniform(0, 40, 3)
    yy, xx = np.mgrid[0:height, 0:width]
    img += 200 * np.exp(-((yy - height / 3) ** 2 + (xx - width / 2) ** 2) / (2 * (0.05 * width + 2) ** 2))[..., None]
    img += rng.normal(0, 4, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _assert_within_one_level(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05, (diff.max(), diff.mean())


@pytest.mark.parametrize("size", [(33, 17), (1, 1), (130, 7), (478, 850), (720, 1280), (1080, 1920)])
def test_fast_path_matches_the_full_graph(fast: Enhancer, exact: Enhancer, size: tuple[int, int]) -> None:
    frame = scene(*size, seed=size[1])
    _assert_within_one_level(fast.enhance(frame), exact.enhance(frame))


def test_fast_path_matches_the_full_graph_on_real_dark_photos(fast: Enhancer, exact: Enhancer) -> None:
    for path in sorted(shared_path("data", "sice").glob("*.jpg"))[:3]:
        photo = cv2.imread(str(path))
        assert photo is not None
        dark = cv2.resize(photo, (851, 479), interpolation=cv2.INTER_AREA) // 6  # a dark exposure, odd size
        _assert_within_one_level(fast.enhance(dark), exact.enhance(dark))


def test_a_grey_input_stays_grey(fast: Enhancer) -> None:
    grey = cv2.cvtColor(scene(97, 203), cv2.COLOR_BGR2GRAY)
    out = fast.enhance(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    assert out.mean() > grey.mean() + 10  # it did brighten


def test_strips_change_nothing(fast: Enhancer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert fast._denoise is not None
    frame = scene(3 * STRIP_ROWS + 5, 301, seed=4)
    strips = fast._denoise(frame)
    monkeypatch.setattr("nightvision.curve_denoise_fast.STRIP_ROWS", 4 * STRIP_ROWS)  # one strip
    whole = FastCurveDenoise(fast._denoise.coefficients, min_side=128)
    assert np.array_equal(whole(frame), strips) and np.array_equal(strips, fast.enhance(frame))


def test_staged_api_takes_the_fast_path_and_16_bit_the_full_graph(fast: Enhancer, exact: Enhancer) -> None:
    frame = scene(64, 96, seed=5)
    job = fast.infer(fast.preprocess(frame))
    assert job.features is not None and job.net_output is not None and job.net_output.shape == (1, 2, 16, 16)
    assert np.array_equal(fast.postprocess(job), fast.enhance(frame))
    deep = frame.astype(np.uint16) * 257
    assert np.array_equal(fast.enhance(deep), exact.enhance(deep))  # no fast path for 16-bit output


def test_the_shipped_coefficients_graph_is_listed_and_made_from_the_shipped_weights(tmp_path: object) -> None:
    spec = get_spec(NAME)
    path = spec.coefficients_path
    assert path is not None and path.is_file()
    assert spec.expected_sha256(path.name) == sha256_of(path)
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from pathlib import Path

    from nightvision.backends.onnxruntime import OnnxRuntimeBackend
    from nightvision.export import export_curve_coefficients

    fresh = export_curve_coefficients(NAME, Path(str(tmp_path)) / "c.onnx")
    blob = np.random.default_rng(0).uniform(0.0, 0.2, (1, 4, 23, 37)).astype(np.float32)
    a = OnnxRuntimeBackend(path, threads=1).run(blob)
    b = OnnxRuntimeBackend(fresh, threads=1).run(blob)
    assert a.shape == (1, 2, 23, 37) and np.allclose(a, b, rtol=1e-5, atol=1e-7)
