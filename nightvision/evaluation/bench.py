"""Benchmarks: model latency per model × backend × size, and the end-to-end pipeline on a video.

Every cell warms up, then measures for a fixed time and reports median / p95 / p99 latency and FPS, with a
status (``ok``, ``failed: …``, ``unavailable: …``). Each model also gets a **reference** row — the model run as
its original code runs it (eager PyTorch, fp32, full-resolution tensors, no graph capture, its conversions
included) — so the speed-up is a ratio measured side by side, and CLAHE gives the classical floor. A
**denoise (3dnr)** row per size times the temporal denoiser alone (what ``--denoise`` adds to every frame).
GPU cells synchronise around the measured region. Results carry the versions, hardware and settings.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import logging
import os
import platform
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.enhancer import DEFAULT_MODEL, Enhancer
from nightvision.errors import EngineError, InputError
from nightvision.io.atomic import atomic_path
from nightvision.io.images import write_image
from nightvision.io.sizes import SIZES, parse_size
from nightvision.preprocess import pad_amounts
from nightvision.specs import get_spec

__all__ = [
    "DENOISE_ROW",
    "DENOISE_ROW_16",
    "RESULT_FILES",
    "SIZES",
    "Cell",
    "bench_models",
    "bench_pipeline",
    "environment",
    "latency_stats",
    "parse_size",
    "save_results",
]

log = logging.getLogger(__name__)

RESULT_FILES = ("results.json", "results.csv", "results.md", "fps.png")
"""What :func:`save_results` writes into its folder."""


@dataclass
class Cell:
    """One measured configuration."""

    model: str
    backend: str
    size: str
    status: str = "ok"
    samples: int = 0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    fps: float = 0.0
    params: int | None = None
    gflops: float | None = None
    peak_host_mb: float | None = None
    peak_gpu_mb: float | None = None
    speedup_vs_reference: float | None = None
    note: str = ""


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """p50 / p95 / p99 in milliseconds and FPS (1 / mean) of per-frame latencies in seconds."""
    if not seconds:
        raise ValueError("no samples")
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "fps": float(1000.0 / ms.mean()),
    }


def _measure(
    fn: Callable[[], Any], *, warmup: int, seconds: float, min_samples: int = 3, sync: Callable[[], None] | None = None
) -> list[float]:
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    samples: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or len(samples) < min_samples:
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        samples.append(time.perf_counter() - t0)
    return samples


def _reset_peak_rss() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as f:  # Linux: "5" resets the peak RSS (VmHWM)
            f.write("5")
    except OSError:
        pass


def _peak_rss_mb() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _frame(size: str) -> np.ndarray:
    h, w = parse_size(size)
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 40, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8), (w, h))
    return cv2.add(base, rng.integers(0, 6, (h, w, 3), dtype=np.uint8))


def _complexity(model: str, size: str) -> tuple[int | None, float | None]:
    """Parameters and GFLOPs at ``size`` (:func:`nightvision.evaluation.complexity.complexity`)."""
    from nightvision.evaluation.complexity import complexity

    return complexity(model, *parse_size(size))


def _reference_runner(model: str, frame: np.ndarray) -> Callable[[], Any]:
    """The model as its original code runs it: eager fp32 PyTorch on full-resolution tensors, conversions in."""
    import torch

    from nightvision import models

    net = models.create(model).eval()
    h, w = frame.shape[:2]
    pad_h, pad_w = pad_amounts(h, w, get_spec(model).pad_multiple)

    def run() -> np.ndarray:
        with torch.no_grad():
            x = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1)[None].float() / 255.0
            if pad_h or pad_w:  # to the model's multiple (reflect), as every backend does
                x = torch.nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
            y = net(x)[:, :, :h, :w]
            out: np.ndarray = (y[0].permute(1, 2, 0).numpy()[:, :, ::-1] * 255.0).clip(0, 255).astype(np.uint8)
        return out

    return run


def _clahe_runner(frame: np.ndarray) -> Callable[[], Any]:
    clahe = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))

    def run() -> np.ndarray:
        lab = cv2.cvtColor(frame, cv2.COLOR_BGR2LAB)
        lab[:, :, 0] = clahe.apply(np.ascontiguousarray(lab[:, :, 0]))
        return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)

    return run


DENOISE_ROW = "denoise (3dnr)"
"""The model column of the temporal denoiser's row (8-bit output: what ``--denoise`` costs before curve-denoise)."""
DENOISE_ROW_16 = "denoise (3dnr, 16-bit out)"
"""The same with the 16-bit output that ``--denoise`` hands every other model
(:attr:`~nightvision.Enhancer.hand_off_dtype`)."""


def _denoise_runner(frame: np.ndarray, output_dtype: type = np.uint8) -> Callable[[], Any]:
    """The CPU temporal denoiser (:class:`~nightvision.stream.denoise.TemporalDenoiser`) on a still scene with
    fresh noise every frame (eight noisy copies of ``frame`` in turn), so each call is a steady-state frame."""
    from nightvision.stream.denoise import TemporalDenoiser

    rng = np.random.default_rng(1)
    frames = [cv2.add(frame, rng.integers(0, 4, frame.shape, dtype=np.uint8)) for _ in range(8)]
    denoiser = TemporalDenoiser(output_dtype=output_dtype)
    count = itertools.count()

    def run() -> np.ndarray:
        return denoiser(frames[next(count) % len(frames)])

    return run


def bench_models(
    models: list[str],
    backends: list[str],
    sizes: list[str],
    *,
    seconds: float = 2.0,
    warmup: int = 3,
    threads: int = 0,
    reference: bool = True,
    baseline: bool = True,
    denoise: bool = True,
) -> list[Cell]:
    """Measure every model × backend × size cell (plus reference rows, and per size the CLAHE row where
    ``baseline`` and the temporal denoiser's rows, :data:`DENOISE_ROW` and :data:`DENOISE_ROW_16`, where
    ``denoise``)."""
    for s in sizes:
        parse_size(s)
    for m in models:
        get_spec(m)
    check_backend_names(backends)
    cells: list[Cell] = []
    for size in sizes:
        frame = _frame(size)
        if baseline:
            cells.append(_run_cell("clahe", "opencv", size, _clahe_runner(frame), seconds, warmup))
        if denoise:
            for row, dtype in ((DENOISE_ROW, np.uint8), (DENOISE_ROW_16, np.uint16)):
                runner = _denoise_runner(frame, dtype)
                cells.append(_run_cell(row, "cpu", size, runner, seconds, max(warmup, 3)))
        for model in models:
            params, gflops = _complexity(model, size)
            ref_cell = None
            if reference:
                try:
                    runner = _reference_runner(model, frame)
                    ref_cell = _run_cell(model, "reference:torch-eager-fp32", size, runner, seconds, min(warmup, 1))
                except ImportError:
                    ref_cell = Cell(
                        model, "reference:torch-eager-fp32", size, status="unavailable: torch is not installed"
                    )
                cells.append(ref_cell)
            for backend in backends:
                try:
                    if backend.startswith("torch:"):
                        run, name = _torch_variant(model, backend, frame)
                    else:
                        enhancer = Enhancer(model, backend, threads=threads)
                        run, name = functools.partial(enhancer.enhance, frame), enhancer.backend.name
                except (EngineError, InputError, ImportError) as err:
                    cells.append(Cell(model, backend, size, status=f"unavailable: {err}"))
                    continue
                sync = _cuda_sync() if backend.startswith("torch") else None
                cell = _run_cell(model, name, size, run, seconds, warmup, sync)
                if ref_cell is not None and ref_cell.status == "ok" and cell.status == "ok":
                    cell.speedup_vs_reference = ref_cell.p50_ms / cell.p50_ms
                cells.append(cell)
            for c in cells:
                if c.model == model and c.size == size:
                    c.params, c.gflops = params, gflops
    return cells


TORCH_OPTIONS = {"fp16": "half", "cl": "channels_last", "graphs": "cuda_graph"}


def check_backend_names(backends: list[str]) -> None:
    """Refuse (one :class:`InputError` line) a backend name no cell could run, before anything is measured: a
    backend that is named right but missing here (TensorRT, CUDA) is a result, an ``unavailable`` cell; a typo
    is not."""
    from nightvision.backends import BACKENDS

    for backend in backends:
        if backend.startswith("torch:"):
            unknown = [o for o in backend.split(":", 1)[1].split("+") if o not in TORCH_OPTIONS]
            if unknown:
                raise InputError(
                    f"unknown torch option(s) {', '.join(unknown)} in {backend!r} (known: {', '.join(TORCH_OPTIONS)}, "
                    "joined by +, e.g. torch:fp16+graphs)"
                )
        elif backend not in BACKENDS:
            raise InputError(
                f"unknown backend {backend!r} (known: {', '.join(BACKENDS)}, and torch:OPTIONS such as torch:fp16)"
            )


def _torch_variant(model: str, backend: str, frame: np.ndarray) -> tuple[Callable[[], Any], str]:
    """``torch:fp16+cl+graphs`` → the PyTorch backend with those options, run on uint8 frames with the
    conversions on the device (:meth:`TorchBackend.enhance_uint8`), and its name."""
    from nightvision.backends.pytorch import TorchBackend

    options = [o for o in backend.split(":", 1)[1].split("+") if o]
    unknown = [o for o in options if o not in TORCH_OPTIONS]
    if unknown:
        raise InputError(f"unknown torch option(s) {unknown} in {backend!r} (known: {', '.join(TORCH_OPTIONS)})")
    torch_backend = TorchBackend(
        get_spec(model), half="fp16" in options, channels_last="cl" in options, cuda_graph="graphs" in options
    )
    return functools.partial(torch_backend.enhance_uint8, frame), torch_backend.name + ":uint8-on-device"


def _cuda_sync() -> Callable[[], None] | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.cuda.synchronize if torch.cuda.is_available() else None


def _run_cell(
    model: str,
    backend: str,
    size: str,
    fn: Callable[[], Any],
    seconds: float,
    warmup: int,
    sync: Callable[[], None] | None = None,
) -> Cell:
    cell = Cell(model, backend, size)
    _reset_peak_rss()
    try:
        samples = _measure(fn, warmup=warmup, seconds=seconds, sync=sync)
    except Exception as err:  # a failing cell is a result, not a crash of the whole benchmark
        cell.status = f"failed: {type(err).__name__}: {err}"
        return cell
    stats = latency_stats(samples)
    cell.samples = len(samples)
    cell.p50_ms, cell.p95_ms, cell.p99_ms, cell.fps = stats["p50_ms"], stats["p95_ms"], stats["p99_ms"], stats["fps"]
    cell.peak_host_mb = _peak_rss_mb()
    log.info("%s %s %s: p50 %.2f ms, %.1f FPS", model, backend, size, cell.p50_ms, cell.fps)
    return cell


@dataclass
class PipelineResult:
    """The pipeline measured on one clip, every figure through :class:`~nightvision.stream.pipeline.Pipeline`."""

    video: str
    frames: int
    width: int
    height: int
    decode_fps: float  # file → nothing (decode and the pipeline's own cost)
    passthrough_fps: float  # file → H.264 file, no model
    enhanced_fps: float  # `nightvision enhance`: file → model → H.264 file (audio kept)
    ratio_enhanced_over_passthrough: float
    enhanced_passthrough_fps: float  # decode→encode of the enhanced clip: the encoder's cost on bright content
    ratio_over_enhanced_passthrough: float
    enhanced_stage_busy_s: dict[str, float] = field(default_factory=dict)
    live: dict[str, Any] = field(default_factory=dict)


def bench_pipeline(
    video: str | Path | None,
    *,
    model: str = DEFAULT_MODEL,
    threads: int = 0,
    live_seconds: float = 5.0,
    live_size: str = "720p",
) -> PipelineResult:
    """The same clip four ways through the one pipeline (decode; decode→encode; the enhance job; the enhanced
    clip re-encoded), then a live synthetic source of ``live_size`` (WIDTHxHEIGHT or 720p) at 30 FPS."""
    from nightvision.sample import make_sample_video
    from nightvision.stream.jobs import enhance_path
    from nightvision.stream.pipeline import Pipeline
    from nightvision.stream.sinks import NullSink
    from nightvision.stream.sources import FileSource, SyntheticSource

    with tempfile.TemporaryDirectory() as tmp:
        label = str(video)
        if video is None:
            video = make_sample_video(Path(tmp) / "sample-720p.mp4", width=1280, height=720, seconds=10)
            label = "the synthetic 720p night clip (nightvision.sample)"
        decode = Pipeline(FileSource(video), None, [NullSink()]).run()
        with FileSource(video) as probe:
            width, height = probe.info.width, probe.info.height
        passthrough = _passthrough_fps(video, Path(tmp) / "pass.mp4")
        enhancer = Enhancer(model, threads=threads)
        report = enhance_path(video, Path(tmp) / "enh.mp4", enhancer=enhancer)
        enhanced_passthrough = _passthrough_fps(Path(tmp) / "enh.mp4", Path(tmp) / "pass2.mp4")
        live_h, live_w = parse_size(live_size)
        live_src = SyntheticSource(fps=30, width=live_w, height=live_h, frames=int(30 * live_seconds))
        stats = Pipeline(live_src, enhancer, [NullSink()]).run()
    return PipelineResult(
        video=label,
        frames=decode.frames_out,
        width=width,
        height=height,
        decode_fps=decode.fps_out,
        passthrough_fps=passthrough,
        enhanced_fps=report.fps,
        ratio_enhanced_over_passthrough=report.fps / passthrough,
        enhanced_passthrough_fps=enhanced_passthrough,
        ratio_over_enhanced_passthrough=report.fps / enhanced_passthrough,
        enhanced_stage_busy_s=report.stage_seconds,
        live={
            "source": f"synthetic {live_w}x{live_h} at 30 fps",
            "frames_in": stats.frames_in,
            "frames_out": stats.frames_out,
            "dropped": stats.dropped,
            "source_dropped": stats.source_dropped,
            "latency_ms": stats.latency_ms,
            "stage_ms": stats.stage_ms,
        },
    )


def _passthrough_fps(video: str | Path, out: Path) -> float:
    """Decode and re-encode a video through the pipeline with no model, frames per second."""
    from nightvision.stream.pipeline import Pipeline
    from nightvision.stream.sinks import VideoFileSink
    from nightvision.stream.sources import FileSource

    source = FileSource(video).open()
    assert source.time_base is not None
    sink = VideoFileSink(out, fps=source.fps, time_base=source.time_base, overwrite=True)
    return Pipeline(source, None, [sink]).run().fps_out


def _numba_version() -> str | None:
    try:
        import numba
    except ImportError:
        return None
    return str(numba.__version__)


def environment() -> dict[str, Any]:
    """Versions, hardware and host: what a result is only comparable with."""
    import onnxruntime

    from nightvision import __version__

    env: dict[str, Any] = {
        "nightvision": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numba": _numba_version(),  # the denoiser rows use its fused kernels when installed
        "host": socket.gethostname(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                env["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import torch

        env["torch"] = torch.__version__
        if torch.cuda.is_available():
            env["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        env["torch"] = None
    return env


def _markdown(cells: list[Cell]) -> str:
    rows = [
        "| model | backend | size | p50 ms | p95 ms | p99 ms | FPS | × reference | GFLOPs | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        speed = f"{c.speedup_vs_reference:.1f}×" if c.speedup_vs_reference else ""
        gf = f"{c.gflops:.2f}" if c.gflops is not None else ""
        if c.status == "ok":
            lat = f"{c.p50_ms:.2f} | {c.p95_ms:.2f} | {c.p99_ms:.2f}"
            rows.append(f"| {c.model} | {c.backend} | {c.size} | {lat} | {c.fps:.1f} | {speed} | {gf} | ok |")
        else:
            rows.append(f"| {c.model} | {c.backend} | {c.size} | | | | | | {gf} | {c.status} |")
    return "\n".join(rows) + "\n"


def _chart(cells: list[Cell], path: Path) -> None:
    """A horizontal bar chart of FPS (log scale) per cell, drawn with OpenCV."""
    ok = [c for c in cells if c.status == "ok" and c.fps > 0]
    if not ok:
        return
    bar_h, left, width = 22, 430, 1100
    img = np.full((bar_h * len(ok) + 60, width, 3), 255, np.uint8)
    top = max(c.fps for c in ok)
    scale = (width - left - 90) / np.log10(max(top, 10) * 1.2)
    cv2.putText(
        img, "frames per second (log scale)", (left, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA
    )
    for i, c in enumerate(ok):
        y = 40 + i * bar_h
        colour = (
            (60, 60, 60)
            if c.backend.startswith("reference")
            else (200, 200, 200)
            if c.model == "clahe"
            else (200, 120, 30)
        )
        length = int(max(1.0, np.log10(max(c.fps, 1.0)) * scale))
        cv2.rectangle(img, (left, y), (left + length, y + bar_h - 6), colour, -1)
        label = f"{c.model} | {c.backend.split(':')[0]} | {c.size}"
        cv2.putText(img, label, (8, y + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            img, f"{c.fps:.1f}", (left + length + 6, y + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    write_image(path, img)


def save_results(
    out_dir: str | Path, cells: list[Cell], settings: dict[str, Any], pipeline: PipelineResult | None = None
) -> list[Path]:
    """Write ``results.json``, ``results.csv``, ``results.md`` and ``fps.png`` into ``out_dir`` (atomically;
    existing ones are replaced: the CLI checks ``--overwrite`` first)."""
    out = Path(out_dir)
    paths = [out / name for name in RESULT_FILES]
    doc = {"environment": environment(), "settings": settings, "cells": [asdict(c) for c in cells]}
    if pipeline is not None:
        doc["pipeline"] = asdict(pipeline)
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(asdict(cells[0]).keys()) if cells else ["model"])
    writer.writeheader()
    for c in cells:
        writer.writerow(asdict(c))
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(buf.getvalue())
    md = _markdown(cells)
    if pipeline is not None:
        p = pipeline
        busy = {k: round(v, 1) for k, v in p.enhanced_stage_busy_s.items()}
        md += (
            f"\nPipeline on {p.video} ({p.width}x{p.height}, {p.frames} frames): decode {p.decode_fps:.1f} FPS, "
            f"decode→encode {p.passthrough_fps:.1f} FPS, decode→enhance→encode {p.enhanced_fps:.1f} FPS, "
            f"ratio {p.ratio_enhanced_over_passthrough:.2f}; re-encoding the enhanced clip alone runs at "
            f"{p.enhanced_passthrough_fps:.1f} FPS (ratio {p.ratio_over_enhanced_passthrough:.2f}); busy seconds "
            f"{busy}. Live {p.live['source']}: {p.live['frames_out']} of "
            f"{p.live['frames_in']} frames out, {p.live['dropped']} dropped, capture→output latency p50 "
            f"{p.live['latency_ms'].get('p50', 0):.1f} ms, p95 {p.live['latency_ms'].get('p95', 0):.1f} ms.\n"
        )
    with atomic_path(paths[2]) as tmp:
        tmp.write_text(md)
    _chart(cells, paths[3])
    return paths
