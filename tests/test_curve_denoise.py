"""CurveDenoise: any padded size, neutral greys stay neutral, the curve and the shrinkage do what they claim,
ONNX parity, the shipped weights run without torch, and the trainer's data and temporal term."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import Tensor, nn  # noqa: E402

from nightvision import models  # noqa: E402
from nightvision.models.curve_denoise import CurveDenoise  # noqa: E402  (importing registers the model)
from nightvision.specs import WEIGHTS_DIR, get_spec, sha256_of  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

NAME = "curve-denoise"


def _random_net(seed: int = 0) -> CurveDenoise:
    """The architecture with a random (non-zero) head, so that gains and thresholds vary over the picture."""
    torch.manual_seed(seed)
    net = models.create(NAME, pretrained=False)
    assert isinstance(net, CurveDenoise)
    torch.nn.init.normal_(net.net.head.weight, std=0.5)
    torch.nn.init.normal_(net.net.head.bias, std=0.5)
    return net.eval()


def _padded(h: int, w: int, m: int = 8) -> tuple[int, int]:
    return -(-h // m) * m, -(-w // m) * m


@pytest.mark.parametrize("size", [(1, 1), (33, 17), (851, 478)])
def test_output_keeps_shape_and_range(size: tuple[int, int]) -> None:
    net = _random_net()
    x = torch.rand(2, 3, *_padded(*size))
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_size_not_a_multiple_is_refused_with_a_hint() -> None:
    with pytest.raises(ValueError, match="multiples of 8"):
        _random_net()(torch.rand(1, 3, 33, 32))


def test_a_neutral_grey_input_stays_exactly_neutral() -> None:
    net = _random_net(1)
    grey = (torch.rand(1, 1, 64, 96) * 0.3).expand(1, 3, 64, 96).contiguous()  # noisy, textured, R = G = B
    with torch.no_grad():
        y = net(grey)
    assert float((y - y[:, :1]).abs().max()) < 1e-6
    assert float(y.mean()) != pytest.approx(float(grey.mean()), abs=1e-3)  # it did change the picture


def _set_maps(net: CurveDenoise, gain: float, threshold_raw: float) -> None:
    """Make the predicted maps constant: ``g = gain`` everywhere and ``t = m·exp(threshold_raw)/10``."""
    bias = net.net.head.bias
    assert bias is not None
    torch.nn.init.zeros_(net.net.head.weight)
    lim = net.max_log_gain
    with torch.no_grad():
        bias[0] = lim * math.atanh(math.log(gain) / lim)
        bias[1] = threshold_raw


def test_the_curve_lifts_blacks_by_the_gain_and_keeps_white() -> None:
    net = models.create(NAME, pretrained=False).eval()
    assert isinstance(net, CurveDenoise)
    _set_maps(net, gain=8.0, threshold_raw=-10.0)  # tiny threshold: the detail is kept whole
    flat = torch.full((1, 3, 32, 32), 0.02)
    with torch.no_grad():
        y = net(flat)
        white = net(torch.ones(1, 3, 32, 32))
    expected = 8 * 0.02 / (1 + 7 * 0.02)  # g·z / (1 + (g − 1)·z)
    assert torch.allclose(y, torch.full_like(y, expected), atol=1e-5)
    assert torch.allclose(white, torch.ones_like(white), atol=1e-6)


def test_the_shrinkage_removes_noise_below_the_threshold_and_keeps_edges_above_it() -> None:
    net = models.create(NAME, pretrained=False).eval()
    assert isinstance(net, CurveDenoise)
    gen = torch.Generator().manual_seed(0)
    noise = 0.01 * torch.randn(1, 1, 64, 64, generator=gen).expand(1, 3, 64, 64)
    edge = torch.zeros(1, 3, 64, 64)
    edge[..., 32:] = 0.8
    with torch.no_grad():
        _set_maps(net, gain=1.0, threshold_raw=-10.0)  # t ≈ 0: every detail is kept, the input comes back
        kept = net(0.3 + noise)
        _set_maps(net, gain=1.0, threshold_raw=math.log(2.0))  # t = m/5 = 0.06, six times the noise
        quiet = net(0.3 + noise)
        sharp = net(edge)
    assert torch.allclose(kept, 0.3 + noise, atol=1e-5)
    assert float(quiet.std()) < 0.36 * float(noise.std())  # the 3×3 box leaves 1/3 of white noise; detail gone
    assert float(sharp[0, 0, 10, 31]) < 0.05 and float(sharp[0, 0, 10, 32]) > 0.75  # the edge keeps its step


@pytest.mark.slow
def test_onnx_export_matches_pytorch_at_any_padded_size(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    from nightvision.export import export_module

    net = _random_net(2)
    path = export_module(net, NAME, tmp_path / "cd.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for batch, (h, w) in [(1, (8, 8)), (2, (64, 96)), (1, (136, 200)), (1, (720, 1280))]:
        x = (rng.random((batch, 3, h, w), dtype=np.float32) * 0.3).astype(np.float32)
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        out = session.run(None, {"image": x})[0]
        assert out.shape == x.shape
        assert float(np.abs(out - ref).max()) <= 1e-4


# --- the shipped files


def _shipped() -> tuple[Path, Path]:
    spec = get_spec(NAME)
    assert spec.weights_path is not None and spec.onnx_path is not None
    if not (spec.weights_path.is_file() and spec.onnx_path.is_file()):
        pytest.skip(f"{NAME} is not shipped yet: python -m nightvision.training.publish {NAME} runs/{NAME}/best.pt")
    return spec.weights_path, spec.onnx_path


def test_shipped_weights_load_strictly_and_match_the_manifest() -> None:
    weights, onnx_path = _shipped()
    manifest = json.loads((WEIGHTS_DIR / "MANIFEST.json").read_text())
    for path in (weights, onnx_path):
        assert manifest[path.name]["sha256"] == sha256_of(path) and manifest[path.name]["model"] == NAME
    net = models.create(NAME)  # strict load of the state dict into the registered architecture
    ckpt = torch.load(weights, map_location="cpu", weights_only=True)
    assert ckpt["model_name"] == NAME and "optimizer" not in ckpt
    assert isinstance(net, CurveDenoise)


_NO_TORCH = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
import numpy as np
from nightvision.backends.onnxruntime import OnnxRuntimeBackend
from nightvision.preprocess import from_tensor, to_tensor
from nightvision.evaluation.metrics import mean_luma
rng = np.random.default_rng(0)
frame = np.clip(rng.normal(12, 4, (37, 53, 3)), 0, 255).astype(np.uint8)  # dark, noisy, odd size
backend = OnnxRuntimeBackend(sys.argv[1], threads=1)
out = from_tensor(backend.run(to_tensor(frame, multiple=8)), 37, 53)
assert out.shape == frame.shape and out.dtype == np.uint8
print(mean_luma(frame), mean_luma(out))
"""


def test_shipped_onnx_runs_without_torch_at_an_odd_size() -> None:
    _, onnx_path = _shipped()
    result = subprocess.run(
        [sys.executable, "-c", _NO_TORCH, str(onnx_path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert result.returncode == 0, result.stderr
    before, after = map(float, result.stdout.split())
    assert after > 3 * before  # a dark frame is lifted


def test_the_enhancer_runs_the_shipped_model_without_torch() -> None:
    _shipped()
    script = f"""
import sys
sys.modules["torch"] = None
import numpy as np
from nightvision.specs import get_spec, list_specs
if "{NAME}" not in [s.name for s in list_specs()]:
    print("unregistered")
    raise SystemExit(0)
from nightvision import Enhancer
frame = np.full((45, 61, 3), 10, np.uint8)
out = Enhancer("{NAME}", backend="onnxruntime", threads=1).enhance(frame)
assert out.shape == frame.shape and out.mean() > 40
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    if result.stdout.strip() == "unregistered":
        pytest.skip(f"nightvision/specs.py has no {NAME!r} entry yet (the torch-free registry)")
    assert result.stdout.strip() == "ok"


# --- the trainer's parts


def test_temporal_loss_is_zero_for_a_warp_equivariant_model_and_not_for_a_fixed_pattern() -> None:
    from nightvision.training.curve_denoise import Config, temporal_loss

    cfg = Config(warp_shift=4.0, warp_rotate=2.0, warp_zoom=0.03)
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(4, 3, 64, 64), 5, 1, 2)  # smooth: bilinear resampling is exact-ish
    pointwise = torch.nn.Identity()
    assert float(temporal_loss(pointwise, x, pointwise(x), cfg)) < 2e-3
    pattern = torch.linspace(0, 2.0, 64).view(1, 1, 1, 64)

    class FixedPattern(nn.Module):  # adds a pattern fixed to the frame: it does not move with the scene
        def forward(self, t: Tensor) -> Tensor:
            return t + pattern

    net = FixedPattern()
    assert float(temporal_loss(net, x, net(x), cfg)) > 5e-3


def _bracket_images(tmp_path: Path) -> list[tuple[Path, Path]]:
    rng = np.random.default_rng(0)
    pairs = []
    for i in range(3):
        high = cv2.GaussianBlur(rng.integers(40, 220, (64, 80, 3), dtype=np.uint8), (5, 5), 0)
        low = (high // 4).astype(np.uint8)
        paths = (tmp_path / f"{i}-low.png", tmp_path / f"{i}-high.png")
        cv2.imwrite(str(paths[0]), low)
        cv2.imwrite(str(paths[1]), high)
        pairs.append(paths)
    return pairs


def test_patches_of_each_kind_are_aligned_and_as_dark_as_configured(tmp_path: Path) -> None:
    from nightvision.training.curve_denoise import Config, NoisyPatches

    pairs = _bracket_images(tmp_path)
    torch.manual_seed(0)
    kinds = {
        "pair": Config(patch=32, p_pair=1, p_dark=0, p_identity=0, pair_noise=0, jpeg=0),
        "dark": Config(patch=32, p_pair=0, p_dark=1, p_identity=0, dark_min=0.01, dark_max=0.02, jpeg=0),
        "identity": Config(patch=32, p_pair=0, p_dark=0, p_identity=1, jpeg=0),
    }
    for kind, cfg in kinds.items():
        data = NoisyPatches(pairs, cfg, length=6)
        for i in range(len(data)):
            x, y = data[i]
            assert x.shape == y.shape == (3, 32, 32)
            if kind == "pair":  # the low image is the high one // 4, at the same place, under the same symmetry
                assert torch.allclose(x, torch.floor(y * 255 / 4) / 255, atol=1e-6)
            elif kind == "dark":  # 1–2 % of the light: about a fifth of the sRGB level, plus noise
                assert float(x.mean()) < 0.35 * float(y.mean())
            else:  # the target itself, with light noise half of the time
                assert float((x - y).abs().mean()) < 0.05


def test_learning_rate_warms_up_then_decays_to_the_minimum() -> None:
    from nightvision.training.curve_denoise import Config, learning_rate

    cfg = Config(lr=1e-3, lr_min=1e-5, warmup=10, steps=100)
    assert learning_rate(cfg, 0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 9) == pytest.approx(1e-3)
    assert learning_rate(cfg, 100) == pytest.approx(1e-5)
    assert learning_rate(cfg, 55) < learning_rate(cfg, 20)


@pytest.mark.shared
def test_brackets_without_a_held_out_scene_say_what_is_missing(tmp_path: Path) -> None:
    """14 SICE images hold two scenes to train on and no held-out one: "no bracket pairs to train on" said the
    opposite of what was missing."""
    import shutil

    from nightvision.errors import InputError
    from nightvision.training.curve_denoise import split_brackets
    from tests.conftest import shared_path

    sice = shared_path("data", "sice")
    for path in sorted(sice.glob("*.jpg"), key=lambda p: int(p.stem))[:14]:
        shutil.copy(path, tmp_path / path.name)
    with pytest.raises(InputError, match=r"bracket pairs to train on, but none held out to evaluate on"):
        split_brackets(tmp_path)
