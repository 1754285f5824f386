"""A small stand-in for ``pycuda.driver``: host bytearrays play device memory, a list plays the context stack.

Enough to test the order of our calls (primary context pushed around every call, pinned host buffers,
async copies on one stream, memory freed and the context released on close). Computes nothing on a GPU and
claims nothing about pycuda; used only by tests.
"""

from __future__ import annotations

import itertools
import sys
import types
from typing import Any

import numpy as np

memory: dict[int, bytearray] = {}
calls: list[str] = []
context_stack: list[Context] = []
_addresses = itertools.count(0x7000_0000, 0x1000)


def reset() -> types.ModuleType:
    """Empty state; returns a ``pycuda`` package whose ``driver`` is this module."""
    memory.clear()
    calls.clear()
    context_stack.clear()
    package = types.ModuleType("pycuda")
    package.driver = sys.modules[__name__]  # type: ignore[attr-defined]
    return package


def _need_context(what: str) -> None:
    if not context_stack:
        raise RuntimeError(f"{what} without a current context")


def init() -> None:
    calls.append("init")


class Context:
    def __init__(self) -> None:
        self.retained = True

    def push(self) -> None:
        context_stack.append(self)

    @staticmethod
    def pop() -> None:
        context_stack.pop()

    def detach(self) -> None:
        calls.append("detach")
        self.retained = False


class Device:
    def __init__(self, ordinal: int) -> None:
        self.ordinal = ordinal

    def retain_primary_context(self) -> Context:
        calls.append("retain_primary_context")
        return Context()

    def name(self) -> str:
        return "Orin"

    def compute_capability(self) -> tuple[int, int]:
        return 8, 7


class DeviceAllocation:
    def __init__(self, nbytes: int) -> None:
        self.address = next(_addresses)
        memory[self.address] = bytearray(nbytes)

    def __int__(self) -> int:
        return self.address

    def free(self) -> None:
        _need_context("free")
        calls.append("free")
        del memory[self.address]


class Stream:
    handle = 0xBEEF

    def synchronize(self) -> None:
        calls.append("synchronize")


def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
    calls.append("pagelocked_empty")
    return np.empty(shape, dtype)


def mem_alloc(nbytes: int) -> DeviceAllocation:
    _need_context("mem_alloc")
    return DeviceAllocation(nbytes)


def memcpy_htod_async(dest: DeviceAllocation, src: np.ndarray, stream: Stream) -> None:
    _need_context("memcpy_htod_async")
    calls.append("memcpy_htod_async")
    memory[int(dest)][:] = src.tobytes()


def memcpy_dtoh_async(dest: np.ndarray, src: DeviceAllocation, stream: Stream) -> None:
    _need_context("memcpy_dtoh_async")
    calls.append("memcpy_dtoh_async")
    dest[...] = np.frombuffer(bytes(memory[int(src)]), dest.dtype).reshape(dest.shape)
