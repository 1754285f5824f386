"""Datasets for training: any folder of images, read with OpenCV, random crops and flips."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from nightvision.errors import InputError
from nightvision.io.images import IMAGE_SUFFIXES

__all__ = ["ImageFolder", "list_images"]


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursive), sorted by natural order (``2.jpg`` before ``10.jpg``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"training data folder not found: {root}")

    def key(p: Path) -> tuple[str, int, str]:
        stem = p.stem
        return (str(p.parent), int(stem) if stem.isdigit() else -1, stem)

    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=key)
    if not files:
        raise InputError(f"no images in {root}")
    return files


class ImageFolder(Dataset[torch.Tensor]):
    """Images of a folder as ``(3, crop, crop)`` float RGB tensors in ``[0, 1]``.

    Args:
        files: image paths.
        crop: side of the square crop; images smaller than that are resized up first.
        train: random crop position and random horizontal/vertical flips; else a centre crop.
    """

    def __init__(self, files: list[Path], crop: int, train: bool = True) -> None:
        self.files = files
        self.crop = crop
        self.train = train

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = self.files[index]
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise InputError(f"cannot read image {path}")
        h, w = bgr.shape[:2]
        c = self.crop
        if min(h, w) < c:
            s = c / min(h, w)
            bgr = cv2.resize(bgr, (max(c, round(w * s)), max(c, round(h * s))), interpolation=cv2.INTER_AREA)
            h, w = bgr.shape[:2]
        if self.train:
            top = int(torch.randint(0, h - c + 1, ()).item())
            left = int(torch.randint(0, w - c + 1, ()).item())
        else:
            top, left = (h - c) // 2, (w - c) // 2
        rgb = np.ascontiguousarray(bgr[top : top + c, left : left + c, ::-1])
        x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)
        if self.train:
            if torch.rand(()) < 0.5:
                x = x.flip(2)
            if torch.rand(()) < 0.5:
                x = x.flip(1)
        return x
