"""Inference backends behind one protocol (:class:`~nightvision.backends.base.Backend`).

* ``onnxruntime`` — the shipped ONNX graphs on ONNX Runtime (torch-free; the default).
* ``torch`` — the PyTorch modules, CPU or CUDA (needs the ``train`` extra).
"""

from __future__ import annotations

import logging

from nightvision.backends.base import Backend
from nightvision.errors import EngineError, InputError
from nightvision.specs import ModelSpec

__all__ = ["BACKENDS", "Backend", "create_backend", "resolve_backend"]

log = logging.getLogger(__name__)
BACKENDS = ("auto", "onnxruntime", "torch")


def resolve_backend(backend: str) -> tuple[str, str]:
    """The concrete backend for ``backend`` and why: ``auto`` picks PyTorch on CUDA when a GPU and torch are
    present, else ONNX Runtime (which itself prefers its TensorRT and CUDA providers when installed).

    TensorRT plans are not a choice yet: this version has no TensorRT backend.
    """
    if backend != "auto":
        return backend, "asked for"
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        import torch

        if torch.cuda.is_available():
            return "torch", f"CUDA GPU {torch.cuda.get_device_name(0)} and PyTorch present"
        reason = "PyTorch present but no CUDA GPU"
    else:
        reason = "no PyTorch"
    return "onnxruntime", reason


def create_backend(
    spec: ModelSpec,
    backend: str = "onnxruntime",
    *,
    onnx_path: str | None = None,
    weights: str | None = None,
    device: str | None = None,
    threads: int = 0,
) -> Backend:
    """Load ``spec`` on the named backend.

    Args:
        spec: the model.
        backend: one of :data:`BACKENDS`.
        onnx_path: an ONNX file to run instead of the shipped one (onnxruntime).
        weights: a checkpoint to run instead of the shipped weights (torch).
        device: torch device (torch).
        threads: CPU threads (onnxruntime; 0 = library default).
    """
    backend, _ = resolve_backend(backend)
    if backend == "onnxruntime":
        from nightvision.backends.onnxruntime import OnnxRuntimeBackend

        path = onnx_path or spec.onnx_path
        if path is None or not (onnx_path or spec.has_onnx):
            raise EngineError(
                f"model {spec.name!r} has no shipped ONNX graph; export one with "
                f"`nightvision export {spec.name} -o FILE.onnx` and pass it with --onnx"
            )
        return OnnxRuntimeBackend(path, threads=threads)
    if backend == "torch":
        from nightvision.backends.pytorch import TorchBackend

        return TorchBackend(spec, device=device, weights=weights)
    raise InputError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
