"""nightvision: real-time low-light video enhancement.

The runtime (this package without :mod:`nightvision.models`, :mod:`nightvision.losses` and
:mod:`nightvision.export`) needs only numpy, OpenCV, ONNX Runtime and PyAV.
"""

from nightvision.enhancer import DEFAULT_MODEL, Enhancer
from nightvision.errors import (
    EngineError,
    InputError,
    ModelNotFoundError,
    NightvisionError,
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
    "ShapeError",
    "SourceError",
    "__version__",
    "get_spec",
    "list_specs",
]
