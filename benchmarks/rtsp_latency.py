"""Glass-to-glass latency of the RTSP output: capture → enhance → H.264 → RTSP → decoded by a client.

    nice -n 10 python benchmarks/rtsp_latency.py -o benchmarks/results/cpu-2core

The synthetic camera (``synthetic://?stamp=1``) draws the capture time into each frame as a stripe code
(:mod:`nightvision.stream.stripecode`, the machine's monotonic clock, shared by every process); the pipeline
enhances it and publishes it with the built-in RTSP server (:class:`nightvision.stream.rtsp_out.RtspSink`);
a client in another process reads the stream with FFmpeg's RTSP client (PyAV; RTP over TCP, no buffering:
``fflags=nobuffer``, ``flags=low_delay``) and reads each decoded frame's code back: latency = decode time
minus capture time. Display is not included: a player adds its own buffer (VLC ``--network-caching``, 1 s
by default; ffplay: ``-fflags nobuffer -flags low_delay`` keeps it small). With ``--models none`` frames pass
through, which measures the RTSP path alone; also reported: the pipeline's own capture → output latency.
Results in ``rtsp_latency.md`` / ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


def client(url: str, seconds: float, transport: str) -> dict[str, Any]:
    """Read ``url`` for ``seconds``; the latency of every decoded frame (ms), and the frames without a code."""
    import av

    from nightvision.stream.stripecode import ms_since, read_code

    options = {"rtsp_transport": transport, "fflags": "nobuffer", "flags": "low_delay"}
    latencies: list[int] = []
    unreadable = 0
    with av.open(url, container_options=options, timeout=(30.0, 10.0)) as container:
        end = time.monotonic() + seconds
        for frame in container.decode(video=0):
            code = read_code(frame.to_ndarray(format="bgr24"))
            if code is None:
                unreadable += 1
            else:
                latencies.append(ms_since(code))
            if time.monotonic() > end:
                break
    return {"latencies_ms": latencies, "unreadable": unreadable}


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", help="folder for rtsp_latency.md/.json (default: print only)")
    parser.add_argument(
        "--models", default="none,zero-dce++", help="comma-separated; none: frames pass through (the RTSP path alone)"
    )
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--transport", choices=["tcp", "udp"], default="tcp")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # child mode: the URL to read
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(args.client, args.seconds, args.transport)))
        return

    import av

    import nightvision

    results = {model: measure(model, args) for model in args.models.split(",")}
    meta = {
        "python": platform.python_version(),
        "nightvision": getattr(nightvision, "__version__", "?"),
        "pyav": av.__version__,
        "libavformat": ".".join(map(str, av.library_versions.get("libavformat", ()))),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "settings": {k: v for k, v in vars(args).items() if k not in ("client", "output")},
    }
    lines = [
        "# RTSP output: glass-to-glass latency",
        "",
        f"`nice -n 10 python benchmarks/rtsp_latency.py -o {args.output or '.'}` — a synthetic {args.size} camera "
        f"at {args.fps:g} fps with the capture time drawn in, enhanced, published by the built-in RTSP server (x264 "
        f"ultrafast, zerolatency) and read back over RTP/{args.transport.upper()} by FFmpeg's RTSP client (PyAV, "
        f"nobuffer, low_delay) in another process, {args.seconds:g} s per model (the first second left out). "
        "Glass to glass here ends when the client has decoded the frame; a player's display buffer comes on top.",
        "",
        "| model | capture → decoded by the client, p50 / p95 / max ms | capture → outputs (the pipeline), "
        "p50 / p95 ms | pipeline FPS | frames measured |",
        "|---|---|---|---|---|",
    ]
    for model, r in results.items():
        g, p = r["glass_to_glass_ms"], r["pipeline_capture_to_output_ms"]
        lines.append(
            f"| {model} | {g['p50']:.0f} / {g['p95']:.0f} / {g['max']:.0f} | {p.get('p50', 0):.0f} / "
            f"{p.get('p95', 0):.0f} | {r['pipeline_fps_out']:.1f} | {r['frames_measured']} |"
        )
    lines += ["", f"Settings and versions: `{json.dumps(meta)}`"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "rtsp_latency.md").write_text(report)
        (out / "rtsp_latency.json").write_text(json.dumps({"results": results, "meta": meta}, indent=2) + "\n")


def measure(model: str, args: argparse.Namespace) -> dict[str, Any]:
    """One run: the pipeline with ``model`` publishing over RTSP, a client reading it in another process."""
    import numpy as np

    from nightvision import Enhancer
    from nightvision.stream.pipeline import Pipeline
    from nightvision.stream.rtsp_out import RtspSink
    from nightvision.stream.sources import make_source

    enhancer = None if model == "none" else Enhancer(model)
    source = make_source(f"synthetic://?fps={args.fps:g}&size={args.size}&stamp=1")
    sink = RtspSink("127.0.0.1", 0, "/night", fps=args.fps, crf=23)
    pipeline = Pipeline(source, enhancer, [sink])
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        while not sink.is_open:
            time.sleep(0.05)
        reader = subprocess.run(
            [sys.executable, __file__, "--client", sink.uri, "--seconds", str(args.seconds),
             "--transport", args.transport],
            capture_output=True, text=True, timeout=args.seconds + 120,
        )  # fmt: skip
    finally:
        pipeline.stop()
        runner.join(30)
    if reader.returncode != 0:
        raise SystemExit(f"the client failed: {reader.stderr.strip()[-2000:]}")
    result = json.loads(reader.stdout)
    lat = [float(v) for v in result["latencies_ms"]][int(args.fps) :]  # the first second: start-up
    stats = pipeline.stats()
    return {
        "glass_to_glass_ms": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "max": max(lat, default=0.0),
            "mean": float(np.mean(lat)) if lat else 0.0,
        },
        "frames_measured": len(lat),
        "frames_unreadable": result["unreadable"],
        "pipeline_capture_to_output_ms": stats.latency_ms,
        "pipeline_fps_out": stats.fps_out,
        "pipeline_dropped": stats.dropped,
        "rtsp_encoded": sink.frames_encoded,
        "rtsp_skipped": sink.skipped,
    }


if __name__ == "__main__":
    main()
