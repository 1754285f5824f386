"""The CLI as users meet it: success paths, and bad input -> one line on stderr, exit 2, no output left."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from nightvision.cli import main
from tests.conftest import ROOT, dark_frame, run_cli


def assert_clean_failure(result, *outputs: Path) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nightvision: error:"), result.stderr
    assert "Traceback" not in result.stderr
    for out in outputs:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.stem}*"))


def test_models_lists_the_registry_with_measured_figures() -> None:
    from nightvision.specs import DEFAULT_MODEL, list_specs, measured_scores

    result = run_cli("models")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    rows = {line.split()[0]: line for line in lines[1 : 1 + len(list_specs())]}
    assert list(rows) == [s.name for s in list_specs()] and f"{DEFAULT_MODEL} *" in rows[DEFAULT_MODEL]
    for name, figures in measured_scores().items():  # every recorded figure is shown, as recorded
        if "sice_psnr" in figures:
            assert f"{figures['sice_psnr']:.2f}" in rows[name]
        if "fps_720p" in figures:
            fps = figures["fps_720p"]  # (under 0.1 FPS with three decimals: a minute a frame is not 0.0)
            assert rows[name].rstrip().endswith(f"{fps:.3f}" if fps < 0.1 else f"{fps:.1f}")


def test_a_closed_pipe_is_not_an_error() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        f"{sys.executable} -m nightvision models | head -1", shell=True, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.startswith("model") and "error" not in done.stderr


def test_enhance_an_image(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "dark.png"), dark_frame(50, 70))
    result = run_cli("enhance", str(tmp_path / "dark.png"), "-o", str(tmp_path / "bright.png"), "-q")
    assert result.returncode == 0, result.stderr
    out = cv2.imread(str(tmp_path / "bright.png"))
    assert out.shape == (50, 70, 3) and out.mean() > dark_frame(50, 70).mean() + 20


def test_enhance_a_folder_keeps_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "in" / "a.jpg"), dark_frame(20, 30))
    cv2.imwrite(str(tmp_path / "in" / "sub" / "b.png"), dark_frame(21, 31)[:, :, 0])
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    result = run_cli("enhance", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q")
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(tmp_path / "out" / "a.jpg")).shape == (20, 30, 3)
    assert cv2.imread(str(tmp_path / "out" / "sub" / "b.png"), cv2.IMREAD_UNCHANGED).shape == (21, 31)
    assert not (tmp_path / "out" / "notes.txt").exists()


def test_missing_input(tmp_path: Path) -> None:
    out = tmp_path / "o.png"
    assert_clean_failure(run_cli("enhance", str(tmp_path / "nope.jpg"), "-o", str(out)), out)


def test_truncated_image(tmp_path: Path) -> None:
    _, buf = cv2.imencode(".jpg", dark_frame(64, 64))
    (tmp_path / "half.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    out = tmp_path / "o.jpg"
    assert_clean_failure(run_cli("enhance", str(tmp_path / "half.jpg"), "-o", str(out)), out)


def test_text_file_named_mp4(tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_text("this is not a video\n" * 50)
    out = tmp_path / "o.mp4"
    result = run_cli("enhance", str(tmp_path / "fake.mp4"), "-o", str(out))
    assert_clean_failure(result, out)
    assert "fake.mp4" in result.stderr


def test_unknown_model_suggests(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "d.png"), dark_frame(8, 8))
    out = tmp_path / "o.png"
    result = run_cli("enhance", str(tmp_path / "d.png"), "-o", str(out), "--model", "zerodce++")
    assert_clean_failure(result, out)
    assert "did you mean 'zero-dce++'" in result.stderr


def test_wrong_output_kind(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "d.png"), dark_frame(8, 8))
    out = tmp_path / "o.mp4"
    assert_clean_failure(run_cli("enhance", str(tmp_path / "d.png"), "-o", str(out)), out)


def test_runtime_works_without_torch(tmp_path: Path) -> None:
    """Block torch and onnx imports entirely, then enhance through the CLI and the Python API."""
    cv2.imwrite(str(tmp_path / "d.png"), dark_frame(30, 40))
    code = (
        "import sys\n"
        "for m in ('torch', 'onnx', 'onnxscript', 'tensorboard'): sys.modules[m] = None\n"
        "from nightvision import Enhancer\n"
        "import numpy as np\n"
        "assert Enhancer().enhance(np.full((9, 11, 3), 10, np.uint8)).shape == (9, 11, 3)\n"
        "from nightvision.cli import main\n"
        f"rc = main(['enhance', {str(tmp_path / 'd.png')!r}, '-o', {str(tmp_path / 'e.png')!r}, '-q'])\n"
        "assert 'torch' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "sys.exit(rc)\n"
    )
    import subprocess

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "e.png").is_file()


@pytest.mark.slow
def test_demo_writes_video_and_picture(tmp_path: Path) -> None:
    result = run_cli("demo", "-o", str(tmp_path), "-q")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "enhanced.mp4").stat().st_size > 10_000
    pair = cv2.imread(str(tmp_path / "side-by-side.png"))
    assert pair.shape == (360, 1280, 3)
    left, right = pair[:, :640], pair[:, 640:]
    assert right.mean() > 3 * left.mean() and right.mean() > left.mean() + 8  # 3/255 night street: lifted, not blown
    assert np.isfinite(pair).all()


def test_train_picks_the_trainer_from_the_recipe(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from nightvision.sample import write_sample_pairs

    data = write_sample_pairs(tmp_path / "pairs", pairs=2, width=64, height=48)
    recipe = ROOT / "training" / "recipes" / "nafnet-s.toml"
    common = ["--data", str(data), "--patch", "32", "--batch-size", "2", "--threads", "1"]
    out = tmp_path / "naf"
    assert (
        main(["train", "--config", str(recipe), *common, "--steps", "2", "--out-dir", str(out), "--no-tensorboard"])
        == 0
    )
    assert (out / "final.pt").is_file()
    out = tmp_path / "rx"
    assert main(["train", "--model", "retinexnet", *common, "--decom-steps", "1", "--enhance-steps", "1",
                 "--out-dir", str(out)]) == 0  # fmt: skip
    assert (out / "final.pt").is_file()
    assert main(["train", "--model", "nafnet-s", "--bogus", "1"]) == 2


COMMANDS = ["enhance", "demo", "run", "bench", "build", "eval", "models", "export"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # one option per line, whatever the terminal
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "examples:\n  nightvision " + command in text
    assert "HEIGHTxWIDTH" not in text and "(default: None)" not in text
    if command in ("enhance", "demo", "run", "bench", "eval", "export"):
        assert "-o" in text and "--output" in text and "--overwrite" in text
    if command in ("enhance", "run", "demo"):
        assert "(default: 18)" in text or command == "demo"
        from nightvision.enhancer import DEFAULT_MODEL

        assert f"(default: {DEFAULT_MODEL})" in text
    if command in ("run", "bench", "build"):
        assert "WIDTHxHEIGHT" in text


def test_the_cli_names_no_model_itself() -> None:
    source = (ROOT / "nightvision" / "cli.py").read_text()
    assert '"zero-dce++"' not in source and "'zero-dce++'" not in source


def test_eval_and_bench_take_dash_o(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench"
    args = ["bench", "--models", "zero-dce", "--sizes", "32x24", "--seconds", "0.05", "--warmup", "0", "--no-reference"]
    assert main([*args, "--backends", "onnxruntime", "--threads", "1", "-o", str(out)]) == 0
    assert (out / "results.md").is_file()
    capsys.readouterr()
    assert main([*args, "-o", str(out)]) == 2  # results there: refused without --overwrite
    assert "pass --overwrite" in capsys.readouterr().err
    # every cell unavailable (no TensorRT here): the table is written, and the exit status says nothing ran
    assert main([*args, "--backends", "tensorrt", "-o", str(tmp_path / "trt")]) == 1
    assert "no model could be measured here" in capsys.readouterr().err
