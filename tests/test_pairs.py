"""The bracket pair builder on synthetic brackets: scenes found, pairs chosen by exposure, split by scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.pairs import build_pairs, group_scenes, list_bracket_images


@pytest.fixture
def brackets(tmp_path: Path) -> Path:
    """4 scenes × 5 exposures, numbered consecutively like SICE (1.jpg, 2.jpg, ...)."""
    rng = np.random.default_rng(0)
    n = 1
    for _ in range(4):
        scene = cv2.GaussianBlur(rng.uniform(0, 1, (96, 128, 3)).astype(np.float32), (0, 0), 4)
        scene = (scene - scene.min()) / (scene.max() - scene.min())
        for exposure in (0.08, 0.2, 0.5, 1.0, 1.6):
            img = np.clip((scene * exposure) ** (1 / 2.2) * 255 * 0.8, 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / f"{n}.png"), img)
            n += 1
    return tmp_path


def test_scenes_follow_the_brackets(brackets: Path) -> None:
    scenes, levels = group_scenes(list_bracket_images(brackets))
    assert [len(s) for s in scenes] == [5, 5, 5, 5]
    assert [p.name for p in scenes[1]] == ["6.png", "7.png", "8.png", "9.png", "10.png"]
    assert all(0.0 <= v <= 1.0 for v in levels)


def test_pairs_and_a_scene_level_split(brackets: Path) -> None:
    pairs = build_pairs(brackets, test_every=2, max_input_level=0.3)
    assert pairs, "no pairs"
    for p in pairs:
        low, high = cv2.imread(str(p.low)).mean(), cv2.imread(str(p.high)).mean()
        assert low < high and low / 255 < 0.3
    targets = {p.scene: p.high for p in pairs}
    assert len(targets) == 4 and len({p.high for p in pairs}) == 4  # one target per scene
    test_scenes = {p.scene for p in pairs if p.split == "test"}
    train_scenes = {p.scene for p in pairs if p.split == "train"}
    assert test_scenes == {0, 2} and train_scenes == {1, 3}
    assert build_pairs(brackets, test_every=2, max_input_level=0.3) == pairs  # deterministic
