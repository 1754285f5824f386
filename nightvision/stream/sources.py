"""Frame sources named by URI, with one lifecycle: ``open()``, ``read(timeout)``, ``close()`` (or ``with``),
each done exactly once (see :class:`Source`).

==============================================  =================================================================
URI                                             source
==============================================  =================================================================
``0``, ``v4l2:///dev/video0``, ``/dev/video0``  a camera (OpenCV V4L2); ``width``/``height``/``fps`` requests
``clip.mp4``, ``file:///path/clip.mkv``         a video file (PyAV): lossless, in order, with timestamps
``frames/`` (a folder)                          the images of a folder, sorted
``photo.png``                                   one image, as read (grey, 16-bit and alpha kept)
``rtsp://…``, ``rtmp://…``, ``http(s)://…``     a network stream (PyAV; RTSP over TCP), reconnected when it drops
``gst://PIPELINE``                              a GStreamer pipeline, run by ``gst-launch-1.0``
``synthetic://?fps=30&size=640x360``            a synthetic live night scene at a fixed rate (tests);
                                                ``&stamp=1``: the capture time drawn in (a stripe code)
==============================================  =================================================================

A read says what happened: a frame, a timeout (nothing yet; a live source may be reconnecting), the end
of the input, or a failure. Live sources are read as fast as they deliver; keeping only the newest frame
is the pipeline's job.

Network streams (:class:`StreamSource`): a stream that never opened is tried ``retries`` times (3 by default,
0.5 s then 1 s apart, each try waiting up to ``timeout_ms``) and then fails with one line; wrong credentials
or a path the server does not have fail at once. A stream that delivered frames once is reconnected forever,
with backoff doubling from 0.5 s to 8 s; while it is down reads time out, :attr:`Source.down` is True, and
once it is back :attr:`Source.reconnects` counts the reconnect and :attr:`Source.lost` the frames the camera
sent meanwhile (the gap times the stream's rate). Passwords never reach a message or a log.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import os
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from nightvision.errors import InputError, SourceError
from nightvision.io.images import is_image, read_image
from nightvision.io.video import AudioPacket, VideoFrame, VideoInfo, VideoReader, is_video

__all__ = [
    "CaptureSource",
    "FileSource",
    "FolderSource",
    "ImageSource",
    "Read",
    "ReadStatus",
    "Source",
    "StreamSource",
    "SyntheticSource",
    "make_source",
    "open_source",
    "redact",
    "source_uri",
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
    audio: list[AudioPacket] = field(default_factory=list)  # audio packets demuxed before this frame (files)


def redact(uri: str) -> str:
    """``rtsp://user:secret@host/…`` → ``rtsp://user:***@host/…``: passwords never reach a log."""
    return re.sub(r"(//[^/@:]*):[^/@]*@", r"\1:***@", uri)


S = TypeVar("S", bound="Source")


class Source:
    """Base class: one lifecycle, and what every source reports.

    Lifecycle: a source is created closed (a constructor acquires nothing), :meth:`open` acquires the
    reader, capture or socket exactly once (calling it again, or ``with`` on an opened source, does nothing),
    :meth:`read` returns frames, and :meth:`close` releases everything exactly once; a closed source cannot
    be reopened. Subclasses implement ``_open``, ``_read`` and ``_close``.

    What a source reports (read at any time, from any thread):

    Attributes:
        uri: what it was opened from (passwords: see :func:`redact`).
        live: a camera or stream: endless, delivering at its own pace (the pipeline keeps the newest frame).
        still: frames are still images, of any depth and layout (grey, 16-bit, alpha).
        fps: nominal rate, 0 when unknown.
        time_base: the unit of ``Read.pts``, or None when frames carry no timestamps.
        frame_count: frames in the input when known (a video file's container says so), else 0.
        reconnects: times a live source was reopened after it failed.
        passes: times a looped file or folder started again from its beginning (the pipeline then starts a
            new segment, as on a reconnect: temporal stages do not carry the clip's end into its start).
        dropped: frames the source did not deliver: skipped because they came while nobody was reading, or
            lost while a stream was down (those also count in ``lost``).
        lost: frames a network stream sent while it was down (estimated: the gap times the stream's rate).
        down: True while a live source has failed and is waiting to reconnect.
        audio_stream: a template audio stream for video sinks (a file opened with ``audio=True``), or None.
    """

    uri: str = ""
    live: bool = False
    still: bool = False
    fps: float = 0.0
    time_base: Fraction | None = None
    frame_count: int = 0
    reconnects: int = 0
    passes: int = 0
    dropped: int = 0
    lost: int = 0
    _state: str = "new"

    @property
    def down(self) -> bool:
        return False

    @property
    def audio_stream(self) -> Any:
        return None

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    def open(self: S) -> S:
        """Acquire the source (once; a no-op when already open). Raises :class:`SourceError` or
        :class:`InputError` when it cannot be opened, and after :meth:`close`."""
        if self._state == "open":
            return self
        if self._state == "closed":
            raise SourceError(f"{self!r} was closed; open a new source instead of reopening this one")
        self._open()
        self._state = "open"
        return self

    def read(self, timeout: float = 1.0) -> Read:
        """The next frame, or what happened instead (timeout, end, error). ``timeout`` in seconds."""
        if self._state != "open":
            raise SourceError(f"{self!r} is not open: call open() or use it in a `with` block")
        return self._read(timeout)

    def close(self) -> None:
        """Release the source (once; idempotent)."""
        if self._state == "open":
            self._state = "closed"
            self._close()
        self._state = "closed"

    def _open(self) -> None:
        pass

    def _read(self, timeout: float) -> Read:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def __enter__(self: S) -> S:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.uri)!r})"


class FileSource(Source):
    """A video file, decoded in order with its timestamps; ``loop`` extra passes (-1: forever).

    With ``audio=True`` (and no looping) the audio packets of the first audio track come along, each
    attached to the next frame's :class:`Read` (and the last ones to the END read), for a video sink to remux.
    """

    def __init__(self, path: str | Path, *, loop: int = 0, audio: bool = False) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self.loop = loop
        self._audio = audio and loop == 0
        self._reader: VideoReader | None = None
        self._items: Iterator[VideoFrame | AudioPacket] | None = None
        self.passes = 0
        self._offset = 0  # pts offset of the current pass, so that looping keeps time moving forward
        self._last_pts = 0

    def _open_reader(self) -> None:
        self._reader = VideoReader(self.path, audio=self._audio)
        self._items = iter(self._reader)
        info = self._reader.info
        self.fps = float(info.fps)
        self.time_base = info.time_base
        self.frame_count = info.frames * (self.loop + 1) if self.loop >= 0 else 0

    def _open(self) -> None:
        self._open_reader()

    @property
    def info(self) -> VideoInfo:
        if self._reader is None:
            raise SourceError(f"{self!r} is not open")
        return self._reader.info

    @property
    def audio_stream(self) -> Any:
        return self._reader.audio_stream if self._reader is not None else None

    def _read(self, timeout: float) -> Read:
        assert self._items is not None
        audio: list[AudioPacket] = []
        try:
            while True:
                item = next(self._items)
                if isinstance(item, AudioPacket):
                    audio.append(item)
                    continue
                break
        except StopIteration:
            if self.loop == -1 or self.passes < self.loop:
                self.passes += 1
                self._offset = self._last_pts + max(1, round(1 / (self.fps * float(self.time_base or 1))))
                assert self._reader is not None
                self._reader.close()
                self._open_reader()
                return self._read(timeout)
            return Read(ReadStatus.END, audio=audio)
        except (SourceError, InputError) as err:
            return Read(ReadStatus.ERROR, error=str(err))
        pts = None if item.pts is None else item.pts + self._offset
        self._last_pts = pts if pts is not None else self._last_pts
        return Read(ReadStatus.FRAME, item.image, pts, time.monotonic(), audio=audio)

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._items = None


def _as_bgr8(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255.0 / 65535.0)
    return image


class FolderSource(Source):
    """The images of a folder (recursive, sorted) as ``(H, W, 3)`` uint8 BGR frames; ``loop`` extra passes
    (-1: forever); ``fps`` is only reported (frames come as fast as they are read). Files inside the
    folders of ``exclude`` (an output folder within the input) are skipped."""

    def __init__(self, path: str | Path, *, loop: int = 0, fps: float = 0.0, exclude: Sequence[Path] = ()) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self.loop = loop
        self.fps = fps
        self.exclude = list(exclude)
        self.files: list[Path] = []
        self._index = 0
        self.passes = 0

    def _open(self) -> None:
        skip = [e.resolve() for e in self.exclude]
        self.files = sorted(
            p
            for p in self.path.rglob("*")
            if p.is_file() and is_image(p) and not any(e == q or e in q.parents for q in [p.resolve()] for e in skip)
        )
        if not self.files:
            raise InputError(f"no images in {self.path}")
        self.frame_count = len(self.files) * (self.loop + 1) if self.loop >= 0 else 0

    def _read(self, timeout: float) -> Read:
        if self._index >= len(self.files):
            if self.loop == -1 or self.passes < self.loop:
                self.passes += 1
                self._index = 0
            else:
                return Read(ReadStatus.END)
        path = self.files[self._index]
        self._index += 1
        try:
            image = read_image(path)
        except InputError as err:
            return Read(ReadStatus.ERROR, error=str(err))
        return Read(ReadStatus.FRAME, _as_bgr8(image), None, time.monotonic())


class ImageSource(Source):
    """One image file as a single frame, exactly as read: grey, BGR or BGRA, uint8 or uint16."""

    still = True

    def __init__(self, path: str | Path) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self.frame_count = 1
        self._image: np.ndarray | None = None
        self._done = False

    def _open(self) -> None:
        self._image = read_image(self.path)

    def _read(self, timeout: float) -> Read:
        if self._done or self._image is None:
            return Read(ReadStatus.END)
        self._done = True
        image, self._image = self._image, None
        return Read(ReadStatus.FRAME, image, None, time.monotonic())


class CaptureSource(Source):
    """A camera through ``cv2.VideoCapture`` (what :func:`make_source` makes of ``0`` or ``/dev/video0``).

    A camera that disappears is an ERROR. With ``network=True`` it reads a stream through OpenCV's own FFmpeg
    instead (:func:`make_source` uses :class:`StreamSource` for streams: clearer errors, RTSP over TCP):
    a stream that stalls or drops is reopened with exponential backoff (``backoff`` seconds, doubling up to
    ``max_backoff``); while that happens :attr:`down` is True, reads return TIMEOUT and the pipeline keeps
    running; each success counts in :attr:`reconnects`.
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
        self.camera = api == cv2.CAP_V4L2  # a local camera (it takes size and rate requests)
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

    @property
    def down(self) -> bool:
        return self.is_open and self._cap is None and self._network

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

    def _open(self) -> None:
        if not self._try_open():
            why = (
                "unreachable, or not a video stream"
                if self._network
                else "not found, or in use by another program"
                if self.camera
                else "the pipeline did not start"
            )
            raise SourceError(f"cannot open {redact(self.uri)}: {why}")

    def _read(self, timeout: float) -> Read:
        if self._cap is None:
            if not self._network:
                return Read(ReadStatus.ERROR, error=f"{redact(self.uri)} is closed")
            if time.monotonic() < self._retry_at:
                time.sleep(max(0.0, min(timeout, self._retry_at - time.monotonic())))
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

    def _close(self) -> None:
        self._network = False  # no reconnect after close
        if self._cap is not None:
            self._cap.release()
            self._cap = None


_CONNECT_THREAD = "stream-connect"


def connection_pending() -> bool:
    """Whether a stream's connection attempt is still running in FFmpeg, abandoned by a Ctrl-C while it was
    blocked (:meth:`StreamSource._connect_interruptibly` leaves it in a daemon thread to end by itself)."""
    return any(t.name == _CONNECT_THREAD and t.is_alive() for t in threading.enumerate())


def _av_errors() -> Any:
    """PyAV's error module (imported when a stream is opened, not with this module)."""
    import av.error

    return av.error


class _Unresolved(OSError):
    """A stream's host name does not resolve."""


def _why(err: BaseException, uri: str, timeout: float) -> tuple[str, bool]:
    """What went wrong opening or reading a network stream, in words that never hold the URL (nor its
    password), and whether trying again can help."""
    import av.error

    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        code = "401 Unauthorized" if isinstance(err, av.error.HTTPUnauthorizedError) else "403 Forbidden"
        if "@" in urllib.parse.urlsplit(uri).netloc:
            return f"the server refused the user name or password ({code}); check the credentials in the URL", False
        return f"the server wants a user name and password ({code}); give them as rtsp://USER:PASSWORD@HOST/…", False
    if isinstance(err, av.error.HTTPNotFoundError):
        return "the server has no stream at that path (404 Not Found); check the path after the port", False
    if isinstance(err, av.error.HTTPClientError):
        return f"the server refused the request ({err.strerror})", False
    if isinstance(err, av.error.ConnectionRefusedError):
        return "connection refused (nothing listens on that port)", True
    if isinstance(err, av.error.ExitError | av.error.TimeoutError):
        return f"no answer within {timeout:g} s", True
    if isinstance(err, av.error.EOFError):
        return "the stream ended", True
    if isinstance(err, av.error.FFmpegError):
        return (err.strerror or type(err).__name__).rstrip(".").lower(), True
    if isinstance(err, _Unresolved):
        return f"the host name {err.args[0]} does not resolve (a typo, or no network?)", True
    if isinstance(err, SourceError):
        return str(err), False
    return redact(str(err)) or type(err).__name__, True


def _close_quietly(container: Any) -> None:
    """Close the container of an abandoned connection attempt, if it opened one."""
    if container is not None:
        with contextlib.suppress(Exception):
            container.close()


class StreamSource(Source):
    """A network stream (RTSP over TCP, RTMP, HTTP MJPEG or HLS, ...) decoded by PyAV in a reader thread.

    :meth:`open` connects, trying ``retries`` times with backoff (``backoff`` seconds, doubling) before it
    raises :class:`SourceError`; credentials refused (401/403) or a path the server lacks (404) raise at
    once. Once open, a stream that drops or stalls for ``timeout_ms`` is reconnected forever, with backoff
    doubling from ``backoff`` up to ``max_backoff`` seconds (the first try is at once; the delay starts over
    once frames flow again): meanwhile :attr:`down` is True and reads time out; the first frame after counts
    one :attr:`reconnects`, and the frames the camera sent in the gap count in :attr:`lost` (and in
    :attr:`dropped`). Credentials refused on a reconnect end the stream: the next read is an ERROR.

    Decoded frames wait in a queue of ``buffer`` frames (the oldest is dropped and counted when the reader
    falls behind); a read converts one to ``(H, W, 3)`` uint8 BGR. ``Read.captured`` is when it was decoded.
    Frames carry no pts (a reconnected stream starts its clock over).
    """

    live = True

    def __init__(
        self,
        uri: str,
        *,
        timeout_ms: int = 3000,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        buffer: int = 4,
    ) -> None:
        if retries < 1 or timeout_ms < 1 or not 0 < backoff <= max_backoff or buffer < 1:
            raise InputError(
                f"a stream needs retries >= 1, timeout_ms >= 1, 0 < backoff <= max_backoff and buffer >= 1, got "
                f"retries={retries}, timeout_ms={timeout_ms}, backoff={backoff:g}, max_backoff={max_backoff:g}, "
                f"buffer={buffer}"
            )
        self.uri = uri
        self._timeout = timeout_ms / 1000.0
        self._retries = retries
        self._backoff0, self._max_backoff = backoff, max_backoff
        self._buffer = buffer
        self._frames: collections.deque[tuple[Any, float]] = collections.deque()
        self._cond = threading.Condition()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._container: Any = None
        self._error = ""
        self._down = False
        self._reconnecting = False
        self._delivered = False
        self._arrivals: collections.deque[float] = collections.deque(maxlen=64)
        self._last_arrival = 0.0

    @property
    def down(self) -> bool:
        return self._down and self.is_open

    def _connect(self) -> Any:
        import av

        parts = urllib.parse.urlsplit(self.uri)
        scheme = parts.scheme.lower()
        if parts.hostname:
            try:
                socket.getaddrinfo(parts.hostname, None)
            except (socket.gaierror, UnicodeError):  # FFmpeg would only say "input/output error"
                raise _Unresolved(parts.hostname) from None
        # RTSP: over TCP (no loss, passes firewalls); the SDP names the codec, so no probing: probing would
        # hold the first second of frames back and then deliver it in a burst
        options = (
            {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32"} if scheme in ("rtsp", "rtsps") else {}
        )
        container = av.open(self.uri, container_options=options, timeout=(self._timeout, self._timeout))
        if not container.streams.video:
            container.close()
            raise SourceError("it has no video track")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate and 0 < float(rate) <= 240 else 0.0
        return container

    def _try_connect(self) -> tuple[Any, str, bool]:
        """``(container, "", True)``, or ``(None, why, whether trying again can help)``.

        The errors are turned into words here, and never raised from here: FFmpeg's exceptions hold the URL,
        password included, and must not travel on as the cause or context of ours."""
        started = time.monotonic()
        try:
            return self._connect(), "", True
        except Exception as err:
            why, again = _why(err, self.uri, self._timeout)
            if isinstance(err, _av_errors().FFmpegError) and time.monotonic() - started >= 0.9 * self._timeout:
                why, again = f"no answer within {self._timeout:g} s", True  # FFmpeg's RTSP says "invalid data"
            return None, why, again

    def _connect_interruptibly(self) -> tuple[Any, str, bool]:
        """:meth:`_try_connect` in a helper thread while this one waits in short steps.

        A Ctrl-C's handler runs in the main thread; raised inside FFmpeg's blocking open it is lost (PyAV reports
        its own error instead: measured, the handler ran when the 3 s timeout ended and its exception was
        replaced), and the retries went on. Waiting here, the handler's exception leaves at once; the connection
        still in progress is closed when it ends."""
        result: list[tuple[Any, str, bool]] = []
        lock, abandoned = threading.Lock(), threading.Event()

        def attempt() -> None:
            outcome = self._try_connect()
            with lock:
                if not abandoned.is_set():
                    result.append(outcome)
                    return
            _close_quietly(outcome[0])  # nobody waits for it any more

        worker = threading.Thread(target=attempt, name=_CONNECT_THREAD, daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(0.1)
        except BaseException:
            # (not worker.join() in another thread: on CPython 3.11 an interrupted join marks the thread ended)
            with lock:
                abandoned.set()
                done = result[0][0] if result else None
            _close_quietly(done)
            raise
        return result[0] if result else (None, "the connection attempt failed", True)

    def _open(self) -> None:
        t0 = time.monotonic()
        delay = self._backoff0
        for attempt in range(1, self._retries + 1):
            self._container, why, again = self._connect_interruptibly()
            if self._container is not None:
                break
            if not again:
                raise SourceError(f"cannot open {redact(self.uri)}: {why}")
            if attempt == self._retries:
                raise SourceError(
                    f"cannot open {redact(self.uri)}: {why} ({attempt} {'try' if attempt == 1 else 'tries'} in "
                    f"{time.monotonic() - t0:.1f} s); check the address and that the camera is on"
                )
            log.info("cannot open %s (%s); try %d of %d in %.2f s", redact(self.uri), why, attempt + 1,
                     self._retries, delay)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, self._max_backoff)
        self._thread = threading.Thread(target=self._run, name="stream-reader", daemon=True)
        self._thread.start()

    def _rate(self) -> float:
        """Frames per second: measured over the last frames when they span a second, else nominal."""
        times = self._arrivals
        if len(times) >= 10 and times[-1] - times[0] >= 1.0:
            return (len(times) - 1) / (times[-1] - times[0])
        return self.fps

    def _push(self, frame: Any) -> None:
        now = time.monotonic()
        with self._cond:
            if self._reconnecting:
                gap = now - self._last_arrival
                lost = max(0, round(gap * self._rate()) - 1)
                self.lost += lost
                self.dropped += lost
                self.reconnects += 1
                self._reconnecting = self._down = False
                self._arrivals.clear()
                log.warning(
                    "reconnected to %s after %.1f s without frames (about %d lost)", redact(self.uri), gap, lost
                )
            if len(self._frames) >= self._buffer:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append((frame, now))
            self._arrivals.append(now)
            self._last_arrival = now
            self._delivered = True
            self._cond.notify_all()

    def _pump(self, container: Any) -> str:
        """Decode until the stream ends or fails; why it stopped."""
        import av.error

        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if self._closing.is_set():
                return "closed"
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:  # a damaged packet: the decoder recovers at the next key frame
                continue
            for frame in frames:
                self._push(frame)
        return "the stream ended"

    def _run(self) -> None:
        container, self._container = self._container, None
        delay, wait = self._backoff0, False
        try:
            while not self._closing.is_set():
                if container is None:
                    if wait:
                        log.info("next try to reopen %s in %.2f s", redact(self.uri), delay)
                        if self._closing.wait(delay):
                            return
                        delay = min(delay * 2, self._max_backoff)
                    wait = True
                    container, why, again = self._try_connect()
                    if container is None:
                        if not again:
                            self._fail(f"{redact(self.uri)}: {why}")
                            return
                        log.info("cannot reopen %s: %s", redact(self.uri), why)
                        continue
                self._delivered = False
                try:
                    why = self._pump(container)
                except Exception as err:
                    why = _why(err, self.uri, self._timeout)[0]
                finally:
                    container.close()
                    container = None
                if self._closing.is_set():
                    return
                if self._delivered:  # frames flowed: try again at once, and start the backoff over
                    delay, wait = self._backoff0, False
                with self._cond:
                    self._down = self._reconnecting = True
                log.warning("stream %s dropped (%s); reconnecting", redact(self.uri), why)
        finally:
            if container is not None:
                container.close()

    def _fail(self, error: str) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def _read(self, timeout: float) -> Read:
        with self._cond:
            if not self._frames and not self._error:
                self._cond.wait(timeout)
            if self._frames:
                frame, captured = self._frames.popleft()
            elif self._error:
                return Read(ReadStatus.ERROR, error=self._error)
            else:
                return Read(ReadStatus.TIMEOUT)
        return Read(ReadStatus.FRAME, frame.to_ndarray(format="bgr24"), None, captured)

    def _close(self) -> None:
        self._closing.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(self._timeout + 1.0)  # a read in progress returns within the timeout
        elif self._container is not None:
            self._container.close()
        self._frames.clear()


class SyntheticSource(Source):
    """A live synthetic night street at a fixed frame rate (see :mod:`nightvision.sample`).

    ``frames`` ends the stream after that many source ticks (0: endless). Frames are produced on the
    source's own clock: a reader slower than ``fps`` misses frames, as with a real camera, and
    :attr:`dropped` counts them. With ``stamp`` each frame carries the time it was captured, drawn at its top
    as a stripe code (:func:`~nightvision.stream.stripecode.code_ms`; needs a width of at least 128): a
    client that reads it back measures the glass-to-glass latency.
    """

    def __init__(
        self, *, fps: float = 30.0, width: int = 640, height: int = 360, frames: int = 0, stamp: bool = False
    ) -> None:
        from nightvision.stream.stripecode import BAND, MIN_WIDTH

        if not 0 < fps <= 1000 or width < 1 or height < 1 or frames < 0:  # (nan fails the first test too)
            raise InputError(f"a synthetic source needs 0 < fps <= 1000, a size of at least 1x1 and frames >= 0, got "
                             f"fps={fps:g}, {width}x{height}, frames={frames}")  # fmt: skip
        if stamp and (width < MIN_WIDTH or height < 2 * BAND):
            raise InputError(f"a stamped synthetic source needs a size of at least {MIN_WIDTH}x{2 * BAND}, "
                             f"got {width}x{height}")  # fmt: skip
        self.uri = f"synthetic://?fps={fps:g}&size={width}x{height}&frames={frames}" + ("&stamp=1" if stamp else "")
        self.stamp = stamp
        self.live = True
        self.fps = fps
        self.frame_count = frames
        self._size = (width, height)
        self._pool: list[np.ndarray] = []
        self._limit = frames
        self._start = 0.0
        self._last = -1

    def _open(self) -> None:
        from nightvision.sample import sample_frames

        self._pool = list(sample_frames(*self._size, 60, fast=True))

    def _read(self, timeout: float) -> Read:
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
            self.dropped += max(0, self._limit - self._last - 1)
            self._last = self._limit
            return Read(ReadStatus.END)
        self.dropped += n - self._last - 1
        self._last = n
        frame, now = self._pool[n % len(self._pool)].copy(), time.monotonic()
        if self.stamp:
            from nightvision.stream.stripecode import code_ms, draw_code

            draw_code(frame, code_ms(now))
        return Read(ReadStatus.FRAME, frame, n, now)


_EXAMPLE = {"fps": "30", "size": "1280x720", "frames": "300"}


def _query(uri: str) -> dict[str, str]:
    return {
        k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(uri).query, keep_blank_values=True).items()
    }


_INPUTS = "give a video, an image, a folder, a camera (0 or /dev/video0), a stream URL or synthetic://"


def source_uri(uri: str | int | os.PathLike[str]) -> str:
    """The URI string a source argument names: a path as its string, a camera index as its digits.

    Why: ``""`` means the current folder to :class:`~pathlib.Path` (``Path("").is_dir()`` is True), so an empty
    name, e.g. an unset variable, would enhance every file under it; and a ``Path`` or ``0`` is what a caller
    naturally passes for a file or the first camera.

    Raises:
        InputError: an empty name, or a value of another type.
    """
    if isinstance(uri, int) and not isinstance(uri, bool) and uri >= 0:
        return str(uri)
    name = os.fspath(uri) if isinstance(uri, os.PathLike) else uri
    if not isinstance(name, str):
        raise InputError(f"a source is named by a string or a path, got {uri!r}; {_INPUTS}")
    if not name.strip():
        raise InputError(f"the input name is empty; {_INPUTS}")
    return name


def make_source(
    uri: str | int | os.PathLike[str],
    *,
    loop: int = 0,
    width: int = 0,
    height: int = 0,
    fps: float = 0.0,
    timeout_ms: int = 3000,
    retries: int = 3,
    audio: bool = False,
) -> Source:
    """The source a URI names (see the module docstring), not yet opened: ``open()`` it, or hand it to a
    :class:`~nightvision.stream.pipeline.Pipeline`, which opens and closes it.

    Args:
        uri: a camera, file, folder, image, stream URL, ``gst://`` pipeline or ``synthetic://`` scene; a
            :class:`~pathlib.Path` names a file or folder, an ``int`` a camera (see :func:`source_uri`).
        loop: files and folders: extra passes (-1: forever).
        width, height, fps: cameras: the requested mode (0: the camera's default).
        timeout_ms: network streams: open and read timeout.
        retries: network streams: tries to open a stream before giving up (a stream that delivered frames
            once is reconnected forever).
        audio: video files: carry the audio track along (for a video sink to remux).
    """
    uri = source_uri(uri)
    scheme = urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme == "synthetic":
        from nightvision.io.sizes import parse_size

        q = _query(uri)
        unknown = sorted(set(q) - {"size", "fps", "frames", "stamp"})
        if unknown:
            raise InputError(
                f"bad synthetic source {uri!r}: unknown setting(s) {', '.join(unknown)} (known: fps, size, frames, "
                "stamp; e.g. synthetic://?fps=30&size=1280x720)"
            )
        blank = [k for k in ("fps", "size", "frames") if k in q and not q[k]]
        if blank:
            raise InputError(
                f"bad synthetic source {uri!r}: {blank[0]} needs a value (e.g. {blank[0]}={_EXAMPLE[blank[0]]})"
            )

        def number(key: str, kind: type, default: str) -> Any:
            text = q.get(key, default)
            try:
                return kind(text)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise InputError(
                    f"bad synthetic source {uri!r}: {key} must be {what}, got {text!r} (e.g. {key}={_EXAMPLE[key]})"
                ) from None

        fps, frames = number("fps", float, "30"), number("frames", int, "0")
        try:
            h, w = parse_size(q.get("size", "640x360"))
            stamp = q.get("stamp", "0") not in ("0", "", "false")
            return SyntheticSource(fps=fps, width=w, height=h, frames=frames, stamp=stamp)
        except ValueError as err:
            raise InputError(f"bad synthetic source {uri!r}: {err}") from err
    if scheme in ("rtsp", "rtsps", "rtmp", "http", "https"):
        if not urllib.parse.urlsplit(uri).hostname:
            raise InputError(f"no host in {redact(uri)!r}: give {scheme}://HOST[:PORT]/PATH")
        return StreamSource(uri, timeout_ms=timeout_ms, retries=retries)
    if scheme == "gst":
        from nightvision.stream.gstreamer import GstSource

        return GstSource(uri[len("gst://") :])
    if scheme == "v4l2" or uri.isdigit() or uri.startswith("/dev/video"):
        target: str | int = int(uri) if uri.isdigit() else uri.removeprefix("v4l2://")
        if isinstance(target, str) and not Path(target).exists():
            raise SourceError(f"no camera at {target}")
        return CaptureSource(uri, target, api=cv2.CAP_V4L2, width=width, height=height, fps=fps)
    name = uri.removeprefix("file://")
    if not name.strip():  # "file://": Path("") would be the current folder
        raise InputError(f"the input name is empty; {_INPUTS}")
    path = Path(name)
    if path.is_dir():
        return FolderSource(path, loop=loop, fps=fps)
    if not path.exists():
        raise InputError(f"no such file, folder or camera: {uri}")
    if is_video(path):
        return FileSource(path, loop=loop, audio=audio)
    if is_image(path):
        return ImageSource(path)
    raise InputError(f"unsupported source {uri!r}: expected a video, an image, a folder, a camera or a stream URL")


def open_source(
    uri: str | int | os.PathLike[str],
    *,
    loop: int = 0,
    width: int = 0,
    height: int = 0,
    fps: float = 0.0,
    timeout_ms: int = 3000,
    retries: int = 3,
) -> Source:
    """:func:`make_source`, opened; a clear error if it cannot be. ``with open_source(uri) as src:`` opens it
    once (``with`` on an open source does not open it again) and closes it at the end."""
    return make_source(
        uri, loop=loop, width=width, height=height, fps=fps, timeout_ms=timeout_ms, retries=retries
    ).open()
