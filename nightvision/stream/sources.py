"""Frame sources named by URI, with one lifecycle: ``open()``, ``read(timeout)``, ``close()`` (or ``with``).

==========================================  =========================================================
URI                                          source
==========================================  =========================================================
``0``, ``v4l2:///dev/video0``, ``/dev/video0``  a camera (OpenCV V4L2); ``width``/``height``/``fps`` requests
``clip.mp4``, ``file:///path/clip.mkv``      a video file (PyAV): lossless, in order, with timestamps
``frames/`` (a folder)                       the images of a folder, sorted
``rtsp://…``, ``http(s)://…``                a network stream (OpenCV/FFmpeg), reopened on failure
``gst://PIPELINE ! appsink``                 a GStreamer pipeline, when OpenCV has GStreamer
``synthetic://?fps=30&size=640x360``         a synthetic live night scene at a fixed rate (tests, benchmarks)
==========================================  =========================================================

A read says what happened: a frame, a timeout (nothing yet; a live source may be reconnecting), the end
of the input, or a failure. Live sources are read as fast as they deliver; keeping only the newest frame
is the pipeline's job.
"""

from __future__ import annotations

import enum
import logging
import re
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.errors import InputError, SourceError
from nightvision.io.images import is_image, read_image
from nightvision.io.video import VideoReader, is_video

__all__ = [
    "CaptureSource",
    "FileSource",
    "FolderSource",
    "Read",
    "ReadStatus",
    "Source",
    "SyntheticSource",
    "open_source",
    "redact",
]

log = logging.getLogger(__name__)


class ReadStatus(enum.Enum):
    FRAME = "frame"
    TIMEOUT = "timeout"
    END = "end"
    ERROR = "error"


@dataclass
class Read:
    """The result of :meth:`Source.read`."""

    status: ReadStatus
    frame: np.ndarray | None = None
    pts: int | None = None  # in the source's time base, when it has one
    captured: float = 0.0  # time.monotonic() when the frame was read
    error: str = ""


def redact(uri: str) -> str:
    """``rtsp://user:secret@host/…`` → ``rtsp://user:***@host/…``: passwords never reach a log."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", uri)


class Source:
    """Base class: the lifecycle and context-manager protocol every source shares."""

    uri: str = ""
    live: bool = False
    fps: float = 0.0  # nominal rate, 0 when unknown
    time_base: Fraction | None = None

    def open(self) -> Source:
        return self

    def read(self, timeout: float = 1.0) -> Read:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.uri)!r})"


class FileSource(Source):
    """A video file, decoded in order; ``loop`` extra passes (-1: forever)."""

    def __init__(self, path: str | Path, *, loop: int = 0) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self.loop = loop
        self._reader: VideoReader | None = None
        self._frames: Iterator[Any] | None = None
        self._passes = 0
        self._offset = 0  # pts offset of the current pass, so that looping keeps time moving forward
        self._last_pts = 0

    def open(self) -> FileSource:
        self._reader = VideoReader(self.path)
        self._frames = self._reader.frames()
        self.fps = float(self._reader.info.fps)
        self.time_base = self._reader.info.time_base
        return self

    @property
    def info(self) -> Any:
        assert self._reader is not None
        return self._reader.info

    def read(self, timeout: float = 1.0) -> Read:
        if self._frames is None:
            raise SourceError(f"{self!r} is not open")
        try:
            frame = next(self._frames)
        except StopIteration:
            if self.loop == -1 or self._passes < self.loop:
                self._passes += 1
                self._offset = self._last_pts + max(1, round(1 / (self.fps * float(self.time_base or 1))))
                self.close()
                self.open()
                return self.read(timeout)
            return Read(ReadStatus.END)
        except SourceError as err:
            return Read(ReadStatus.ERROR, error=str(err))
        pts = None if frame.pts is None else frame.pts + self._offset
        self._last_pts = pts if pts is not None else self._last_pts
        return Read(ReadStatus.FRAME, frame.image, pts, time.monotonic())

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class FolderSource(Source):
    """The images of a folder (recursive, sorted), as frames; ``loop`` extra passes (-1: forever)."""

    def __init__(self, path: str | Path, *, loop: int = 0, fps: float = 0.0) -> None:
        self.uri = str(path)
        self.files = sorted(p for p in Path(path).rglob("*") if p.is_file() and is_image(p))
        if not self.files:
            raise InputError(f"no images in {path}")
        self.loop = loop
        self.fps = fps
        self._index = 0
        self._passes = 0

    def read(self, timeout: float = 1.0) -> Read:
        if self._index >= len(self.files):
            if self.loop == -1 or self._passes < self.loop:
                self._passes += 1
                self._index = 0
            else:
                return Read(ReadStatus.END)
        path = self.files[self._index]
        self._index += 1
        image = read_image(path)
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        if image.dtype != np.uint8:
            image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
        return Read(ReadStatus.FRAME, image, None, time.monotonic())


class CaptureSource(Source):
    """A camera, network stream or GStreamer pipeline through ``cv2.VideoCapture``.

    Network streams that stall or drop are reopened with exponential backoff (``backoff`` seconds,
    doubling up to ``max_backoff``); while that happens reads return TIMEOUT and the pipeline keeps running.
    A camera that disappears is an ERROR.
    """

    def __init__(
        self,
        uri: str,
        target: str | int,
        *,
        api: int = cv2.CAP_ANY,
        network: bool = False,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        timeout_ms: int = 3000,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
    ) -> None:
        self.uri = uri
        self.live = True
        self._target = target
        self._api = api
        self._network = network
        self._request = (width, height, fps)
        self._timeout_ms = timeout_ms
        self._backoff0, self._max_backoff = backoff, max_backoff
        self._backoff = backoff
        self._cap: cv2.VideoCapture | None = None
        self._retry_at = 0.0
        self.reconnects = 0

    def _params(self) -> list[int]:
        return [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, self._timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, self._timeout_ms]

    def _try_open(self) -> bool:
        cap = (
            cv2.VideoCapture(self._target, self._api, self._params())
            if self._network
            else cv2.VideoCapture(self._target, self._api)
        )
        if not cap.isOpened():
            cap.release()
            return False
        width, height, fps = self._request
        if width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        if fps:
            cap.set(cv2.CAP_PROP_FPS, fps)
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._cap = cap
        return True

    def open(self) -> CaptureSource:
        if not self._try_open():
            raise SourceError(f"cannot open {redact(self.uri)}")
        return self

    def read(self, timeout: float = 1.0) -> Read:
        if self._cap is None:
            if not self._network:
                return Read(ReadStatus.ERROR, error=f"{redact(self.uri)} is closed")
            if time.monotonic() < self._retry_at:
                time.sleep(min(timeout, self._retry_at - time.monotonic()))
                return Read(ReadStatus.TIMEOUT)
            if self._try_open():
                self.reconnects += 1
                self._backoff = self._backoff0
                log.warning("reconnected to %s", redact(self.uri))
            else:
                self._schedule_retry()
                return Read(ReadStatus.TIMEOUT)
        assert self._cap is not None
        ok, frame = self._cap.read()
        if ok and frame is not None:
            return Read(ReadStatus.FRAME, frame, None, time.monotonic())
        self._cap.release()
        self._cap = None
        if not self._network:
            return Read(ReadStatus.ERROR, error=f"camera {redact(self.uri)} stopped delivering frames (unplugged?)")
        log.warning("stream %s stalled or dropped; reconnecting", redact(self.uri))
        self._schedule_retry()
        return Read(ReadStatus.TIMEOUT)

    def _schedule_retry(self) -> None:
        self._retry_at = time.monotonic() + self._backoff
        log.info("next attempt to open %s in %.1f s", redact(self.uri), self._backoff)
        self._backoff = min(self._backoff * 2, self._max_backoff)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self._network = False  # no reconnect after close


class SyntheticSource(Source):
    """A live synthetic night street at a fixed frame rate (see :mod:`nightvision.sample`).

    ``frames`` ends the stream after that many frames (0: endless). Frames are produced on the source's own
    clock: a reader slower than ``fps`` misses frames, as with a real camera.
    """

    def __init__(self, *, fps: float = 30.0, width: int = 640, height: int = 360, frames: int = 0) -> None:
        from nightvision.sample import sample_frames

        self.uri = f"synthetic://?fps={fps:g}&size={width}x{height}&frames={frames}"
        self.live = True
        self.fps = fps
        self._pool = list(sample_frames(width, height, 60))
        self._limit = frames
        self._start = 0.0
        self._last = -1

    def read(self, timeout: float = 1.0) -> Read:
        if not self._start:  # the clock starts at the first read, like a camera that starts streaming
            self._start = time.monotonic()
        # wait for the next tick of the source clock
        n = int((time.monotonic() - self._start) * self.fps)
        if n <= self._last:
            wait = (self._last + 1) / self.fps - (time.monotonic() - self._start)
            if wait > timeout:
                time.sleep(timeout)
                return Read(ReadStatus.TIMEOUT)
            time.sleep(max(0.0, wait))
            n = self._last + 1
        if self._limit and n >= self._limit:
            return Read(ReadStatus.END)
        self._last = n
        return Read(ReadStatus.FRAME, self._pool[n % len(self._pool)].copy(), n, time.monotonic())


def _query(uri: str) -> dict[str, str]:
    return {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query).items()}


def open_source(
    uri: str, *, loop: int = 0, width: int = 0, height: int = 0, fps: float = 0.0, timeout_ms: int = 3000
) -> Source:
    """Open the source a URI names (see the module docstring); a clear error if it cannot be opened."""
    scheme = urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme == "synthetic":
        q = _query(uri)
        w, _, h = q.get("size", "640x360").partition("x")
        try:
            return SyntheticSource(
                fps=float(q.get("fps", 30)), width=int(w), height=int(h), frames=int(q.get("frames", 0))
            ).open()
        except ValueError as err:
            raise InputError(f"bad synthetic source {uri!r}: {err}") from err
    if scheme in ("rtsp", "rtmp", "http", "https"):
        return CaptureSource(uri, uri, api=cv2.CAP_FFMPEG, network=True, timeout_ms=timeout_ms).open()
    if scheme == "gst":
        if "GStreamer:                   YES" not in cv2.getBuildInformation():
            raise SourceError(
                "this OpenCV has no GStreamer support; use an OpenCV built with GStreamer, or a file, camera or URL"
            )
        return CaptureSource(uri, uri[len("gst://") :], api=cv2.CAP_GSTREAMER).open()
    if scheme == "v4l2" or uri.isdigit() or uri.startswith("/dev/video"):
        target: str | int = int(uri) if uri.isdigit() else uri.removeprefix("v4l2://")
        if isinstance(target, str) and not Path(target).exists():
            raise SourceError(f"no camera at {target}")
        return CaptureSource(uri, target, api=cv2.CAP_V4L2, width=width, height=height, fps=fps).open()
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        return FolderSource(path, loop=loop, fps=fps)
    if not path.exists():
        raise InputError(f"no such file, folder or camera: {uri}")
    if is_video(path):
        return FileSource(path, loop=loop).open()
    raise InputError(f"unsupported source {uri!r}: expected a video, a folder, a camera or a stream URL")
