"""Inference backends behind one protocol (:class:`~nightvision.backends.base.Backend`).

* ``onnxruntime`` — the shipped ONNX graphs on ONNX Runtime (torch-free; the default).
* ``torch`` — the PyTorch modules, CPU or CUDA (needs the ``train`` extra).
* ``tensorrt`` — plans built by ``nightvision build`` (:mod:`nightvision.backends.tensorrt`), kept in the user
  cache (:func:`nightvision.cache.cache_dir`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from nightvision.backends.base import Backend
from nightvision.cache import ENGINES, cache_dir
from nightvision.errors import EngineError, InputError, SetupError
from nightvision.specs import ModelSpec

__all__ = ["BACKENDS", "Backend", "create_backend", "resolve_backend"]

log = logging.getLogger(__name__)
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")


def find_plan(spec: ModelSpec, engines_dir: str | Path | None = None) -> str | None:
    """A cached plan for ``spec`` that matches the running TensorRT and GPU and was built from the model's
    shipped graph as it is now (a plan of older weights is skipped with a message), or ``None``.

    ``engines_dir``: the folder of built plans; ``None``: ``cache_dir("engines")``, where ``nightvision build``
    puts them by default."""
    from nightvision.backends.tensorrt import gpu_identity, import_tensorrt, read_plan
    from nightvision.specs import sha256_of

    try:
        trt = import_tensorrt()
        gpu = gpu_identity()
    except (EngineError, RuntimeError):
        return None
    folder = Path(engines_dir) if engines_dir is not None else cache_dir(ENGINES, create=False)
    for path in sorted(folder.glob(f"{spec.name}-*.plan"), reverse=True):
        try:
            header, _ = read_plan(path)
        except EngineError:
            continue
        if header.mismatch(str(trt.__version__), *gpu):
            continue
        if spec.has_onnx and spec.onnx_path is not None and header.source_sha256 != sha256_of(spec.onnx_path):
            log.warning(
                "skipping %s: built from other weights of %s; rebuild it with `nightvision build`", path, spec.name
            )
            continue
        return str(path)
    return None


def resolve_backend(backend: str, spec: ModelSpec | None = None) -> tuple[str, str]:
    """The concrete backend for ``backend`` and why. ``auto`` picks TensorRT when TensorRT is installed and
    the plan folder of the user cache (:func:`find_plan`) holds a plan for the model built for this TensorRT
    and GPU (`nightvision build`), else PyTorch on CUDA when a GPU and torch are present, else ONNX Runtime
    (which itself prefers its TensorRT and CUDA providers when installed).
    """
    if backend != "auto":
        return backend, "asked for"
    import importlib.util

    if spec is not None and importlib.util.find_spec("tensorrt") is not None:
        plan = find_plan(spec)
        if plan is not None:
            return "tensorrt", f"TensorRT and a matching plan {plan}"

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
    backend, _ = resolve_backend(backend, spec)
    if backend == "tensorrt":
        from nightvision.backends.tensorrt import TensorRTBackend, import_tensorrt

        import_tensorrt()  # TensorRT missing (or only its type stubs) says so, before "no plan"
        plan = onnx_path if onnx_path and onnx_path.endswith(".plan") else find_plan(spec)
        if plan is None:
            raise SetupError(f"no TensorRT plan for {spec.name!r} here; build one with `nightvision build {spec.name}`")
        return TensorRTBackend(plan)
    if backend == "onnxruntime":
        from nightvision.backends.onnxruntime import OnnxRuntimeBackend

        path = onnx_path or spec.onnx_path
        if path is None or not (onnx_path or spec.has_onnx):
            raise SetupError(
                f"model {spec.name!r} ships no weights (an architecture to train, see training/README.md); run a "
                f"trained one with `nightvision enhance|run ... -m {spec.name} --weights RUN/final.pt`, or its graph "
                f"(`nightvision export {spec.name} --weights RUN/final.pt -o FILE.onnx`) with --onnx FILE.onnx"
            )
        return OnnxRuntimeBackend(path, threads=threads)
    if backend == "torch":
        from nightvision.backends.pytorch import TorchBackend

        return TorchBackend(spec, device=device, weights=weights)
    raise InputError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
