"""ONNX Runtime backend: the default, torch-free way to run a model (CPU, or CUDA / TensorRT EPs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from nightvision import cache
from nightvision.errors import EngineError, SetupError

__all__ = ["OnnxRuntimeBackend", "choose_providers"]

log = logging.getLogger(__name__)

_PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: list[str], cache_dir: str | None = None) -> list[Any]:
    """The available providers of TensorRT EP > CUDA EP > CPU, in that order. The TensorRT EP caches its
    engines and its timing cache in ``cache_dir`` (default: ``ort-tensorrt`` in the user cache,
    :func:`nightvision.cache.cache_dir`, created only when the TensorRT EP is available), so that only the
    first session on a machine pays for the build; precision comes from the graph (run an fp16 export for
    fp16), never from an EP flag."""
    chosen: list[Any] = []
    for name in _PREFERRED:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider":
            folder = cache_dir or str(cache.cache_dir(cache.ORT_TENSORRT))
            options = {
                "trt_engine_cache_enable": True,
                "trt_engine_cache_path": folder,
                "trt_timing_cache_enable": True,
                "trt_timing_cache_path": folder,  # without it, the EP writes its timing cache to the cwd
            }
            chosen.append((name, options))
        else:
            chosen.append(name)
    return chosen


class OnnxRuntimeBackend:
    """Run an exported ONNX graph with ONNX Runtime.

    Args:
        path: the ``.onnx`` file.
        providers: execution providers in order of preference; default: :func:`choose_providers`, the
            available ones of TensorRT EP (engines cached in the user cache) > CUDA EP > CPU.
        threads: intra-op threads (0 = ONNX Runtime's default, one per physical core).
    """

    def __init__(self, path: str | Path, *, providers: list[str] | None = None, threads: int = 0) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:  # pragma: no cover - a runtime dependency
            raise SetupError("onnxruntime is not installed: pip install onnxruntime") from err
        path = Path(path)
        if not path.is_file():
            raise EngineError(f"ONNX file not found: {path}")
        chosen = providers or choose_providers(ort.get_available_providers())
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning after each run: the frame's other stages (the curve lookup,
        # the denoiser, decoding) need those cores right then. 720p zero-dce++ on 2 cores: 13.6 -> 12.0 ms a frame
        # (the graph itself 0.4 ms slower, the lookup and resize after it 1.6 ms faster).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No memory-pattern planning: with the arena it keeps a second copy of every activation once a size has
        # run twice. 720p on 2 cores: zero-dce peak RSS 1574 -> 845 MB, nafnet-s 1392 -> 763 MB, same speed.
        options.enable_mem_pattern = False
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
