"""Datasets for training: folders of images (zero-reference) and aligned pairs (supervised), read with OpenCV."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from nightvision.errors import InputError
from nightvision.evaluation.pairs import list_images, lol_pairs

__all__ = [
    "EpochShuffle",
    "ImageFolder",
    "PairedPatches",
    "check_batches",
    "check_crop",
    "list_images",
    "lol_pairs",
    "make_grey",
]


class EpochShuffle(Sampler[int]):
    """The indices ``0..n-1`` shuffled by ``seed + epoch`` alone, from a ``start`` position.

    A run resumed in the middle of an epoch sets that epoch and starts after the items it had already
    trained on: it sees the rest of the epoch in the order the uninterrupted run had, and the epochs after
    it alike, however the DataLoader draws its own seeds (a generator shared by the loader's workers and
    its sampler changes its draws with ``persistent_workers``; reseeding it on resume did not match the
    first run). The random crops of the resumed part are new ones; the images are the same.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed = n, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Shuffle for ``epoch`` and leave out its first ``start`` indices (those seen before a resume)."""
        self.epoch, self.start = epoch, start

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        return iter(order[self.start :].tolist())

    def __len__(self) -> int:
        return max(0, self.n - self.start)


def check_batches(count: int, batch_size: int, what: str, fix: str) -> None:
    """Refuse a training set that fills no batch: the loaders drop the last partial batch, so ``count``
    training items fewer than ``batch_size`` would run no step at all and save the initial weights as the
    result (or, in a step-based loop, never end). ``what`` describes the count; ``fix`` says what to change."""
    if count < batch_size:
        raise InputError(f"{what} is fewer than --batch-size {batch_size}: {fix}")


def check_crop(files: list[Path], crop: int) -> None:
    """Read every image once, before training: refuse an unreadable one now rather than in a worker mid-epoch,
    and a ``crop`` larger than the smallest image, which :class:`ImageFolder` would enlarge to the crop (every
    image, at a cost in memory that grows with the square of the crop) instead of cropping it."""

    def size(path: Path) -> tuple[int, int]:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise InputError(f"cannot read image {path}; remove it from the training folder")
        return image.shape[1], image.shape[0]

    with ThreadPoolExecutor(max_workers=4) as pool:  # OpenCV decodes without the GIL: SICE's 2002 in about 2 s
        sizes = list(pool.map(size, files))
    (w, h), path = min(zip(sizes, files, strict=True), key=lambda item: min(item[0]))
    if crop > min(w, h):
        raise InputError(
            f"crop {crop} is larger than the smallest image, {path} ({w}x{h}); lower --crop to {min(w, h)} or less"
        )


class ImageFolder(Dataset[torch.Tensor]):
    """Images of a folder as ``(3, crop, crop)`` float RGB tensors in ``[0, 1]``.

    Args:
        files: image paths.
        crop: side of the square crop; images smaller than that are resized up first (the trainer refuses such a
            crop: :func:`check_crop`).
        train: random crop position and random horizontal/vertical flips; else a centre crop.
        darken: (training) the fraction of crops shown as a shorter exposure of themselves: light scaled by a
            log-uniform factor in ``[darken_min, 1]`` (in linear light, sRGB gamma 2.2), then quantised to
            8 bits, as dark footage is. SICE has few frames as dark as a street at night.
        darken_min: the smallest exposure factor.
        grey: (training) the fraction of crops made neutral grey (their sRGB luma in all three channels), so
            that a model learns to keep a grey input grey (infrared cameras; neutral surfaces).
    """

    def __init__(
        self,
        files: list[Path],
        crop: int,
        train: bool = True,
        *,
        darken: float = 0.0,
        darken_min: float = 0.05,
        grey: float = 0.0,
    ) -> None:
        self.files = files
        self.crop = crop
        self.train = train
        self.darken = darken
        self.darken_min = darken_min
        self.grey = grey

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
            if self.darken and torch.rand(()) < self.darken:
                scale = self.darken_min ** float(torch.rand(()))  # log-uniform in [darken_min, 1]
                x = (x.pow(2.2) * scale).pow(1 / 2.2).mul_(255.0).round_().div_(255.0)
            if self.grey and torch.rand(()) < self.grey:
                x = make_grey(x)
        return x


def make_grey(x: torch.Tensor) -> torch.Tensor:
    """A ``(3, H, W)`` RGB tensor in ``[0, 1]`` as neutral grey: its Rec. 601 luma, quantised to 8 bits, in
    each channel (what an infrared camera or a grey surface gives)."""
    luma = (0.299 * x[0] + 0.587 * x[1] + 0.114 * x[2]).mul(255.0).round_().div_(255.0)
    return luma.expand(3, -1, -1).contiguous()


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


class PairedPatches(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """(low, high) image pairs as ``(3, patch, patch)`` float RGB tensors in ``[0, 1]``.

    Images are read once and kept in memory (uint8). In training each item is a random patch, at the same
    place in both images, under one of the 8 flips/rotations of the square; ``repeat`` draws that many
    patches per pair per epoch. Without ``train`` the whole images are returned (cropped to a multiple of
    ``multiple``, so that a model needing it runs without padding).

    Args:
        pairs: (low, high) paths, aligned images of the same size.
        patch: side of the square training patches.
        train: random patches and transforms; else whole images.
        repeat: patches per pair per epoch (train only).
        multiple: evaluation images are cropped to a multiple of this.
        grey: (training) the fraction of patches with both images made neutral grey (:func:`make_grey`).
    """

    def __init__(
        self,
        pairs: list[tuple[Path, Path]],
        patch: int = 128,
        train: bool = True,
        repeat: int = 1,
        multiple: int = 1,
        grey: float = 0.0,
    ) -> None:
        self.images = [(_read_rgb(a), _read_rgb(b)) for a, b in pairs]
        for (a, b), (pa, _) in zip(self.images, pairs, strict=True):
            if a.shape != b.shape:
                raise InputError(f"{pa}: the pair differs in size, {a.shape[:2]} and {b.shape[:2]}")
        if train and self.images:  # a smaller pair would give a smaller patch, which no batch can stack
            k = min(range(len(pairs)), key=lambda i: min(self.images[i][0].shape[:2]))
            h, w = self.images[k][0].shape[:2]
            if patch > min(h, w):
                raise InputError(
                    f"patch {patch} is larger than the smallest training pair, {pairs[k][0]} ({w}x{h}); "
                    f"lower --patch to {min(h, w)} or less"
                )
        self.patch, self.train, self.repeat, self.multiple, self.grey = patch, train, repeat, multiple, grey

    def __len__(self) -> int:
        return len(self.images) * (self.repeat if self.train else 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        low, high = self.images[index % len(self.images)]
        h, w = low.shape[:2]
        if self.train:
            p = min(self.patch, h, w)
            top = int(torch.randint(0, h - p + 1, ()).item())
            left = int(torch.randint(0, w - p + 1, ()).item())
            low, high = low[top : top + p, left : left + p], high[top : top + p, left : left + p]
        else:
            m = self.multiple
            low, high = low[: h - h % m, : w - w % m], high[: h - h % m, : w - w % m]
        x = torch.from_numpy(np.ascontiguousarray(low)).permute(2, 0, 1).float().div_(255.0)
        y = torch.from_numpy(np.ascontiguousarray(high)).permute(2, 0, 1).float().div_(255.0)
        if self.train:
            k = int(torch.randint(0, 8, ()).item())  # one of the 8 symmetries of the square
            if k >= 4:
                x, y = x.transpose(1, 2), y.transpose(1, 2)
            x, y = torch.rot90(x, k % 4, (1, 2)), torch.rot90(y, k % 4, (1, 2))
            if self.grey and torch.rand(()) < self.grey:
                x, y = make_grey(x), make_grey(y)
        return x.contiguous(), y.contiguous()
