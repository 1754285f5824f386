"""Run a TensorRT plan through the documented name-based API: ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3`` (TensorRT 10.x and 11.x).

Device buffers are torch CUDA tensors when torch has a GPU (with optional CUDA-graph replay for a fixed shape)
and pycuda otherwise (its primary context, pinned host buffers, async copies). A plan is loaded only on the
TensorRT and GPU it was built for (:meth:`~nightvision.backends.tensorrt.plan.PlanHeader.mismatch`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np

from nightvision.backends.tensorrt.plan import gpu_identity, import_tensorrt, read_plan
from nightvision.errors import EngineError, InputError
from nightvision.io.sizes import format_size

__all__ = ["DeviceBuffers", "TensorRTBackend"]

log = logging.getLogger(__name__)


class DeviceBuffers(Protocol):
    """Where a plan's input and output live on the device, and one run: copy in, enqueue, copy out."""

    kind: str
    """``"torch"`` or ``"pycuda"`` (shown in the backend's name)."""

    def run(
        self, context: Any, inp: str, out: str, x: np.ndarray, out_shape: tuple[int, ...], out_dtype: type
    ) -> np.ndarray:
        """Bind the tensors ``inp`` and ``out`` of the execution ``context`` to device buffers (for a new shape),
        copy ``x`` in, run ``execute_async_v3`` and return the output, ``out_shape`` of ``out_dtype``."""
        ...

    def close(self) -> None: ...


class TensorRTBackend:
    """Run a plan through the name-based API.

    Args:
        plan: a plan file written by :func:`~nightvision.backends.tensorrt.builder.build_plan`.
        buffers: ``"torch"`` (CUDA tensors; the default when torch is installed) or ``"pycuda"``.
        cuda_graph: with torch buffers, capture the enqueue in a CUDA graph and replay it while the input
            shape stays the same.
        gpu: returns the running GPU's name and compute capability (injectable for tests).
        device_buffers: a buffer strategy object (tests).
    """

    def __init__(
        self,
        plan: str | Path,
        *,
        buffers: str | None = None,
        cuda_graph: bool = False,
        gpu: Callable[[], tuple[str, str]] = gpu_identity,
        device_buffers: DeviceBuffers | None = None,
    ) -> None:
        import_tensorrt()
        import tensorrt as trt

        header, engine_bytes = read_plan(plan)
        reason = header.mismatch(str(trt.__version__), *gpu())
        if reason:
            raise EngineError(f"{plan} was {reason}; rebuild it with `nightvision build {header.model}`")
        self.header = header
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self._engine = self._runtime.deserialize_cuda_engine(engine_bytes)
        if self._engine is None:
            raise EngineError(f"TensorRT could not deserialize {plan}")
        self._context = self._engine.create_execution_context()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or len(outputs) != 1:
            raise EngineError(f"{plan}: expected one input and one output, got {inputs} and {outputs}")
        self._input, self._output = inputs[0], outputs[0]
        self._in_dtype = _numpy_dtype(trt, self._engine.get_tensor_dtype(self._input), plan, self._input)
        self._out_dtype = _numpy_dtype(trt, self._engine.get_tensor_dtype(self._output), plan, self._output)
        self._buffers = device_buffers or _make_buffers(buffers, cuda_graph)
        self.name = f"tensorrt:{header.precision}:{self._buffers.kind}"

    def run(self, x: np.ndarray) -> np.ndarray:
        """``(1, 3, H, W)`` float32 RGB in ``[0, 1]`` (H, W within the plan's profile) → the model's output, same
        layout, float32."""
        _, _, h, w = x.shape
        profile = self.header.profile
        if not profile.contains(h, w):
            bigger = format_size(max(h, profile.max[0]), max(w, profile.max[1]))
            raise EngineError(
                f"input {format_size(h, w)} is outside the plan's profile (min / opt / max {profile.describe()}); "
                f"rebuild with `nightvision build {self.header.model} --max {bigger}`"
            )
        if not self._context.set_input_shape(self._input, tuple(x.shape)):
            raise EngineError(f"TensorRT rejected the input shape {tuple(x.shape)}")
        dims = self._context.get_tensor_shape(self._output)
        out_shape = tuple(int(dims[i]) for i in range(len(dims)))
        x = np.ascontiguousarray(x, dtype=self._in_dtype)  # the plan's input type (fp32 for our graphs)
        result = self._buffers.run(self._context, self._input, self._output, x, out_shape, self._out_dtype)
        return np.asarray(result, dtype=np.float32)

    def close(self) -> None:
        """Release the device buffers, the context and the engine (idempotent)."""
        buffers = self.__dict__.pop("_buffers", None)
        if buffers is not None and hasattr(buffers, "close"):  # test doubles may have no close()
            buffers.close()
        self.__dict__.pop("_context", None)
        self.__dict__.pop("_engine", None)


def _numpy_dtype(trt: ModuleType, dtype: Any, plan: str | Path, tensor: str) -> type[np.floating[Any]]:
    """The numpy type of a plan's I/O tensor: fp32, or fp16 for graphs exported with fp16 inputs."""
    if dtype == trt.DataType.FLOAT:
        return np.float32
    if dtype == trt.DataType.HALF:
        return np.float16
    raise EngineError(f"{plan}: tensor {tensor!r} is {dtype}; nightvision plans take and give fp32 or fp16")


def _make_buffers(kind: str | None, cuda_graph: bool) -> DeviceBuffers:
    """``"torch"``, ``"pycuda"``, or ``None``: torch CUDA tensors when torch has a GPU, else pycuda."""
    if kind not in (None, "torch", "pycuda"):
        raise InputError(f"buffers must be 'torch' or 'pycuda', got {kind!r}")
    if kind in (None, "torch"):
        try:
            return _TorchBuffers(cuda_graph)
        except (ImportError, EngineError) as err:  # no torch, or a CPU-only torch (e.g. beside JetPack's TensorRT)
            if kind == "torch":
                raise EngineError(f"buffers='torch' needs PyTorch with CUDA ({err})") from None
            log.info("TensorRT buffers: pycuda (torch: %s)", err)
    return _PycudaBuffers()


class _TorchBuffers:
    """Device memory as torch CUDA tensors; optional CUDA-graph replay for a fixed shape."""

    kind = "torch"

    def __init__(self, cuda_graph: bool) -> None:
        import torch

        if not torch.cuda.is_available():
            raise EngineError("torch has no CUDA device")
        self._torch = torch
        self._graph_enabled = cuda_graph
        self._graph: Any = None
        self._shape: tuple[Any, ...] = ()
        self._x: Any = None
        self._y: Any = None
        self._stream = torch.cuda.Stream()

    def run(
        self, context: Any, inp: str, out: str, x: np.ndarray, out_shape: tuple[int, ...], out_dtype: type
    ) -> np.ndarray:
        torch = self._torch
        if (x.shape, x.dtype) != self._shape:
            self._shape = (x.shape, x.dtype)
            self._x = torch.empty(x.shape, dtype=_TORCH_DTYPES[np.dtype(x.dtype)](torch), device="cuda")
            self._y = torch.empty(out_shape, dtype=_TORCH_DTYPES[np.dtype(out_dtype)](torch), device="cuda")
            context.set_tensor_address(inp, self._x.data_ptr())
            context.set_tensor_address(out, self._y.data_ptr())
            self._graph = None
        with torch.cuda.stream(self._stream):
            self._x.copy_(torch.from_numpy(x), non_blocking=True)
            if self._graph is not None:
                self._graph.replay()
            else:
                if not context.execute_async_v3(self._stream.cuda_stream):
                    raise EngineError("TensorRT execution failed")
                if self._graph_enabled:  # capture after a first, warm-up enqueue
                    graph = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(graph, stream=self._stream):
                        context.execute_async_v3(self._stream.cuda_stream)
                    self._graph = graph
            result: np.ndarray = self._y.cpu().numpy()
        return result

    def close(self) -> None:
        self._graph = self._x = self._y = None
        self._shape = ()


_TORCH_DTYPES: dict[np.dtype[Any], Callable[[Any], Any]] = {
    np.dtype(np.float32): lambda torch: torch.float32,
    np.dtype(np.float16): lambda torch: torch.float16,
}


class _PycudaBuffers:
    """Device memory from pycuda in its primary context, pinned host buffers, async copies on one stream."""

    kind = "pycuda"

    def __init__(self) -> None:
        try:
            import pycuda.driver as cuda
        except ImportError as err:
            raise EngineError("without torch, TensorRT needs pycuda: pip install pycuda") from err
        cuda.init()
        self._cuda = cuda
        self._ctx = cuda.Device(0).retain_primary_context()
        self._ctx.push()
        self._stream = cuda.Stream()
        self._shape: tuple[Any, ...] = ()
        self._ctx.pop()

    def run(
        self, context: Any, inp: str, out: str, x: np.ndarray, out_shape: tuple[int, ...], out_dtype: type
    ) -> np.ndarray:
        cuda = self._cuda
        self._ctx.push()
        try:
            if (x.shape, x.dtype) != self._shape:
                self._free()
                self._shape = (x.shape, x.dtype)
                self._h_in = cuda.pagelocked_empty(x.shape, x.dtype)
                self._h_out = cuda.pagelocked_empty(out_shape, out_dtype)
                self._d_in = cuda.mem_alloc(self._h_in.nbytes)
                self._d_out = cuda.mem_alloc(self._h_out.nbytes)
                context.set_tensor_address(inp, int(self._d_in))
                context.set_tensor_address(out, int(self._d_out))
            np.copyto(self._h_in, x)
            cuda.memcpy_htod_async(self._d_in, self._h_in, self._stream)
            if not context.execute_async_v3(self._stream.handle):
                raise EngineError("TensorRT execution failed")
            cuda.memcpy_dtoh_async(self._h_out, self._d_out, self._stream)
            self._stream.synchronize()
            return np.array(self._h_out)
        finally:
            self._ctx.pop()

    def _free(self) -> None:
        for name in ("_d_in", "_d_out"):
            allocation = self.__dict__.pop(name, None)
            if allocation is not None:
                allocation.free()
        self._shape = ()

    def close(self) -> None:
        """Free the device memory and release the primary context (idempotent)."""
        if self._ctx is None:
            return
        self._ctx.push()
        try:
            self._free()
        finally:
            self._ctx.pop()
        self._ctx.detach()
        self._ctx = None
