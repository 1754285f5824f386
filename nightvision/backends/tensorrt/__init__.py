"""TensorRT: build plans from our ONNX graphs, cache them, run them (TensorRT 10.x and 11.x).

Three parts, each readable on its own:

* :mod:`~nightvision.backends.tensorrt.plan` — the plan file (a JSON header before the serialized engine:
  model, sha256 of the graph and of the shipped graph it derives from, TensorRT version, GPU, precision,
  profile) and what is running here (:func:`import_tensorrt`, :func:`gpu_identity`);
* :mod:`~nightvision.backends.tensorrt.builder` — ONNX → plan: strongly typed networks (precision is decided in
  the ONNX graph, never by builder flags), one optimisation profile, timing caches, and :func:`ensure_plan`'s
  folder of built plans (the user cache by default);
* :mod:`~nightvision.backends.tensorrt.runner` — :class:`TensorRTBackend`, the name-based API
  (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``) with torch or pycuda device buffers.

Written to the documented API only and type-checked against ``tensorrt-stubs``; tested with a fake
``tensorrt`` module. **It has not run against a real TensorRT in this project's workplace** (none can be
installed there).
"""

from __future__ import annotations

from nightvision.backends.tensorrt.builder import build_plan, ensure_plan, timing_cache_path
from nightvision.backends.tensorrt.plan import (
    PlanHeader,
    Profile,
    gpu_identity,
    import_tensorrt,
    read_plan,
    write_plan,
)
from nightvision.backends.tensorrt.runner import TensorRTBackend

__all__ = [
    "PlanHeader",
    "Profile",
    "TensorRTBackend",
    "build_plan",
    "ensure_plan",
    "gpu_identity",
    "import_tensorrt",
    "read_plan",
    "timing_cache_path",
    "write_plan",
]
