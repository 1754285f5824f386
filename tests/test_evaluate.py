"""Evaluation: figures agree with scikit-image, tables and files are written, folders are recognised."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nightvision.cli import main
from nightvision.errors import InputError
from nightvision.evaluation.evaluate import (
    Method,
    classical_methods,
    colourfulness,
    evaluate,
    find_inputs,
    luma_entropy,
)
from tests.conftest import dark_frame, write_lol_folder


@pytest.fixture
def lol(tmp_path: Path) -> Path:
    return write_lol_folder(tmp_path / "lol", 3, 40, 56, gain=4.0)


def test_no_reference_figures_on_known_images() -> None:
    grey = np.full((8, 8, 3), 90, np.uint8)
    assert colourfulness(grey) == 0.0
    assert luma_entropy(grey) == 0.0
    half = grey.copy()
    half[:4] = 200  # two equally frequent levels: one bit
    assert luma_entropy(half) == pytest.approx(1.0)
    red = np.zeros((8, 8, 3), np.uint8)
    red[:, :, 2] = 255
    assert colourfulness(red) > 50


def test_paired_evaluation_agrees_with_scikit_image(lol: Path, tmp_path: Path) -> None:
    metrics = pytest.importorskip("skimage.metrics")
    gain = Method("gain-4", "classical", lambda bgr: cv2.convertScaleAbs(bgr, alpha=4.0), 0, None)
    half = Method("gain-2", "classical", lambda bgr: cv2.convertScaleAbs(bgr, alpha=2.0), 0, None)
    inputs, targets = find_inputs(lol)
    assert targets is not None and [p.name for p in inputs] == ["0.png", "1.png", "2.png"]
    result = evaluate([gain, half], inputs, targets, tmp_path / "out")
    rows = {r["method"]: r for r in result.rows}
    assert rows["gain-4"]["psnr"] > 90 and rows["gain-4"]["ssim"] == pytest.approx(1.0)  # it is the target
    per = [r for r in result.per_image if r["method"] == "gain-2"]
    for r, (a, b) in zip(per, zip(inputs, targets, strict=True), strict=True):
        out, ref = cv2.convertScaleAbs(cv2.imread(str(a)), alpha=2.0), cv2.imread(str(b))
        assert r["psnr"] == pytest.approx(metrics.peak_signal_noise_ratio(ref, out, data_range=255), abs=1e-3)
        skimage_ssim = metrics.structural_similarity(
            ref, out, channel_axis=2, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        assert r["ssim"] == pytest.approx(skimage_ssim, abs=1e-3)
    names = [p.name for p in result.paths]
    assert names == ["per_image.csv", "summary.md", "summary.json", "grid.png"]
    with open(result.paths[0]) as f:
        assert len(list(csv.DictReader(f))) == 6
    assert "| gain-2 | classical |" in result.paths[1].read_text()
    assert json.loads(result.paths[2].read_text())["paired"] is True
    grid = cv2.imread(str(result.paths[3]))
    assert grid.shape[1] == 192 * 4  # input, two methods, target


def test_unpaired_folder_gets_no_reference_figures(tmp_path: Path) -> None:
    folder = tmp_path / "night"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.jpg"), dark_frame(30, 40, seed=i))
    inputs, targets = find_inputs(folder)
    assert targets is None
    result = evaluate(classical_methods(), inputs, None, tmp_path / "out")
    rows = {r["method"]: r for r in result.rows}
    assert "psnr" not in rows["input"]
    assert rows["auto-gamma"]["luma"] > rows["input"]["luma"] + 40  # the gamma maps the mean towards 128
    assert rows["input"]["noise_ratio"] == pytest.approx(1.0, abs=0.02)  # unchanged: the noise of a gain of 1
    assert rows["input"]["luma_dark"] == pytest.approx(rows["input"]["luma"])  # both images are darker than 30
    assert rows["input"]["colour_cast"] > 1  # dark_frame is bluish (B > G > R)
    assert "mean luma" in result.markdown() and "| noise ratio | colour cast |" in result.markdown()


def test_unreadable_images_are_left_out_and_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """As a folder job of ``enhance`` does: the evaluation goes on past a broken file and says which."""
    folder = tmp_path / "night"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i}.jpg"), dark_frame(30, 40, seed=i))
    (folder / "2.jpg").write_text("not an image\n")
    (folder / "3.png").symlink_to(folder / "gone.png")
    inputs, _ = find_inputs(folder)
    result = evaluate(classical_methods(), inputs, None, tmp_path / "out")
    assert [p.name for p, _ in result.skipped] == ["2.jpg", "3.png"]
    assert {r["image"] for r in result.per_image} == {str(folder / "0.jpg"), str(folder / "1.jpg")}
    with pytest.raises(InputError, match="none of the 2 images could be read"):
        evaluate(classical_methods(), inputs[2:], None, tmp_path / "out2")
    assert main(["eval", "--data", str(folder), "--models", "zero-dce++", "-o", str(tmp_path / "cli")]) == 1
    err = capsys.readouterr().err
    assert "left out: cannot decode image" in err and "2 of 4 images could not be read" in err


def test_cli_scores_a_shipped_model_and_refuses_bad_input(
    lol: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "res"
    assert main(["eval", "--data", str(lol), "--models", "zero-dce++", "--out", str(out), "--threads", "1"]) == 0
    table = capsys.readouterr().out
    assert "| zero-dce++ | ours |" in table and "| clahe | classical |" in table
    assert (out / "grid.png").is_file()
    assert main(["eval", "--data", str(tmp_path / "missing")]) == 2
    assert "evaluation data folder not found" in capsys.readouterr().err
    assert main(["eval", "--data", str(lol), "--models", "nafnet"]) == 2  # an architecture without weights
    assert "ships no ONNX graph" in capsys.readouterr().err


def test_cli_keeps_its_outputs_out_of_the_data_and_checks_the_images_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """-o the data folder scored its own grid.png on the next run; an output folder inside the data is not
    data; a folder of unreadable images is refused before every model loads (a minute), leaving no folder."""
    data = tmp_path / "photos"
    data.mkdir()
    for i in range(2):
        cv2.imwrite(str(data / f"{i}.png"), dark_frame(40, 60, seed=i))
    assert main(["eval", "--data", str(data), "--models", "zero-dce++", "-o", str(data)]) == 2
    assert "is the data folder" in capsys.readouterr().err
    inside = data / "results"
    for flags in ([], ["--overwrite"]):  # the second run finds the first one's grid.png in the data folder
        assert main(["eval", "--data", str(data), "--models", "zero-dce++", "-o", str(inside), *flags]) == 0
        assert "on 2 unpaired images" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.png").write_text("not a picture")
    assert main(["eval", "--data", str(junk), "-o", str(tmp_path / "never")]) == 2
    assert "none of the 1 images could be read" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert main(["eval", "--video", "--data", str(data), "--clips", str(data), "-o", str(tmp_path / "v")]) == 2
    assert "--clips takes video files" in capsys.readouterr().err


def test_synthetic_pairs_are_aligned_and_scoreable(tmp_path: Path) -> None:
    from nightvision.sample import write_sample_pairs

    root = write_sample_pairs(tmp_path / "pairs", pairs=2, width=160, height=96)
    inputs, targets = find_inputs(root)
    assert targets is not None and len(inputs) == 2
    low, high = cv2.imread(str(inputs[0])), cv2.imread(str(targets[0]))
    assert low.shape == high.shape and low.mean() < 15 < 60 < high.mean()
    rows = {r["method"]: r for r in evaluate(classical_methods(), inputs, targets, tmp_path / "out").rows}
    assert rows["auto-gamma"]["psnr"] > rows["input"]["psnr"] + 5  # brightening moves towards the target


def _merge_rows_module() -> Any:
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("merge_rows", ROOT / "benchmarks" / "merge_rows.py")
    assert spec is not None and spec.loader is not None
    merge_rows = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(merge_rows)
    return merge_rows


def test_merge_rows_replaces_and_inserts_and_keeps_kinds_apart(tmp_path: Path) -> None:
    """benchmarks/merge_rows.py: a partial re-run's rows go into a recorded table, nothing else changes."""
    merge_rows = _merge_rows_module()

    def row(method: str, kind: str, psnr: float) -> dict:
        return {"method": method, "kind": kind, "psnr": psnr, "ssim": 0.5}

    table = tmp_path / "sice"
    old = [row("input", "classical", 8.0), row("a", "ours", 17.0), row("official", "reference", 16.0)]
    table.with_suffix(".json").write_text(json.dumps({"paired": True, "rows": old}))
    update = tmp_path / "summary.json"
    new = [row("input", "classical", 8.5), row("a", "ours", 18.0), row("b", "ours", 19.0)]
    update.write_text(json.dumps({"paired": True, "rows": new}))
    assert merge_rows.merge(table, update) == ["a", "b"]
    rows = json.loads(table.with_suffix(".json").read_text())["rows"]
    assert [(r["method"], r["psnr"]) for r in rows] == [("input", 8.0), ("a", 18.0), ("b", 19.0), ("official", 16.0)]
    assert "| b | ours | 19.00 | 0.500 |" in table.with_suffix(".md").read_text()
    update.write_text(json.dumps({"paired": False, "rows": new}))
    with pytest.raises(SystemExit, match="unpaired"):
        merge_rows.merge(table, update)


def test_merge_rows_takes_a_video_methods_figures_along_and_replaces_redefined_bounds(tmp_path: Path) -> None:
    """A video table: a new model's row, per-clip and real-clip figures go in before the reference rows; a
    redefined (renamed) bound replaces the old one, which leaves no figures behind; other settings are refused."""
    merge_rows = _merge_rows_module()
    settings = {"seed": 0, "frames": 4, "size": [32, 16], "bpp": 0.1, "real_frames": 2}
    clips = [{"name": "pan-1", "motion": "pan", "exposure": 0.05, "shot": 1e-3, "read": 1e-6,
              "input_psnr": 30.0, "clean_temporal_error": 0.3}]  # fmt: skip

    def table(methods: list[tuple[str, str, float]]) -> dict:
        return {
            "settings": dict(settings, machine={"cores": 2}),
            "rows": [
                {"method": m, "kind": k, "psnr": v} | ({} if k == "bound" else {"fps": 10.0}) for m, k, v in methods
            ],
            "clips": clips,
            "per_clip": [{"method": m, "clip": "pan-1", "psnr": v} for m, _, v in methods],
            "real": [{"method": m, "clip": "a.mp4", "noise_ratio": v / 100} for m, k, v in methods if k != "bound"]
            + [{"method": "input", "clip": "a.mp4", "noise_ratio": 1.0}],
        }

    recorded = table([("input", "bound", 7.0), ("old bound", "bound", 17.0), ("a", "ours", 15.0),
                      ("official", "reference", 14.0)])  # fmt: skip
    path = tmp_path / "video"
    path.with_suffix(".json").write_text(json.dumps(recorded))
    update = table(
        [("input", "bound", 7.0), ("new bound", "bound", 17.5), ("a", "ours", 99.0), ("model-b", "ours", 19.0)]
    )
    update["real"] = [r for r in update["real"] if r["method"] != "input"]  # a run without the real clips
    (tmp_path / "update.json").write_text(json.dumps(update))
    assert merge_rows.merge(path, tmp_path / "update.json", only=["model-b"]) == ["model-b"]
    merged = json.loads(path.with_suffix(".json").read_text())
    assert [(r["method"], r["psnr"]) for r in merged["rows"]] == [
        ("input", 7.0), ("old bound", 17.0), ("a", 15.0), ("model-b", 19.0), ("official", 14.0)]  # fmt: skip
    assert {"method": "model-b", "clip": "pan-1", "psnr": 19.0} in merged["per_clip"]
    assert {"method": "model-b", "clip": "a.mp4", "noise_ratio": 0.19} in merged["real"]
    assert merged["settings"]["merged"] == [{"methods": ["model-b"], "machine": {"cores": 2}}]
    assert "| model-b | ours | 19.00 |" in path.with_suffix(".md").read_text()

    assert merge_rows.merge(path, tmp_path / "update.json", only=["bound"]) == ["new bound", "input"]
    merged = json.loads(path.with_suffix(".json").read_text())
    assert [r["method"] for r in merged["rows"]] == ["input", "new bound", "a", "model-b", "official"]
    assert not any(r["method"] == "old bound" for r in merged["per_clip"] + merged["real"])
    assert {"method": "input", "clip": "a.mp4", "noise_ratio": 1.0} in merged["real"]  # kept: none in the update

    untimed = table([("a", "ours", 16.0)])  # a run with --no-fps: the recorded timings stay
    del untimed["rows"][0]["fps"]
    merged["rows"][2]["fps"] = 50.0
    path.with_suffix(".json").write_text(json.dumps(merged))
    (tmp_path / "untimed.json").write_text(json.dumps(untimed))
    assert merge_rows.merge(path, tmp_path / "untimed.json", only=["a"]) == ["a"]
    row_a = json.loads(path.with_suffix(".json").read_text())["rows"][2]
    assert (row_a["method"], row_a["psnr"], row_a["fps"]) == ("a", 16.0, 50.0)

    update["settings"]["frames"] = 8
    (tmp_path / "update.json").write_text(json.dumps(update))
    with pytest.raises(SystemExit, match="other settings"):
        merge_rows.merge(path, tmp_path / "update.json")
    (tmp_path / "summary.json").write_text(json.dumps({"paired": True, "rows": update["rows"]}))
    with pytest.raises(SystemExit, match="video table"):
        merge_rows.merge(path, tmp_path / "summary.json")
