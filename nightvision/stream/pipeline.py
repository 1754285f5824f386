"""The real-time pipeline: capture → preprocess → inference → postprocess → sinks, one thread per stage.

>>> from nightvision import Enhancer
>>> from nightvision.stream.pipeline import Pipeline
>>> from nightvision.stream.sources import open_source
>>> from nightvision.stream.sinks import open_sink
>>> with open_source("clip.mp4") as src:
...     stats = Pipeline(src, Enhancer(), [open_sink("out.mp4", fps=src.fps, time_base=src.time_base)]).run()

Live sources keep only the newest frame (the stale one waiting is dropped and counted), so latency stays
bounded when the model is slower than the camera; files run lossless and in order, with back-pressure.
``policy="latest"|"lossless"`` overrides. For curve models the curve map can be smoothed over time
(``smooth=True``). :meth:`Pipeline.stop` (Ctrl-C, SIGTERM, a window's q) stops every
stage within about a second and the sinks are closed, so file outputs are finalised and playable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from nightvision.enhancer import Enhancer, FrameJob
from nightvision.errors import InputError, SourceError
from nightvision.io.atomic import atomic_path
from nightvision.stream.sinks import Sink
from nightvision.stream.sources import ReadStatus, Source, redact
from nightvision.stream.stages import Chain
from nightvision.stream.temporal import CurveSmoother

__all__ = ["Pipeline", "PipelineStats", "write_stats"]

log = logging.getLogger(__name__)

STAGES = ("capture", "preprocess", "infer", "postprocess", "output")
_WINDOW = 10_000  # latency samples kept per stage


@dataclass
class PipelineStats:
    """The summary of a run (also what ``--stats-json`` writes). Latencies in milliseconds."""

    source: str = ""
    policy: str = ""
    smoothing: bool = False
    frames_in: int = 0
    frames_out: int = 0
    dropped: int = 0
    seconds: float = 0.0
    fps_in: float = 0.0
    fps_out: float = 0.0
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)  # capture → written to every sink
    reconnects: int = 0
    scene_cuts: int = 0
    stopped_by: str = "end of input"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def status_line(self) -> str:
        lat = self.latency_ms
        return (
            f"in {self.fps_in:5.1f} fps | out {self.fps_out:5.1f} fps | dropped {self.dropped} | "
            f"latency p50 {lat.get('p50', 0):.0f} ms p95 {lat.get('p95', 0):.0f} ms"
        )


def _percentiles(samples: deque[float]) -> dict[str, float]:
    if not samples:
        return {}
    arr = np.fromiter(samples, float) * 1000.0
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "mean": float(arr.mean())}


@dataclass
class _Packet:
    index: int
    frame: np.ndarray
    pts: int
    captured: float
    job: FrameJob | None = None
    output: np.ndarray | None = None


class Pipeline:
    """Run ``enhancer`` on every frame of ``source`` and write the results to ``sinks``.

    Args:
        source: an opened source (:func:`nightvision.stream.sources.open_source`).
        enhancer: the model.
        sinks: where frames go; each gets every output frame.
        policy: ``"latest"`` (drop stale frames) or ``"lossless"``; default: latest for live sources.
        smooth: temporal smoothing of the curve map (curve models on the fast path). Off by default: on the
            real clips we measured, the per-frame curve already cancels the input's brightness pumping and
            smoothing lets it through (see benchmarks/flicker.py); it helps when the estimator itself is noisy.
        hud: draw FPS and latency on the output frames.
        on_status: called about once a second with a one-line status (the CLI prints it).
        depth: queue capacity between the later stages (small keeps latency low).
    """

    def __init__(
        self,
        source: Source,
        enhancer: Enhancer,
        sinks: list[Sink],
        *,
        policy: str | None = None,
        smooth: bool | None = None,
        hud: bool = False,
        on_status: Callable[[PipelineStats], None] | None = None,
        depth: int = 2,
    ) -> None:
        if policy not in (None, "latest", "lossless"):
            raise InputError(f"policy must be 'latest' or 'lossless', got {policy!r}")
        self.source = source
        self.enhancer = enhancer
        self.sinks = sinks
        self.policy = policy or ("latest" if source.live else "lossless")
        if smooth and not enhancer.has_curve:
            log.warning("temporal smoothing needs a shared-curve model on the fast path; running without it")
        self.smoother = CurveSmoother() if (smooth and enhancer.has_curve) else None
        self.hud = hud
        self.on_status = on_status
        self.depth = depth
        self.time_base = source.time_base if source.time_base is not None else Fraction(1, 1000)
        self._times: dict[str, deque[float]] = {s: deque(maxlen=_WINDOW) for s in STAGES}
        self._latency: deque[float] = deque(maxlen=_WINDOW)
        self._frames_in = 0
        self._frames_out = 0
        self._stop_reason = ""
        self._hud_text = ""
        self._chain: Chain | None = None
        self._t0 = 0.0

    # --- stages -------------------------------------------------------------------------------------------
    def _capture(self) -> Iterator[_Packet]:
        index = 0
        while self._chain is not None and not self._chain.stopping:
            t0 = time.perf_counter()
            r = self.source.read(timeout=0.25)
            if r.status is ReadStatus.FRAME:
                assert r.frame is not None
                self._times["capture"].append(time.perf_counter() - t0)
                if r.pts is None or self.source.time_base is None:
                    pts = round((r.captured - self._t0) / float(self.time_base))
                else:
                    pts = r.pts
                self._frames_in += 1
                yield _Packet(index, r.frame, pts, r.captured)
                index += 1
            elif r.status is ReadStatus.END:
                return
            elif r.status is ReadStatus.ERROR:
                raise SourceError(r.error)

    def _timed(self, name: str, fn: Callable[[_Packet], _Packet | None]) -> Callable[[_Packet], _Packet | None]:
        times = self._times[name]

        def run(packet: _Packet) -> _Packet | None:
            t0 = time.perf_counter()
            out = fn(packet)
            times.append(time.perf_counter() - t0)
            return out

        return run

    def _preprocess(self, p: _Packet) -> _Packet:
        p.job = self.enhancer.preprocess(p.frame)
        return p

    def _infer(self, p: _Packet) -> _Packet:
        assert p.job is not None
        p.job = self.enhancer.infer(p.job)
        if self.smoother is not None:
            p.job = self.smoother(p.job)
        return p

    def _postprocess(self, p: _Packet) -> _Packet:
        assert p.job is not None
        out = self.enhancer.postprocess(p.job)
        if self.hud:
            text = self._hud_text  # refreshed once a second by the status thread, not per frame
            cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(out, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        p.output = out
        p.job = None
        return p

    def _output(self, p: _Packet) -> None:
        assert p.output is not None
        for sink in self.sinks:
            sink.write(p.output, p.frame, p.pts)
            if sink.wants_stop:
                self.stop("window closed")
        self._latency.append(time.monotonic() - p.captured)
        self._frames_out += 1

    # --- control ------------------------------------------------------------------------------------------
    def stats(self) -> PipelineStats:
        """A snapshot of the figures so far."""
        seconds = max(time.monotonic() - self._t0, 1e-9) if self._t0 else 0.0
        return PipelineStats(
            source=redact(self.source.uri),
            policy=self.policy,
            smoothing=self.smoother is not None,
            frames_in=self._frames_in,
            frames_out=self._frames_out,
            dropped=self._chain.dropped if self._chain is not None else 0,
            seconds=seconds,
            fps_in=self._frames_in / seconds if seconds else 0.0,
            fps_out=self._frames_out / seconds if seconds else 0.0,
            stage_ms={s: _percentiles(t) for s, t in self._times.items()},
            latency_ms=_percentiles(self._latency),
            reconnects=int(getattr(self.source, "reconnects", 0)),
            scene_cuts=self.smoother.cuts if self.smoother is not None else 0,
            stopped_by=self._stop_reason or "end of input",
        )

    def stop(self, reason: str = "stopped") -> None:
        """Stop every stage (idempotent, callable from any thread or a signal handler)."""
        if not self._stop_reason:
            self._stop_reason = reason
        if self._chain is not None:
            self._chain.stop()

    def run(self) -> PipelineStats:
        """Run until the source ends or :meth:`stop`; close the sinks; return the summary."""
        self._t0 = time.monotonic()
        self._chain = Chain(
            self._capture(),
            [
                ("preprocess", self._timed("preprocess", self._preprocess)),
                ("infer", self._timed("infer", self._infer)),
                ("postprocess", self._timed("postprocess", self._postprocess)),
                ("output", self._timed("output", self._output)),
            ],
            depth=self.depth,
            latest=self.policy == "latest",
        )
        done = threading.Event()
        reporter = threading.Thread(target=self._report, args=(done,), name="status", daemon=True)
        log.info("running %s → %s (%s)", redact(self.source.uri), [s.uri for s in self.sinks], self.policy)
        self._chain.start()
        reporter.start()
        try:
            self._chain.join()
        finally:
            done.set()
            reporter.join(2.0)
            errors = []
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as err:  # finish closing the others, then report
                    errors.append(err)
            if errors:
                raise errors[0]
        return self.stats()

    def _report(self, done: threading.Event) -> None:
        while not done.wait(1.0):
            stats = self.stats()
            self._hud_text = f"{stats.fps_out:.1f} fps  {stats.latency_ms.get('p50', 0):.0f} ms  drop {stats.dropped}"
            if self.on_status is not None:
                self.on_status(stats)


def write_stats(path: str | Path, stats: PipelineStats) -> None:
    """Write the summary as JSON, atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(stats.to_json())
