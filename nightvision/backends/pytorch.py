"""PyTorch backend: eager PyTorch on CPU or CUDA (needs the ``train`` extra)."""

from __future__ import annotations

import numpy as np

from nightvision.errors import EngineError
from nightvision.specs import ModelSpec

__all__ = ["TorchBackend"]


class TorchBackend:
    """Run the PyTorch module of a registered model.

    Args:
        spec: the model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None`` = CUDA when available.
        half: fp16 weights and activations (CUDA only).
        weights: a checkpoint to load instead of the shipped weights.
    """

    def __init__(
        self, spec: ModelSpec, *, device: str | None = None, half: bool = False, weights: str | None = None
    ) -> None:
        try:
            import torch
        except ImportError as err:
            raise EngineError("the torch backend needs PyTorch: pip install 'nightvision[train]'") from err
        from nightvision import models

        self._torch = torch
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if half and self.device.type != "cuda":
            raise EngineError("fp16 needs a CUDA device; use fp32 on the CPU")
        if weights is None:
            model = models.create(spec.name, pretrained=True)
        else:
            model = models.create(spec.name, pretrained=False)
            models.load_checkpoint(model, weights)
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.name = f"torch:{self.device}{':fp16' if half else ''}"

    def run(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device, self.dtype, non_blocking=True)
            y = self.model(t)
            out: np.ndarray = y.float().cpu().numpy()
        return out

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
