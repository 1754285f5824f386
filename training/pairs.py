"""Paired data from multi-exposure brackets: (under-exposed, well-exposed) pairs with a scene-level split.

A bracket is a run of consecutive, aligned images of one scene at different exposures (SICE is 2002 such
images). The rules, deterministic and documented so that the split can be reproduced:

1. **Scenes.** Each image is reduced to a 48×48 grey thumbnail, histogram-equalised (exposure cancels out)
   and normalised. Consecutive images whose thumbnails correlate at ``threshold`` or more belong to one scene.
   On SICE, neighbours within a scene correlate at 0.85 or more and scene changes at 0.31 or less, except
   for nearly black frames, where equalisation amplifies noise.
2. **Pairs.** In each scene the target is the image whose mean luma is closest to ``target_level``
   (0.5 of full scale); every image darker than ``max_input_level`` (0.25) is an input paired with it.
3. **Split.** Scenes, not images, are split: scene ``k`` (in file order) goes to the test side when
   ``k % test_every == 0``. No scene is on both sides.

    python -m training.pairs ../shared/data/sice      # prints the scene and pair counts
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from nightvision.errors import InputError
from nightvision.io.images import read_image

__all__ = ["Pair", "build_pairs", "group_scenes", "list_bracket_images"]


@dataclass(frozen=True)
class Pair:
    low: Path
    high: Path
    scene: int
    split: str  # "train" or "test"


def list_bracket_images(folder: str | Path) -> list[Path]:
    from training.data import list_images

    return list_images(folder)


def _thumb(path: Path) -> tuple[np.ndarray, float]:
    image = read_image(path)
    grey = image if image.ndim == 2 else cv2.cvtColor(image[:, :, :3], cv2.COLOR_BGR2GRAY)
    if grey.dtype != np.uint8:
        grey = cv2.convertScaleAbs(grey, alpha=255.0 / 65535.0)
    level = float(grey.mean()) / 255.0
    t = cv2.equalizeHist(cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)).astype(np.float32)
    return (t - t.mean()) / (t.std() + 1e-6), level


def group_scenes(
    files: list[Path], *, threshold: float = 0.6, reset_drop: float = 0.35, extreme: float = 0.06
) -> tuple[list[list[Path]], list[float]]:
    """Consecutive images → scenes (lists of paths), and every image's mean level in ``[0, 1]``.

    A new scene starts where neighbouring thumbnails correlate below ``threshold``, or where the level drops
    by more than ``reset_drop`` (a new bracket of the same view starts dark again). A one-image scene that is
    nearly black or blown out (level within ``extreme`` of 0 or 1: too little structure to compare) joins the
    scene after it.
    """
    if not files:
        raise InputError("no images to group")
    thumbs, levels = zip(*(_thumb(f) for f in files), strict=True)
    scenes: list[list[int]] = [[0]]
    for i in range(1, len(files)):
        similar = float((thumbs[i - 1] * thumbs[i]).mean()) >= threshold
        if similar and levels[i - 1] - levels[i] <= reset_drop:
            scenes[-1].append(i)
        else:
            scenes.append([i])
    merged: list[list[int]] = []
    pending: list[int] = []
    for scene in scenes:
        lone_extreme = len(scene) == 1 and not extreme <= levels[scene[0]] <= 1 - extreme
        if lone_extreme:
            pending += scene
            continue
        merged.append(pending + scene)
        pending = []
    if pending:
        merged.append(pending)
    return [[files[i] for i in s] for s in merged], list(levels)


def build_pairs(
    folder: str | Path,
    *,
    threshold: float = 0.6,
    target_level: float = 0.5,
    max_input_level: float = 0.25,
    test_every: int = 10,
) -> list[Pair]:
    """All (under-exposed, well-exposed) pairs of the brackets in ``folder`` (see the module docstring)."""
    files = list_bracket_images(folder)
    scenes, levels = group_scenes(files, threshold=threshold)
    level_of = dict(zip(files, levels, strict=True))
    pairs: list[Pair] = []
    for k, scene in enumerate(scenes):
        if len(scene) < 2:
            continue
        target = min(scene, key=lambda f: abs(level_of[f] - target_level))
        split = "test" if k % test_every == 0 else "train"
        for f in scene:
            if f != target and level_of[f] < max_input_level and level_of[f] < level_of[target]:
                pairs.append(Pair(f, target, k, split))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description="Count the scenes and pairs of a folder of brackets.")
    parser.add_argument("folder")
    parser.add_argument("--threshold", type=float, default=0.6)
    args = parser.parse_args()
    files = list_bracket_images(args.folder)
    scenes, _ = group_scenes(files, threshold=args.threshold)
    sizes = np.array([len(s) for s in scenes])
    pairs = build_pairs(args.folder, threshold=args.threshold)
    by_split = {s: [p for p in pairs if p.split == s] for s in ("train", "test")}
    stats = f"sizes min {sizes.min()}, median {np.median(sizes):.0f}, max {sizes.max()}"
    print(f"{len(files)} images, {len(scenes)} scenes ({stats})")
    for split, ps in by_split.items():
        print(f"{split}: {len({p.scene for p in ps})} scenes, {len(ps)} pairs")


if __name__ == "__main__":
    main()
