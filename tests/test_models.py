"""Models: parameter counts, shapes for any H×W, output range, the official-weight key mapping."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from nightvision import models  # noqa: E402
from nightvision.errors import ModelNotFoundError  # noqa: E402
from nightvision.models.zero_dce import load_reference  # noqa: E402
from nightvision.specs import get_spec  # noqa: E402
from tests.conftest import shared_path  # noqa: E402


def _nafnet_params(width: int, enc: tuple[int, ...], middle: int, dec: tuple[int, ...]) -> int:
    """NAFNet's count from the paper's layer list: a block at C channels has 7C² + 33C parameters."""

    def block(c: int) -> int:
        return 7 * c * c + 33 * c

    total, c = 3 * width * 9 + width + width * 3 * 9 + 3, width  # intro and ending 3×3 convs
    for n in enc:
        total += n * block(c) + (c * 2 * c * 4 + 2 * c)  # blocks, 2×2 stride-2 conv C→2C
        c *= 2
    total += middle * block(c)
    for n in dec:
        total += c * 2 * c  # 1×1 conv C→2C (no bias) before the pixel shuffle
        c //= 2
        total += n * block(c)
    return total


def _retinexnet_params(c: int = 64) -> tuple[int, int]:
    """(Decom-Net, Enhance-Net) counts from the paper's layer list."""
    conv = lambda cin, cout, k: cin * cout * k * k + cout  # noqa: E731
    decom = conv(4, c, 9) + 5 * conv(c, c, 3) + conv(c, 4, 3)
    enhance = conv(4, c, 3) + 3 * conv(c, c, 3) + 3 * conv(c, c, 3) + conv(3 * c, c, 1) + conv(c, 1, 3)
    return decom, enhance


PARAMS = {
    "zero-dce": 79_416,  # Guo et al. 2020, stated in the paper
    "zero-dce++": 10_561,  # Li et al. 2021, stated in the paper
    "curve-denoise": 34_410,  # ours (nightvision/models/curve_denoise.py)
    "nafnet-s": _nafnet_params(16, (1, 1, 1, 1), 1, (1, 1, 1, 1)),
    "nafnet": _nafnet_params(16, (1, 1, 1, 1), 1, (1, 1, 1, 1)),
    "mirnet-v2": 5_354_264,  # the paper states 5.9 M; see the test below for the bound
    "retinexnet": sum(_retinexnet_params()),
}
LIGHT = ["zero-dce", "zero-dce++", "curve-denoise", "nafnet-s", "nafnet"]  # cheap at large sizes on a CPU


@pytest.mark.parametrize("name", models.list_models())
def test_parameter_count_matches_paper(name: str) -> None:
    net = models.create(name, pretrained=False)
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


def test_counts_against_the_papers_figures() -> None:
    assert PARAMS["nafnet-s"] == 1_137_203
    assert abs(PARAMS["mirnet-v2"] / 5.9e6 - 1) < 0.10  # our reading of MIRNet-v2 is 9 % under the paper's
    assert _retinexnet_params() == (207_748, 236_865)
    net = models.create("retinexnet", pretrained=False)
    assert sum(p.numel() for p in net.decom.parameters()) == 207_748


def _padded(name: str, h: int, w: int) -> tuple[int, int]:
    m = get_spec(name).pad_multiple
    return -(-h // m) * m, -(-w // m) * m


@pytest.mark.parametrize("name", models.list_models())
@pytest.mark.parametrize("size", [(33, 17), (851, 478), (1, 1), (2, 3)])
def test_output_keeps_shape_and_range(name: str, size: tuple[int, int]) -> None:
    if name not in LIGHT and max(size) > 100:
        pytest.skip(f"{name} at {size} is too slow for a CPU test run; covered at small sizes")
    torch.manual_seed(0)
    net = models.create(name, pretrained=False)
    x = torch.rand(2, 3, *_padded(name, *size))  # the runtime pads to the model's multiple outside the graph
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_size_not_a_multiple_is_refused_with_a_hint() -> None:
    net = models.create("nafnet-s", pretrained=False)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.rand(1, 3, 33, 32))


def test_1080p_keeps_shape() -> None:
    net = models.create("zero-dce++", pretrained=False)
    with torch.no_grad():
        y = net(torch.rand(1, 3, 1080, 1920))
    assert y.shape == (1, 3, 1080, 1920)


@pytest.mark.parametrize("name", [n for n in models.list_models() if get_spec(n).family == "curve"])
def test_curves_are_separate_from_forward(name: str) -> None:
    net = models.create(name, pretrained=False)
    x = torch.rand(1, 3, 40, 24)
    y, curves = net.forward_with_curves(x)
    assert torch.equal(y, net(x))
    assert curves.shape[1] == (24 if name == "zero-dce" else 3)
    assert curves.detach().abs().max().item() <= 1.0


def test_retinexnet_components_are_separate_from_forward() -> None:
    torch.manual_seed(0)
    net = models.create("retinexnet", pretrained=False)
    x = torch.rand(1, 3, 40, 24)
    with torch.no_grad():
        enhanced, r, i, i_hat = net.forward_with_components(x)
        assert torch.equal(net(x), enhanced.clamp(0, 1))
        assert torch.allclose(enhanced, r * i_hat)
    assert r.shape == x.shape and i.shape == i_hat.shape == (1, 1, 40, 24)
    assert float(r.min()) >= 0 and float(r.max()) <= 1 and float(i.min()) >= 0 and float(i.max()) <= 1


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(ModelNotFoundError, match="did you mean 'zero-dce\\+\\+'"):
        models.create("zero-dce+", pretrained=False)


# --- fidelity: the official weights, through an independent functional re-statement of the papers


def _reference_forward(state: dict, x: torch.Tensor, plus_plus: bool) -> torch.Tensor:
    """DCE-Net written as plain functional calls on the official key names (no nightvision module)."""

    def conv(i: int, t: torch.Tensor) -> torch.Tensor:
        if plus_plus:
            dw, pw = f"e_conv{i}.depth_conv", f"e_conv{i}.point_conv"
            t = F.conv2d(t, state[dw + ".weight"], state[dw + ".bias"], padding=1, groups=t.shape[1])
            return F.conv2d(t, state[pw + ".weight"], state[pw + ".bias"])
        return F.conv2d(t, state[f"e_conv{i}.weight"], state[f"e_conv{i}.bias"], padding=1)

    x1 = F.relu(conv(1, x))
    x2 = F.relu(conv(2, x1))
    x3 = F.relu(conv(3, x2))
    x4 = F.relu(conv(4, x3))
    x5 = F.relu(conv(5, torch.cat([x3, x4], 1)))
    x6 = F.relu(conv(6, torch.cat([x2, x5], 1)))
    a = torch.tanh(conv(7, torch.cat([x1, x6], 1)))
    maps = [a] * 8 if plus_plus else list(torch.split(a, 3, 1))
    for r in maps:
        x = x + r * (x**2 - x)
    return x


def _dicm_tensor(n: int = 4, size: int = 160) -> torch.Tensor:
    import cv2

    files = sorted(shared_path("data", "unpaired", "DICM").glob("*.jpg"))[:n]
    imgs = [cv2.resize(cv2.imread(str(f)), (size, size), interpolation=cv2.INTER_AREA)[:, :, ::-1] for f in files]
    return torch.from_numpy(np.stack(imgs).copy()).permute(0, 3, 1, 2).float() / 255


@pytest.mark.shared
@pytest.mark.parametrize(("folder", "plus_plus"), [("zero-dce", False), ("zero-dce-pp", True)])
def test_official_weights_load_strictly_and_match_reference(folder: str, plus_plus: bool) -> None:
    path = shared_path("reference-weights", folder, "Epoch99.pth")
    net = load_reference(str(path), plus_plus=plus_plus)  # strict=True inside
    state = torch.load(path, map_location="cpu", weights_only=True)
    x = _dicm_tensor()
    with torch.no_grad():
        ours, ref = net(x), _reference_forward(state, x, plus_plus)
    assert float((ours - ref).abs().max()) < 1e-5
    # the expected enhancement: DICM is dim, the official models lift it strongly and stay in range
    assert float(ours.mean()) > float(x.mean()) + 0.1
    assert float(ours.max()) <= 1.0


@pytest.mark.shared
@pytest.mark.parametrize("level", ["easy", "medium", "difficult"])
def test_official_sci_weights_load_and_brighten(level: str) -> None:
    from nightvision.models.sci import load_reference as load_sci

    net = load_sci(shared_path("reference-weights", "sci", f"{level}.pt"))  # strict=True inside
    x = _dicm_tensor() * 0.5  # darker than DICM already is
    with torch.no_grad():
        y = net(x)
        u = net.illumination(x)
    assert y.shape == x.shape and float(y.max()) <= 1.0
    assert float(y.mean()) > float(x.mean()) + 0.05
    assert torch.allclose(y, (x / u).clamp(0, 1))  # the Retinex division of the paper


def test_the_default_model_is_named_in_one_place_and_shipped() -> None:
    import nightvision
    from nightvision import enhancer, specs

    assert enhancer.DEFAULT_MODEL == nightvision.DEFAULT_MODEL == specs.DEFAULT_MODEL
    assert specs.DEFAULT_MODEL in models.list_models()
    spec = get_spec(specs.DEFAULT_MODEL)
    assert spec.has_weights and spec.has_onnx  # runs out of the box, on ONNX Runtime too
