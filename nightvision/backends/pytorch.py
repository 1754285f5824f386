"""PyTorch backend: eager PyTorch on CPU or CUDA (needs the ``train`` extra).

On CUDA it can run in fp16 and channels-last, replay a captured CUDA graph while the input shape stays the
same, and do the frame conversions on the GPU (:meth:`TorchBackend.enhance_uint8`: upload uint8 HWC,
normalise and lay out there, download uint8). The CUDA paths are written to the PyTorch API but have not run
in this project's workplace, which has no GPU: see the issue notes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nightvision.errors import EngineError, SetupError
from nightvision.preprocess import pad_amounts
from nightvision.specs import ModelSpec

__all__ = ["TorchBackend"]


class TorchBackend:
    """Run the PyTorch module of a registered model.

    Args:
        spec: the model.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``None`` = CUDA when available. Checked here, before
            the model is built: an unknown or unavailable device is an :class:`EngineError`.
        half: fp16 weights and activations (CUDA only).
        channels_last: channels-last memory format (CUDA only; faster convolutions on tensor cores).
        cuda_graph: capture the forward pass once per input shape and replay it (CUDA only).
        weights: a checkpoint to load instead of the shipped weights.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        device: str | None = None,
        half: bool = False,
        channels_last: bool = False,
        cuda_graph: bool = False,
        weights: str | None = None,
    ) -> None:
        try:
            import torch
        except ImportError as err:
            raise SetupError("the torch backend needs PyTorch: pip install 'nightvision[train]'") from err
        from nightvision import models

        self._torch = torch
        self.device = _resolve_device(torch, device)
        cuda_only = [
            name for name, on in (("fp16", half), ("channels-last", channels_last), ("CUDA graphs", cuda_graph)) if on
        ]
        if cuda_only and self.device.type != "cuda":
            raise EngineError(f"{', '.join(cuda_only)} need a CUDA device; use plain fp32 on {self.device}")
        if weights is None:
            model = models.create(spec.name, pretrained=True)
        else:
            model = models.create(spec.name, pretrained=False)
            models.load_checkpoint(model, weights)
        self.dtype = torch.float16 if half else torch.float32
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        model = model.to(self.device, self.dtype)
        if channels_last:  # Module.to accepts memory_format at run time; the type stubs do not say so
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model = model.eval()
        self.multiple, self.min_side = spec.pad_multiple, spec.min_side
        self._graph_enabled = cuda_graph
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, Any]] = {}
        flags = [f for f, on in (("fp16", half), ("cl", channels_last), ("graph", cuda_graph)) if on]
        self.name = f"torch:{self.device}" + "".join(f":{f}" for f in flags)

    def _forward(self, x: Any) -> Any:
        """``x`` on the device, model dtype and layout → output tensor on the device."""
        torch = self._torch
        if not self._graph_enabled:
            return self.model(x)
        key = tuple(x.shape)
        if key not in self._graphs:
            static_in = x.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream):
                for _ in range(3):  # warm-up on a side stream, as the CUDA-graph docs ask
                    self.model(static_in)
            torch.cuda.current_stream().wait_stream(stream)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = self.model(static_in)
            self._graphs[key] = (graph, static_in, static_out)
        graph, static_in, static_out = self._graphs[key]
        static_in.copy_(x)
        graph.replay()
        return static_out

    def run(self, x: np.ndarray) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            t = torch.from_numpy(x).to(self.device, self.dtype, non_blocking=True)
            t = t.contiguous(memory_format=self.memory_format)
            out: np.ndarray = self._forward(t).float().cpu().numpy()
        return out

    def enhance_uint8(self, bgr: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 BGR → the same, with conversions on the device (one upload, one download)."""
        torch = self._torch
        with torch.inference_mode():
            t = torch.from_numpy(bgr).to(self.device, non_blocking=True)  # uint8 upload: 4x less than float
            x = t.flip(-1).permute(2, 0, 1)[None].to(self.dtype).div_(255.0)
            h, w = x.shape[-2:]
            pad_h, pad_w = pad_amounts(h, w, self.multiple, self.min_side)
            if pad_h or pad_w:  # as preprocess.to_tensor does on the host
                mode = "reflect" if min(h, w) > max(pad_h, pad_w) else "replicate"
                x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode=mode)
            x = x.contiguous(memory_format=self.memory_format)
            y = self._forward(x)[0, :, :h, :w].float().clamp_(0.0, 1.0).mul_(255.0).round_().to(torch.uint8)
            out: np.ndarray = y.permute(1, 2, 0).flip(-1).contiguous().cpu().numpy()
        return out

    def close(self) -> None:
        self._graphs.clear()
        self.__dict__.pop("model", None)


def _resolve_device(torch: Any, device: str | None) -> Any:
    """The ``torch.device`` to run on, refused now with a one-line :class:`EngineError` that says what to pass
    when it cannot work: otherwise torch fails only later (``Torch not compiled with CUDA enabled`` from
    ``Module.to``, or its list of every device type it knows) and the user gets a traceback, not a hint."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as err:
        raise EngineError(f"unknown device {device!r} (use cpu, cuda or cuda:N)") from err
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise EngineError(f"device {device!r} is not supported by the torch backend (use cpu, cuda or cuda:N)")
    if not torch.cuda.is_available():
        why = "has no CUDA" if torch.version.cuda is None else "sees no CUDA GPU"
        raise SetupError(
            f"device {device!r} is not available: this torch {why} (torch.cuda.is_available() is False); "
            "use --device cpu"
        )
    count = torch.cuda.device_count()
    if resolved.index is not None and resolved.index >= count:
        raise SetupError(
            f"device {device!r} is not available: this machine has {count} CUDA device(s), "
            f"cuda:0 to cuda:{count - 1}; use one of them"
        )
    return resolved
