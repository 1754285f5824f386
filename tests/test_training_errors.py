"""Training refuses what cannot work in one line that names the key or file and what to do: bad checkpoints
(resume, init), out-of-range settings, data that fills no batch, a crop larger than the images, an out_dir that is
a file. And what must keep working: an interrupted run resumes with the images in the uninterrupted order."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import pytest

torch = pytest.importorskip("torch")

from nightvision.errors import EngineError, InputError, NightvisionError  # noqa: E402
from nightvision.training import config  # noqa: E402
from nightvision.training.config import load_config  # noqa: E402
from nightvision.training.data import ImageFolder  # noqa: E402
from nightvision.training.zero_reference import Config, train  # noqa: E402
from tests.conftest import dark_frame, write_lol_folder  # noqa: E402


def write_images(folder: Path, count: int, height: int = 40, width: int = 48) -> Path:
    folder.mkdir(parents=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"{i + 1}.png"), dark_frame(height, width, seed=i))
    return folder


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    return write_images(tmp_path / "imgs", 12)


def tiny(folder: Path, out: Path, **overrides: object) -> Config:
    """10 training images (every 6th of 12 held out), batch 2: 5 steps an epoch, about 0.2 s."""
    base = dict(
        data=str(folder), crop=32, batch_size=2, workers=0, val_every=6, tensorboard=False, out_dir=str(out),
        epochs=1, lr=1e-3, threads=1, checkpoint_every=1000,
    )  # fmt: skip
    return Config(**{**base, **overrides})  # type: ignore[arg-type]


def refused(match: str, error: type[Exception] = InputError) -> Any:
    """``pytest.raises(error, match=match)``: a refusal (one line: :func:`one_line`)."""
    return pytest.raises(error, match=match)


def one_line(info: pytest.ExceptionInfo[Exception]) -> str:
    message = str(info.value)
    assert "\n" not in message and isinstance(info.value, NightvisionError)
    return message


# --- 1. resuming from, or starting from, a checkpoint that cannot be used


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch zero-dce++ run: last.pt, best.pt, final.pt."""
    root = tmp_path_factory.mktemp("finished")
    train(tiny(write_images(root / "imgs", 12), root / "run"))
    return root


def _run_with_last(tmp_path: Path, last: bytes) -> Path:
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(last)
    return out


@pytest.mark.parametrize(
    ("make_last", "match"),
    [
        (lambda run: b"garbage\n", r"/last\.pt is not a checkpoint \(unreadable or truncated\); delete it or train"),
        (lambda run: (run / "last.pt").read_bytes()[:5000], r"/last\.pt is not a checkpoint \(unreadable or truncated"),
        (lambda run: (run / "last.pt").read_bytes()[:-10], r"/last\.pt is not a checkpoint \(unreadable or truncated"),
        (lambda run: b"", r"/last\.pt is not a checkpoint \(unreadable or truncated"),
        (
            lambda run: (run / "final.pt").read_bytes(),
            r"/last\.pt has no optimizer state \(a final/best checkpoint\?\)",
        ),
    ],
    ids=["garbage", "truncated", "torn-end", "empty", "final-copied"],
)
def test_a_last_pt_that_cannot_be_resumed_is_refused_in_one_line(
    finished_run: Path, tmp_path: Path, make_last: Callable[[Path], bytes], match: str
) -> None:
    out = _run_with_last(tmp_path, make_last(finished_run / "run"))
    with refused(match) as info:
        train(tiny(finished_run / "imgs", out, epochs=2, resume=True))
    assert str(out / "last.pt") in one_line(info)


def test_a_last_pt_of_another_model_names_both(finished_run: Path, tmp_path: Path) -> None:
    out = _run_with_last(tmp_path, (finished_run / "run" / "last.pt").read_bytes())
    with refused(r"last\.pt holds a zero-dce\+\+ model, not zero-dce; resume with --model zero-dce\+\+") as info:
        train(tiny(finished_run / "imgs", out, model="zero-dce", epochs=2, resume=True))
    one_line(info)


def test_a_finished_run_is_not_resumed_into_nothing(finished_run: Path, tmp_path: Path) -> None:
    """Resuming a run that has done its epochs would run no step and rewrite final.pt."""
    out = _run_with_last(tmp_path, (finished_run / "run" / "last.pt").read_bytes())
    with refused(r"last\.pt has finished \(epoch 1 of 1, step 5\); raise --epochs or --max-steps") as info:
        train(tiny(finished_run / "imgs", out, resume=True))
    one_line(info)
    assert sorted(p.name for p in out.iterdir()) == ["last.pt"]


def test_an_init_that_is_not_a_checkpoint_of_this_model_is_refused(finished_run: Path, tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_text("garbage\n")
    with refused(r"corrupt\.pt is not a checkpoint \(unreadable or truncated\); check --init") as info:
        train(tiny(finished_run / "imgs", tmp_path / "a", init=str(corrupt)))
    one_line(info)
    with refused(r"final\.pt holds a zero-dce\+\+ model, not zero-dce; check --init") as info:
        train(tiny(finished_run / "imgs", tmp_path / "b", model="zero-dce", init=str(finished_run / "run/final.pt")))
    one_line(info)
    with refused(r"no checkpoint at .*missing\.pt; check --init"):
        train(tiny(finished_run / "imgs", tmp_path / "c", init=str(tmp_path / "missing.pt")))
    assert not any((tmp_path / d).exists() for d in "abc")  # refused before the run folder was made


def test_weights_of_another_shape_name_the_first_difference(tmp_path: Path) -> None:
    from nightvision.training.run import load_weights

    with refused(r"x\.pt does not fit m: weight is \(2, 3\) there, \(2, 2\) here; fix it") as info:
        load_weights(torch.nn.Linear(2, 2), {"model": torch.nn.Linear(3, 2).state_dict()}, tmp_path / "x.pt",
                     model_name="m", fix="fix it")  # fmt: skip
    one_line(info)
    with refused(r"x\.pt does not fit m: it has no bias"):
        load_weights(torch.nn.Linear(2, 2), {"model": {"weight": torch.zeros(2, 2)}}, tmp_path / "x.pt",
                     model_name="m", fix="fix it")  # fmt: skip


# --- 2. every key's range, where the config is parsed


@pytest.mark.parametrize(
    ("cls", "argv", "match"),
    [
        (Config, ["--crop", "0"], r"^config crop: must be >= 16 \(.*\), got 0$"),
        (Config, ["--batch-size", "0"], r"^config batch_size: must be from 1 to 4096 \(.*\), got 0$"),
        (Config, ["--batch-size", "100000"], r"^config batch_size: .* out of memory before the first step"),
        (Config, ["--val-every", "0"], r"^config val_every: must be >= 2 \(.*none to train on\), got 0$"),
        (Config, ["--val-every", "1"], r"^config val_every: must be >= 2"),
        (Config, ["--lr", "-1"], r"^config lr: must be > 0, got -1\.0$"),
        (Config, ["--lr", "nan"], r"^config lr: must be > 0, got nan$"),
        (Config, ["--lr", "inf"], r"^config lr: must be > 0, got inf$"),
        (Config, ["--checkpoint-every", "0"], r"^config checkpoint_every: must be >= 1, got 0$"),
        (Config, ["--epochs", "0"], r"^config epochs: must be >= 1, got 0$"),
        (Config, ["--grey", "1.5"], r"^config grey: must be from 0 to 1, got 1\.5$"),
        (Config, ["--exposure-power", "3"], r"^config exposure_power: must be 1 or 2, got 3$"),
        (Config, ["--grad-clip", "0"], r"^config grad_clip: must be > 0 \(0 would zero every gradient\)"),
        (Config, ["--seed", "-1"], r"^config seed: must be from 0 to 4294967295, got -1$"),
        (Config, ["--model", "nafnet-s"], r"^config model: nafnet-s is trained by the supervised trainer"),
        (Config, ["--w-smoothness", "0", "--w-spatial", "0", "--w-colour", "0", "--w-exposure", "0"], "all are 0"),
        (Config, ["--no-crop"], r"^unknown option --no-crop: crop is not a true/false key; give it a value"),
        (config.SupervisedConfig, ["--steps", "0"], r"^config steps: must be >= 1, got 0$"),
        (
            config.SupervisedConfig,
            ["--patch", "30"],
            r"^config patch: nafnet-s needs a multiple of 16, got 30; use 16$",
        ),
        (config.SupervisedConfig, ["--beta2", "1"], r"^config beta2: must be >= 0 and < 1, got 1\.0$"),
        (config.SupervisedConfig, ["--lr-min", "1"], r"^config lr_min: must be <= lr \(0\.001\), got 1$"),
        (config.SupervisedConfig, ["--eval-every", "0"], r"^config eval_every: must be >= 1, got 0$"),
        (config.RetinexConfig, ["--decom-steps", "0", "--enhance-steps", "0"], "both are 0, so nothing would train"),
        (config.CurveDenoiseConfig, ["--downscale", "0"], r"^config downscale: must be >= 1"),
        (config.CurveDenoiseConfig, ["--blur", "4"], r"^config blur: must be 3 or 5, got 4$"),
    ],
)
def test_out_of_range_values_are_refused_with_the_range(cls: type, argv: list[str], match: str) -> None:
    with refused(match) as info:
        load_config(cls, argv)
    one_line(info)


def test_every_numeric_key_has_a_range_and_every_default_and_recipe_is_in_it() -> None:
    import dataclasses
    import typing

    from tests.conftest import ROOT

    for trainer in config.TRAINERS.values():
        hints = typing.get_type_hints(trainer.config)
        for f in dataclasses.fields(trainer.config):
            if hints[f.name] in (int, float):
                assert f.name in config.RANGES, f"{trainer.config.__name__}.{f.name} has no range"
        trainer.config()  # the defaults pass their own check
    for recipe in sorted((ROOT / "training" / "recipes").glob("*.toml")):
        model = recipe.stem
        load_config(config.trainer_for(model).config, ["--config", str(recipe)])
    with refused(r"config crop: expected int, got True"):  # TOML's `crop = true` is not 1
        config.CurveConfig(crop=True)


def test_an_unknown_no_flag_does_not_swallow_the_next_argument() -> None:
    """Retinex-Net has no tensorboard key: --no-tensorboard is an unknown option, not a key taking the data."""
    with refused(r"^unknown option --no-tensorboard \(known: ") as info:
        load_config(config.RetinexConfig, ["--no-tensorboard", "/tmp/data"])
    one_line(info)


def test_the_cli_says_a_bad_setting_in_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from nightvision.cli import main

    for argv, expected in [
        (["--model", "retinexnet", "--no-tensorboard", str(tmp_path)], "unknown option --no-tensorboard"),
        (["--checkpoint-every", "0"], "config checkpoint_every: must be >= 1, got 0"),
    ]:
        assert main(["train", *argv, "--out-dir", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"nightvision: error: {expected}") and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_a_device_torch_cannot_use_is_refused_before_the_run(image_folder: Path, tmp_path: Path) -> None:
    with refused(r"^unknown device 'gpu' \(use cpu, cuda or cuda:N\)$", EngineError) as info:
        train(tiny(image_folder, tmp_path / "run", device="gpu"))
    one_line(info)
    if not torch.cuda.is_available():
        with refused(r"^device 'cuda' is not available: .*; use --device cpu$", EngineError):
            train(tiny(image_folder, tmp_path / "run", device="cuda"))
    assert not (tmp_path / "run").exists()


# --- 3. data that fills no batch; 5. a crop larger than the images, an out_dir that is a file


def test_fewer_training_images_than_a_batch_are_refused(tmp_path: Path) -> None:
    """12 images, 1 held out: 11 would make no batch of 16 (drop_last), and final.pt the random weights."""
    folder = write_images(tmp_path / "imgs", 12)
    with refused(r"^11 training images \(12 found, every 20th held out\) is fewer than --batch-size 16: lower") as i:
        train(tiny(folder, tmp_path / "run", val_every=20, batch_size=16))
    one_line(i)
    assert not (tmp_path / "run").exists()  # nothing made for a refused run


def test_fewer_training_patches_than_a_batch_are_refused(tmp_path: Path) -> None:
    from nightvision.training.supervised import Config as SConfig
    from nightvision.training.supervised import train as strain

    lol = write_lol_folder(tmp_path / "lol", 3, 48, 64, gain=3.0)
    cfg = SConfig(data=str(lol), patch=32, batch_size=4, repeat=1, threads=1, out_dir=str(tmp_path / "run"))
    with refused(r"^3 training patches per epoch \(3 pairs x --repeat 1\) is fewer than --batch-size 4: "):
        strain(cfg)
    with refused(r"^patch 64 is larger than the smallest training pair, .*0\.png \(64x48\); lower --patch to 48"):
        strain(SConfig(**{**cfg.__dict__, "patch": 64, "repeat": 4}))
    assert not (tmp_path / "run").exists()


def test_a_crop_larger_than_the_smallest_image_is_refused(image_folder: Path, tmp_path: Path) -> None:
    """ImageFolder would enlarge every image to the crop (the reviewer's --crop 2000 ran out of memory)."""
    with refused(r"^crop 41 is larger than the smallest image, .*1\.png \(48x40\); lower --crop to 40 or less$"):
        train(tiny(image_folder, tmp_path / "run", crop=41))
    (image_folder / "7.png").write_bytes(b"not a png")  # refused before training, not in a worker mid-epoch
    with refused(r"^cannot read image .*7\.png; remove it"):
        train(tiny(image_folder, tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_an_out_dir_that_is_a_file_is_said_so(image_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with refused(r"--out-dir .*file is a file, not a folder; pick another --out-dir$"):
        train(tiny(image_folder, tmp_path / "file"))
    with refused(r"--out-dir .*file/sub is under .*file, which is a file, not a folder"):
        train(tiny(image_folder, tmp_path / "file" / "sub"))


# --- 5. Ctrl-C, and resuming in the order of the uninterrupted run


def _record_batches(monkeypatch: pytest.MonkeyPatch, stop_after: int | None = None) -> list[str]:
    """The training images the loader reads, in order; a KeyboardInterrupt (Ctrl-C) when asked for one more
    than ``stop_after``."""
    seen: list[str] = []
    read = ImageFolder.__getitem__

    def spy(self: ImageFolder, index: int) -> torch.Tensor:
        if self.train:
            if stop_after is not None and len(seen) == stop_after:
                raise KeyboardInterrupt
            seen.append(self.files[index].name)
        return read(self, index)

    monkeypatch.setattr(ImageFolder, "__getitem__", spy)
    return seen


def test_an_interrupted_and_resumed_run_sees_the_same_batches(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """3 epochs of 5 steps; Ctrl-C while step 8 reads its batch (epoch 2), last.pt at step 7; the resumed run
    must read the batches of steps 8-15 that the uninterrupted run read (the old reseeding by seed + epoch
    shuffled epoch 2 afresh: some images twice, some never)."""
    whole = _record_batches(monkeypatch)
    train(tiny(image_folder, tmp_path / "whole", epochs=3, checkpoint_every=1))
    assert len(whole) == 30 and sorted(whole[:10]) == sorted(whole[10:20]) and whole[:10] != whole[10:20]

    monkeypatch.undo()
    first = _record_batches(monkeypatch, stop_after=14)
    with caplog.at_level(logging.WARNING, "nightvision.training.run"), pytest.raises(KeyboardInterrupt):
        train(tiny(image_folder, tmp_path / "cut", epochs=3, checkpoint_every=1))
    assert (
        "stopped at step 7; " in caplog.text and "last.pt holds step 7: the same command with --resume" in caplog.text
    )
    assert torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["step"] == 7

    monkeypatch.undo()
    rest = _record_batches(monkeypatch)
    train(tiny(image_folder, tmp_path / "cut", epochs=3, checkpoint_every=1, resume=True))
    assert first + rest == whole
    assert torch.load(tmp_path / "cut" / "final.pt", weights_only=True)["step"] == 15


def test_sigterm_stops_a_run_as_ctrl_c_does(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scheduler's or kill's SIGTERM ended the run without a word (exit 143): now it says what last.pt holds,
    as Ctrl-C does, and the CLI exits 143."""
    import os
    import signal

    from nightvision.stream.pipeline import Interrupted

    read = ImageFolder.__getitem__
    calls = [0]

    def terminated(self: ImageFolder, index: int) -> torch.Tensor:
        if self.train:
            calls[0] += 1
            if calls[0] == 13:  # twice at once, as GNU timeout sends it (the command, then its group)
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGTERM)
        return read(self, index)

    monkeypatch.setattr(ImageFolder, "__getitem__", terminated)
    before = signal.getsignal(signal.SIGTERM)
    with caplog.at_level(logging.WARNING, "nightvision.training.run"), pytest.raises(Interrupted) as stopped:
        train(tiny(image_folder, tmp_path / "run", epochs=3, checkpoint_every=1))
    assert stopped.value.signal == "SIGTERM"
    assert "stopped at step 6; " in caplog.text and "holds step 6: the same command with --resume" in caplog.text
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_run_resumed_with_other_settings_says_which(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """--resume --crop 32 --lr 0.5 went on silently with the new settings (final.pt recorded them)."""
    _record_batches(monkeypatch, stop_after=6)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(image_folder, tmp_path / "run", epochs=2, checkpoint_every=1))
    monkeypatch.undo()
    with caplog.at_level(logging.WARNING, "nightvision.training.run"):
        train(tiny(image_folder, tmp_path / "run", epochs=3, checkpoint_every=1, resume=True, lr=0.5))
    assert "resuming with settings that differ from the run's: lr 0.5 (was " in caplog.text
    assert "epochs" not in caplog.text  # how long it runs is the resumed run's to change


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _record_batches(monkeypatch, stop_after=4)
    with caplog.at_level(logging.WARNING, "nightvision.training.run"), pytest.raises(KeyboardInterrupt):
        train(tiny(image_folder, tmp_path / "run", checkpoint_every=100))
    assert "stopped at step 2, before the first checkpoint (every 100 steps): nothing to resume" in caplog.text
    assert not (tmp_path / "run").exists()  # nothing was written yet, so no folder either


def test_a_new_run_never_overwrites_another_runs_checkpoints(tmp_path: Path) -> None:
    from nightvision.training.run import check_fresh

    check_fresh(tmp_path, resume=False)  # an empty folder: fine
    (tmp_path / "best.pt").write_bytes(b"someone's weights")
    with pytest.raises(InputError, match=r"holds a run already \(best\.pt\); continue it with --resume"):
        check_fresh(tmp_path, resume=False)
    check_fresh(tmp_path, resume=True)
    assert (tmp_path / "best.pt").read_bytes() == b"someone's weights"
