"""Bounded memory: tile plans, seamless blending (tiled vs whole ≥ 45 dB for every model), global statistics
shared between tiles, the fast curve path in strips, and the peak memory of a large image."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from nightvision import Enhancer, list_specs
from nightvision.errors import InputError
from nightvision.evaluation.metrics import psnr
from nightvision.preprocess import from_tensor, to_tensor
from nightvision.specs import get_spec
from nightvision.tiling import (
    DEFAULT_MEMORY_BUDGET_MB,
    PROFILES,
    TilingProfile,
    _axis_starts,
    _axis_weights,
    _PlainEngine,
    make_engine,
    min_tile,
    plan_tiles,
    profile_of,
    run_tiled,
)
from tests.conftest import dark_frame

SHIPPED = [s.name for s in list_specs() if s.has_onnx]


def varied_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A dark textured frame whose brightness and colour change across it (tiles see different statistics)."""
    frame = dark_frame(height, width, seed).astype(np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frame[:, :, 0] *= 1 + 4 * xx / width
    frame[:, :, 2] *= 1 + 3 * yy / height
    frame[: height // 3, : width // 3] *= 0.3
    return np.clip(frame, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("length", [64, 200, 385, 512, 1000, 1088, 4111])
@pytest.mark.parametrize(("tile", "overlap", "align"), [(64, 16, 16), (128, 32, 8), (96, 48, 1), (256, 96, 16)])
def test_tiles_cover_every_pixel_with_windows_that_sum_to_one(length: int, tile: int, overlap: int, align: int) -> None:
    tile = min(tile, length)
    starts = _axis_starts(length, tile, overlap, align)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(s % align == 0 for s in starts[:-1])
    assert all(b - a <= tile - overlap for a, b in itertools.pairwise(starts))  # neighbours overlap enough
    total = np.zeros(length)
    for s, w in zip(starts, _axis_weights(starts, tile, length), strict=True):
        assert w.shape == (tile,) and (w >= 0).all()
        total[s : s + tile] += w
    assert np.allclose(total, 1.0, atol=1e-6)


def test_video_frames_run_whole_and_a_64_mp_image_in_tiles_within_the_budget() -> None:
    for name in SHIPPED:
        spec, profile = get_spec(name), profile_of(name)
        options: dict[str, Any] = {
            "profile": profile,
            "bytes_per_pixel": profile.onnxruntime_bytes_per_pixel,
            "tile_bytes_per_pixel": profile.tile_bytes_per_pixel,
            "multiple": spec.pad_multiple,
        }
        whole_720p = plan_tiles(720, 1280, frame_bytes=720 * 1280 * 6, **options)
        if name in ("mirnet-v2", "retinexnet"):  # full-resolution features: 3.1-5.6 GB at 720p, tiled by design
            assert whole_720p is not None and whole_720p.count <= 6, (name, whole_720p)
        else:
            assert whole_720p is None, name
        plan = plan_tiles(8000, 8000, frame_bytes=8000 * 8000 * 6, **options)
        assert plan is not None and plan.count > 1
        assert plan.tile_height % spec.pad_multiple == 0 and plan.tile_width % spec.pad_multiple == 0
        network = plan.tile_height * plan.tile_width * profile.tile_bytes_per_pixel
        accumulator = 2 * plan.tile_height * plan.padded_width * 12
        assert 8000 * 8000 * 6 + network + accumulator <= DEFAULT_MEMORY_BUDGET_MB * 2**20
        # not needlessly small (MIRNet-v2, 6 kB a pixel, gets 460-pixel tiles: what 1.3 GB allows)
        assert min(plan.tile_height, plan.tile_width) >= 3 * profile.overlap, (name, plan.tile_height)


def test_tile_size_follows_the_budget_and_max_tile() -> None:
    profile = TilingProfile(1000, 1000, 1000, overlap=32)
    small = plan_tiles(4000, 6000, profile=profile, bytes_per_pixel=1000, multiple=16, budget_mb=256)
    large = plan_tiles(4000, 6000, profile=profile, bytes_per_pixel=1000, multiple=16, budget_mb=1024)
    assert small is not None and large is not None and small.count > large.count
    assert max(small.tile_height, small.tile_width) < max(large.tile_height, large.tile_width)
    assert plan_tiles(100, 100, profile=profile, bytes_per_pixel=1000, multiple=16) is None
    forced = plan_tiles(100, 100, profile=profile, bytes_per_pixel=1000, multiple=16, max_tile=80)
    assert forced is not None and forced.count > 1
    assert forced.tile_height <= 80 and forced.tile_height % 16 == 0 and forced.padded_height == 112


def test_tiles_are_balanced_rather_than_as_large_as_allowed() -> None:
    """1080p in four tiles: two rows of about half the height, not two 1024-row tiles overlapping by 960."""
    profile = TilingProfile(1000, 1000, 1000, overlap=96)
    plan = plan_tiles(1080, 1920, profile=profile, bytes_per_pixel=1000, multiple=16, max_tile=1024)
    assert plan is not None and (len(plan.ys), len(plan.xs)) == (2, 2)
    assert plan.tile_height <= 1088 // 2 + 96 + 16 and plan.tile_width <= 1920 // 2 + 96 + 16
    covered = len(plan.ys) * plan.tile_height * len(plan.xs) * plan.tile_width
    assert covered < 1.25 * 1088 * 1920


def test_enhancer_options_are_checked() -> None:
    with pytest.raises(InputError, match="max_tile must be at least 192 pixels for nafnet-s, got 100"):
        Enhancer("nafnet-s", "onnxruntime", max_tile=100)
    with pytest.raises(InputError, match="memory budget must be a positive number of MB, got 0"):
        Enhancer("zero-dce", "onnxruntime", memory_budget_mb=0)


def _whole_and_tiled(name: str, frame: np.ndarray, **options: Any) -> tuple[np.ndarray, np.ndarray]:
    whole = Enhancer(name, "onnxruntime", threads=1, **options).enhance(frame)
    tiler = Enhancer(name, "onnxruntime", threads=1, max_tile=min_tile(profile_of(name), 1) + 64, **options)
    job = tiler.preprocess(frame)
    assert job.tiles is not None and job.tiles.count >= 4
    return whole, tiler.postprocess(tiler.infer(job))


@pytest.mark.parametrize("name", [n for n in SHIPPED if not get_spec(n).estimator_onnx and n != "nafnet-s"])
def test_tiled_matches_whole_on_onnxruntime(name: str) -> None:
    """nafnet-s: test_nafnet_needs_its_global_pools_shared_between_tiles. MIRNet-v2's pools and context
    averages are shared between tiles through the rewritten graph (the ``onnx`` package)."""
    if profile_of(name).global_pooling:
        pytest.importorskip("onnx")
    frame = varied_frame(340, 420)
    whole, tiled = _whole_and_tiled(name, frame)
    assert tiled.shape == frame.shape and tiled.dtype == np.uint8
    assert psnr(tiled, whole) >= 45.0


def test_tiled_matches_whole_on_the_full_zero_dce_pp_graph() -> None:
    """--exact runs the full graph, which downsamples inside: tiles on its 8-pixel grid see the same copy."""
    frame = varied_frame(470, 700)
    whole, tiled = _whole_and_tiled("zero-dce++", frame, exact=True)
    assert psnr(tiled, whole) >= 45.0


def test_nafnet_needs_its_global_pools_shared_between_tiles() -> None:
    """Per-tile channel attention tints each tile differently; sharing the whole frame's means removes it."""
    pytest.importorskip("onnx")
    frame = varied_frame(300, 380)
    whole, tiled = _whole_and_tiled("nafnet-s", frame)
    assert psnr(tiled, whole) >= 45.0
    enhancer = Enhancer("nafnet-s", "onnxruntime", threads=1)
    plan = plan_tiles(300, 380, profile=profile_of("nafnet-s"), bytes_per_pixel=1, multiple=16, max_tile=256)
    assert plan is not None
    shared = make_engine(enhancer.backend, "nafnet-s", onnx_path=get_spec("nafnet-s").onnx_path, threads=1)
    assert shared.pools == 9
    assert psnr(run_tiled(frame, plan, _PlainEngine(enhancer.backend), multiple=16), whole) < 35.0


def test_16_bit_and_float_frames_are_tiled_in_their_own_precision() -> None:
    frame8 = varied_frame(200, 260)
    enhancer = Enhancer("zero-dce", "onnxruntime", threads=1, max_tile=96)
    out8 = enhancer.enhance(frame8).astype(np.float64)
    out16 = enhancer.enhance(frame8.astype(np.uint16) * 257)
    outf = enhancer.enhance(frame8.astype(np.float32) / 255)
    assert out16.dtype == np.uint16 and outf.dtype == np.float32
    assert np.abs(out16 / 257.0 - out8).max() <= 1.0
    assert np.abs(outf * 255.0 - out8).max() <= 1.0


class _TorchModule:
    """A backend around a bare PyTorch module (models without shipped weights)."""

    def __init__(self, model: Any) -> None:
        import torch

        self.name, self.device, self.model = "torch:cpu", torch.device("cpu"), model.eval()

    def run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out: np.ndarray = self.model(torch.from_numpy(x)).numpy()
        return out

    def close(self) -> None:
        pass


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "kwargs", "pools"),
    [
        ("nafnet", {"width": 8}, 9),  # nafnet-s's architecture at half width
        ("mirnet-v2", {"features": 16, "groups": 1, "blocks": 1}, 6),  # its pools and context blocks, shallower
        ("retinexnet", {"channels": 16}, 0),
        ("zero-dce", {}, 0),
    ],
)
def test_tiled_matches_whole_on_pytorch(name: str, kwargs: dict[str, Any], pools: int) -> None:
    """Every architecture through the PyTorch engine (hooks share the global statistics), random weights."""
    torch = pytest.importorskip("torch")
    from nightvision import models

    torch.manual_seed(0)
    net = models.create(name, pretrained=False, **kwargs)
    for p in net.parameters():  # zero-initialised residual scales would make some blocks identities
        p.data.add_(torch.randn_like(p) * 0.02)
    backend = _TorchModule(net)
    spec = get_spec(name)
    frame = varied_frame(176, 208)
    whole = from_tensor(backend.run(to_tensor(frame, multiple=spec.pad_multiple)), 176, 208)
    profile = TilingProfile(1, 1, 1, overlap=48, align=profile_of(name).align)
    plan = plan_tiles(176, 208, profile=profile, bytes_per_pixel=1, multiple=spec.pad_multiple, max_tile=128)
    assert plan is not None and plan.count >= 4
    engine = make_engine(backend, name)
    assert engine.pools >= (1 if pools else 0) and (engine.pools > 0) == (pools > 0)
    assert psnr(run_tiled(frame, plan, engine, multiple=spec.pad_multiple), whole) >= 45.0


def test_fast_curve_path_in_strips_matches_one_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    import nightvision.curves as curves

    enhancer = Enhancer("zero-dce++", "onnxruntime", threads=1)
    frame = varied_frame(301, 517)
    one_piece = enhancer.enhance(frame).astype(int)
    monkeypatch.setattr(curves, "STRIP_PIXELS", 517 * 7)  # strips of 7 rows
    strips = list(curves.upsampled_strips(np.zeros((30, 52, 3), np.float32), 301, 517, max_pixels=517 * 7))
    assert len(strips) == 43 and strips[-1][1] == 301
    in_strips = enhancer.enhance(frame).astype(int)
    assert np.abs(in_strips - one_piece).max() <= 1 and (in_strips != one_piece).mean() < 1e-3
    frame16 = frame.astype(np.uint16) * 257  # 16-bit out: the literal curve, in strips too
    assert np.abs(enhancer.enhance(frame16) / 257.0 - one_piece).max() <= 1.0


def test_fast_curve_path_takes_frames_wider_or_taller_than_remap_allows() -> None:
    """cv2.remap refuses maps with a side of 32767 or more (a 10923-pixel-wide frame, as 3 × width)."""
    enhancer = Enhancer("zero-dce++", "onnxruntime", threads=1)
    for shape in [(2, 12000), (33000, 2)]:
        frame = dark_frame(*shape)
        out = enhancer.enhance(frame)
        assert out.shape == frame.shape and out.mean() > frame.mean() + 10


@pytest.mark.parametrize("name", SHIPPED)
def test_staged_api_takes_16_bit_frames(name: str) -> None:
    """The F1 denoiser hands over uint16 frames: same output as the 8-bit frame they came from."""
    enhancer = Enhancer(name, "onnxruntime", threads=1)
    frame8 = varied_frame(72, 96)
    out8 = enhancer.postprocess(enhancer.infer(enhancer.preprocess(frame8))).astype(int)
    out16 = enhancer.postprocess(enhancer.infer(enhancer.preprocess(frame8.astype(np.uint16) * 257)))
    assert out16.dtype == np.uint8 and out16.shape == frame8.shape
    assert np.abs(out16.astype(int) - out8).max() <= 1


def test_16_bit_levels_between_8_bit_ones_are_interpolated_not_truncated() -> None:
    """Fractional levels are looked up between the table's columns: within one level of the literal curve,
    where dropping the low bits is up to 8 levels off on dark frames (measured)."""
    enhancer = Enhancer("zero-dce++", "onnxruntime", threads=1)
    frame16 = np.random.default_rng(0).integers(0, 40 * 257, (120, 160, 3)).astype(np.uint16)
    staged = enhancer.postprocess(enhancer.infer(enhancer.preprocess(frame16))).astype(int)
    literal = np.round(enhancer.enhance(frame16) / 257.0)  # 16 bits out: the curve evaluated exactly
    assert np.abs(staged - literal).max() <= 1
    truncated = enhancer.postprocess(enhancer.infer(enhancer.preprocess((frame16 // 257).astype(np.uint8))))
    assert np.abs(truncated - literal).max() >= 4


@pytest.mark.slow
def test_peak_memory_of_a_large_image_stays_within_the_budget() -> None:
    """Zero-DCE on ONNX Runtime needs about 1 kB per pixel whole (1.4 GB for this 1.5-megapixel image)."""
    code = textwrap.dedent(
        """
        import json, resource, sys
        import numpy as np
        from nightvision import Enhancer
        enhancer = Enhancer("zero-dce", "onnxruntime", threads=1, memory_budget_mb=160)
        frame = np.full((1000, 1500, 3), 20, np.uint8)
        enhancer.enhance(frame[:64, :64])
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out = enhancer.enhance(frame)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"base_mb": base / 1024, "peak_mb": peak / 1024, "mean": float(out.mean())}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["mean"] > 40
    assert report["peak_mb"] - report["base_mb"] <= 160 * 1.15, report


def test_every_profile_names_a_registered_model() -> None:
    names = {s.name for s in list_specs()}
    assert set(PROFILES) <= names
    for name, profile in PROFILES.items():
        assert profile.overlap % 8 == 0 and profile.onnxruntime_bytes_per_pixel > 0, name


def test_without_onnx_global_pools_are_per_tile_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx fails: the runtime without the train extra
    enhancer = Enhancer("nafnet-s", "onnxruntime", threads=1, max_tile=192)
    with caplog.at_level("WARNING", logger="nightvision.tiling"):
        out = enhancer.enhance(varied_frame(200, 260))
    assert out.shape == (200, 260, 3)
    assert "install the onnx package" in caplog.text
