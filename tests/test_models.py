"""Models: parameter counts, shapes for any H×W, output range, the official-weight key mapping."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from nightvision import models  # noqa: E402
from nightvision.errors import ModelNotFoundError  # noqa: E402
from nightvision.models.zero_dce import load_reference  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

PARAMS = {"zero-dce": 79_416, "zero-dce++": 10_561}


@pytest.mark.parametrize("name", models.list_models())
def test_parameter_count_matches_paper(name: str) -> None:
    net = models.create(name, pretrained=False)
    assert sum(p.numel() for p in net.parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", models.list_models())
@pytest.mark.parametrize("size", [(33, 17), (851, 478), (1, 1), (2, 3)])
def test_output_keeps_shape_and_range(name: str, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = models.create(name, pretrained=False)
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_1080p_keeps_shape() -> None:
    net = models.create("zero-dce++", pretrained=False)
    with torch.no_grad():
        y = net(torch.rand(1, 3, 1080, 1920))
    assert y.shape == (1, 3, 1080, 1920)


@pytest.mark.parametrize("name", models.list_models())
def test_curves_are_separate_from_forward(name: str) -> None:
    net = models.create(name, pretrained=False)
    x = torch.rand(1, 3, 40, 24)
    y, curves = net.forward_with_curves(x)
    assert torch.equal(y, net(x))
    assert curves.shape[1] == (24 if name == "zero-dce" else 3)
    assert float(curves.abs().max()) <= 1.0


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
