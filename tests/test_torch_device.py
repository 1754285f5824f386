"""The torch backend's ``device``: a device that cannot work is refused in one line when the backend is built."""

from __future__ import annotations

import pytest

from nightvision.errors import EngineError
from nightvision.specs import get_spec

torch = pytest.importorskip("torch")
from nightvision.backends.pytorch import TorchBackend  # noqa: E402

SPEC = get_spec("zero-dce++")


@pytest.mark.parametrize("device", ["banana", "CUDA", "cuda:x", ""])
def test_an_unknown_device_is_refused(device: str) -> None:
    with pytest.raises(EngineError, match=rf"^unknown device '{device}' \(use cpu, cuda or cuda:N\)$"):
        TorchBackend(SPEC, device=device)


def test_a_device_type_the_backend_does_not_run_on_is_refused() -> None:
    with pytest.raises(EngineError, match=r"^device 'meta' is not supported by the torch backend"):
        TorchBackend(SPEC, device="meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a torch without a usable CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_refused_with_what_to_use(device: str) -> None:
    with pytest.raises(EngineError, match=r"torch\.cuda\.is_available\(\) is False\); use --device cpu$") as info:
        TorchBackend(SPEC, device=device)
    assert str(info.value).startswith(f"device '{device}' is not available: this torch ")


def test_a_cuda_index_beyond_the_devices_is_refused_before_the_model_is_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nightvision import models

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built before the device was checked")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(models, "create", no_model)
    with pytest.raises(EngineError, match=r"^device 'cuda:3' is not available: this machine has 1 CUDA device"):
        TorchBackend(SPEC, device="cuda:3")


def test_cpu_is_accepted() -> None:
    backend = TorchBackend(SPEC, device="cpu")
    assert backend.device == torch.device("cpu") and backend.name == "torch:cpu"
    backend.close()


def test_a_device_without_the_torch_backend_is_refused_not_ignored() -> None:
    from nightvision.enhancer import Enhancer

    with pytest.raises(EngineError, match="is for the torch backend, and this runs on onnxruntime"):
        Enhancer("zero-dce++", "onnxruntime", device="cuda:0")
