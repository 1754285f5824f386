"""nightvision: real-time low-light video enhancement.

The runtime (this package without :mod:`nightvision.models`, :mod:`nightvision.losses` and
:mod:`nightvision.export`) needs only numpy, OpenCV, ONNX Runtime and PyAV.

* ``Enhancer(model).enhance(frame)`` — one frame in, one frame out (:mod:`nightvision.enhancer`).
* ``enhance_path(src, out, enhancer=...)`` and ``run_stream(uri, outputs, enhancer=...)`` — the jobs behind
  ``nightvision enhance`` and ``nightvision run``, both through the one pipeline (:mod:`nightvision.stream`);
  imported on first use.
* ``keep_freed_memory()`` — once at start of a video program: frame-sized temporaries reuse their pages instead
  of being faulted in afresh every frame (the CLI calls it; :mod:`nightvision.allocator`).
"""

from typing import Any

from nightvision.allocator import keep_freed_memory
from nightvision.enhancer import DEFAULT_MODEL, Enhancer
from nightvision.errors import (
    EngineError,
    InputError,
    ModelNotFoundError,
    NightvisionError,
    OutputError,
    ShapeError,
    SourceError,
)
from nightvision.specs import ModelSpec, get_spec, list_specs

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL",
    "EngineError",
    "Enhancer",
    "InputError",
    "ModelNotFoundError",
    "ModelSpec",
    "NightvisionError",
    "OutputError",
    "ShapeError",
    "SourceError",
    "__version__",
    "get_spec",
    "keep_freed_memory",
    "list_specs",
]


def __getattr__(name: str) -> Any:
    """``enhance_path`` and ``run_stream``, imported on first use (they pull in PyAV and the pipeline)."""
    if name in ("enhance_path", "run_stream"):
        from nightvision.stream import jobs

        return getattr(jobs, name)
    raise AttributeError(f"module 'nightvision' has no attribute {name!r}")
