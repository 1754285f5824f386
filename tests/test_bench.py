"""Benchmark statistics, output formats and a tiny real run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest

from nightvision.errors import InputError
from nightvision.evaluation.bench import (
    DENOISE_ROW,
    DENOISE_ROW_16,
    Cell,
    bench_models,
    latency_stats,
    parse_size,
    save_results,
)


def test_latency_statistics() -> None:
    stats = latency_stats([0.010] * 98 + [0.050, 0.100])
    assert stats["p50_ms"] == pytest.approx(10.0)
    assert stats["p99_ms"] == pytest.approx(50.5)
    assert stats["fps"] == pytest.approx(1000 / (0.98 * 10 + 0.5 + 1.0))
    with pytest.raises(ValueError, match="no samples"):
        latency_stats([])


def test_sizes() -> None:
    assert parse_size("1080p") == (1080, 1920)
    assert parse_size("64x48") == (48, 64)
    with pytest.raises(InputError, match="unknown size"):
        parse_size("huge")


def test_tiny_run_writes_every_format(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown backend 'nosuchbackend'"):  # a typo: refused before measuring
        bench_models(["zero-dce++"], ["onnxruntime", "nosuchbackend"], ["96x64"], seconds=0.2)
    cells = bench_models(["zero-dce++"], ["onnxruntime", "tensorrt"], ["96x64"], seconds=0.2, warmup=1, threads=1)
    by_backend = {c.backend.split(":")[0]: c for c in cells}
    ours = by_backend["onnxruntime"]
    assert ours.status == "ok" and ours.samples >= 3 and 0 < ours.p50_ms <= ours.p95_ms <= ours.p99_ms
    trt = by_backend["tensorrt"]  # named right, missing here (no TensorRT, or no plan): a result, not a crash
    assert trt.status == "ok" or trt.status.startswith("unavailable"), trt.status
    assert by_backend["opencv"].model == "clahe" and by_backend["opencv"].status == "ok"
    # the temporal denoiser alone, with 8- and 16-bit output: what --denoise adds to each frame
    denoisers = [c for c in cells if c.backend == "cpu"]
    assert [c.model for c in denoisers] == [DENOISE_ROW, DENOISE_ROW_16]
    for denoise in denoisers:
        assert denoise.size == "96x64" and denoise.status == "ok"
        assert denoise.samples >= 3 and 0 < denoise.p50_ms <= denoise.p95_ms
    ref = by_backend["reference"]
    if ref.status == "ok":  # torch installed
        assert ours.speedup_vs_reference == pytest.approx(ref.p50_ms / ours.p50_ms)
        assert ours.params == 10_561 and ours.gflops is not None and ours.gflops > 0
    paths = save_results(tmp_path, cells, {"seconds": 0.2})
    doc = json.loads(paths[0].read_text())
    assert doc["environment"]["onnxruntime"] and len(doc["cells"]) == len(cells)
    rows = list(csv.DictReader(paths[1].open()))
    assert [r["backend"] for r in rows] == [c.backend for c in cells]
    assert "| zero-dce++ |" in paths[2].read_text() and f"| {DENOISE_ROW} | cpu | 96x64 |" in paths[2].read_text()
    assert cv2.imread(str(paths[3])) is not None


def test_failed_cells_are_reported_not_raised(tmp_path: Path) -> None:
    save_results(tmp_path, [Cell("m", "b", "480p", status="failed: boom")], {})
    assert "failed: boom" in (tmp_path / "results.md").read_text()


def test_torch_variants_are_named_cells_and_gpu_only_options_say_why() -> None:
    pytest.importorskip("torch")
    with pytest.raises(InputError, match=r"unknown torch option\(s\) turbo in 'torch:turbo'"):  # before measuring
        bench_models(["zero-dce++"], ["torch:fp16+graphs", "torch:turbo"], ["48x64"], seconds=0.05)
    cells = bench_models(
        ["zero-dce++"], ["torch:fp16+graphs"], ["48x64"], seconds=0.05, reference=False, baseline=False
    )
    by_backend = {c.backend: c for c in cells}
    fp16 = by_backend["torch:fp16+graphs"]
    import torch

    if torch.cuda.is_available():
        assert fp16.status == "ok"
    else:
        assert fp16.status.startswith("unavailable:") and "need a CUDA device" in fp16.status


def test_pipeline_bench_measures_the_one_pipeline(tmp_path: Path) -> None:
    from nightvision.evaluation.bench import bench_pipeline
    from nightvision.io.video import VideoWriter
    from tests.conftest import dark_frame

    clip = tmp_path / "c.mp4"
    with VideoWriter(clip, 96, 64, 25) as w:
        for i in range(20):
            w.write(dark_frame(64, 96, seed=i))
    result = bench_pipeline(clip, threads=1, live_seconds=1.0, live_size="160x90")
    assert result.frames == 20 and (result.width, result.height) == (96, 64)
    assert result.decode_fps > 0 and result.passthrough_fps > 0 and result.enhanced_fps > 0
    assert {"capture", "preprocess", "infer", "postprocess", "output"} <= set(result.enhanced_stage_busy_s)
    live = result.live
    assert live["frames_in"] == live["frames_out"] + live["dropped"] and live["frames_out"] > 0
    paths = save_results(tmp_path / "r", [Cell("m", "b", "480p")], {}, result)
    assert "Pipeline on" in paths[2].read_text()
