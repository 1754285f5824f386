"""Image files in: a phone's EXIF orientation is applied as viewers apply it, and the format is told by the
content, not the name."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision.errors import InputError
from nightvision.io.images import exif_orientation, read_image
from tests.conftest import dark_frame


def with_exif_orientation(jpeg: bytes, orientation: int, *, big_endian: bool = False) -> bytes:
    """``jpeg`` with an APP1 EXIF segment holding one IFD entry, Orientation (0x0112, SHORT) = ``orientation``,
    after its start marker (as a camera writes it)."""
    e = ">" if big_endian else "<"
    tiff = (b"MM" if big_endian else b"II") + struct.pack(f"{e}HI", 42, 8)
    tiff += struct.pack(f"{e}H", 1) + struct.pack(f"{e}HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(f"{e}I", 0)
    payload = b"Exif\0\0" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def corner_jpeg() -> bytes:
    """A 40×64 JPEG, dark with a bright top-left corner: every turn and mirror of it looks different."""
    img = dark_frame(40, 64, seed=1)
    img[:10, :16] = 230
    ok, data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("big_endian", [False, True], ids=["II", "MM"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_a_jpegs_exif_orientation_is_applied_as_opencv_shows_it(
    tmp_path: Path, orientation: int, big_endian: bool
) -> None:
    """Phones store portrait photos sideways with an EXIF orientation: the output came out sideways. OpenCV's
    colour reading applies the tag (as viewers do): the reader turns the pixels the same way."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(with_exif_orientation(corner_jpeg(), orientation, big_endian=big_endian))
    assert exif_orientation(path.read_bytes()) == orientation
    shown = cv2.imread(str(path), cv2.IMREAD_COLOR)  # applies the orientation
    image = read_image(path)
    assert image.shape == shown.shape and np.array_equal(image, shown)
    assert image.shape[:2] == ((64, 40) if orientation >= 5 else (40, 64))


def test_an_enhanced_portrait_photo_comes_out_upright(tmp_path: Path) -> None:
    from nightvision.cli import main

    src = tmp_path / "portrait.jpg"
    src.write_bytes(with_exif_orientation(corner_jpeg(), 6))
    assert main(["enhance", str(src), "-o", str(tmp_path / "out.png"), "-q"]) == 0
    out = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape[:2] == (64, 40)
    assert out[:10, -16:].mean() > out[-10:, :16].mean() + 40  # the bright corner turned to the top right


def test_jpeg_data_without_exif_or_with_junk_reads_as_stored() -> None:
    plain = corner_jpeg()
    assert exif_orientation(plain) == 1
    assert exif_orientation(with_exif_orientation(plain, 9)) == 1  # out of range
    broken = with_exif_orientation(plain, 6)
    assert exif_orientation(broken[:30]) == 1  # cut inside the segment: no exception


def test_the_format_is_told_by_the_content_not_the_name(tmp_path: Path) -> None:
    """A PNG named .jpg was refused as "the JPEG data is truncated"; a truncated JPEG still is."""
    png_named_jpg = tmp_path / "really-a-png.jpg"
    png_named_jpg.write_bytes(cv2.imencode(".png", dark_frame(20, 30))[1].tobytes())
    assert read_image(png_named_jpg).shape == (20, 30, 3)
    cut = tmp_path / "cut.jpg"
    data = corner_jpeg()
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="truncated"):
        read_image(cut)


def test_float_pixels_in_0_1_read_as_16_bits_and_others_are_refused(tmp_path: Path) -> None:
    """A 32-bit float TIFF reached the model as float32 and was refused as "expected uint8 or uint16"."""
    rng = np.random.default_rng(0)
    pixels = (rng.random((20, 30, 3)) * 0.3).astype(np.float32)
    cv2.imwrite(str(tmp_path / "float.tif"), pixels)
    image = read_image(tmp_path / "float.tif")
    assert image.dtype == np.uint16 and np.abs(image / 65535.0 - pixels).max() <= 0.5 / 65535 + 1e-7
    cv2.imwrite(str(tmp_path / "hdr.tif"), pixels * 10)
    with pytest.raises(InputError, match=r"hdr\.tif holds floating-point pixels outside 0-1"):
        read_image(tmp_path / "hdr.tif")
