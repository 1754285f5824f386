"""The bracket pair builder on synthetic brackets: scenes found, pairs chosen by exposure, split by scene."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision.evaluation.pairs import build_pairs, group_scenes, list_bracket_images

EXPOSURES = (0.08, 0.2, 0.5, 1.0, 1.6)


def _scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    scene = cv2.GaussianBlur(rng.uniform(0, 1, (96, 128, 3)).astype(np.float32), (0, 0), 4)
    return (scene - scene.min()) / (scene.max() - scene.min())


def _write(folder: Path, n: int, scene: np.ndarray, exposure: float) -> None:
    img = np.clip((scene * exposure) ** (1 / 2.2) * 255 * 0.8, 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / f"{n}.png"), img)


@pytest.fixture
def brackets(tmp_path: Path) -> Path:
    """4 scenes × 5 exposures, numbered consecutively like SICE (1.png, 2.png, ...), exposures shuffled."""
    n = 1
    for k in range(4):
        for exposure in np.random.default_rng(k).permutation(EXPOSURES):
            _write(tmp_path, n, _scene(k), float(exposure))
            n += 1
    return tmp_path


def test_scenes_follow_the_brackets(brackets: Path) -> None:
    scenes, levels = group_scenes(list_bracket_images(brackets))
    assert [len(s) for s in scenes] == [5, 5, 5, 5]
    assert [p.name for p in scenes[1]] == ["6.png", "7.png", "8.png", "9.png", "10.png"]
    assert all(0.0 <= v <= 1.0 for v in levels)


def test_an_interleaved_image_joins_its_own_scene(tmp_path: Path) -> None:
    # scene A at 1-3, one image of scene B at 4, A again at 5-6, B at 7-9 (SICE has such runs)
    order = [(0, 0.08), (0, 0.5), (0, 1.0), (1, 0.2), (0, 0.2), (0, 1.6), (1, 0.08), (1, 0.5), (1, 1.0)]
    for n, (k, exposure) in enumerate(order, start=1):
        _write(tmp_path, n, _scene(k), exposure)
    scenes, _ = group_scenes(list_bracket_images(tmp_path))
    assert [[p.name for p in s] for s in scenes] == [
        ["1.png", "2.png", "3.png", "5.png", "6.png"],
        ["4.png", "7.png", "8.png", "9.png"],
    ]


def test_pairs_and_a_scene_level_split(brackets: Path) -> None:
    pairs = build_pairs(brackets, test_every=2, max_input_level=0.3)
    assert pairs, "no pairs"
    for p in pairs:
        low, high = cv2.imread(str(p.low)).mean(), cv2.imread(str(p.high)).mean()
        assert low < high and low / 255 < 0.3
        assert 0.35 <= high / 255 <= 0.7
    assert len({p.scene for p in pairs}) == 4 and len({p.high for p in pairs}) == 4  # one target per scene
    test_scenes = {p.scene for p in pairs if p.split == "test"}
    train_scenes = {p.scene for p in pairs if p.split == "train"}
    assert test_scenes == {0, 2} and train_scenes == {1, 3}
    assert build_pairs(brackets, test_every=2, max_input_level=0.3) == pairs  # deterministic


def test_no_pair_across_unaligned_views(tmp_path: Path) -> None:
    # two different views in one window: a dark image of one must not get the other as its target
    _write(tmp_path, 1, _scene(0), 0.08)
    _write(tmp_path, 2, _scene(1), 0.5)
    assert build_pairs(tmp_path, max_input_level=0.3) == []


def test_training_pairs_can_widen_without_moving_the_held_out_ones(brackets: Path) -> None:
    pytest.importorskip("torch")
    from nightvision.training.supervised import split_pairs

    # 4 scenes: scene 0 is test; none has k % 10 == 5, so nothing is held out here
    base_train, base_held = split_pairs(brackets)
    wide_train, wide_held = split_pairs(brackets, max_input_level=0.45, identity_pairs=True)
    assert base_held == wide_held
    assert set(base_train) < set(wide_train)
    identities = [(a, b) for a, b in wide_train if a == b]
    targets = {b for a, b in wide_train if a != b}
    assert sorted(b for _, b in identities) == sorted(targets)  # each training target once, as its own input
