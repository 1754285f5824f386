"""The one small protocol every inference backend implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = ["Backend"]


@runtime_checkable
class Backend(Protocol):
    """Runs one model on batches of images.

    ``run`` takes and returns ``(N, 3, H, W)`` float32 arrays, RGB in ``[0, 1]`` (the model's
    :class:`~nightvision.specs.ModelSpec` says so), with H and W already padded to the model's multiple.
    """

    name: str
    """Short name for logs and benchmarks, e.g. ``"onnxruntime:CPUExecutionProvider"``."""

    def run(self, x: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...
