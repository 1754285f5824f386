"""Training: tiny real runs on synthetic images (zero-reference, supervised, Retinex-Net), checkpoints, resume,
recipes."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

torch = pytest.importorskip("torch")

from nightvision import models  # noqa: E402
from nightvision.errors import InputError  # noqa: E402
from nightvision.specs import list_specs  # noqa: E402
from nightvision.training.config import load_config  # noqa: E402
from nightvision.training.zero_reference import Config, train  # noqa: E402
from tests.conftest import ROOT, dark_frame, write_lol_folder  # noqa: E402


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
    from nightvision.cli import _recipe_model
    from nightvision.training.config import trainer_for

    recipes = sorted((ROOT / "training" / "recipes").glob("*.toml"))
    assert {r.stem for r in recipes} >= {s.name for s in list_specs() if s.weights}  # one per shipped model
    for recipe in recipes:
        config_cls = trainer_for(_recipe_model(["--config", str(recipe)])).config
        cfg = load_config(config_cls, ["--config", str(recipe), "--batch-size", "2"])
        assert cfg.batch_size == 2 and cfg.model == recipe.stem and cfg.model in models.list_models()
        if hasattr(cfg, "tensorboard"):
            assert load_config(config_cls, ["--config", str(recipe), "--no-tensorboard"]).tensorboard is False
    with pytest.raises(InputError, match="unknown option --bacth-size"):
        load_config(Config, ["--bacth-size", "2"])
    with pytest.raises(InputError, match="expected int"):
        load_config(Config, ["--batch-size", "two"])
    bad = tmp_path / "bad.toml"
    bad.write_text('modle = "zero-dce"\n')
    with pytest.raises(InputError, match="unknown key 'modle'"):
        load_config(Config, ["--config", str(bad)])


# --- supervised and Retinex-Net training on a LOL-style folder of synthetic pairs


@pytest.fixture
def lol_folder(tmp_path: Path) -> Path:
    """6 (low, high) pairs: the high image is the low one brightened ×3 (a simple, learnable mapping)."""
    return write_lol_folder(tmp_path / "lol", 6, 48, 64, gain=3.0)


def test_lol_pairs_match_names_and_refuse_orphans(lol_folder: Path) -> None:
    from nightvision.evaluation.pairs import lol_pairs

    pairs = lol_pairs(lol_folder)
    assert [(a.name, b.name) for a, b in pairs][:2] == [("0.png", "0.png"), ("1.png", "1.png")]
    (lol_folder / "low" / "9.png").write_bytes((lol_folder / "low" / "0.png").read_bytes())
    with pytest.raises(InputError, match="1 images have no partner"):
        lol_pairs(lol_folder)


def test_patches_are_aligned_under_the_eight_symmetries(lol_folder: Path) -> None:
    from nightvision.evaluation.pairs import lol_pairs
    from nightvision.training.data import PairedPatches

    torch.manual_seed(0)
    data = PairedPatches(lol_pairs(lol_folder), patch=32, train=True, repeat=4)
    assert len(data) == 24
    for i in range(len(data)):
        x, y = data[i]
        assert x.shape == y.shape == (3, 32, 32)
        assert torch.allclose((x * 3).clamp(0, 1), y, atol=1.5 / 255)  # same place, same transform


def test_supervised_training_learns_the_mapping_and_resumes(lol_folder: Path, tmp_path: Path) -> None:
    import json

    from nightvision.training.supervised import Config as SConfig
    from nightvision.training.supervised import train as strain

    base = dict(
        data=str(lol_folder), model="nafnet-s", patch=32, batch_size=4, repeat=4, steps=40, warmup=5,
        eval_every=20, lr=2e-3, tensorboard=False, threads=1, out_dir=str(tmp_path / "run"),
    )  # fmt: skip
    # the LOL layout has no held-out part here: hold out nothing, keep the last checkpoint as best
    figures = strain(SConfig(**{**base, "steps": 20}))  # type: ignore[arg-type]
    assert figures["step"] == 20
    strain(SConfig(**{**base, "resume": True}))  # type: ignore[arg-type]
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [d["step"] for d in lines] == [20, 40]
    assert lines[-1]["loss"] < 0.2  # Charbonnier + 0.2 (1 − SSIM), from about 0.5 at the start
    ckpt = torch.load(tmp_path / "run" / "final.pt", weights_only=True)
    assert ckpt["model_name"] == "nafnet-s" and ckpt["step"] == 40


def test_retinexnet_trains_in_two_phases(lol_folder: Path, tmp_path: Path) -> None:
    from nightvision.training.retinex import Config as RConfig
    from nightvision.training.retinex import train as rtrain

    rtrain(RConfig(data=str(lol_folder), patch=32, batch_size=4, repeat=2, decom_steps=4, enhance_steps=4,
                   threads=1, out_dir=str(tmp_path / "rx")))  # fmt: skip
    ckpt = torch.load(tmp_path / "rx" / "final.pt", weights_only=True)
    assert ckpt["step"] == 8 and ckpt["model_name"] == "retinexnet"
    net = models.create("retinexnet", pretrained=False)
    models.load_checkpoint(net, tmp_path / "rx" / "final.pt")


@pytest.mark.parametrize("phase", ["decomposition", "relighting"])
def test_retinexnet_stops_on_a_diverged_loss(
    lol_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    """A NaN loss in either phase stops the run with the step and what to do, before the weights are touched."""
    import nightvision.training.retinex as retinex
    from nightvision.training.run import LossDiverged

    name = "decomposition_loss" if phase == "decomposition" else "relight_loss"
    real = getattr(retinex, name)
    monkeypatch.setattr(retinex, name, lambda *args: real(*args) * float("nan"))
    cfg = retinex.Config(data=str(lol_folder), patch=32, batch_size=4, repeat=2, decom_steps=2, enhance_steps=2,
                         threads=1, checkpoint_every=1, out_dir=str(tmp_path / "rx"))  # fmt: skip
    first = 1 if phase == "decomposition" else 3
    with pytest.raises(LossDiverged, match=rf"^loss is nan at step {first}; lower --lr$"):
        retinex.train(cfg)
    if phase == "relighting":  # the checkpoint of step 2 holds the weights before the diverged step
        ckpt = torch.load(tmp_path / "rx" / "last.pt", weights_only=True)
        assert ckpt["step"] == 2 and all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_darkened_crops_are_shorter_exposures_quantised_to_8_bits(tmp_path: Path) -> None:
    import numpy as np

    from nightvision.training.data import ImageFolder

    path = tmp_path / "grey.png"
    cv2.imwrite(str(path), np.full((40, 40, 3), 200, np.uint8))
    torch.manual_seed(0)
    plain = ImageFolder([path], 32, darken=0.0)[0]
    assert torch.allclose(plain, torch.full_like(plain, 200 / 255))
    dark = ImageFolder([path], 32, darken=1.0, darken_min=0.01)
    levels = [float(dark[0].mean()) for _ in range(40)]
    lo, hi = (0.01 * (200 / 255) ** 2.2) ** (1 / 2.2), 200 / 255  # light scaled by [0.01, 1] in linear space
    assert all(lo - 1 / 255 <= v <= hi + 1e-6 for v in levels)
    assert min(levels) < 0.3 < max(levels)  # log-uniform: spans the range
    assert all(abs(v * 255 - round(v * 255)) < 1e-4 for v in levels)  # 8-bit levels


def test_grey_patches_are_neutral_in_both_images(lol_folder: Path, tmp_path: Path) -> None:
    import numpy as np

    from nightvision.evaluation.pairs import lol_pairs
    from nightvision.training.data import ImageFolder, PairedPatches

    torch.manual_seed(0)
    data = PairedPatches(lol_pairs(lol_folder), patch=32, train=True, repeat=8, grey=0.5)
    items = [data[i] for i in range(len(data))]
    grey = [(x, y) for x, y in items if torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])]
    assert 0 < len(grey) < len(items)  # about half
    assert all(torch.equal(y[0], y[1]) and torch.equal(y[1], y[2]) for _, y in grey)  # the target too
    assert all(torch.allclose((x * 3).clamp(0, 1), y, atol=3 / 255) for x, y in grey)  # still aligned
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), np.dstack([np.full((40, 40), v, np.uint8) for v in (20, 60, 220)]))  # BGR
    crop = ImageFolder([path], 32, grey=1.0)[0]
    assert torch.equal(crop[0], crop[2]) and abs(float(crop.mean()) * 255 - (0.299 * 220 + 0.587 * 60 + 0.114 * 20)) < 1


# --- the shared run helper: atomic checkpoints, eval log


def test_a_failed_checkpoint_write_keeps_the_previous_one_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nightvision.training.config import RetinexConfig
    from nightvision.training.run import Run

    run = Run(RetinexConfig(out_dir=str(tmp_path / "run"), threads=1))
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    first = run.save("last.pt", net, model_name="m", model_args={"a": 1}, optimizers={"optimizer": opt}, step=3)
    before = first.read_bytes()

    def torn_save(obj: object, path: Path) -> None:
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(OSError, match=r"last\.pt: disk full"):  # the real name, not the temporary one
        run.save("last.pt", net, model_name="m", model_args={}, optimizers={"optimizer": opt}, step=4)
    assert first.read_bytes() == before  # the previous checkpoint is whole
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["last.pt"]  # no temporary file left
    monkeypatch.undo()
    ckpt = torch.load(first, weights_only=True)
    assert ckpt["step"] == 3 and ckpt["model_args"] == {"a": 1} and "optimizer" in ckpt and "final" not in ckpt
    assert ckpt["config"]["out_dir"] == str(tmp_path / "run")  # the resolved config travels with the weights
    record = run.log_eval({"psnr": 20.0}, step=3)
    assert set(record) == {"psnr", "step", "minutes"}
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") == 1
    with pytest.raises(InputError, match=r"no checkpoint at .*missing.*start without --resume"):
        Run(RetinexConfig(out_dir=str(tmp_path / "missing"))).resume(net)


# --- recipes without torch: `nightvision train --help`


def test_every_recipe_key_has_a_default_and_a_comment() -> None:
    import dataclasses

    from nightvision.specs import DEFAULT_MODEL
    from nightvision.training import config, curve_denoise, retinex, supervised, zero_reference

    assert zero_reference.Config is config.CurveConfig and supervised.Config is config.SupervisedConfig
    assert retinex.Config is config.RetinexConfig
    assert (
        config.CurveConfig().model == "zero-dce++" and config.trainer_for(DEFAULT_MODEL).config().model == DEFAULT_MODEL
    )
    for trainer in config.TRAINERS.values():
        notes = config._comments(trainer.config)
        for f in dataclasses.fields(trainer.config):
            assert notes[f.name][1], f"{trainer.config.__name__}.{f.name} has no comment"
    assert config.trainer_for("zero-dce").key == "curve" and config.trainer_for("retinexnet").key == "retinex"
    assert config.trainer_for("mirnet-v2").key == "supervised"
    assert config.trainer_for("curve-denoise").config is curve_denoise.Config is config.CurveDenoiseConfig


def test_train_help_lists_every_key_without_torch() -> None:
    import dataclasses
    import subprocess
    import sys

    script = """
import sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from nightvision.training.config import help_text
print(help_text())
print("=====")
print(help_text("nafnet-s"))
try:
    help_text("nafnet-x")
except KeyError as err:
    print("error:", err)
assert "torch" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    full, one = result.stdout.split("=====")
    from nightvision.training import config

    for trainer in config.TRAINERS.values():
        (block,) = [b for b in full.split("\n\n") if f"({trainer.module})" in b]
        for f in dataclasses.fields(trainer.config):
            flag = "--" + f.name.replace("_", "-")
            (line,) = [line for line in block.splitlines() if line.strip().startswith(flag + " ")]
            assert f"= {config._toml(f.default)}  # " in line  # default and comment
    assert "--w-smoothness FLOAT" in full and "= 1600.0  # illumination smoothness" in full
    assert "--model STR" in full and '= "zero-dce++"' in full  # the default model
    assert "nafnet-s.toml" in full and "zero-dce++.toml" in full  # the shipped recipes
    assert "supervised trainer" in one and "curve trainer" not in one and "--w-charbonnier" in one
    assert "error: unknown model 'nafnet-x'; did you mean" in one


def test_init_weights_starts_a_fine_tune_but_not_a_resume(tmp_path: Path) -> None:
    from nightvision.training.config import RetinexConfig
    from nightvision.training.run import Run

    source = models.create("zero-dce++", pretrained=False)
    torch.save({"model": source.state_dict()}, tmp_path / "init.pt")
    run = Run(RetinexConfig(out_dir=str(tmp_path / "run"), threads=1))

    def same(net: torch.nn.Module) -> bool:
        return all(
            torch.equal(a, b) for a, b in zip(net.state_dict().values(), source.state_dict().values(), strict=True)
        )

    torch.manual_seed(1)
    fresh = models.create("zero-dce++", pretrained=False)
    assert not same(fresh)
    run.init_weights(fresh, "", resume=False)  # no init: untouched
    run.init_weights(fresh, str(tmp_path / "init.pt"), resume=True)  # resuming: last.pt decides, not init
    assert not same(fresh)
    run.init_weights(fresh, str(tmp_path / "init.pt"), resume=False)
    assert same(fresh)
