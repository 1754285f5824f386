"""Inference backends behind one protocol (:class:`~nightvision.backends.base.Backend`).

* ``onnxruntime`` — the shipped ONNX graphs on ONNX Runtime (torch-free; the default).
* ``torch`` — the PyTorch modules, CPU or CUDA (needs the ``train`` extra).
"""

from __future__ import annotations

import logging

from nightvision.backends.base import Backend
from nightvision.errors import EngineError, InputError
from nightvision.specs import ModelSpec

__all__ = ["BACKENDS", "Backend", "create_backend"]

log = logging.getLogger(__name__)
BACKENDS = ("onnxruntime", "torch")


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
