"""Image files: read any depth and channel count OpenCV knows; write atomically in what the format holds.

:func:`fit_format` converts an image to what its output format can store: 16-bit pixels are scaled to 8 bits
for formats that only hold 8 (JPEG, BMP, WebP) instead of being clipped to white, alpha is dropped where the
format has none, and PPM/PGM get the colour/grey layout they require.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from nightvision.errors import InputError, OutputError
from nightvision.io.atomic import atomic_path

__all__ = [
    "IMAGE_SUFFIXES",
    "SIXTEEN_BIT_SUFFIXES",
    "exif_orientation",
    "fit_format",
    "is_image",
    "read_image",
    "to_uint8",
    "upright",
    "write_image",
]

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
SIXTEEN_BIT_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".ppm", ".pgm"})
"""Formats that store 16 bits per channel; the others hold 8."""
_ALPHA_SUFFIXES = frozenset({".png", ".tif", ".tiff", ".webp", ".bmp"})


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as OpenCV gives it, keeping depth and alpha: ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``,
    turned upright as a JPEG's EXIF orientation says (phones store portrait photos sideways with that tag;
    the output is written upright, without it, as viewers show the input).

    Raises :class:`~nightvision.errors.InputError` when the file is missing, unreadable or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode image {path}: not an image, or truncated")
    image = _as_integer_pixels(image, path)
    if data[: len(_JPEG_START)].tobytes() == _JPEG_START:  # (by the content: a PNG named .jpg is a PNG)
        if not _jpeg_complete(data):
            raise InputError(f"cannot decode image {path}: the JPEG data is truncated")
        orientation = exif_orientation(data[:_EXIF_REACH].tobytes())
        if orientation != 1:
            log.info("%s: turned upright as its EXIF orientation (%d) says", path, orientation)
            image = upright(image, orientation)
    return image


def _as_integer_pixels(image: np.ndarray, path: Path) -> np.ndarray:
    """8- and 16-bit pixels as they are; floating-point ones (a 32-bit TIFF) in ``[0, 1]`` as 16 bits; others
    (HDR values beyond 1, 32-bit integers) refused, saying what to do."""
    if image.dtype in (np.uint8, np.uint16):
        return image
    if image.dtype.kind == "f" and np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0:
        return np.floor(image.astype(np.float64) * 65535.0 + 0.5).astype(np.uint16)
    what = "floating-point pixels outside 0-1 (HDR?)" if image.dtype.kind == "f" else f"{image.dtype} pixels"
    raise InputError(f"{path} holds {what}: save it with 8 or 16 bits per channel")


_JPEG_START = b"\xff\xd8\xff"
_EXIF_REACH = 4 + 65536  # an EXIF segment is among the first markers and at most 64 KiB


def _jpeg_complete(data: np.ndarray) -> bool:
    """A complete JPEG ends with the EOI marker (some writers pad after it)."""
    tail = data[-64:].tobytes()
    return b"\xff\xd9" in tail


def exif_orientation(jpeg: bytes) -> int:
    """The EXIF orientation (1-8, 1 = as stored) of JPEG data (its first markers are enough); 1 without one."""
    i = 2
    while i + 4 <= len(jpeg) and jpeg[i] == 0xFF:
        marker = jpeg[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA:  # start of scan: no EXIF after it
            break
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        if marker == 0xE1 and jpeg[i + 4 : i + 10] == b"Exif\0\0":
            return _tiff_orientation(jpeg[i + 10 : i + 2 + length])
        i += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """Tag 0x0112 of the first IFD of a TIFF structure (EXIF's), 1 when absent or out of range."""
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order: Literal["little", "big"] = "little" if tiff[:2] == b"II" else "big"
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order) if ifd + 2 <= len(tiff) else 0
    for k in range(count):
        entry = tiff[ifd + 2 + 12 * k : ifd + 14 + 12 * k]
        if len(entry) == 12 and int.from_bytes(entry[:2], order) == 0x0112:
            value = int.from_bytes(entry[8:10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def upright(image: np.ndarray, orientation: int) -> np.ndarray:
    """``image`` as stored with EXIF ``orientation`` (1-8), turned and mirrored to how viewers show it."""
    turn = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 8: cv2.ROTATE_90_COUNTERCLOCKWISE}
    if orientation in turn:
        out: np.ndarray = cv2.rotate(image, turn[orientation])
    elif orientation in (2, 4):
        out = cv2.flip(image, 1 if orientation == 2 else 0)
    elif orientation in (5, 7):
        out = cv2.transpose(image) if orientation == 5 else cv2.rotate(cv2.transpose(image), cv2.ROTATE_180)
    else:
        return image
    return out


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
