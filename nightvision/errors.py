"""The exceptions nightvision raises.

Every error is a :class:`NightvisionError`; the specific ones also subclass the matching builtin so that
callers who catch ``ValueError`` or ``OSError`` keep working. The CLI turns any of them into one line on
stderr and exit code 2.
"""

from __future__ import annotations

__all__ = [
    "EngineError",
    "InputError",
    "ModelNotFoundError",
    "NightvisionError",
    "OutputError",
    "SetupError",
    "ShapeError",
    "SourceError",
]


class NightvisionError(Exception):
    """Base class of every error raised on purpose by nightvision."""


class ShapeError(NightvisionError, ValueError):
    """An array or tensor has the wrong shape, dtype or value range."""


class InputError(NightvisionError, ValueError):
    """A user-supplied path, file or option cannot be used."""


class SourceError(NightvisionError, OSError):
    """A frame source (file, camera, stream) cannot be opened or read."""


class OutputError(NightvisionError, OSError):
    """An output (a file, a folder, a server, a window) cannot be written, opened, or would destroy data.

    The message names the real output path (never a temporary name) and the cause in words.
    """


class EngineError(NightvisionError, RuntimeError):
    """An inference engine (ONNX Runtime, PyTorch, TensorRT) cannot load or run a model."""


class SetupError(EngineError):
    """What this machine or model lacks to run as asked: weights a model does not ship, a library that is not
    installed, a device that is not there, a TensorRT plan not built. Trying again does not help (a camera
    server leaves the camera down and says what to change); the setup must change."""


class ModelNotFoundError(NightvisionError, KeyError):
    """No model of that name is registered."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain.
        return str(self.args[0]) if self.args else ""
