"""TensorRT: build plans from our ONNX graphs, cache them, run them (TensorRT 10.x and 11.x).

Written to the documented name-based API only — ``set_input_shape``, ``set_tensor_address``,
``execute_async_v3`` — with strongly typed networks (precision is decided in the ONNX graph, never by
builder flags). Type-checked against ``tensorrt-stubs``; tested with a fake ``tensorrt`` module. **It has not
run against a real TensorRT in this project's workplace** (none can be installed there).

A plan file is ``MAGIC | header length (4 bytes, little-endian) | JSON header | serialized engine``. The
header records the model, the ONNX sha256, the TensorRT version, the GPU name and compute capability, the
precision, the optimisation profile and the creation time. :func:`ensure_plan` keys cached plans on those
fields, so a plan built for another TensorRT or GPU is rebuilt (with a message), never loaded blindly;
:func:`read_plan` refuses a mismatch outright.

Device buffers are torch CUDA tensors when torch is installed (with optional CUDA-graph replay for a fixed
shape) and pycuda otherwise (its primary context, pinned host buffers, async copies).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from nightvision.errors import EngineError, InputError
from nightvision.io.atomic import atomic_path
from nightvision.specs import sha256_of

__all__ = [
    "PlanHeader",
    "Profile",
    "TensorRTBackend",
    "build_plan",
    "ensure_plan",
    "import_tensorrt",
    "read_plan",
    "write_plan",
]

log = logging.getLogger(__name__)

MAGIC = b"NVPLAN\x01\n"
SUPPORTED_MAJOR = (10, 11)


def import_tensorrt() -> ModuleType:
    """The real ``tensorrt`` module, or a clear error (``tensorrt-stubs`` alone is not TensorRT).

    Tests put a fake module in ``sys.modules["tensorrt"]``; the functions here import it by name, so that
    mypy checks every call against ``tensorrt-stubs``.
    """
    try:
        import tensorrt as trt
    except ImportError as err:
        raise EngineError("TensorRT is not installed (pip install tensorrt, or JetPack on a Jetson)") from err
    if not hasattr(trt, "Builder"):
        raise EngineError("the installed 'tensorrt' is only type stubs; install the TensorRT runtime")
    major = int(str(trt.__version__).split(".")[0])
    if major not in SUPPORTED_MAJOR:
        raise EngineError(f"TensorRT {trt.__version__} is not supported (use 10.x or 11.x)")
    return trt


@dataclass(frozen=True)
class Profile:
    """One optimisation profile over height and width (batch 1): ``min <= opt <= max``, each ``(H, W)``."""

    min: tuple[int, int] = (64, 64)
    opt: tuple[int, int] = (720, 1280)
    max: tuple[int, int] = (1080, 1920)

    def __post_init__(self) -> None:
        if not all(self.min[i] <= self.opt[i] <= self.max[i] for i in (0, 1)) or min(self.min) < 1:
            raise InputError(f"profile needs 1 <= min <= opt <= max per side, got {self.describe()}")

    def describe(self) -> str:
        return " / ".join(f"{h}x{w}" for h, w in (self.min, self.opt, self.max))

    def contains(self, height: int, width: int) -> bool:
        return self.min[0] <= height <= self.max[0] and self.min[1] <= width <= self.max[1]

    @staticmethod
    def parse(text: str) -> tuple[int, int]:
        """``"720x1280"`` (HxW) → ``(720, 1280)``."""
        h, sep, w = text.lower().partition("x")
        if not (sep and h.isdigit() and w.isdigit()):
            raise InputError(f"expected HEIGHTxWIDTH, got {text!r}")
        return int(h), int(w)


@dataclass(frozen=True)
class PlanHeader:
    """What a plan was built from and for."""

    model: str
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    profile: Profile
    version_compatible: bool = False
    source_sha256: str = ""  # the model's shipped fp32 graph the built one derives from (fp16 plans)
    created: str = field(default="", compare=False)

    def key(self) -> str:
        """Cache key: every field that makes a plan valid or not (not the creation time)."""
        fields = asdict(self)
        fields.pop("created")
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @staticmethod
    def from_json(data: bytes) -> PlanHeader:
        d = json.loads(data)
        p = d.pop("profile")
        prof = Profile((p["min"][0], p["min"][1]), (p["opt"][0], p["opt"][1]), (p["max"][0], p["max"][1]))
        return PlanHeader(profile=prof, **d)

    def mismatch(self, tensorrt_version: str, gpu_name: str, compute_capability: str) -> str:
        """Why this plan cannot run here ('' when it can)."""
        if self.tensorrt_version != tensorrt_version and not self.version_compatible:
            return f"built with TensorRT {self.tensorrt_version}, running {tensorrt_version}"
        if self.gpu_name != gpu_name or self.compute_capability != compute_capability:
            return (
                f"built for {self.gpu_name} (sm {self.compute_capability}), "
                f"running on {gpu_name} (sm {compute_capability})"
            )
        return ""


def write_plan(path: str | Path, header: PlanHeader, engine: bytes) -> Path:
    """Write a plan file atomically."""
    head = header.to_json()
    with atomic_path(Path(path)) as tmp:
        tmp.write_bytes(MAGIC + struct.pack("<I", len(head)) + head + engine)
    return Path(path)


def read_plan(path: str | Path) -> tuple[PlanHeader, bytes]:
    """Read a plan file's header and engine bytes."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise EngineError(f"{path} is not a nightvision plan (no header); rebuild it with `nightvision build`")
    (n,) = struct.unpack("<I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    try:
        header = PlanHeader.from_json(data[start : start + n])
    except (ValueError, KeyError, TypeError) as err:
        raise EngineError(f"{path} has a damaged header: {err}") from err
    return header, data[start + n :]


def gpu_identity() -> tuple[str, str]:
    """Name and compute capability (``"9.0"``) of GPU 0, through torch or pycuda."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except ImportError:
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        dev = cuda.Device(0)
        major, minor = dev.compute_capability()
        return str(dev.name()), f"{major}.{minor}"
    except ImportError as err:
        raise EngineError("no CUDA device found (neither torch with CUDA nor pycuda is installed)") from err


def _describe(
    onnx_path: str | Path,
    *,
    model: str,
    precision: str,
    profile: Profile,
    version_compatible: bool,
    source_sha256: str | None,
    tensorrt_version: str,
    gpu: Callable[[], tuple[str, str]],
) -> PlanHeader:
    """The header a plan built now, here, from this graph would carry (without its creation time)."""
    if not Path(onnx_path).is_file():
        raise InputError(f"no such ONNX file: {onnx_path}")
    gpu_name, cc = gpu()
    onnx_sha256 = sha256_of(Path(onnx_path))
    return PlanHeader(
        model=model,
        onnx_sha256=onnx_sha256,
        tensorrt_version=tensorrt_version,
        gpu_name=gpu_name,
        compute_capability=cc,
        precision=precision,
        profile=profile,
        version_compatible=version_compatible,
        source_sha256=source_sha256 or onnx_sha256,
    )


def build_plan(
    onnx_path: str | Path,
    plan_path: str | Path,
    *,
    model: str,
    precision: str = "fp16",
    profile: Profile | None = None,
    workspace_gib: float = 2.0,
    version_compatible: bool = False,
    source_sha256: str | None = None,
    timing_cache: str | Path | None = None,
    gpu: Callable[[], tuple[str, str]] = gpu_identity,
) -> PlanHeader:
    """Build a plan from an ONNX graph: strongly typed, one optimisation profile, a persisted timing cache.

    ``precision`` only labels the plan: in a strongly typed network the ONNX graph decides every tensor's type
    (export an fp16 graph for an fp16 plan). ``source_sha256``: the sha256 of the model's shipped graph when
    ``onnx_path`` was derived from it (an fp16 copy), so that ``--backend auto`` never runs a plan of older
    weights; default: the graph's own. Parser errors are reported in full.
    """
    import_tensorrt()
    import tensorrt as trt

    header = _describe(
        onnx_path,
        model=model,
        precision=precision,
        profile=profile or Profile(),
        version_compatible=version_compatible,
        source_sha256=source_sha256,
        tensorrt_version=str(trt.__version__),
        gpu=gpu,
    )
    return _build(Path(onnx_path), Path(plan_path), header, workspace_gib=workspace_gib, timing_cache=timing_cache)


def _build(
    onnx_path: Path, plan_path: Path, header: PlanHeader, *, workspace_gib: float, timing_cache: str | Path | None
) -> PlanHeader:
    """Build and write the plan ``header`` describes; returns the header with its creation time."""
    import tensorrt as trt

    profile = header.profile
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes(), str(onnx_path)):
        errors = "\n".join(f"  {parser.get_error(i)}" for i in range(parser.num_errors))
        raise EngineError(f"TensorRT cannot parse {onnx_path}:\n{errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    if header.version_compatible:
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    cache_path = Path(timing_cache) if timing_cache else None
    cache_bytes = cache_path.read_bytes() if cache_path is not None and cache_path.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    opt_profile = builder.create_optimization_profile()
    name = network.get_input(0).name
    opt_profile.set_shape(
        name, trt.Dims([1, 3, *profile.min]), trt.Dims([1, 3, *profile.opt]), trt.Dims([1, 3, *profile.max])
    )
    config.add_optimization_profile(opt_profile)
    t0 = time.time()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f"TensorRT failed to build a plan from {onnx_path} (see the messages above)")
    if cache_path is not None:
        with atomic_path(cache_path) as tmp:
            tmp.write_bytes(bytes(config.get_timing_cache().serialize()))
    header = dataclasses.replace(header, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_plan(plan_path, header, bytes(serialized))
    log.info("built %s in %.0f s: %s", plan_path, time.time() - t0, header.key())
    return header


def ensure_plan(
    onnx_path: str | Path,
    engines_dir: str | Path,
    *,
    model: str,
    precision: str = "fp16",
    profile: Profile | None = None,
    version_compatible: bool = False,
    workspace_gib: float = 2.0,
    source_sha256: str | None = None,
    gpu: Callable[[], tuple[str, str]] = gpu_identity,
) -> Path:
    """The cached plan for these settings on this TensorRT and GPU, building it when missing or stale."""
    import_tensorrt()
    import tensorrt as trt

    profile = profile or Profile()
    wanted = _describe(
        onnx_path,
        model=model,
        precision=precision,
        profile=profile,
        version_compatible=version_compatible,
        source_sha256=source_sha256,
        tensorrt_version=str(trt.__version__),
        gpu=gpu,
    )
    gpu_name, cc = wanted.gpu_name, wanted.compute_capability
    engines = Path(engines_dir)
    path = engines / f"{model}-{precision}-{wanted.key()}.plan"
    if path.is_file():
        header, _ = read_plan(path)
        if header == wanted:
            log.info("plan cache hit: %s", path)
            return path
    for old in sorted(engines.glob(f"{model}-{precision}-*.plan")):
        try:
            header, _ = read_plan(old)
        except EngineError:
            continue
        reason = header.mismatch(wanted.tensorrt_version, gpu_name, cc)
        if header.onnx_sha256 == wanted.onnx_sha256 and header.profile == profile and reason:
            log.warning("rebuilding %s: the cached plan %s was %s", model, old.name, reason)
    _build(Path(onnx_path), path, wanted, workspace_gib=workspace_gib, timing_cache=engines / "timing.cache")
    return path


class TensorRTBackend:
    """Run a plan through the name-based API.

    Args:
        plan: a plan file written by :func:`build_plan`.
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
        device_buffers: Any = None,
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
        _, _, h, w = x.shape
        if not self.header.profile.contains(h, w):
            raise EngineError(
                f"input {h}x{w} is outside the plan's profile (min / opt / max {self.header.profile.describe()}); "
                f"rebuild with `nightvision build {self.header.model} --max {max(h, self.header.profile.max[0])}x"
                f"{max(w, self.header.profile.max[1])}`"
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
        if buffers is not None and hasattr(buffers, "close"):
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


def _make_buffers(kind: str | None, cuda_graph: bool) -> Any:
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
