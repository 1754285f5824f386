"""Does the MJPEG view slow the pipeline down when many watch it? The pipeline's FPS with nobody watching
against its FPS with 20 viewers plus viewers that vanish mid-stream and slow ones.

    nice -n 10 python benchmarks/mjpeg_clients.py -o benchmarks/results/cpu-2core

One pipeline runs throughout (the shipped model on a synthetic street) with the view as its output, and the
measurement alternates windows without viewers and with them (off, on, off, on, ...): on a shared machine
whose speed drifts, each "on" window is compared with the "off" window just before it, and the median of
those ratios is the result. Without viewers the view costs nothing per frame (it keeps a reference to the
newest frame; JPEG encoding happens only for viewers), so "off" is the pipeline alone.

Two sources: ``free`` (a synthetic scene read as fast as the pipeline takes it, with back-pressure: the
model sets the rate, so any CPU the viewers take shows) and ``camera`` (a 30 fps synthetic camera, the
newest frame kept). The viewers run in another process (as remote browsers would; they share this machine's
CPU here): ``--clients`` read the whole stream, ``--vanishing`` connect, read for 0.2-1 s and drop the
connection (half close it, half reset it), over and over, and 2 slow ones read 8 KB a second (their server
threads block; the pipeline must not). Results in ``mjpeg_clients.md`` / ``.json`` with versions and settings.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


# --- the viewers (run in a child process: python mjpeg_clients.py --viewers PORT ...) -------------------------
def _viewer(port: int, stop: threading.Event, frames: list[int], i: int) -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        tail = b""
        while not stop.is_set():
            data = sock.recv(1 << 16)
            if not data:
                return
            frames[i] += (tail + data).count(b"--frame\r\n")
            tail = data[-9:]


def _vanishing(port: int, stop: threading.Event, count: list[int], rng: random.Random) -> None:
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                if rng.random() < 0.5:  # reset, not a clean close
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
                end = time.monotonic() + rng.uniform(0.2, 1.0)
                while time.monotonic() < end and sock.recv(1 << 16):
                    pass
            count[0] += 1
        except OSError:  # the server is gone (the run ended)
            return


def _slow(port: int, stop: threading.Event) -> None:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: bench\r\n\r\n")
        while not stop.wait(1.0):
            if not sock.recv(8192):
                return


def run_viewers(port: int, clients: int, vanishing: int, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    frames = [0] * clients
    vanished = [0]
    threads = [threading.Thread(target=_viewer, args=(port, stop, frames, i), daemon=True) for i in range(clients)]
    threads += [
        threading.Thread(target=_vanishing, args=(port, stop, vanished, random.Random(i)), daemon=True)
        for i in range(vanishing)
    ]
    threads += [threading.Thread(target=_slow, args=(port, stop), daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    return {"viewer_fps": [f / seconds for f in frames], "vanished": vanished[0]}


# --- the pipeline ---------------------------------------------------------------------------------------------
def window(pipeline: Any, view: Any, seconds: float) -> dict[str, float]:
    """The pipeline's rate, and what the view did, over the next ``seconds``."""
    s0, t0, e0, c0 = pipeline.stats().frames_out, time.monotonic(), view.encoded, time.process_time()
    time.sleep(seconds)
    s1, t1, e1, c1 = pipeline.stats().frames_out, time.monotonic(), view.encoded, time.process_time()
    return {
        "fps": (s1 - s0) / (t1 - t0),
        "jpeg_per_s": (e1 - e0) / (t1 - t0),
        "cpu_ms_per_frame": 1000 * (c1 - c0) / max(1, s1 - s0),  # this process: pipeline and view, all threads
    }


def measure(source_kind: str, args: argparse.Namespace, enhancer: Any) -> list[dict[str, Any]]:
    """Alternate windows without and with viewers on one running pipeline; one ``{off, on}`` per pair."""
    from nightvision.stream.pipeline import Pipeline
    from nightvision.stream.sinks import MjpegSink
    from nightvision.stream.sources import SyntheticSource

    w, h = (int(v) for v in args.size.split("x"))
    # free: a source far faster than the model, read with back-pressure (so that it does not spin copying
    # frames nobody takes); camera: 30 fps, the newest frame kept
    fps, policy = (1000.0, "lossless") if source_kind == "free" else (30.0, "latest")
    view = MjpegSink("127.0.0.1", 0)
    pipeline = Pipeline(SyntheticSource(fps=fps, width=w, height=h), enhancer, [view], policy=policy)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    pairs: list[dict[str, Any]] = []
    try:
        while not view.is_open:
            time.sleep(0.05)
        time.sleep(args.warmup)
        for i in range(args.pairs):
            off = window(pipeline, view, args.seconds)
            viewers = subprocess.Popen(
                [sys.executable, __file__, "--viewers", str(view.port), "--clients", str(args.clients),
                 "--vanishing", str(args.vanishing), "--seconds", str(args.seconds + 2.0)],
                stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            time.sleep(1.0)  # the viewers connect
            on = window(pipeline, view, args.seconds)
            stdout, _ = viewers.communicate(timeout=120)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            result = json.loads(stdout)
            on["viewers_cpu_s_per_s"] = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / (
                args.seconds + 2.0
            )
            on["viewer_fps_median"] = statistics.median(result["viewer_fps"])
            on["viewer_fps_min"] = min(result["viewer_fps"])
            on["vanished"] = result["vanished"]
            pairs.append({"off": off, "on": on, "ratio": on["fps"] / off["fps"] if off["fps"] else 0.0})
            print(f"{source_kind:6s} pair {i + 1}: off {off['fps']:5.1f} FPS, on {on['fps']:5.1f} FPS "
                  f"(ratio {pairs[-1]['ratio']:.2f}); {on}", flush=True)  # fmt: skip
            while view.clients:  # the viewers are gone before the next "off" window
                time.sleep(0.05)
    finally:
        pipeline.stop()
        runner.join(30)
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", help="folder for mjpeg_clients.md/.json (default: print only)")
    parser.add_argument("--model", default="zero-dce++")
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--pairs", type=int, default=8, help="off/on window pairs per source")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--vanishing", type=int, default=6)
    parser.add_argument("--viewers", type=int, help=argparse.SUPPRESS)  # child mode: the port to watch
    args = parser.parse_args()
    if args.viewers:
        print(json.dumps(run_viewers(args.viewers, args.clients, args.vanishing, args.seconds)))
        return

    import cv2
    import numpy as np

    import nightvision
    from nightvision import Enhancer

    enhancer = Enhancer(args.model)
    results = {kind: measure(kind, args, enhancer) for kind in ("free", "camera")}
    summary: dict[str, Any] = {}
    lines = [
        "# MJPEG view: the pipeline's rate with many viewers",
        "",
        f"`nice -n 10 python benchmarks/mjpeg_clients.py -o {args.output or '.'}` — {args.model} on a synthetic "
        f"{args.size} street with the view as output; {args.pairs} pairs of {args.seconds:g} s windows, without "
        f"viewers then with {args.clients} viewers reading the whole stream, {args.vanishing} that vanish mid-stream "
        "over and over and 2 slow ones (another process); each window with viewers compared with the one before it.",
        "",
        "| source | FPS without viewers (median) | FPS with viewers (median) | with / without, median of pairs "
        "(min-max) | CPU ms per frame, without / with | JPEG encodes/s | viewer FPS (median, min) | vanished |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for kind, pairs in results.items():
        off = [p["off"] for p in pairs]
        on = [p["on"] for p in pairs]
        ratios = [p["ratio"] for p in pairs]
        row = {
            "fps_without": statistics.median(r["fps"] for r in off),
            "fps_with": statistics.median(r["fps"] for r in on),
            "ratio_median": statistics.median(ratios),
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
            "cpu_ms_per_frame_without": statistics.median(r["cpu_ms_per_frame"] for r in off),
            "cpu_ms_per_frame_with": statistics.median(r["cpu_ms_per_frame"] for r in on),
            "jpeg_per_s": statistics.median(r["jpeg_per_s"] for r in on),
            "viewer_fps_median": statistics.median(r["viewer_fps_median"] for r in on),
            "viewer_fps_min": min(r["viewer_fps_min"] for r in on),
            "vanished": sum(r["vanished"] for r in on),
            "viewers_cpu_s_per_s": statistics.median(r["viewers_cpu_s_per_s"] for r in on),
            "pairs": pairs,
        }
        summary[kind] = row
        label = "free-running" if kind == "free" else "30 fps camera"
        lines.append(
            f"| {label} | {row['fps_without']:.1f} | {row['fps_with']:.1f} | {row['ratio_median']:.2f} "
            f"({row['ratio_min']:.2f}-{row['ratio_max']:.2f}) | {row['cpu_ms_per_frame_without']:.1f} / "
            f"{row['cpu_ms_per_frame_with']:.1f} | {row['jpeg_per_s']:.1f} | {row['viewer_fps_median']:.1f}, "
            f"{row['viewer_fps_min']:.1f} | {row['vanished']} |"
        )
    meta = {
        "python": platform.python_version(),
        "nightvision": getattr(nightvision, "__version__", "?"),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_at_end": list(os.getloadavg()),
        "settings": {k: v for k, v in vars(args).items() if k not in ("viewers", "output")},
    }
    lines += ["", f"Settings and versions: `{json.dumps(meta)}`"]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        out = Path(args.output)
        out.mkdir(parents=True, exist_ok=True)
        (out / "mjpeg_clients.md").write_text(report)
        (out / "mjpeg_clients.json").write_text(json.dumps({"results": summary, "meta": meta}, indent=2) + "\n")


if __name__ == "__main__":
    main()
