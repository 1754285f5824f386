"""Image files: read any depth and channel count OpenCV knows; write atomically in what the format holds.

:func:`fit_format` converts an image to what its output format can store: 16-bit pixels are scaled to 8 bits
for formats that only hold 8 (JPEG, BMP, WebP) instead of being clipped to white, alpha is dropped where the
format has none, and PPM/PGM get the colour/grey layout they require.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from nightvision.errors import InputError, OutputError
from nightvision.io.atomic import atomic_path

__all__ = ["IMAGE_SUFFIXES", "SIXTEEN_BIT_SUFFIXES", "fit_format", "is_image", "read_image", "to_uint8", "write_image"]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".ppm", ".pgm"})
"""Formats that store 16 bits per channel; the others hold 8."""
_ALPHA_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".webp", ".bmp"})


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


def to_uint8(image: np.ndarray) -> np.ndarray:
    """An image as 8 bits: uint16 is scaled (``/ 257``, rounded), float in ``[0, 1]`` times 255; uint8 as is."""
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    if image.dtype in (np.float32, np.float64):
        return cv2.convertScaleAbs(np.clip(image, 0.0, 1.0), alpha=255.0)
    raise InputError(f"cannot write {image.dtype} pixels; expected uint8, uint16 or float in [0, 1]")


def fit_format(image: np.ndarray, suffix: str) -> np.ndarray:
    """``image`` converted to what the format of ``suffix`` holds (depth, alpha, grey or colour).

    ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, uint8 or uint16 in; the same layout
    out where the format allows it.
    """
    suffix = suffix.lower()
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype != np.uint8 and not (image.dtype == np.uint16 and suffix in SIXTEEN_BIT_SUFFIXES):
        image = to_uint8(image)
    if image.ndim == 3 and image.shape[2] == 4 and suffix not in _ALPHA_SUFFIXES:
        log.info("%s holds no alpha channel: dropped", suffix)
        image = np.ascontiguousarray(image[:, :, :3])
    if suffix == ".ppm" and image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif suffix == ".ppm" and image.shape[2] == 4:
        image = np.ascontiguousarray(image[:, :, :3])
    elif suffix == ".pgm" and image.ndim == 3:
        image = cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    return image


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write ``image`` to ``path`` in what its format holds (:func:`fit_format`), atomically.

    Raises :class:`~nightvision.errors.OutputError` naming ``path`` when it cannot be written.
    """
    path = Path(path)
    suffix = path.suffix.lower() or ".png"
    if suffix not in IMAGE_SUFFIXES:
        raise OutputError(f"cannot write {path}: unsupported image format {path.suffix!r}")
    ok, buf = cv2.imencode(suffix, fit_format(image, suffix))
    if not ok:
        raise OutputError(f"cannot write {path}: OpenCV cannot encode this image as {suffix}")
    with atomic_path(path) as tmp:
        buf.tofile(tmp)
