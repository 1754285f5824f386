"""Zero-reference training: a tiny real run on synthetic images, checkpoints, resume, recipes."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

torch = pytest.importorskip("torch")

from nightvision import models  # noqa: E402
from nightvision.errors import InputError  # noqa: E402
from tests.conftest import ROOT, dark_frame  # noqa: E402
from training.config import load_config  # noqa: E402
from training.zero_reference import Config, train  # noqa: E402


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"{i + 1}.png"), dark_frame(48, 40, seed=i))
    return folder


def tiny(folder: Path, out: Path, **overrides: object) -> Config:
    base = dict(
        data=str(folder),
        crop=32,
        batch_size=4,
        workers=0,
        val_every=6,
        tensorboard=False,
        out_dir=str(out),
        epochs=2,
        lr=1e-3,
        threads=1,
        checkpoint_every=1000,
    )
    return Config(**{**base, **overrides})  # type: ignore[arg-type]


def test_training_lowers_the_loss_and_writes_checkpoints(image_folder: Path, tmp_path: Path) -> None:
    cfg = tiny(image_folder, tmp_path / "run", epochs=6)
    stats = train(cfg)
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    assert len(lines) == 6
    import json

    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert last["total"] < first["total"]
    assert stats["luma_out"] > stats["luma_in"]
    ckpt = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert ckpt["model_name"] == "zero-dce++" and ckpt["config"]["crop"] == 32
    net = models.create("zero-dce++", pretrained=False, **ckpt["model_args"])
    models.load_checkpoint(net, tmp_path / "run" / "final.pt")
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["final"]["total"] == pytest.approx(min(json.loads(line)["total"] for line in lines))


def test_resume_continues_where_it_stopped(image_folder: Path, tmp_path: Path) -> None:
    train(tiny(image_folder, tmp_path / "run", epochs=1))
    first = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert first["epoch"] == 1 and first["step"] == 2  # 10 training images, batch 4, drop_last
    train(tiny(image_folder, tmp_path / "run", epochs=2, resume=True))
    second = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert second["epoch"] == 2 and second["step"] == 4


def test_recipes_parse_and_flags_override(tmp_path: Path) -> None:
    for recipe in (ROOT / "training" / "recipes").glob("*.toml"):
        cfg = load_config(Config, ["--config", str(recipe), "--batch-size", "2", "--no-tensorboard"])
        assert cfg.batch_size == 2 and cfg.tensorboard is False
        assert cfg.model in models.list_models()
    with pytest.raises(InputError, match="unknown option --bacth-size"):
        load_config(Config, ["--bacth-size", "2"])
    with pytest.raises(InputError, match="expected int"):
        load_config(Config, ["--batch-size", "two"])
    bad = tmp_path / "bad.toml"
    bad.write_text('modle = "zero-dce"\n')
    with pytest.raises(InputError, match="unknown key 'modle'"):
        load_config(Config, ["--config", str(bad)])
