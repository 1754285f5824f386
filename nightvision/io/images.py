"""Image files: read any depth and channel count OpenCV knows, write atomically."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from nightvision.errors import InputError
from nightvision.io.atomic import atomic_path

__all__ = ["IMAGE_SUFFIXES", "is_image", "read_image", "write_image"]

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as OpenCV gives it, keeping depth and alpha: ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``.

    Raises :class:`~nightvision.errors.InputError` when the file is missing, unreadable or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image {path}: not an image, or truncated")
    if path.suffix.lower() in (".jpg", ".jpeg") and not _jpeg_complete(data):
        raise InputError(f"cannot decode image {path}: the JPEG data is truncated")
    return image


def _jpeg_complete(data: np.ndarray) -> bool:
    """A complete JPEG ends with the EOI marker (some writers pad after it)."""
    tail = data[-64:].tobytes()
    return b"\xff\xd9" in tail


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` to ``path`` via a temporary file renamed into place when complete."""
    path = Path(path)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(f"cannot encode an image as {path.suffix!r}")
    with atomic_path(path) as tmp:
        buf.tofile(tmp)
