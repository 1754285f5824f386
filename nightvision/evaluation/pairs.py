"""Paired data: LOL-style folders, and (under-exposed, well-exposed) pairs from multi-exposure brackets.

A LOL-style folder has ``low/`` and ``high/`` with matching file names (:func:`lol_pairs`).

A bracket is a set of aligned images of one scene at different exposures (SICE is 2002 such images). The
rules, deterministic and documented so that the split can be reproduced:

1. **Thumbnails.** Each image is reduced to a 48×48 grey thumbnail, histogram-equalised (exposure cancels
   out) and normalised; two images are compared by the correlation of their thumbnails.
2. **Scenes** (the unit of the split). Images at most ``window`` (10) positions apart in file order whose
   thumbnails correlate at ``scene_threshold`` (0.6) or more are linked; scenes are the connected groups.
   Measured on SICE: file order is *not* bracket order (exposures within a bracket are shuffled, and a few
   brackets interleave, e.g. 1001/1013/1024 are one view between two others), and different brackets of
   nearly the same view follow each other; linking within a window handles both, and putting similar views
   in one scene keeps them on one side of the split.
3. **Pairs.** Every image darker than ``max_input_level`` (0.25 mean luma) is an input. Its target is, among
   the images of its scene that are *aligned* with it (thumbnail correlation >= ``align_threshold``, 0.8)
   and exposed between ``target_range`` (0.35–0.70), the one whose mean luma is closest to 0.5. Inputs
   without such a target (mostly nearly black frames, whose thumbnails are JPEG noise) are left out.
4. **Split.** Scene ``k`` (numbered by its first file) goes to the test side when ``k % test_every == 0``.
   No scene is on both sides.

    python -m nightvision.evaluation.pairs ../shared/data/sice      # prints the scene and pair counts
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nightvision.errors import InputError
from nightvision.io.images import IMAGE_SUFFIXES, read_image

__all__ = [
    "BracketIndex",
    "Pair",
    "build_pairs",
    "group_scenes",
    "index_brackets",
    "list_bracket_images",
    "list_images",
    "lol_pairs",
    "write_pairs_csv",
]


@dataclass(frozen=True)
class Pair:
    low: Path
    high: Path
    scene: int
    split: str  # "train" or "test"


@dataclass(frozen=True)
class BracketIndex:
    """Thumbnails and levels of a folder of brackets, computed once."""

    files: list[Path]
    thumbs: np.ndarray  # (N, 48*48) float32, zero mean, unit variance
    levels: np.ndarray  # (N,) mean luma in [0, 1]

    def correlation(self, i: int, j: int) -> float:
        return float(self.thumbs[i] @ self.thumbs[j]) / self.thumbs.shape[1]


def list_images(root: str | Path) -> list[Path]:
    """Image files under ``root`` (recursive), sorted by natural order (``2.jpg`` before ``10.jpg``)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"image folder not found: {root}")

    def key(p: Path) -> tuple[str, int, str]:
        stem = p.stem
        return (str(p.parent), int(stem) if stem.isdigit() else -1, stem)

    files = sorted((p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=key)
    if not files:
        raise InputError(f"no images in {root}")
    return files


def list_bracket_images(folder: str | Path) -> list[Path]:
    """Images of ``folder`` in natural order (``2.jpg`` before ``10.jpg``)."""
    return list_images(folder)


def lol_pairs(root: str | Path) -> list[tuple[Path, Path]]:
    """(low, high) paths of a LOL-style folder: ``root/low/NAME`` and ``root/high/NAME`` with matching names.

    Matching ignores the suffix (``low/1.png`` pairs with ``high/1.jpg``); a name on one side only is an
    error that lists a few of them.
    """
    root = Path(root)
    low_dir, high_dir = root / "low", root / "high"
    if not (low_dir.is_dir() and high_dir.is_dir()):
        raise InputError(f"{root}: expected the LOL layout, {root}/low/ and {root}/high/ with matching file names")
    low = {p.relative_to(low_dir).with_suffix(""): p for p in list_images(low_dir)}
    high = {p.relative_to(high_dir).with_suffix(""): p for p in list_images(high_dir)}
    unmatched = sorted(set(low) ^ set(high))
    if unmatched:
        names = ", ".join(str(n) for n in unmatched[:5])
        raise InputError(f"{root}: {len(unmatched)} images have no partner in low/ or high/ (e.g. {names})")
    return [(low[k], high[k]) for k in sorted(low, key=lambda k: (len(str(k)), str(k)))]


def _thumb(path: Path) -> tuple[np.ndarray, float]:
    image = read_image(path)
    grey = image if image.ndim == 2 else cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    if grey.dtype != np.uint8:
        grey = cv2.convertScaleAbs(grey, alpha=255.0 / 65535.0)
    level = float(grey.mean()) / 255.0
    t = cv2.equalizeHist(cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)).astype(np.float32)
    return ((t - t.mean()) / (t.std() + 1e-6)).ravel(), level


def index_brackets(folder: str | Path) -> BracketIndex:
    """Read every image of ``folder`` once into a :class:`BracketIndex`."""
    files = list_bracket_images(folder)
    thumbs, levels = zip(*(_thumb(f) for f in files), strict=True)
    return BracketIndex(files, np.stack(thumbs), np.array(levels, dtype=np.float64))


def _scene_labels(index: BracketIndex, *, window: int, threshold: float) -> list[int]:
    """Connected groups of linked images, labelled 0, 1, ... in order of their first file."""
    parent = list(range(len(index.files)))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in range(len(index.files)):
        for j in range(i + 1, min(len(index.files), i + window + 1)):
            if index.correlation(i, j) >= threshold:
                parent[max(root(i), root(j))] = min(root(i), root(j))
    roots = [root(i) for i in range(len(index.files))]
    numbering = {r: k for k, r in enumerate(dict.fromkeys(roots))}
    return [numbering[r] for r in roots]


def group_scenes(
    files_or_index: list[Path] | BracketIndex, *, window: int = 10, threshold: float = 0.6
) -> tuple[list[list[Path]], list[float]]:
    """Images → scenes (lists of paths, each in file order), and every image's mean level in ``[0, 1]``."""
    if isinstance(files_or_index, BracketIndex):
        index = files_or_index
    else:
        if not files_or_index:
            raise InputError("no images to group")
        thumbs, levels = zip(*(_thumb(f) for f in files_or_index), strict=True)
        index = BracketIndex(list(files_or_index), np.stack(thumbs), np.array(levels))
    labels = _scene_labels(index, window=window, threshold=threshold)
    scenes: list[list[Path]] = [[] for _ in range(max(labels) + 1)]
    for f, k in zip(index.files, labels, strict=True):
        scenes[k].append(f)
    return scenes, [float(v) for v in index.levels]


def build_pairs(
    folder_or_index: str | Path | BracketIndex,
    *,
    window: int = 10,
    scene_threshold: float = 0.6,
    align_threshold: float = 0.8,
    max_input_level: float = 0.25,
    target_range: tuple[float, float] = (0.35, 0.70),
    test_every: int = 10,
) -> list[Pair]:
    """All (under-exposed, well-exposed) pairs of the brackets (see the module docstring for the rules)."""
    index = folder_or_index if isinstance(folder_or_index, BracketIndex) else index_brackets(folder_or_index)
    labels = _scene_labels(index, window=window, threshold=scene_threshold)
    members: dict[int, list[int]] = {}
    for i, k in enumerate(labels):
        members.setdefault(k, []).append(i)
    lo, hi = target_range
    pairs: list[Pair] = []
    for i, k in enumerate(labels):
        if index.levels[i] >= max_input_level:
            continue
        candidates = [
            j
            for j in members[k]
            if lo <= index.levels[j] <= hi and j != i and index.correlation(i, j) >= align_threshold
        ]
        if not candidates:
            continue
        target = min(candidates, key=lambda j: (abs(index.levels[j] - 0.5), j))
        split = "test" if k % test_every == 0 else "train"
        pairs.append(Pair(index.files[i], index.files[target], k, split))
    return pairs


def write_pairs_csv(pairs: list[Pair], path: str | Path) -> None:
    """Save pairs as ``low,high,scene,split`` rows (paths as given)."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["low", "high", "scene", "split"])
        for p in pairs:
            writer.writerow([str(p.low), str(p.high), p.scene, p.split])


def main() -> None:
    parser = argparse.ArgumentParser(description="Count the scenes and pairs of a folder of brackets.")
    parser.add_argument("folder")
    parser.add_argument("--csv", help="also write the pairs to this CSV file")
    args = parser.parse_args()
    index = index_brackets(args.folder)
    scenes, _ = group_scenes(index)
    sizes = np.array([len(s) for s in scenes])
    pairs = build_pairs(index)
    inputs = int((index.levels < 0.25).sum())
    stats = f"sizes min {sizes.min()}, median {np.median(sizes):.0f}, max {sizes.max()}"
    print(f"{len(index.files)} images, {len(scenes)} scenes ({stats}; {int((sizes == 1).sum())} single images)")
    print(f"{len(pairs)} pairs from {inputs} images darker than 0.25 ({inputs - len(pairs)} without an aligned target)")
    for split in ("train", "test"):
        ps = [p for p in pairs if p.split == split]
        print(f"{split}: {len({p.scene for p in ps})} scenes, {len(ps)} pairs, {len({p.high for p in ps})} targets")
    if args.csv:
        write_pairs_csv(pairs, args.csv)


if __name__ == "__main__":
    main()
