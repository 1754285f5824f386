"""ONNX Runtime backend: the default, torch-free way to run a model (CPU, or CUDA / TensorRT EPs)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from nightvision.errors import EngineError

__all__ = ["OnnxRuntimeBackend"]

log = logging.getLogger(__name__)

_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


class OnnxRuntimeBackend:
    """Run an exported ONNX graph with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers in order of preference; default: the available ones of
            TensorRT EP > CUDA EP > CPU.
        threads: intra-op threads (0 = ONNX Runtime's default, one per physical core).
    """

    def __init__(self, path: str | Path, *, providers: list[str] | None = None, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - a runtime dependency
            raise EngineError("onnxruntime is not installed: pip install onnxruntime") from err
        path = Path(path)
        if not path.is_file():
            raise EngineError(f"ONNX file not found: {path}")
        available = ort.get_available_providers()
        chosen = providers or [p for p in _PREFERRED if p in available]
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session: ort.InferenceSession | None = ort.InferenceSession(
                str(path), sess_options=options, providers=chosen
            )
        except Exception as err:  # ORT raises its own exception types (Fail, InvalidGraph, ...)
            raise EngineError(f"ONNX Runtime cannot load {path}: {err}") from err
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        provider = self._session.get_providers()[0]
        self.name = f"onnxruntime:{provider}"
        self.metadata = dict(self._session.get_modelmeta().custom_metadata_map)
        log.debug("loaded %s on %s", path, provider)

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            raise EngineError("this backend was closed")
        out: np.ndarray = self._session.run([self._output], {self._input: x})[0]
        return out

    def close(self) -> None:
        self._session = None
