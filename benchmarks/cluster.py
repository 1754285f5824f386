"""Throughput of one archive job: single process, in-process batch, local Ray, and a two-node local Ray cluster.

    nice -n 10 python benchmarks/cluster.py                       # the 720p CCTV archive, every mode
    python benchmarks/cluster.py --seconds 30 --modes inprocess,ray-local   # a quick look

The archive: ``--files`` 720p H.264 files cut from a real night CCTV clip (``../shared/videos``; cropped to
16:9, scaled to 1280×720, x264 default GOP), built once in ``--workdir``. The same job (zero-dce++, x264
crf 18, chunks of ``--chunk-seconds``) then runs in each mode, with equal cores:

* ``enhance`` — ``enhance_path`` on the folder: what ``nightvision enhance`` does, one file after another.
* ``inprocess`` — ``batch(use_ray=False)``: the batch code path minus Ray (one worker, the whole machine).
* ``ray-local`` — ``batch()`` on a local Ray instance: one worker per CPU.
* ``ray-2node`` — ``batch(address=...)`` on a head and a worker node started here (one CPU each).

Each mode runs in a fresh process. For each: wall time end to end, setup (planning, connecting to Ray, loading
the in-process model), the steady frame rate
(frames done between 10 % and 90 % of the job, from the progress reports), and the multiple of real time.
Ray's overhead is the extra wall time over ``inprocess``. Outputs of all batch modes are compared by
sha256. The machine's load and its busiest other processes are recorded before and after each mode.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.ray_cluster: the local multi-node cluster the tests use

from nightvision import Enhancer  # noqa: E402
from nightvision.cluster.batch import BatchProgress, batch  # noqa: E402
from nightvision.cluster.manifest import MANIFEST_NAME  # noqa: E402
from nightvision.evaluation.bench import environment  # noqa: E402
from nightvision.io.video import VideoReader, VideoWriter  # noqa: E402
from nightvision.stream.jobs import enhance_path  # noqa: E402

MODES = ("enhance", "inprocess", "ray-local", "ray-2node")


def build_archive(source: Path, folder: Path, *, files: int, seconds: float) -> list[Path]:
    """Cut ``source`` into ``files`` 720p clips of ``seconds`` each (fewer if it is shorter); reuse them if made."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"cam{i + 1}.mp4" for i in range(files)]
    if all(p.exists() for p in paths):
        return paths
    with VideoReader(source) as reader:
        fps = reader.info.fps
        per_file = round(seconds * float(fps))
        frames = reader.frames()
        for path in paths:
            with VideoWriter(path, 1280, 720, Fraction(fps), crf=18) as writer:
                for _, frame in zip(range(per_file), frames, strict=False):
                    h, w = frame.image.shape[:2]
                    crop_h = min(h, w * 9 // 16)
                    top = (h - crop_h) // 2
                    crop = frame.image[top : top + crop_h, : crop_h * 16 // 9]
                    writer.write(cv2.resize(crop, (1280, 720), interpolation=cv2.INTER_LINEAR))
    return paths


def load() -> dict[str, Any]:
    """The load average and the busiest processes right now (other helpers share this machine)."""
    top = subprocess.run(
        ["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True, text=True
    ).stdout.splitlines()[:6]
    return {"loadavg": [round(x, 2) for x in os.getloadavg()], "top": [" ".join(t.split()) for t in top]}


class CpuMeter:
    """CPU seconds used by this process and everything below it (Ray's GCS, raylets and workers included),
    sampled from /proc twice a second; a process that ends keeps its last sample. :meth:`split` tells the
    driver, the model workers, and Ray's own processes (GCS, raylets, agents, idle workers) apart."""

    def __init__(self) -> None:
        self._tick = os.sysconf("SC_CLK_TCK")
        self._seen: dict[int, float] = {}
        self._kind: dict[int, str] = {}
        self._start_seen: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-meter", daemon=True)
        self._base = 0.0

    def _tree(self) -> dict[int, float]:
        children: dict[int, list[int]] = {}
        cpu: dict[int, float] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            pid = int(entry.name)
            children.setdefault(int(fields[1]), []).append(pid)
            cpu[pid] = (int(fields[11]) + int(fields[12])) / self._tick  # utime + stime
        tree, todo = {}, [os.getpid()]
        while todo:
            pid = todo.pop()
            if pid in cpu:
                tree[pid] = cpu[pid]
            todo.extend(children.get(pid, []))
        return tree

    def _sample(self) -> None:
        for pid, seconds in self._tree().items():
            self._seen[pid] = max(seconds, self._seen.get(pid, 0.0))
            if pid not in self._kind or self._kind[pid] == "ray":
                self._kind[pid] = self._classify(pid)

    @staticmethod
    def _classify(pid: int) -> str:
        if pid == os.getpid():
            return "driver"
        try:
            title = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            return "ray"
        return "workers" if title.startswith("ray::Worker") else "ray"

    def split(self) -> dict[str, float]:
        """CPU seconds since :meth:`start` of the driver, the model workers and Ray's own processes."""
        out = {"driver": 0.0, "workers": 0.0, "ray": 0.0}
        for pid, seconds in self._seen.items():
            out[self._kind.get(pid, "ray")] += seconds - self._start_seen.get(pid, 0.0)
        return out

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def start(self) -> CpuMeter:
        self._sample()
        self._base = sum(self._seen.values())
        self._start_seen = dict(self._seen)
        self._thread.start()
        return self

    def stop(self) -> float:
        """CPU seconds since :meth:`start`."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return sum(self._seen.values()) - self._base


def steady_fps(samples: list[tuple[float, int]], total: int) -> float:
    """Frames per second between 10 % and 90 % of the job (start-up and the last tasks left out)."""
    lo = next(((t, n) for t, n in samples if n >= 0.1 * total), None)
    hi = next(((t, n) for t, n in samples if n >= 0.9 * total), None)
    if lo is None or hi is None or hi[0] <= lo[0]:
        return 0.0
    return (hi[1] - lo[1]) / (hi[0] - lo[0])


def run_mode(mode: str, archive: Path, out: Path, *, chunk_seconds: float, video_seconds: float) -> dict[str, Any]:
    shutil.rmtree(out, ignore_errors=True)
    before = load()
    samples: list[tuple[float, int]] = []
    total = [0]

    def progress(p: BatchProgress) -> None:
        samples.append((p.seconds, p.frames))
        total[0] = p.total

    t0 = time.monotonic()
    meter = CpuMeter().start()
    cluster = None
    try:
        if mode == "enhance":
            single = enhance_path(archive, out, enhancer=Enhancer())
            seconds = time.monotonic() - t0
            result: dict[str, Any] = {"frames": single.frames, "seconds": seconds, "setup_seconds": None}
        else:
            kwargs: dict[str, Any] = {"chunk_seconds": chunk_seconds, "on_progress": progress}
            if mode == "inprocess":
                kwargs["use_ray"] = False
            elif mode == "ray-local":
                kwargs["use_ray"] = True
            else:
                from tests.ray_cluster import LocalCluster

                cluster = LocalCluster(out.parent / f"{mode}-ray", nodes=2, cpus=1)
                meter.stop()
                meter = CpuMeter().start()
                t0 = time.monotonic()  # the cluster exists before the job, as on a real one
                kwargs["address"] = cluster.address
            report = batch([archive], out, **kwargs)
            seconds = time.monotonic() - t0
            manifest = json.loads((out / MANIFEST_NAME).read_text())
            result = {
                "frames": report.frames,
                "seconds": seconds,
                "setup_seconds": report.setup_seconds,
                "steady_fps": steady_fps(samples, total[0]),
                "workers": report.workers,
                "nodes": report.nodes,
                "chunks": report.chunks,
                "ok": report.ok,
                "sha256": {rel: r["sha256"] for rel, r in manifest["outputs"].items()},
            }
    finally:
        cpu = meter.stop()
        if cluster is not None:
            cluster.stop()
    split = meter.split()
    result.update(
        mode=mode,
        cpu_seconds=cpu,
        cpu_split=split,
        ray_share=split["ray"] / cpu if cpu else 0.0,
        realtime_per_2_cores=video_seconds / (cpu / 2),
        fps=result["frames"] / result["seconds"],
        realtime=video_seconds / result["seconds"],
        load_before=before,
        load_after=load(),
    )
    return result


def markdown(results: list[dict[str, Any]], info: dict[str, Any]) -> str:
    base = next((r for r in results if r["mode"] == "inprocess"), None)
    lines = [
        f"Archive: {info['files']} × 720p H.264 from {info['source']} ({info['frames']} frames, "
        f"{info['video_seconds']:.0f} s of video); zero-dce++ (onnxruntime, fast curve path), crf 18, chunks of "
        f"{info['chunk_seconds']:g} s; 2 cores in every mode; run at nice {info['nice']}.",
        "",
        "| mode | workers × nodes | wall s | setup s | FPS (wall) | FPS (steady) | × real time (wall) | CPU s "
        "| of it Ray's own processes | × real time on 2 free cores | vs inprocess (wall / CPU) "
        "| load before → after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        over = ""
        if base is not None and r["mode"].startswith("ray"):
            over = (
                f"{100 * (r['seconds'] / base['seconds'] - 1):+.1f} % / "
                f"{100 * (r['cpu_seconds'] / base['cpu_seconds'] - 1):+.1f} %"
            )
        setup = f"{r['setup_seconds']:.1f}" if r.get("setup_seconds") is not None else "-"
        steady = f"{r['steady_fps']:.1f}" if r.get("steady_fps") else "-"
        shape = f"{r.get('workers', 1)} × {r.get('nodes', 1)}"
        lb, la = r["load_before"]["loadavg"][0], r["load_after"]["loadavg"][0]
        ray_cpu = "-"
        if r["mode"].startswith("ray"):
            ray_cpu = f"{r['cpu_split']['ray']:.1f} s ({100 * r['ray_share']:.1f} %)"
        lines.append(
            f"| {r['mode']} | {shape} | {r['seconds']:.1f} | {setup} | {r['fps']:.1f} | {steady} | "
            f"{r['realtime']:.2f}× | {r['cpu_seconds']:.1f} | {ray_cpu} | {r['realtime_per_2_cores']:.2f}× | "
            f"{over} | {lb:.1f} → {la:.1f} |"
        )
    digests = {json.dumps(r["sha256"], sort_keys=True) for r in results if "sha256" in r}
    lines += [
        "",
        f"Outputs of the batch modes identical (sha256): {'yes' if len(digests) == 1 else 'NO'}.",
        "",
        "*× real time on 2 free cores* = seconds of video / (CPU seconds / 2): the job's CPU time (every process "
        "of it: driver, Ray's GCS and raylets, workers) spread over two cores, what an otherwise idle 2-core "
        "machine would reach if the job kept both busy. *Ray's own processes*: GCS, raylets, agents and idle "
        "workers, i.e. Ray's overhead proper (the model workers' time is the job itself). *vs inprocess*: the "
        "wall-clock figure depends on what else ran (see the load), the CPU one does not; `inprocess` runs one "
        "pipeline with ONNX Runtime's default thread pool (2 threads), which costs more CPU than the "
        "Ray workers' one thread each.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared/videos/night-cctv-ir-hevc.mp4")
    parser.add_argument("--files", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=58.0, help="seconds of video per file")
    parser.add_argument("--chunk-seconds", type=float, default=30.0)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/nightvision-bench-cluster"))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cpu-2core/cluster")
    parser.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # run one mode here, print its JSON
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    if not args.source.exists():
        parser.error(f"no source video {args.source} (the ../shared data folder)")
    archive = args.workdir / f"archive-{args.files}x{args.seconds:g}s"
    paths = build_archive(args.source, archive, files=args.files, seconds=args.seconds)
    frames = 0
    video_seconds = 0.0
    for p in paths:
        with VideoReader(p) as r:
            frames += r.info.frames
            video_seconds += r.info.frames / float(r.info.fps)
    info = {
        "source": args.source.name,
        "files": len(paths),
        "frames": frames,
        "video_seconds": video_seconds,
        "chunk_seconds": args.chunk_seconds,
        "nice": os.nice(0),
    }
    if args.one:
        result = run_mode(
            args.one, archive, args.workdir / f"out-{args.one}", chunk_seconds=args.chunk_seconds,
            video_seconds=video_seconds,
        )  # fmt: skip
        print(json.dumps(result))
        return
    results = []
    for mode in modes:
        # a fresh process per mode: equal conditions, and Ray's per-process state (a local instance turns token
        # authentication on for the rest of the process) never carries over
        run = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--one", mode], capture_output=True, text=True, check=False
        )
        if run.returncode != 0:
            raise SystemExit(f"{mode} failed:\n{run.stderr[-3000:]}")
        result = json.loads(run.stdout.strip().splitlines()[-1])
        results.append(result)
        print(f"{mode}: {result['seconds']:.1f} s, {result['fps']:.1f} FPS, {result['realtime']:.2f}× real time",
              flush=True)  # fmt: skip
    import av
    import ray

    env = {**environment(), "ray": ray.__version__, "av": av.__version__, "platform": platform.platform()}
    data = {"environment": env, "archive": info, "results": results, "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=2))
    args.out.with_suffix(".md").write_text(markdown(results, info))
    print(markdown(results, info))


if __name__ == "__main__":
    main()
