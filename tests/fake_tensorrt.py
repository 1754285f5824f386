"""A small stand-in for the ``tensorrt`` module: enough of the name-based API to test our logic.

It records what our code asks for and "builds" a plan whose bytes are the JSON of what was configured. It
computes nothing on a GPU. Used only by tests; never a claim that TensorRT ran.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable
from typing import Any

__version__ = "10.13.0.35"
builds: list[dict[str, Any]] = []


class DataType:
    FLOAT = "DataType.FLOAT"
    HALF = "DataType.HALF"
    INT8 = "DataType.INT8"


io_dtypes: dict[str, str] = {}
# What "running" a plan does, when a test sets it: called by execute_async_v3 with the tensor addresses and the
# input shape; returns False to report a failed launch.
kernel: Callable[[dict[str, int], tuple[int, ...]], bool] | None = None


def reset(version: str = "10.13.0.35") -> types.ModuleType:
    import sys

    global kernel
    module = sys.modules[__name__]
    module.__version__ = version  # type: ignore[attr-defined]
    builds.clear()
    io_dtypes.clear()
    io_dtypes.update(image=DataType.FLOAT, enhanced=DataType.FLOAT)
    kernel = None
    return module


class Logger:
    WARNING = 2

    def __init__(self, level: int = 2) -> None:
        self.level = level


class NetworkDefinitionCreationFlag:
    STRONGLY_TYPED = 1


class MemoryPoolType:
    WORKSPACE = 0


class BuilderFlag:
    VERSION_COMPATIBLE = 13


class TensorIOMode:
    INPUT = 1
    OUTPUT = 2


class Dims(list):  # type: ignore[type-arg]
    pass


class _Tensor:
    def __init__(self, name: str) -> None:
        self.name = name


class _Network:
    def __init__(self, flags: int) -> None:
        self.flags = flags
        self.inputs: list[_Tensor] = []

    def get_input(self, i: int) -> _Tensor:
        return self.inputs[i]


class OnnxParser:
    def __init__(self, network: _Network, logger: Logger) -> None:
        self.network = network
        self.errors: list[str] = []

    def parse(self, data: bytes, path: str = "") -> bool:
        if not data.startswith(b"\x08"):  # an ONNX ModelProto starts with field 1 (ir_version), tag 0x08
            self.errors = [f"{path}: ModelImporter: not an ONNX model", "In node -1: unsupported"]
            return False
        self.network.inputs = [_Tensor("image")]
        return True

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    def get_error(self, i: int) -> str:
        return self.errors[i]


class _Cache:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return self.data + b"+"


class _Config:
    def __init__(self) -> None:
        self.pool: dict[int, int] = {}
        self.flags: list[int] = []
        self.cache: _Cache | None = None
        self.profiles: list[_Profile] = []

    def set_memory_pool_limit(self, pool: int, size: int) -> None:
        self.pool[pool] = size

    def set_flag(self, flag: int) -> None:
        self.flags.append(flag)

    def create_timing_cache(self, data: bytes) -> _Cache:
        return _Cache(bytes(data))

    def set_timing_cache(self, cache: _Cache, ignore_mismatch: bool) -> bool:
        self.cache = cache
        return True

    def get_timing_cache(self) -> _Cache:
        assert self.cache is not None
        return self.cache

    def add_optimization_profile(self, profile: _Profile) -> int:
        self.profiles.append(profile)
        return len(self.profiles) - 1


class _Profile:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[list[int], list[int], list[int]]] = {}

    def set_shape(self, name: str, lo: Dims, opt: Dims, hi: Dims) -> None:
        self.shapes[name] = (list(lo), list(opt), list(hi))


class Builder:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def create_network(self, flags: int = 0) -> _Network:
        return _Network(flags)

    def create_builder_config(self) -> _Config:
        return _Config()

    def create_optimization_profile(self) -> _Profile:
        return _Profile()

    def build_serialized_network(self, network: _Network, config: _Config) -> bytes | None:
        record = {
            "flags": network.flags,
            "workspace": config.pool.get(MemoryPoolType.WORKSPACE),
            "builder_flags": config.flags,
            "profile": config.profiles[0].shapes,
            "cache_in": (config.cache.data if config.cache else b"").decode(),
        }
        builds.append(record)
        return json.dumps(record).encode()


class _Context:
    def __init__(self, engine: _Engine) -> None:
        self.engine = engine
        self.shape: tuple[int, ...] = ()
        self.addresses: dict[str, int] = {}
        self.calls: list[str] = []

    def set_input_shape(self, name: str, shape: tuple[int, ...]) -> bool:
        lo, _, hi = self.engine.profile[name]
        self.calls.append("set_input_shape")
        if not all(a <= s <= b for a, s, b in zip(lo, shape, hi, strict=True)):
            return False
        self.shape = tuple(shape)
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        return Dims(self.shape)

    def set_tensor_address(self, name: str, address: int) -> bool:
        self.addresses[name] = address
        self.calls.append(f"set_tensor_address:{name}")
        return True

    def execute_async_v3(self, stream: int) -> bool:
        self.calls.append("execute_async_v3")
        if set(self.addresses) != {"image", "enhanced"}:
            return False
        return kernel(self.addresses, self.shape) if kernel is not None else True


class _Engine:
    def __init__(self, record: dict[str, Any]) -> None:
        self.profile = record["profile"]

    @property
    def num_io_tensors(self) -> int:
        return 2

    def get_tensor_name(self, i: int) -> str:
        return ["image", "enhanced"][i]

    def get_tensor_dtype(self, name: str) -> str:
        return io_dtypes[name]

    def get_tensor_mode(self, name: str) -> int:
        return TensorIOMode.INPUT if name == "image" else TensorIOMode.OUTPUT

    def create_execution_context(self) -> _Context:
        return _Context(self)


class Runtime:
    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def deserialize_cuda_engine(self, data: bytes) -> _Engine:
        return _Engine(json.loads(data))
