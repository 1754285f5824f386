"""The one frame path: source → [pre stages] → preprocess → infer → postprocess → [post stages] → sinks.

Every job runs through :class:`Pipeline`, one thread per stage joined by bounded queues: ``nightvision
enhance`` (files and folders, one pipeline per file), ``nightvision run`` (cameras, streams, files) and
``nightvision bench --pipeline``.

>>> from nightvision import Enhancer
>>> from nightvision.stream.pipeline import Pipeline
>>> from nightvision.stream.sources import FileSource
>>> from nightvision.stream.sinks import VideoFileSink
>>> source = FileSource("clip.mp4", audio=True).open()
>>> sink = VideoFileSink("out.mp4", fps=source.fps, time_base=source.time_base, audio_template=source.audio_stream)
>>> stats = Pipeline(source, Enhancer(), [sink]).run()

Policies: live sources keep only the newest frame (the stale one waiting is dropped and counted), so latency
stays bounded when the model is slower than the camera; files run lossless and in order, with back-pressure,
their timestamps and audio packets carried through to video sinks. ``policy="latest"|"lossless"`` overrides.
Frames in = frames out + dropped, always (:class:`PipelineStats`).

Ownership: the pipeline owns the source and sinks it is given. :meth:`Pipeline.run` opens those not yet open
and ends every one of them exactly once: sinks are closed (complete output) when the input ended, or when a
live source was stopped; aborted when a stage failed; and when a finite input (a file) was stopped before
its end, aborted keeping their partial output (a video file is finalised, playable, as ``NAME.partial.mp4``;
see :meth:`~nightvision.stream.sinks.Sink.abort`).

Stopping: :meth:`Pipeline.stop` (a :class:`StopRequest` set by a signal handler, a window's q) stops every
stage within about a second: the source and the sinks are always waited for; a model call still running
after ``grace`` seconds is left to finish in the background and its result discarded. A stop that comes before
:meth:`Pipeline.run` (or while it starts) is honoured too: the run processes no frame, ends the source and
sinks as for any stop, and reports who stopped it.

Frame stages (:mod:`nightvision.stream.frame_stages`) run in their own threads; their ``reset()`` is called
at the start of a run, when the frame size changes, when a live source reconnects and when a looped input starts
again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import Any

import cv2
import numpy as np

from nightvision.enhancer import Enhancer, FrameJob
from nightvision.errors import EngineError, InputError, SourceError
from nightvision.io.atomic import atomic_path
from nightvision.io.images import to_uint8
from nightvision.io.video import AudioPacket
from nightvision.stream.frame_stages import FrameStage, check_stage, check_stage_output
from nightvision.stream.sinks import Sink
from nightvision.stream.sources import ReadStatus, Source, redact
from nightvision.stream.stages import Chain
from nightvision.stream.temporal import CurveSmoother

__all__ = ["Interrupted", "Pipeline", "PipelineStats", "StopRequest", "mean_luma_any", "stop_on_signals", "write_stats"]

log = logging.getLogger(__name__)

STAGES = ("capture", "preprocess", "infer", "postprocess", "output")
_WINDOW = 10_000  # latency samples kept per stage
_NOW = 2.0  # seconds over which the current rates are measured


class StopRequest:
    """A request to stop, shared by everything a job runs (every file of a folder job).

    Safe to set from a signal handler: setting it only stores the reason; a running pipeline polls it about
    ten times a second. Code that honours it says so with :meth:`listening`; while nothing listens (a model
    loading), :func:`stop_on_signals` interrupts at once instead.
    """

    def __init__(self) -> None:
        self.reason = ""
        self._listeners = 0

    def set(self, reason: str = "stopped") -> None:
        if not self.reason:
            self.reason = reason

    def is_set(self) -> bool:
        return bool(self.reason)

    @property
    def heard(self) -> bool:
        """Whether something is polling this request right now."""
        return self._listeners > 0

    @contextlib.contextmanager
    def listening(self) -> Iterator[StopRequest]:
        """Mark a block that polls this request (and stops within about a second when it is set)."""
        self._listeners += 1
        try:
            yield self
        finally:
            self._listeners -= 1


class Interrupted(KeyboardInterrupt):
    """A signal that could not wait for a clean stop: a second SIGINT/SIGTERM, or one that came while
    nothing was listening for it (``signal``: which)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(signal_name)
        self.signal = signal_name


SAME_SIGNAL_S = 0.25  # a second stop signal sooner than this after the first is the same one, delivered twice


@contextlib.contextmanager
def stop_on_signals(request: StopRequest | None = None) -> Iterator[StopRequest]:
    """Turn SIGINT and SIGTERM into a :class:`StopRequest` while the block runs (main thread only).

    The first signal asks the running job to stop (it finishes within about a second, see
    :class:`Pipeline`); a second one, or one that comes while nothing listens (a model still loading),
    raises :class:`Interrupted` at once. A second signal within :data:`SAME_SIGNAL_S` of the first is the
    same request delivered twice (GNU ``timeout`` signals the command and then its process group: one run in
    eight lost its partial output) and is ignored. The previous handlers come back afterwards.
    """
    request = request or StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return
    asked: list[float] = []  # when the first signal came

    def handler(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if request.is_set() and asked and time.monotonic() - asked[0] < SAME_SIGNAL_S:
            return
        if request.is_set() or not request.heard:
            raise Interrupted(name)
        asked.append(time.monotonic())
        request.set(name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class PipelineStats:
    """The summary of a run (also what ``--stats-json`` writes). Latencies in milliseconds.

    ``frames_in == frames_out + dropped`` always; ``dropped = dropped_stale + dropped_at_stop``.
    """

    source: str = ""
    policy: str = ""
    smoothing: bool = False
    frames_in: int = 0  # frames read from the source
    frames_out: int = 0  # frames written to every sink
    dropped: int = 0
    dropped_stale: int = 0  # replaced by a newer frame before the model took them (policy "latest")
    dropped_at_stop: int = 0  # in flight when the run was stopped
    source_dropped: int = 0  # skipped by the source itself (never read, so not in frames_in)
    frame_count: int = 0  # frames the input holds, when known (files)
    seconds: float = 0.0
    fps_in: float = 0.0  # averages over the run
    fps_out: float = 0.0
    fps_in_now: float = 0.0  # over the last two seconds
    fps_out_now: float = 0.0
    stage_ms: dict[str, dict[str, float]] = field(default_factory=dict)
    busy_s: dict[str, float] = field(default_factory=dict)  # seconds each stage thread spent working
    latency_ms: dict[str, float] = field(default_factory=dict)  # capture → written to every sink
    reconnects: int = 0
    source_down: bool = False
    scene_cuts: int = 0
    luma_in: float = 0.0  # mean luma (0-255) over frames, when measured
    luma_out: float = 0.0
    complete: bool = False  # the input was read to its end
    stopped_by: str = "end of input"
    outputs: list[str] = field(default_factory=list)  # files written (partial ones included)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def status_line(self) -> str:
        """One line for a terminal: the current rates (last two seconds), drops, latency, source state."""
        lat = self.latency_ms
        progress = f" | frame {self.frames_out}" + (f" of {self.frame_count}" if self.frame_count else "")
        down = "SOURCE DOWN, reconnecting | " if self.source_down else ""
        return (
            f"{down}out {self.fps_out_now:5.1f} fps | in {self.fps_in_now:5.1f} fps | dropped {self.dropped}"
            f"{' + ' + str(self.source_dropped) + ' by the source' if self.source_dropped else ''} | "
            f"latency p50 {lat.get('p50', 0):.0f} ms p95 {lat.get('p95', 0):.0f} ms"
            f"{' | reconnects ' + str(self.reconnects) if self.reconnects else ''}{progress}"
        )


def _percentiles(samples: deque[float]) -> dict[str, float]:
    if not samples:
        return {}
    arr = np.fromiter(samples, float) * 1000.0
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "mean": float(arr.mean())}


def mean_luma_any(image: np.ndarray) -> float:
    """Mean BT.601 luma on 0-255 of any frame the pipeline carries (grey, BGR, BGRA; 8 or 16 bit)."""
    scale = 255.0 / 65535.0 if image.dtype == np.uint16 else 1.0
    if image.ndim == 2 or image.shape[2] == 1:
        return float(cv2.mean(image)[0]) * scale
    b, g, r, _ = cv2.mean(image[:, :, :3] if image.shape[2] == 4 else image)
    return (0.114 * b + 0.587 * g + 0.299 * r) * scale


@dataclass
class _Layout:
    """How to give a still image its own layout back after the model (grey, alpha)."""

    grey: bool = False
    alpha: np.ndarray | None = None


@dataclass
class _Packet:
    index: int
    frame: np.ndarray | None  # (H, W, 3) BGR, uint8 or uint16; None for a packet that only carries audio
    original: np.ndarray | None  # as the source gave it
    pts: int
    captured: float
    segment: int  # changes when a live source reconnects and when a looped input starts again
    audio: list[AudioPacket]
    layout: _Layout
    luma_in: float = 0.0
    job: FrameJob | None = None
    output: np.ndarray | None = None


def _to_bgr(frame: np.ndarray) -> tuple[np.ndarray, _Layout]:
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2BGR), _Layout(grey=True)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3]), _Layout(alpha=frame[:, :, 3])
    if frame.ndim == 3 and frame.shape[2] == 3:
        return frame, _Layout()
    raise InputError(f"a source gave a frame of shape {frame.shape}; expected (H, W), (H, W, 3) or (H, W, 4)")


def _restore(frame: np.ndarray, layout: _Layout) -> np.ndarray:
    if layout.grey:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if layout.alpha is not None and layout.alpha.shape == frame.shape[:2]:
        alpha = layout.alpha if layout.alpha.dtype == frame.dtype else _convert_depth(layout.alpha, frame.dtype)
        return np.dstack([frame, alpha])
    return frame


def _convert_depth(image: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    if dtype == np.uint8:
        return cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return image.astype(np.uint16) * np.uint16(257)


class Pipeline:
    """Run ``enhancer`` on every frame of ``source`` and write the results to ``sinks``.

    Args:
        source: where frames come from, a :class:`~nightvision.stream.sources.Source` (from a URI:
            :func:`~nightvision.stream.sources.make_source`); opened here if it is not yet.
        enhancer: the model, an :class:`~nightvision.enhancer.Enhancer`; ``None`` passes frames through (to
            measure the rest of the path).
        sinks: where frames go, a list of :class:`~nightvision.stream.sinks.Sink` or one sink; each gets every
            output frame (and the audio packets, in file mode).
        policy: ``"latest"`` (drop stale frames) or ``"lossless"``; default: latest for live sources.
        smooth: temporal smoothing of the curve map (curve models on the fast path). Off by default: on the
            real clips we measured, the per-frame curve already cancels the input's brightness pumping and
            smoothing lets it through (see benchmarks/flicker.py); it helps when the estimator itself is noisy.
        hud: draw the current FPS and latency on the output frames.
        on_status: called about once a second with the figures so far (the CLI prints a status line); an
            exception it raises stops the run as :meth:`stop` does (a recording is kept), then :meth:`run`
            raises it.
        depth: queue capacity between the later stages (small keeps latency low).
        in_flight: live policy: at most this many frames between capture and output (default: one per stage
            that computes, i.e. all but the output). A new frame enters only when one has left, so frames wait
            at the front, where a newer one replaces them, not in a queue in front of a slower later stage:
            `zero-dce++ --denoise` on a 720p source faster than the model, 2 CPU cores: latency p50 108 -> 61
            ms at the same FPS (3: 50 ms, same FPS; 2: 36 ms, 3 % fewer frames).
        pre_stages: frame stages applied to the input frame before the model, each in its own thread.
        post_stages: frame stages applied to the enhanced frame, each in its own thread.
        stop: a shared :class:`StopRequest` (e.g. from :func:`stop_on_signals`), polled while running.
        measure_luma: record the mean luma of input and output frames (``PipelineStats.luma_in/out``).
        keep_partial: when a finite input is stopped before its end, keep what was written under a partial
            name (default) instead of discarding it.
        grace: after a stop, how long to wait for a model call still running before leaving it behind.
    """

    def __init__(
        self,
        source: Source,
        enhancer: Enhancer | None,
        sinks: Sequence[Sink] | Sink,
        *,
        policy: str | None = None,
        smooth: bool | None = None,
        hud: bool = False,
        on_status: Callable[[PipelineStats], None] | None = None,
        depth: int = 2,
        in_flight: int | None = None,
        pre_stages: Sequence[FrameStage] = (),
        post_stages: Sequence[FrameStage] = (),
        stop: StopRequest | None = None,
        measure_luma: bool = False,
        keep_partial: bool = True,
        grace: float = 1.0,
    ) -> None:
        _check_parts(source, enhancer)
        if policy not in (None, "latest", "lossless"):
            raise InputError(f"policy must be 'latest' or 'lossless', got {policy!r}")
        if depth < 1:
            raise InputError(f"depth must be at least 1, got {depth}")
        if in_flight is not None and in_flight < 1:
            raise InputError(f"in_flight must be at least 1, got {in_flight}")
        self.source = source
        self.enhancer = enhancer
        self.sinks = _sink_list(sinks)
        self.policy = policy or ("latest" if source.live else "lossless")
        has_curve = enhancer is not None and enhancer.has_curve
        if smooth and not has_curve:
            spec = getattr(enhancer, "spec", None)
            if getattr(spec, "estimator_onnx", None):  # the model has one, on another path (torch, --exact)
                log.warning("temporal smoothing acts on the onnxruntime fast path only (no --exact); running without")
            else:
                raise InputError(
                    "temporal smoothing (--smooth) needs a model that shares one curve map over the frame "
                    f"(zero-dce++); {getattr(spec, 'name', 'this model')} has none"
                )
        self.smoother = CurveSmoother() if (smooth and has_curve) else None
        self.pre_stages = [check_stage(s) for s in pre_stages]
        for i, stage in enumerate(self.pre_stages):  # (the denoiser: the dtype in which it hands frames over)
            fit_to = getattr(stage, "fit_to", None)
            if callable(fit_to):  # only the last one hands frames to the model; the others, to a pre stage
                fit_to(enhancer if i == len(self.pre_stages) - 1 else None)
        self.post_stages = [check_stage(s) for s in post_stages]
        self.hud = hud
        self.on_status = on_status
        self.depth = depth
        self.in_flight = in_flight
        self.measure_luma = measure_luma
        self.keep_partial = keep_partial
        self.grace = grace
        self._request = stop
        self._names = self._stage_names()
        self._times: dict[str, deque[float]] = {s: deque(maxlen=_WINDOW) for s in ["capture", *self._names]}
        self._latency: deque[float] = deque(maxlen=_WINDOW)
        self._in_times: deque[float] = deque(maxlen=4096)
        self._out_times: deque[float] = deque(maxlen=4096)
        self._frames_in = 0
        self._frames_out = 0
        self._luma = [0.0, 0.0]
        self._complete = False
        self._stop_reason = ""
        self._hud_text = ""
        self._chain: Chain | None = None
        self._t0 = 0.0
        self._t_end = 0.0
        self._time_base = Fraction(1, 1000)
        self._ran = False
        self._status_error: BaseException | None = None  # raised by on_status: the run stops and raises it

    def _stage_names(self) -> list[str]:
        names: list[str] = []
        for kind, stages in (("pre", self.pre_stages), ("post", self.post_stages)):
            for stage in stages:
                name, n = f"{kind}:{stage.name}", 2
                while name in names:
                    name, n = f"{kind}:{stage.name}#{n}", n + 1
                names.append(name)
        pre, post = names[: len(self.pre_stages)], names[len(self.pre_stages) :]
        return [*pre, "preprocess", "infer", "postprocess", *post, "output"]

    # --- stages -------------------------------------------------------------------------------------------
    def _capture(self) -> Iterator[_Packet]:
        index = 0
        made_up = -1  # the last timestamp made up for a source without its own
        segment = 0
        restarts = (self.source.reconnects, self.source.passes)
        audio_wanted = self.policy == "lossless"
        times = self._times["capture"]
        while self._chain is not None and not self._chain.stopping:
            t0 = time.perf_counter()
            r = self.source.read(timeout=0.25)
            if r.status is ReadStatus.FRAME:
                assert r.frame is not None
                times.append(time.perf_counter() - t0)
                if (self.source.reconnects, self.source.passes) != restarts:  # a reconnect, or a loop's new pass
                    restarts, segment = (self.source.reconnects, self.source.passes), segment + 1
                frame, layout = _to_bgr(r.frame)
                if r.pts is None or self.source.time_base is None:  # made up from the capture time (1 ms), kept
                    # increasing: two images read in one millisecond would share one
                    pts = max(round((r.captured - self._t0) / float(self._time_base)), made_up + 1)
                    made_up = pts
                else:
                    pts = r.pts
                self._frames_in += 1
                self._in_times.append(time.monotonic())
                audio = r.audio if audio_wanted else []
                yield _Packet(index, frame, r.frame, pts, r.captured, segment, audio, layout)
                index += 1
            elif r.status is ReadStatus.END:
                self._complete = True
                if r.audio and audio_wanted:
                    yield _Packet(index, None, None, 0, time.monotonic(), segment, r.audio, _Layout())
                return
            elif r.status is ReadStatus.ERROR:
                raise SourceError(r.error)

    def _timed(self, name: str, fn: Callable[[_Packet], _Packet | None]) -> Callable[[_Packet], _Packet | None]:
        times = self._times[name]

        def run(packet: _Packet) -> _Packet | None:
            if packet.frame is None:  # audio only: passes through untouched
                return fn(packet) if name == "output" else packet
            t0 = time.perf_counter()
            out = fn(packet)
            times.append(time.perf_counter() - t0)
            return out

        return run

    def _frame_stage(self, stage: FrameStage, pre: bool) -> Callable[[_Packet], _Packet]:
        last: list[tuple[int, tuple[int, ...]] | None] = [None]
        # a temporal stage works from the frames before this one, and a still image has none
        passes_by = self.source.still and getattr(stage, "temporal", False)

        def run(p: _Packet) -> _Packet:
            frame = p.frame if pre else p.output
            assert frame is not None
            if passes_by:
                return p
            key = (p.segment, frame.shape)
            if last[0] is not None and last[0] != key:
                stage.reset()  # a new size, or a reconnect: this stage's past frames are of another scene
            last[0] = key
            if not pre and getattr(stage, "takes_input", False):  # e.g. exposure control: needs the model's input
                assert p.frame is not None
                out = check_stage_output(stage.name, stage(frame, p.frame))  # type: ignore[call-arg]
            else:
                out = check_stage_output(stage.name, stage(frame))
            if pre:
                p.frame = out
            else:
                p.output = out
            return p

        return run

    def _staged(self, p: _Packet) -> bool:
        """Video frames take the enhancer's staged path: uint8, or uint16 from a pre stage (the denoiser's
        hand-off; the output is 8-bit video either way; pre stages return nothing else). Stills go whole through
        ``Enhancer.enhance``, which keeps their depth (a 16-bit image stays 16-bit)."""
        return not self.source.still

    def _preprocess(self, p: _Packet) -> _Packet:
        assert p.frame is not None and p.original is not None
        if self.measure_luma:
            p.luma_in = mean_luma_any(p.original)
        if self.enhancer is not None and self._staged(p):
            p.job = self.enhancer.preprocess(p.frame)
        return p

    def _infer(self) -> Callable[[_Packet], _Packet]:
        last: list[tuple[int, tuple[int, ...]] | None] = [None]

        def run(p: _Packet) -> _Packet:
            assert p.frame is not None
            if self.enhancer is None:
                p.output = p.frame
            elif p.job is None:
                p.output = self.enhancer.enhance(p.frame)
            else:
                p.job = self.enhancer.infer(p.job)
                if self.smoother is not None:
                    key = (p.segment, p.frame.shape)
                    if last[0] is not None and last[0] != key:
                        self.smoother.reset()
                    last[0] = key
                    p.job = self.smoother(p.job)
            return p

        return run

    def _postprocess(self, p: _Packet) -> _Packet:
        if p.job is not None:
            assert self.enhancer is not None
            p.output = self.enhancer.postprocess(p.job)
            p.job = None
        assert p.output is not None
        if p.output.dtype != np.uint8 and not self.source.still:  # a pre stage gave 16 bits: video is 8
            p.output = to_uint8(p.output)
        if self.hud and p.output.dtype == np.uint8:
            if p.output is p.frame:  # pass-through: never draw on the source's frame
                p.output = p.output.copy()
            text = self._hud_text  # refreshed once a second by the status thread, not per frame
            cv2.putText(p.output, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(p.output, text, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
        return p

    def _output(self, p: _Packet) -> None:
        for sink in self.sinks:
            for packet in p.audio:
                sink.write_audio(packet)
        if p.frame is None:
            return
        assert p.output is not None and p.original is not None
        out = _restore(p.output, p.layout)
        for sink in self.sinks:
            sink.write(out, p.original, p.pts)
            if sink.wants_stop:
                self.stop("window closed")
        if self.measure_luma:
            self._luma[0] += p.luma_in
            self._luma[1] += mean_luma_any(out)
        now = time.monotonic()
        self._latency.append(now - p.captured)
        self._out_times.append(now)
        self._frames_out += 1

    # --- control ------------------------------------------------------------------------------------------
    @staticmethod
    def _rate(times: deque[float], now: float, since: float) -> float:
        window = min(_NOW, now - since)
        if window <= 0:
            return 0.0
        recent = [t for t in list(times) if t > now - window]
        return len(recent) / window

    def stats(self) -> PipelineStats:
        """A snapshot of the figures so far (final once :meth:`run` returned)."""
        now = self._t_end or time.monotonic()
        seconds = max(now - self._t0, 1e-9) if self._t0 else 0.0
        stale = self._chain.dropped if self._chain is not None else 0
        at_stop = max(0, self._frames_in - self._frames_out - stale) if self._t_end else 0
        if self._t_end:
            stopped_by = self._stop_reason or ("end of input" if self._complete else "stopped")
        else:
            stopped_by = self._stop_reason or "running"
        busy = dict(self._chain.busy_seconds) if self._chain is not None else {}
        if "source" in busy:
            busy["capture"] = busy.pop("source")
        out = self._frames_out
        return PipelineStats(
            source=redact(self.source.uri),
            policy=self.policy,
            smoothing=self.smoother is not None,
            frames_in=self._frames_in,
            frames_out=out,
            dropped=stale + at_stop,
            dropped_stale=stale,
            dropped_at_stop=at_stop,
            source_dropped=self.source.dropped,
            frame_count=self.source.frame_count,
            seconds=seconds,
            fps_in=self._frames_in / seconds if seconds else 0.0,
            fps_out=out / seconds if seconds else 0.0,
            fps_in_now=self._rate(self._in_times, now, self._t0),
            fps_out_now=self._rate(self._out_times, now, self._t0),
            stage_ms={s: _percentiles(t) for s, t in self._times.items()},
            busy_s=busy,
            latency_ms=_percentiles(self._latency),
            reconnects=self.source.reconnects,
            source_down=self.source.down,
            scene_cuts=self.smoother.cuts if self.smoother is not None else 0,
            luma_in=self._luma[0] / out if out else 0.0,
            luma_out=self._luma[1] / out if out else 0.0,
            complete=bool(self._t_end) and self._complete and at_stop == 0,
            stopped_by=stopped_by,
            outputs=[str(s.written) for s in self.sinks if s.written is not None],
        )

    def stop(self, reason: str = "stopped") -> None:
        """Stop every stage (idempotent, callable from any thread). Before :meth:`run`, it makes the run end at
        once, with no frame processed and ``stopped_by`` set to ``reason``."""
        if not self._stop_reason:
            self._stop_reason = reason
        if self._chain is not None:
            self._chain.stop()

    def _poll(self) -> None:
        if self._request is not None and self._request.is_set() and not self._stop_reason:
            self.stop(self._request.reason)

    def run(self) -> PipelineStats:
        """Open what is not open, run until the input ends or :meth:`stop`, end the source and every sink
        exactly once (see the module docstring), and return the summary. A pipeline runs once."""
        if self._ran:
            raise EngineError("a Pipeline runs once; make a new one (with new sources and sinks)")
        self._ran = True
        self._poll()  # a StopRequest set before the run
        if self._stop_reason:
            return self._end_unstarted()
        try:
            self.source.open()
            for sink in self.sinks:
                sink.open()
        except BaseException:
            self.source.close()
            for sink in self.sinks:
                sink.abort()
            raise
        if self.source.time_base is not None:
            self._time_base = self.source.time_base
        for stage in [*self.pre_stages, *self.post_stages]:
            stage.reset()
        if self.smoother is not None:
            self.smoother.reset()
        fns: list[tuple[str, Callable[[Any], Any]]] = []
        pre, post = iter(self.pre_stages), iter(self.post_stages)
        for name in self._names:
            if name.startswith("pre:"):
                fn: Callable[[_Packet], _Packet | None] = self._frame_stage(next(pre), True)
            elif name.startswith("post:"):
                fn = self._frame_stage(next(post), False)
            else:
                fn = {
                    "preprocess": self._preprocess,
                    "infer": self._infer(),
                    "postprocess": self._postprocess,
                    "output": self._output,
                }[name]
            fns.append((name, self._timed(name, fn)))
        self._t0 = time.monotonic()
        computing = frozenset(n for n in self._names if n != "output")
        in_flight = self.in_flight if self.in_flight is not None else len(computing)
        self._chain = Chain(self._capture(), fns, depth=self.depth, latest=self.policy == "latest", in_flight=in_flight)
        done = threading.Event()
        reporter = threading.Thread(target=self._report, args=(done,), name="status", daemon=True)
        log.info("running %s → %s (%s)", redact(self.source.uri), [s.uri for s in self.sinks], self.policy)
        error: BaseException | None = None
        self._chain.start()
        if self._stop_reason:  # stop() came while the run was starting, before there was a chain to stop
            self._chain.stop()
        reporter.start()
        try:
            with self._request.listening() if self._request is not None else contextlib.nullcontext():
                self._chain.join(grace=self.grace, leave=computing, poll=self._poll)
        except BaseException as err:
            error = err
        self._t_end = time.monotonic()
        done.set()
        reporter.join(2.0)
        self.source.close()
        delivered = self._frames_in == self._frames_out + (self._chain.dropped if self.policy == "latest" else 0)
        finished = (self._complete and delivered) or self.source.live
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                if error is not None:
                    sink.abort()
                elif finished:
                    sink.close()
                else:
                    sink.abort(keep_partial=self.keep_partial)
            except Exception as err:  # finish ending the others, then report
                errors.append(err)
        if error is not None:
            raise error
        if errors:
            raise errors[0]
        if self._status_error is not None:  # the run stopped for it, as for a stop: outputs ended as then
            raise self._status_error
        stats = self.stats()
        log.info(
            "%s: %d of %d frames out in %.1f s, dropped %d; stopped by %s",
            stats.source,
            stats.frames_out,
            stats.frames_in,
            stats.seconds,
            stats.dropped,
            stats.stopped_by,
        )
        return stats

    def _end_unstarted(self) -> PipelineStats:
        """A run stopped before it began: end the source and sinks (as an interrupted run does, with no
        partial output, as nothing was written) and report who stopped it."""
        self._t_end = time.monotonic()
        self.source.close()
        errors: list[BaseException] = []
        for sink in self.sinks:
            try:
                sink.abort()
            except Exception as err:  # finish ending the others, then report
                errors.append(err)
        if errors:
            raise errors[0]
        log.info("%s: stopped by %s before the run began", redact(self.source.uri), self._stop_reason)
        return self.stats()

    def _report(self, done: threading.Event) -> None:
        while not done.wait(1.0):
            stats = self.stats()
            lat = stats.latency_ms.get("p50", 0)
            self._hud_text = f"{stats.fps_out_now:.1f} fps  {lat:.0f} ms  drop {stats.dropped}"
            if self.on_status is not None:
                try:
                    self.on_status(stats)
                except Exception as err:  # the caller's function: stop the run, and run() raises its error
                    self._status_error = err
                    self.stop("on_status failed")
                    return


def _check_parts(source: object, enhancer: object) -> None:
    """Refuse, in one :class:`InputError` that says what to pass, a source or model given by name (a string
    or a path) or of another type: otherwise the first attribute read fails deep inside the constructor or run."""
    if not isinstance(source, Source):
        hint = f": make one with make_source({str(source)!r})" if isinstance(source, (str, Path)) else ""
        raise InputError(f"a Pipeline reads a Source (nightvision.stream.sources), got {type(source).__name__}{hint}")
    if enhancer is not None and not isinstance(enhancer, Enhancer):
        hint = f": load it with Enhancer({enhancer!r})" if isinstance(enhancer, str) else ""
        raise InputError(f"a Pipeline runs an Enhancer (or None), got {type(enhancer).__name__}{hint}")


def _sink_list(sinks: object) -> list[Sink]:
    """The sinks as a list: one :class:`Sink` on its own is accepted; a name, or anything but sinks, is refused
    in one :class:`InputError` saying what to pass."""
    if isinstance(sinks, Sink):
        return [sinks]
    if isinstance(sinks, (str, Path)) or not isinstance(sinks, Iterable):
        hint = f": make one with make_sink({str(sinks)!r})" if isinstance(sinks, (str, Path)) else ""
        raise InputError(f"a Pipeline writes to a list of Sinks (or one Sink), got {type(sinks).__name__}{hint}")
    out = list(sinks)
    for sink in out:
        if not isinstance(sink, Sink):
            hint = f": make one with make_sink({str(sink)!r})" if isinstance(sink, (str, Path)) else ""
            raise InputError(f"a Pipeline writes to Sinks (nightvision.stream.sinks), got {type(sink).__name__}{hint}")
    return out


def write_stats(path: str | Path, stats: PipelineStats) -> None:
    """Write the summary as JSON, atomically."""
    with atomic_path(Path(path)) as tmp:
        tmp.write_text(stats.to_json())
