"""One camera's pipeline, run in a thread of whatever process hosts it: a Ray actor, or the server itself.

:class:`CameraWorker` is the object a ``nightvision serve`` camera actor holds. It loads the model once and
runs one :class:`~nightvision.stream.pipeline.Pipeline` at a time in a thread (``start`` again after a failure
runs a new one in the same process, with the model already loaded), keeps the newest enhanced frame for the
views (encoded to JPEG only when someone asks), and reports its phase and figures. It never raises for what
the camera does: a source that does not open, a model that does not load, a pipeline that fails are all
reported by :meth:`CameraWorker.status`, for the supervisor to act on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.allocator import keep_freed_memory
from nightvision.cluster.serve_config import CameraConfig
from nightvision.enhancer import Enhancer, FrameJob
from nightvision.errors import InputError, OutputError, SetupError
from nightvision.io.video import AudioPacket
from nightvision.stream.pipeline import Pipeline, PipelineStats, StopRequest
from nightvision.stream.sinks import Sink, VideoFileSink, as_bgr8, make_sink
from nightvision.stream.sources import Source, make_source, redact

__all__ = ["CameraWorker", "FrameStore", "Recording", "output_path"]

log = logging.getLogger(__name__)

PHASES = ("idle", "opening", "loading", "running", "failed", "ended", "stopped")
"""What a worker is doing: ``opening`` its source and outputs, ``loading`` the model, ``running``; after a
run: ``failed`` (``error`` says why and ``error_kind`` where: source, output, model, pipeline, or config for a
model or pipeline that cannot be made as configured), ``ended`` (the source ended) or ``stopped`` (asked to)."""


class FrameStore:
    """The newest enhanced frame of a camera, with a sequence number that only grows; JPEG on demand.

    Frames are ``(H, W, 3)`` uint8 BGR (anything :func:`~nightvision.stream.sinks.as_bgr8` takes). Each frame
    is encoded at most once, and only when :meth:`wait_jpeg` asks for it.
    """

    def __init__(self, quality: int = 80) -> None:
        self.quality = quality
        self.seq = 0
        self._frame: np.ndarray | None = None
        self._jpeg: tuple[int, bytes] | None = None
        self._cond = threading.Condition()

    def put(self, frame: np.ndarray) -> None:
        with self._cond:
            self._frame = frame
            self.seq += 1
            self._cond.notify_all()

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest frame as JPEG once its sequence number is past ``after``, else ``(None, seq)``."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after, timeout)
            seq, frame, cached = self.seq, self._frame, self._jpeg
        if seq <= after or frame is None:
            return None, seq
        if cached is not None and cached[0] == seq:
            return cached[1], seq
        ok, buf = cv2.imencode(".jpg", as_bgr8(frame), [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return None, seq
        jpeg = buf.tobytes()
        with self._cond:
            if self._jpeg is None or self._jpeg[0] < seq:
                self._jpeg = (seq, jpeg)
        return jpeg, seq


class _StoreSink(Sink):
    """A sink that hands each output frame to a :class:`FrameStore` (no copy: output frames are fresh)."""

    def __init__(self, store: FrameStore) -> None:
        self.uri = "store://"
        self.store = store

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.store.put(frame)


class Recording(Sink):
    """A camera's recording (a video file sink) that keeps its footage when the pipeline fails: an abort
    finalises what was written under the file's own name, as a stop does (a pipeline discards its outputs
    on a failure, but a camera's footage up to a crash is worth keeping)."""

    def __init__(self, inner: Sink) -> None:
        self.inner = inner
        self.uri = inner.uri

    def _open(self) -> None:
        self.inner.open()

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.inner.write(frame, original, pts)

    def write_audio(self, packet: AudioPacket) -> None:
        self.inner.write_audio(packet)

    def _close(self) -> None:
        self.inner.close()
        self.written = self.inner.written

    def _abort(self, keep_partial: bool) -> None:
        try:
            self.inner.close()
        except OutputError:  # nothing was written: nothing to keep
            self.inner.abort()
        self.written = self.inner.written


class _ExposedEnhancer(Enhancer):
    """An :class:`Enhancer` whose output goes through exposure control (it needs the model's input too, which
    a post frame stage does not see). ``exposure`` is replaced for every run, so each run starts fresh."""

    exposure: Any = None

    def postprocess(self, job: FrameJob) -> np.ndarray:
        out = super().postprocess(job)
        if self.exposure is None:  # (the model's input may be the denoiser's 16-bit frame: it takes both)
            return out
        result: np.ndarray = self.exposure(out, job.frame)
        return result

    def enhance(self, frame: np.ndarray) -> np.ndarray:
        out = super().enhance(frame)
        if self.exposure is None or frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            return out
        result: np.ndarray = self.exposure(out, frame)
        return result


def output_path(template: str, name: str, start: float) -> Path:
    """The file a recording of camera ``name`` started at ``start`` (``time.time()``) goes to: ``{name}`` and
    ``{start}`` filled in, and ``-2``, ``-3``, ... before the suffix while that name is taken (a file, or the
    temporary file of a recording in progress or killed)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(start))
    path = Path(template.replace("{name}", name).replace("{start}", stamp))
    candidate, n = path, 2
    while _taken(candidate):
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
    return candidate


def _taken(path: Path) -> bool:
    """A recording is there, or one is being written (or was, by a process that was killed): its temporary
    file (:mod:`nightvision.io.atomic`) is beside it."""
    return path.exists() or (path.parent.is_dir() and any(path.parent.glob(f".{path.stem}.tmp-*{path.suffix}")))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class CameraWorker:
    """Runs the pipeline of one camera in a thread; the object a camera actor holds.

    Args:
        camera: the camera's configuration.
        jpeg_quality: of the frames :meth:`wait_jpeg` returns, 1-100.
        overwrite: let the first run replace recordings that exist (later runs always pick a free name).

    Every method returns quickly (``stop`` waits at most ``timeout``) and is safe to call from any thread.
    """

    def __init__(self, camera: CameraConfig, *, jpeg_quality: int = 80, overwrite: bool = False) -> None:
        keep_freed_memory()  # (a camera actor is a process of its own)
        self.camera = camera
        self.overwrite = overwrite
        self.store = FrameStore(jpeg_quality)
        self._enhancer: _ExposedEnhancer | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pipeline: Pipeline | None = None
        self._stopping = False
        self._request = StopRequest()
        self._run = -1
        self._phase = "idle"
        self._error = ""
        self._error_kind = ""
        self._final: PipelineStats | None = None
        self._outputs: list[str] = []
        self._started = 0.0
        self._where = ""

    # --- control --------------------------------------------------------------------------------------------
    def start(self, run: int) -> bool:
        """Start run number ``run`` (a new pipeline) unless one is still going; True when started."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return False
            self._run, self._phase, self._error, self._error_kind = run, "opening", "", ""
            self._final, self._pipeline, self._stopping, self._outputs = None, None, False, []
            self._request = StopRequest()
            self._started = time.monotonic()
            self._thread = threading.Thread(target=self._main, args=(run,), name=f"camera-{self.camera.name}")
            self._thread.daemon = True
            self._thread.start()
            return True

    def stop(self, timeout: float = 5.0) -> dict[str, Any]:
        """Stop the running pipeline (recordings are finalised), wait up to ``timeout`` s; the final status."""
        with self._lock:
            self._stopping = True
            self._request.set("server stopping")  # the pipeline polls it, even one not yet running
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.status()

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest enhanced frame as JPEG once its number is past ``after`` (see :class:`FrameStore`)."""
        return self.store.wait_jpeg(after, min(max(timeout, 0.0), 30.0))

    def node(self) -> str:
        """Where this worker runs: ``host (pid N)``, and the Ray node's id (its first 8 digits) in an actor."""
        if not self._where:
            where = f"{socket.gethostname()} (pid {os.getpid()}"
            ray = sys.modules.get("ray")  # imported by Ray itself in an actor; never imported here
            if ray is not None:
                with contextlib.suppress(Exception):
                    if ray.is_initialized():
                        where += f", ray node {ray.get_runtime_context().get_node_id()[:8]}"
            self._where = where + ")"
        return self._where

    # --- reporting ------------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Phase, error and figures of the current run (counters count from the start of the run).

        Keys: ``run``, ``phase`` (:data:`PHASES`), ``error``, ``error_kind``, ``frames_in``, ``frames_out``,
        ``dropped`` (stale and at stop, plus those the source skipped), ``reconnects``, ``source_down``,
        ``fps_in``, ``fps_out`` (last two seconds), ``latency_p50_s``, ``latency_p95_s`` (capture → written,
        seconds), ``seconds`` (since the run started), ``outputs``, ``node``.
        """
        self.node()
        with self._lock:
            pipeline, final = self._pipeline, self._final
            out: dict[str, Any] = {
                "run": self._run,
                "phase": self._phase,
                "error": self._error,
                "error_kind": self._error_kind,
                "outputs": list(self._outputs),
                "node": self._where,
                "seconds": time.monotonic() - self._started if self._started else 0.0,
            }
        stats = final if final is not None else (_snapshot(pipeline) if pipeline is not None else None)
        if stats is None:
            stats = PipelineStats()
        lat = stats.latency_ms
        out.update(
            frames_in=stats.frames_in,
            frames_out=stats.frames_out,
            dropped=stats.dropped + stats.source_dropped,
            reconnects=stats.reconnects,
            source_down=stats.source_down,
            fps_in=stats.fps_in_now if final is None else 0.0,
            fps_out=stats.fps_out_now if final is None else 0.0,
            latency_p50_s=lat.get("p50", float("nan")) / 1000.0,
            latency_p95_s=lat.get("p95", float("nan")) / 1000.0,
        )
        return out

    def stats(self) -> dict[str, Any]:
        """The full :class:`PipelineStats` of the current run, as a dict (empty before it runs)."""
        with self._lock:
            pipeline, final = self._pipeline, self._final
        stats = final if final is not None else (_snapshot(pipeline) if pipeline is not None else None)
        return asdict(stats) if stats is not None else {}

    # --- the run --------------------------------------------------------------------------------------------
    def _set(self, phase: str, error: str = "", kind: str = "") -> None:
        with self._lock:
            self._phase, self._error, self._error_kind = phase, error, kind

    def _main(self, run: int) -> None:
        cam = self.camera
        kind = "source"
        source: Source | None = None
        sinks: list[Sink] = []
        try:
            source = make_source(cam.uri, width=_size(cam.size)[1], height=_size(cam.size)[0], fps=cam.fps)
            source.open()
            kind = "output"
            sinks = [_StoreSink(self.store).open()]
            start = time.time()
            for template in cam.outputs:
                if "://" in template and not template.startswith("file://"):
                    uri = template
                else:
                    fresh = run == 0 and "{start}" not in template
                    path = (
                        Path(template.replace("{name}", cam.name)) if fresh else output_path(template, cam.name, start)
                    )
                    uri = str(path)
                sink = make_sink(
                    uri,
                    fps=source.fps or 30.0,
                    time_base=source.time_base,
                    overwrite=self.overwrite and run == 0,
                )
                sinks.append((Recording(sink) if isinstance(sink, VideoFileSink) else sink).open())
                with self._lock:
                    self._outputs.append(uri)
            kind = "model"
            self._set("loading")
            enhancer = self._load()
            enhancer.exposure = None
            if cam.exposure is not None:
                from nightvision.stream.exposure import ExposureControl

                enhancer.exposure = ExposureControl(cam.exposure)
            pre = []
            if cam.denoise:
                from nightvision.stream.denoise import TemporalDenoiser

                pre.append(TemporalDenoiser())  # (its output's dtype: the model's, set by the pipeline)
            kind = "pipeline"
            pipeline = Pipeline(
                source,
                enhancer,
                sinks,
                policy=cam.policy,
                smooth=cam.smooth,
                hud=cam.hud,
                pre_stages=pre,
                stop=self._request,
            )
        except BaseException as err:
            if source is not None:
                source.close()
            for sink in sinks:
                sink.abort()
            log.info("camera %s: %s", cam.name, _first_line(err))
            if kind in ("model", "pipeline") and isinstance(err, (InputError, SetupError)):
                kind = "config"  # (a model without weights, a backend not installed: no restart mends it)
            self._set("failed", _first_line(err), kind)
            return
        with self._lock:
            if self._stopping:
                source.close()
                for sink in sinks:
                    sink.abort()
                self._phase = "stopped"
                return
            self._pipeline = pipeline
            self._phase = "running"
        log.info("camera %s: running %s (run %d)", cam.name, redact(cam.uri), run)
        try:
            final = pipeline.run()
        except BaseException as err:
            log.warning("camera %s: pipeline failed: %s", cam.name, _first_line(err))
            with self._lock:
                self._final = _snapshot(pipeline)
                self._phase, self._error, self._error_kind = "failed", _first_line(err), "pipeline"
            return
        with self._lock:
            self._final = final
            self._phase = "stopped" if self._stopping else "ended"
            if not self._stopping:
                self._error, self._error_kind = f"the source ended ({final.stopped_by})", "source"

    def _load(self) -> _ExposedEnhancer:
        if self._enhancer is None:
            cam = self.camera
            self._enhancer = _ExposedEnhancer(cam.model, cam.backend, threads=cam.onnx_threads)
        return self._enhancer


def _size(size: str) -> tuple[int, int]:
    if not size:
        return 0, 0
    from nightvision.io.sizes import parse_size

    return parse_size(size)


def _snapshot(pipeline: Pipeline) -> PipelineStats:
    """``pipeline.stats()`` taken from another thread: its sample windows may be appended to while being read,
    which Python reports as a RuntimeError; a retry gets a consistent copy."""
    for _ in range(5):
        try:
            return pipeline.stats()
        except RuntimeError:
            time.sleep(0.001)
    return pipeline.stats()
