"""The worker of a batch job: one loaded model that runs tasks (a file, or one chunk of a long video).

A :class:`Worker` loads its model once, when it is created, and keeps it for every task it is given: on a
Ray cluster each worker is an actor (:mod:`nightvision.cluster.pool`), in-process there is one. A task
writes its output to a staging path the coordinator chose for that attempt; the coordinator checks the
result, records it, and moves it into place (:mod:`nightvision.cluster.batch`).

Everything a task needs crosses the wire as small frozen dataclasses (:class:`Settings`, :class:`Task`,
:class:`TaskResult`), so workers on other machines only need the same nightvision installed and the files
on a shared path.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nightvision.allocator import keep_freed_memory
from nightvision.enhancer import DEFAULT_MODEL, Enhancer
from nightvision.errors import InputError, NightvisionError
from nightvision.stream.jobs import Progress, enhance_path
from nightvision.stream.pipeline import Pipeline, PipelineStats, StopRequest

from .chunks import Chunk, ChunkSink, ChunkSource

__all__ = ["Settings", "Task", "TaskResult", "Worker", "make_stages"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """What the outputs of a batch job depend on (recorded in its manifest).

    Attributes:
        model: registered model name; ``backend``: ``auto``, ``onnxruntime``, ``torch``, ``tensorrt``.
        denoise: the temporal denoiser before the model (:mod:`nightvision.stream.denoise`).
        exposure: exposure control after the model, to this mean luma (0-255) for dark input; None: off.
        crf: x264 quality of video outputs, 0-51 (0: lossless).
    """

    model: str = DEFAULT_MODEL
    backend: str = "auto"
    denoise: bool = False
    exposure: float | None = None
    crf: int = 18

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise InputError(f"crf must be in 0-51 (lower is better), got {self.crf}")
        if self.exposure is not None and not 20.0 <= self.exposure <= 235.0:
            raise InputError(f"the exposure target must be a mean luma between 20 and 235, got {self.exposure:g}")

    @property
    def temporal(self) -> bool:
        """Whether a stage carries state across frames (chunks then need warm-up frames)."""
        return self.denoise or self.exposure is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_stages(settings: Settings) -> tuple[list[Any], list[Any]]:
    """Fresh ``(pre_stages, post_stages)`` for one pipeline run, as ``nightvision enhance --denoise --exposure``
    builds them (stages keep per-video state, so each task gets its own)."""
    pre: list[Any] = []  # frame stages; exposure control is a post stage that also takes the model's input
    post: list[Any] = []
    if settings.denoise:
        from nightvision.stream.denoise import TemporalDenoiser

        pre.append(TemporalDenoiser())  # (its output's dtype: the model's, set by the pipeline)
    if settings.exposure is not None:
        from nightvision.stream.exposure import ExposureControl

        post.append(ExposureControl(target=settings.exposure))
    return pre, post


@dataclass(frozen=True)
class Task:
    """One unit of work: enhance ``source`` (whole, or only ``chunk``) into ``dest``.

    Attributes:
        id: unique in the job (``rel`` or ``rel#k``); ``rel``: the output's path relative to OUTDIR.
        kind: ``"file"`` (an image or a whole video) or ``"chunk"``.
        frames: frames it writes (progress).
        fps, time_base: of the source video (chunks only).
    """

    id: str
    rel: str
    kind: str
    source: str
    dest: str
    frames: int
    chunk: Chunk | None = None


@dataclass(frozen=True)
class TaskResult:
    """What a task did: frames written, warm-up frames run, seconds, where it ran, and an error (one line) if
    it failed for a reason in its input (the coordinator records the file as failed; no retry)."""

    id: str
    frames: int = 0
    warmup: int = 0
    seconds: float = 0.0
    node: str = ""
    error: str = ""


class Worker:
    """A loaded model and the tasks it runs, one at a time (:meth:`run`), with :meth:`progress` and
    :meth:`stop` callable from another thread (a Ray actor with ``max_concurrency=2``).

    Args:
        settings: model and stages.
        threads: CPU threads for the model and OpenCV (0: their defaults); a Ray worker gets its CPU share.
    """

    def __init__(self, settings: Settings, threads: int = 0) -> None:
        keep_freed_memory()
        if threads:
            import cv2

            cv2.setNumThreads(threads)
        self.settings = settings
        self.node = f"{socket.gethostname()}:{os.getpid()}"
        t0 = time.perf_counter()
        self.enhancer = Enhancer(settings.model, settings.backend, threads=threads)
        log.info("%s loaded %s in %.1f s", self.node, settings.model, time.perf_counter() - t0)
        self._done = 0
        self._lock = threading.Lock()
        self._stop = StopRequest()

    def ready(self) -> str:
        """Where this worker runs (``host:pid``); returns once the model is loaded."""
        return self.node

    def progress(self) -> int:
        """Frames written by the task in progress."""
        with self._lock:
            return self._done

    def stop(self) -> None:
        """Ask the task in progress to stop (its output is discarded); later tasks are refused."""
        self._stop.set("stopped")

    def _set_done(self, frames: int) -> None:
        with self._lock:
            self._done = frames

    def run(self, task: Task) -> TaskResult:
        """Run one task; an input that cannot be enhanced gives a result with ``error`` set."""
        self._set_done(0)
        t0 = time.perf_counter()
        if self._stop.is_set():
            return TaskResult(task.id, node=self.node, error="stopped")
        try:
            if task.kind == "chunk":
                frames, warmup = self._chunk(task)
            else:
                frames, warmup = self._file(task), 0
        except (NightvisionError, OSError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            return TaskResult(task.id, seconds=time.perf_counter() - t0, node=self.node, error=first)
        return TaskResult(task.id, frames, warmup, time.perf_counter() - t0, self.node)

    def _file(self, task: Task) -> int:
        def progress(p: Progress) -> None:
            self._set_done(p.stats.frames_out)

        pre, post = make_stages(self.settings)
        report = enhance_path(
            task.source,
            task.dest,
            enhancer=self.enhancer,
            crf=self.settings.crf,
            overwrite=True,
            stop=self._stop,
            on_progress=progress,
            pre_stages=pre,
            post_stages=post,
        )
        if report.partial is not None:
            Path(report.partial).unlink(missing_ok=True)
        if report.stopped_by or report.files != 1:
            raise InputError(f"{task.source}: stopped ({report.stopped_by or 'incomplete'})")
        self._set_done(report.frames)
        return report.frames

    def _chunk(self, task: Task) -> tuple[int, int]:
        chunk = task.chunk
        assert chunk is not None
        source = ChunkSource(task.source, chunk).open()
        try:
            assert source.time_base is not None
            sink = ChunkSink(
                task.dest,
                start=chunk.start,
                fps=source.fps,
                time_base=source.time_base,
                crf=self.settings.crf,
                on_frame=self._set_done,
            )
        except BaseException:
            source.close()
            raise
        pre, post = make_stages(self.settings)
        stats: PipelineStats = Pipeline(
            source,
            self.enhancer,
            [sink],
            policy="lossless",
            pre_stages=pre,
            post_stages=post,
            stop=self._stop,
            keep_partial=False,
        ).run()
        if not stats.complete:
            raise InputError(f"{task.source}: chunk {chunk.index} stopped ({stats.stopped_by})")
        if sink.frames_written != chunk.frames:
            raise InputError(
                f"cannot split {task.source} at keyframes (chunk {chunk.index} gave {sink.frames_written} of its "
                f"{chunk.frames} frames); process it whole (chunk_seconds=0)"
            )
        return sink.frames_written, source.warmed
