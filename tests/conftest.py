"""Shared fixtures: the ../shared data folder (tests needing it skip with a reason), synthetic frames."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NIGHTVISION_SHARED", ROOT.parent / "shared"))

# No test, and no CLI subprocess a test starts, writes to the user's real cache folder (~/.cache/nightvision).
os.environ.setdefault("NIGHTVISION_CACHE", tempfile.mkdtemp(prefix="nightvision-test-cache-"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying what is missing."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the ../shared data folder beside the repository; set NIGHTVISION_SHARED)")
    return path


def dark_frame(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A dark, textured uint8 BGR frame (mean about 20/255)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 12 + 10 * np.sin(x / 7.0) * np.cos(y / 9.0)
    img = np.stack([base * 0.8, base, base * 1.2], axis=2) + rng.normal(0, 2, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m nightvision ARGS`` and capture its output."""
    return subprocess.run(
        [sys.executable, "-m", "nightvision", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


def write_lol_folder(root: Path, pairs: int, height: int, width: int, gain: float) -> Path:
    """A LOL-style folder: ``low/K.png`` = :func:`dark_frame` (seed K), ``high/K.png`` = the same × ``gain``."""
    import cv2

    for sub in ("low", "high"):
        (root / sub).mkdir(parents=True)
    for i in range(pairs):
        low = dark_frame(height, width, seed=i)
        cv2.imwrite(str(root / "low" / f"{i}.png"), low)
        cv2.imwrite(str(root / "high" / f"{i}.png"), cv2.convertScaleAbs(low, alpha=gain))
    return root


def save_checkpoint(path: Path, name: str, seed: int = 0, **model_args: object) -> Path:
    """A checkpoint of a freshly initialised (not trained) model, as the training loops save them."""
    torch = pytest.importorskip("torch")
    from nightvision import models

    torch.manual_seed(seed)
    net = models.create(name, pretrained=False, **model_args)
    torch.save({"model": net.state_dict(), "model_name": name, "model_args": dict(model_args)}, path)
    return path
