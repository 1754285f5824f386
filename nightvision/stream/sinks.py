"""Frame sinks named by URI, with one lifecycle: ``open()``, ``write(frame)``, ``close()`` (or ``with``),
each done exactly once (see :class:`Sink`).

=================================  ===============================================================
URI                                 sink
=================================  ===============================================================
``out.mp4`` (any video suffix)      an H.264 file (audio remuxed when the source has it), finalised on close
``photo.png`` (an image suffix)     one image, in the depth its format holds (16-bit PNG/TIFF kept)
``frames/`` or ``frames/%06d.png``  an image sequence
``http://127.0.0.1:8090/``          an MJPEG viewer page for headless boxes (loopback unless a host is given)
``rtsp://127.0.0.1:8554/night``     an RTSP server publishing H.264 (:mod:`nightvision.stream.rtsp_out`)
``display://``                      a window (Tk; keys q / Esc, space, c, s)
``null://``                         discards frames (benchmarks)
=================================  ===============================================================

Files are written under a temporary name and renamed when complete. A sink stopped before its input ended
(:meth:`Sink.abort` with ``keep_partial=True``, what the pipeline does when a file job is interrupted)
finalises a video under a name that says so, ``out.partial.mp4``; image outputs are then left out. An
existing output is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import gc
import json
import logging
import os
import queue
import threading
import time
import urllib.parse
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np

from nightvision.errors import InputError, OutputError, ShapeError
from nightvision.io.atomic import describe_os_error, ensure_parent, missing_folders, remove_empty_folders
from nightvision.io.images import IMAGE_SUFFIXES, to_uint8, write_image
from nightvision.io.video import AudioPacket, VideoWriter, is_video

__all__ = [
    "DisplaySink",
    "ImageFileSink",
    "ImageSequenceSink",
    "MjpegSink",
    "NullSink",
    "Sink",
    "VideoFileSink",
    "bind_advice",
    "make_sink",
    "open_sink",
    "partial_path",
]

log = logging.getLogger(__name__)

K = TypeVar("K", bound="Sink")


def partial_path(path: str | Path) -> Path:
    """Where an interrupted job keeps its output: ``out.mp4`` → ``out.partial.mp4``, or, where that name is
    taken (an earlier run's partial output, or an input such as ``out.partial.mp4`` itself), the first free
    name of ``out-2.partial.mp4``, ``out-3.partial.mp4``...: it never replaces an existing file."""
    path = Path(path)
    candidate = path.with_name(f"{path.stem}.partial{path.suffix}")
    n = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.stem}-{n}.partial{path.suffix}")
        n += 1
    return candidate


def bind_advice(err: OSError, example: str) -> str:
    """Why a server could not listen, and what to do: ``example`` is the output with ``HOST``/``PORT`` to change
    (e.g. ``http://0.0.0.0:PORT/``)."""
    if err.errno == errno.EADDRNOTAVAIL:
        return "that is not an address of this machine; serve on 0.0.0.0 (every interface) or 127.0.0.1"
    if err.errno == errno.EADDRINUSE:
        return f"the port is in use; choose another port (-o {example})"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"ports below 1024 need root; choose another port (-o {example})"
    return f"{describe_os_error(err)}; choose another port (-o {example})"


_LAYOUTS = "(H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA frame"


def as_bgr8(frame: np.ndarray) -> np.ndarray:
    """Any frame the pipeline makes (grey, BGR, BGRA; uint8 or uint16) as ``(H, W, 3)`` uint8 BGR."""
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    frame = to_uint8(frame)
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if frame.shape[2] == 4:
        return np.ascontiguousarray(frame[:, :, :3])
    return frame


def _check_frame(frame: object, uri: str) -> None:
    """Refuse, naming the output, a frame no sink can show or encode: a few attribute reads per frame, so
    that a wrong layout is one :class:`ShapeError` instead of PyAV's or OpenCV's error from deep inside."""
    if not isinstance(frame, np.ndarray):
        raise ShapeError(f"cannot write a {type(frame).__name__} to {uri}: expected a numpy array, {_LAYOUTS}")
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))) or frame.size == 0:
        raise ShapeError(f"cannot write a frame of shape {frame.shape} to {uri}: expected a non-empty {_LAYOUTS}")


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputError(f"{path} already exists; pass --overwrite to replace it")


class Sink:
    """Base class: one lifecycle.

    A sink is created closed (a constructor starts no server, window or file), :meth:`open` acquires it
    exactly once (again, or ``with`` on an opened sink, does nothing), :meth:`write` takes the enhanced frame,
    the original and the pts in the source's time base, and the sink ends exactly once, either by
    :meth:`close` (the output is complete) or by :meth:`abort` (it is not); the first of the two wins.
    Subclasses implement ``_open``, ``_write``, ``_close`` and ``_abort``.

    Attributes:
        uri: where frames go.
        written: the file a file sink produced once it ended (``out.mp4``, or ``out.partial.mp4`` after an
            aborted run that kept its partial output), else None.
    """

    uri: str = ""
    written: Path | None = None
    _state: str = "new"

    @property
    def is_open(self) -> bool:
        return self._state == "open"

    def open(self: K) -> K:
        """Acquire the sink (once; a no-op when open). :class:`OutputError` if it cannot, or after it ended."""
        if self._state == "open":
            return self
        if self._state == "ended":
            raise OutputError(f"{self.uri} was closed; open a new sink instead of reopening this one")
        self._open()
        self._state = "open"
        return self

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        """Write one enhanced frame (``original``: the input frame; ``pts``: in the source's time base).

        ``frame`` is ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` BGR or ``(H, W, 4)`` BGRA, uint8 or uint16 (what
        the pipeline makes); another layout is a :class:`ShapeError`.
        """
        if self._state != "open":
            raise OutputError(f"{self.uri} is not open: call open() or use it in a `with` block")
        _check_frame(frame, self.uri)
        self._write(frame, original, pts)

    def write_audio(self, packet: AudioPacket) -> None:
        """Remux an audio packet of the source (video files; the others ignore it)."""

    def close(self) -> None:
        """End the sink with a complete output (idempotent)."""
        if self._state == "open":
            self._state = "ended"
            self._close()
        self._state = "ended"

    def abort(self, *, keep_partial: bool = False) -> None:
        """End the sink without a complete output (idempotent): discard it, or with ``keep_partial`` finalise
        what was written under a partial name (:func:`partial_path`; video files only)."""
        if self._state == "open":
            self._state = "ended"
            self._abort(keep_partial)
        self._state = "ended"

    @property
    def wants_stop(self) -> bool:
        """True when the user asked this sink to stop the pipeline (a window's q / Esc)."""
        return False

    def _open(self) -> None:
        pass

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    def _abort(self, keep_partial: bool) -> None:
        self._close()

    def __enter__(self: K) -> K:
        return self.open()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"


class NullSink(Sink):
    """Discards frames, counting them."""

    def __init__(self) -> None:
        self.uri = "null://"
        self.frames = 0

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.frames += 1


class VideoFileSink(Sink):
    """A video file (H.264; VP9 for .webm); the writer starts on the first frame (its size) and is finalised on
    close.

    Args:
        path: the file (.mp4, .mkv, .mov, .avi, ...).
        fps: nominal rate (0: 30).
        time_base: the unit of the pts given to :meth:`write`.
        audio_template: the source's audio stream; its packets (:meth:`write_audio`) are remuxed unchanged.
        crf: quality on x264's 0-51 scale (VP9 for .webm, scaled).
        overwrite: replace an existing file (else :meth:`open` refuses).

    Timestamps must increase: a frame whose pts is not after the previous frame's is written one tick after
    it (the :class:`~nightvision.io.video.VideoWriter` contract), with a warning once per sink.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float,
        time_base: Fraction,
        audio_template: Any = None,
        crf: int = 18,
        overwrite: bool = False,
    ) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self._fps, self._time_base = fps or 30.0, time_base
        self._audio_template = audio_template
        self._crf = crf
        self._overwrite = overwrite
        self._writer: VideoWriter | None = None
        self._made: list[Path] = []  # folders made for the file, removed again if it is given up
        self._size: tuple[int, ...] = ()
        self._audio_waiting: list[AudioPacket] = []
        self._last_pts: int | None = None
        self._warned_pts = False

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written if self._writer is not None else 0

    def _open(self) -> None:
        _refuse_existing(self.path, self._overwrite)
        self._made = missing_folders(self.path)
        ensure_parent(self.path)

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        frame = as_bgr8(frame)
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = VideoWriter(
                self.path,
                w,
                h,
                Fraction(self._fps).limit_denominator(1001),
                time_base=self._time_base,
                audio_template=self._audio_template,
                crf=self._crf,
            )
            for packet in self._audio_waiting:
                self._writer.write_audio(packet)
            self._audio_waiting = []
            self._size = frame.shape[:2]
        elif frame.shape[:2] != self._size:
            (h, w), (h0, w0) = frame.shape[:2], self._size
            raise OutputError(f"cannot write a {w}x{h} frame to {self.path}, a {w0}x{h0} video: a video has one size")
        self._check_pts(pts)
        self._writer.write(frame, pts)

    def _check_pts(self, pts: int) -> None:
        """Warn, once, that the writer moves a frame whose pts does not increase (the first such frame is the
        first one it moves: until then every pts was kept): silent, it made timing errors invisible."""
        last, self._last_pts = self._last_pts, pts
        if last is not None and pts <= last and not self._warned_pts:
            self._warned_pts = True
            log.warning(
                "%s: frame timestamps must increase, and pts %d follows %d: written at %d, one tick after the "
                "previous frame, as are later ones out of order (warned once per output)",
                self.path,
                pts,
                last,
                last + 1,
            )

    def write_audio(self, packet: AudioPacket) -> None:
        if self._writer is None:
            self._audio_waiting.append(packet)  # before the first frame: the writer is not made yet
        else:
            self._writer.write_audio(packet)

    def _close(self) -> None:
        if self._writer is None:
            remove_empty_folders(self._made)
            raise OutputError(f"no frame was written to {self.path}")
        self.written = self._writer.close()

    def _abort(self, keep_partial: bool) -> None:
        if self._writer is not None and keep_partial and self._writer.frames_written:
            self.written = self._writer.close(partial_path(self.path))
            return
        if self._writer is not None:
            self._writer.abort()
        remove_empty_folders(self._made)


class ImageFileSink(Sink):
    """One image file, written atomically in the depth its format holds (16-bit kept in PNG and TIFF,
    scaled to 8 bits for JPEG); grey and alpha are kept where the format has them."""

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self._overwrite = overwrite
        self._frame: np.ndarray | None = None
        self._made: list[Path] = []  # folders made for the file, removed again if it is given up

    def _open(self) -> None:
        if self.path.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(f"cannot write {self.path}: not an image format ({', '.join(sorted(IMAGE_SUFFIXES))})")
        _refuse_existing(self.path, self._overwrite)
        self._made = missing_folders(self.path)
        ensure_parent(self.path)

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if self._frame is not None:
            raise OutputError(f"{self.path} holds one image; write a sequence to a folder or frames/%06d.png")
        self._frame = frame

    def _close(self) -> None:
        if self._frame is None:
            remove_empty_folders(self._made)
            raise OutputError(f"no image was written to {self.path}")
        write_image(self.path, self._frame)
        self.written = self.path

    def _abort(self, keep_partial: bool) -> None:
        self._frame = None
        remove_empty_folders(self._made)


class ImageSequenceSink(Sink):
    """Numbered image files: ``folder/`` (PNG, ``%06d.png``) or a printf-style pattern."""

    def __init__(self, target: str, *, overwrite: bool = False) -> None:
        self.uri = target
        self.pattern = target if "%" in target else str(Path(target) / "%06d.png")
        self.count = 0
        self._overwrite = overwrite
        self._made: list[Path] = []  # folders this sink made, deepest first

    def _open(self) -> None:
        try:
            first = Path(self.pattern % 0)
        except (TypeError, ValueError) as err:
            raise OutputError(f"bad image pattern {self.pattern!r}: use one %d, e.g. frames/%06d.png") from err
        if first.suffix.lower() not in IMAGE_SUFFIXES:
            raise OutputError(f"cannot write {self.pattern}: not an image format ({', '.join(sorted(IMAGE_SUFFIXES))})")
        _refuse_existing(first, self._overwrite)
        self._made = [d for d in first.absolute().parents if not d.exists()]
        ensure_parent(first)

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        write_image(self.pattern % self.count, frame)
        self.count += 1

    def _close(self) -> None:
        """Warn when the folder goes on past this run's last frame (``overwrite`` over an earlier, longer run):
        those files read as part of the sequence. They are not removed: an output never destroys more than
        the frames it writes."""
        after = Path(self.pattern % self.count)
        if after.is_file():
            log.warning(
                "%s holds files after this run's last frame (%s and on), from an earlier run: they are not this "
                "run's; remove them, or write to a new folder", self.uri, after.name,
            )  # fmt: skip

    def _abort(self, keep_partial: bool) -> None:
        """The frames written stay (each is whole); a run that failed before its first frame leaves no empty
        folder of its own making behind."""
        if self.count == 0:
            for folder in self._made:
                try:
                    folder.rmdir()  # only if empty
                except OSError:
                    break


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>nightvision</title>
<style>
body { margin: 0; background: #000; }
#view { display: block; width: 100%; }
#stats { position: fixed; top: 6px; left: 6px; padding: 2px 8px; font: 14px/1.4 monospace; color: #7f7;
         background: rgba(0, 0, 0, 0.6); border-radius: 3px; }
</style></head>
<body><img id="view" src="/stream.mjpg" alt="nightvision live view"><div id="stats">connecting…</div>
<script>
const stats = document.getElementById("stats");
async function tick() {
  try {
    const s = await (await fetch("/stats", {cache: "no-store"})).json();
    stats.textContent = `${s.fps.toFixed(1)} fps · ${s.width}x${s.height} · ${s.clients} viewer(s)`;
  } catch (err) {
    stats.textContent = "no connection";
  }
  setTimeout(tick, 1000);
}
tick();
</script></body></html>
"""


class MjpegSink(Sink):
    """Serve the newest frame as MJPEG over HTTP, for a browser on a headless box.

    ========================  ==================================================================
    path                      what
    ========================  ==================================================================
    ``/``                     a viewer page: the stream, with an overlay of the rate (from /stats)
    ``/stream.mjpg``          the stream (``multipart/x-mixed-replace``)
    ``/snapshot.jpg``         the newest frame
    ``/stats``                JSON: ``fps`` (frames written a second, over the last 2 s), ``frames``,
                              ``width``, ``height``, ``clients`` (streams being watched), ``encoded``
    ========================  ==================================================================

    Any other path is a 404. The server starts in :meth:`open` (port 0: any free port; :attr:`port` and
    :attr:`uri` then say which; it binds ``host``, 127.0.0.1 unless told otherwise) and stops in :meth:`close`.

    The pipeline never waits for a viewer: :meth:`write` only keeps a reference to the newest frame. JPEG
    encoding happens in the viewers' threads, at most once per frame, only for frames someone asks for, and
    at most ``max_fps`` times a second (0: no limit), whatever the pipeline's rate and however many watch;
    each viewer gets the newest frame when it is ready for one (a slow viewer skips frames; nothing queues up
    per viewer), and one that takes no data for ``send_timeout`` seconds is dropped. At most ``max_clients``
    streams at once; more get a 503.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8090,
        *,
        quality: int = 80,
        max_fps: float = 30.0,
        max_clients: int = 64,
        send_timeout: float = 10.0,
    ) -> None:
        if max_fps < 0:
            raise InputError(f"max_fps must be 0 (no limit) or more, got {max_fps:g}")
        self.host, self.port = host, port
        self.uri = f"http://{host}:{port}/"
        self.max_fps = max_fps
        self.max_clients = max_clients
        self.send_timeout = send_timeout
        self.frames = 0
        self.encoded = 0
        self._frame: np.ndarray | None = None
        self._jpeg: tuple[int, bytes, float] | None = None  # sequence number, JPEG, when encoded
        self._seq = 0
        self._times: collections.deque[float] = collections.deque(maxlen=512)
        self._cond = threading.Condition()
        self._encode_lock = threading.Lock()
        self._streams = 0
        self._closed = False
        self._quality = quality
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def clients(self) -> int:
        """Streams being watched now."""
        return self._streams

    def stats(self) -> dict[str, Any]:
        """What ``/stats`` serves (see the class docstring)."""
        now = time.monotonic()
        with self._cond:
            recent = [t for t in self._times if t > now - 2.0]
            frame = self._frame
        span = min(2.0, now - recent[0]) if recent else 0.0
        fps = (len(recent) - 1) / span if len(recent) > 1 and span > 0 else 0.0
        h, w = frame.shape[:2] if frame is not None else (0, 0)
        return {"fps": round(fps, 2), "frames": self.frames, "width": w, "height": h, "clients": self.clients,
                "encoded": self.encoded}  # fmt: skip

    def _open(self) -> None:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            timeout = sink.send_timeout  # a viewer that takes nothing for this long is dropped

            def log_message(self, format: str, *args: object) -> None:
                log.debug("mjpeg %s", format % args)

            def send_body(self, content_type: str, body: bytes, status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                    if path in ("/", "/index.html"):
                        self.send_body("text/html; charset=utf-8", _PAGE.encode())
                    elif path == "/stats":
                        self.send_body("application/json", json.dumps(sink.stats()).encode())
                    elif path == "/snapshot.jpg":
                        jpeg, _ = sink.wait_frame(0, 5.0)  # the first frame, or the newest
                        if jpeg is None:
                            self.send_body("text/plain; charset=utf-8", b"no frame yet\n", 503)
                        else:
                            self.send_body("image/jpeg", jpeg)
                    elif path == "/stream.mjpg":
                        self.stream()
                    else:
                        known = "/, /stream.mjpg, /snapshot.jpg, /stats"
                        self.send_body("text/plain; charset=utf-8", f"not found: {path} (try {known})\n".encode(), 404)

            def stream(self) -> None:
                with sink._cond:
                    full = sink._streams >= sink.max_clients
                    if not full:
                        sink._streams += 1
                if full:
                    self.send_body("text/plain; charset=utf-8", f"busy: {sink.max_clients} viewers already\n".encode(),
                                   503)  # fmt: skip
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    seq = 0
                    while not sink._closed:
                        jpeg, seq = sink.wait_frame(seq, 1.0)
                        if jpeg is None:
                            continue
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")
                finally:
                    with sink._cond:
                        sink._streams -= 1

        try:
            self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        except OSError as err:
            raise OutputError(
                f"cannot serve MJPEG on {self.host}:{self.port}: {bind_advice(err, f'http://{self.host}:PORT/')}"
            ) from err
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.uri = f"http://{self.host}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server", daemon=True)
        self._thread.start()
        log.warning("MJPEG viewer at %s", self.uri)

    def wait_frame(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest frame as JPEG once one past sequence number ``after`` is there (or ``(None, seq)`` on
        timeout), and its sequence number. Encoded here, in the caller's thread, at most once per frame and
        at most ``max_fps`` times a second: a caller that already has the newest JPEG waits for the next."""
        interval = 1.0 / self.max_fps if self.max_fps else 0.0
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed, timeout)
            if self._seq <= after:
                return None, self._seq
        cached = self._jpeg
        if cached is not None and cached[0] <= after and interval:  # this caller has it: pace it
            time.sleep(max(0.0, min(timeout, cached[2] + interval - time.monotonic())))
        with self._encode_lock:
            with self._cond:
                seq, frame = self._seq, self._frame
            cached, now = self._jpeg, time.monotonic()
            if cached is not None and cached[0] > after and (cached[0] == seq or now - cached[2] < interval):
                return cached[1], cached[0]
            if frame is None:
                return None, seq
            ok, buf = cv2.imencode(".jpg", as_bgr8(frame), [cv2.IMWRITE_JPEG_QUALITY, self._quality])
            if not ok:
                return None, seq
            self._jpeg = (seq, buf.tobytes(), now)
            self.encoded += 1
            return self._jpeg[1], seq

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        with self._cond:  # a reference only: output frames are fresh arrays, and encoding is the viewers' job
            self._frame = frame
            self._seq += 1
            self.frames += 1
            self._times.append(time.monotonic())
            self._cond.notify_all()

    def _close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)


class DisplaySink(Sink):
    """A window: q / Esc quit, space pauses, c toggles input|output side by side, s saves a snapshot.

    Uses a Tk window (Python's standard library, no GUI build of OpenCV needed) that lives in its own thread,
    started by :meth:`open`, since Tk must be driven from the thread that created it; frames reach it through
    a one-slot mailbox, so a slow screen never holds the pipeline back.
    """

    def __init__(self, title: str = "nightvision", snapshot_dir: str | Path = ".") -> None:
        self.uri = "display://"
        self.title = title
        self.snapshot_dir = Path(snapshot_dir)
        self.side_by_side = False
        self.paused = False
        self.shown = 0
        self._stop = False
        self._closed = threading.Event()
        self._mailbox: queue.Queue[tuple[np.ndarray, np.ndarray, int]] = queue.Queue(maxsize=1)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def _open(self) -> None:
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            self._thread.join(2.0)
            raise OutputError(
                f"cannot open a window ({self._error}); is there a display (DISPLAY)? "
                "Use --headless with a file or http:// output on a machine without one"
            ) from self._error

    @property
    def wants_stop(self) -> bool:
        return self._stop

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if self.paused:
            return
        with contextlib.suppress(queue.Empty):
            self._mailbox.get_nowait()  # drop the frame the window has not shown yet
        self._mailbox.put((as_bgr8(frame), as_bgr8(original), pts))

    def _run(self) -> None:
        try:
            window: _TkWindow | None = _TkWindow(self)
        except Exception as err:  # ImportError, TclError (no display)
            self._error = err
            self._ready.set()
            return
        self._ready.set()
        assert window is not None
        window.root.mainloop()
        # Tk objects must be freed by the thread that made them, not by a later collection elsewhere.
        window = None
        gc.collect()

    def _close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(2.0)


class _TkWindow:
    """The Tk side of :class:`DisplaySink`; lives and dies in the display thread."""

    def __init__(self, sink: DisplaySink) -> None:
        import tkinter as tk

        self.tk = tk
        self.sink = sink
        self.root = tk.Tk()
        self.root.title(sink.title)
        self.label = tk.Label(self.root, borderwidth=0, background="black")
        self.label.pack()
        self.photo: Any = None
        self.last: np.ndarray | None = None
        self.root.bind("<Key>", self.key)
        self.root.protocol("WM_DELETE_WINDOW", self.quit)
        self.root.after(0, self.poll)

    def quit(self) -> None:
        self.sink._stop = True

    def key(self, event: Any) -> None:
        k = str(event.keysym).lower()
        sink = self.sink
        if k in ("q", "escape"):
            self.quit()
        elif k == "space":
            sink.paused = not sink.paused
        elif k == "c":
            sink.side_by_side = not sink.side_by_side
        elif k == "s" and self.last is not None:
            path = sink.snapshot_dir / f"snapshot-{time.strftime('%Y%m%d-%H%M%S')}-{sink.shown}.png"
            write_image(path, self.last)
            log.warning("saved %s", path)

    def poll(self) -> None:
        sink = self.sink
        if sink._closed.is_set():
            self.root.destroy()
            return
        try:
            frame, original, _ = sink._mailbox.get_nowait()
        except queue.Empty:
            self.root.after(5, self.poll)
            return
        shown = np.hstack([original, frame]) if sink.side_by_side else frame
        ok, buf = cv2.imencode(".ppm", shown)
        if ok:
            self.photo = self.tk.PhotoImage(data=buf.tobytes(), format="PPM")  # Tk keeps no reference itself
            self.label.configure(image=self.photo)
            self.last = shown
            sink.shown += 1
        self.root.after(1, self.poll)


_SINK_SCHEMES = frozenset({"", "file", "null", "display", "rtsp", "http", "mjpeg"})
_OUTPUTS = "give a video or image file, a folder, http://HOST:PORT/, rtsp://HOST:PORT/PATH, display:// or null://"


def make_sink(
    uri: str | os.PathLike[str],
    *,
    fps: float = 30.0,
    time_base: Fraction | None = None,
    audio_template: Any = None,
    crf: int = 18,
    overwrite: bool = False,
) -> Sink:
    """The sink a URI names (see the module docstring), not yet opened.

    Args:
        uri: a video or image file, a folder or pattern, ``http://HOST:PORT/``, ``rtsp://HOST:PORT/PATH``,
            ``display://`` or ``null://``; a :class:`~pathlib.Path` names a file or folder.
        fps, time_base, audio_template: for video files (the source's rate, pts unit and audio stream); ``fps``
            is also the rate an RTSP output announces.
        crf: x264 quality of video files and RTSP outputs, 0-51.
        overwrite: replace existing files (else opening refuses).
    """
    name = os.fspath(uri) if isinstance(uri, os.PathLike) else uri  # a Path names a file or folder
    if not isinstance(name, str):
        raise InputError(f"an output is named by a string or a path, got {uri!r}; {_OUTPUTS}")
    uri = name
    if not uri.strip():
        raise InputError(f"the output name is empty; {_OUTPUTS}")
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower() if "://" in uri else ""
    if scheme not in _SINK_SCHEMES:
        raise InputError(f"unsupported output {uri!r}: {scheme}:// is not an output; {_OUTPUTS}")
    if not scheme and uri.rstrip("/").lower() in _SINK_SCHEMES - {"", "file"}:  # "-o null": a forgotten "://"
        raise InputError(f"did you mean {uri.rstrip('/')}://? (an output named {uri!r} would be a folder of images)")
    if scheme == "null":
        return NullSink()
    if scheme == "display":
        return DisplaySink()
    if scheme == "rtsp":
        from nightvision.stream.rtsp_out import RtspSink

        try:
            port = parsed.port
        except ValueError as err:
            raise InputError(f"bad RTSP output address {uri!r}: {err}") from err
        if parsed.username or parsed.password:
            raise InputError(
                "the RTSP output has no log-in: drop the user name and password from it, and serve it on 127.0.0.1 "
                "or a trusted network"
            )
        return RtspSink(parsed.hostname or "127.0.0.1", 8554 if port is None else port, parsed.path or "/night",
                        fps=fps, crf=crf)  # fmt: skip
    if scheme in ("http", "mjpeg"):
        try:
            port = parsed.port
        except ValueError as err:
            raise InputError(f"bad MJPEG address {uri!r}: {err}") from err
        return MjpegSink(parsed.hostname or "127.0.0.1", 8090 if port is None else port)
    path = Path(uri.removeprefix("file://"))
    if is_video(path):
        return VideoFileSink(
            path,
            fps=fps,
            time_base=time_base or Fraction(1, 1000),
            audio_template=audio_template,
            crf=crf,
            overwrite=overwrite,
        )
    if "%" in uri or uri.endswith("/") or path.is_dir() or not path.suffix:
        return ImageSequenceSink(uri, overwrite=overwrite)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFileSink(path, overwrite=overwrite)
    raise InputError(f"unsupported output {uri!r}: {_OUTPUTS}")


def open_sink(
    uri: str | os.PathLike[str],
    *,
    fps: float = 30.0,
    time_base: Fraction | None = None,
    crf: int = 18,
    overwrite: bool = False,
) -> Sink:
    """:func:`make_sink`, opened (a server listening, a window shown); an :class:`OutputError` if it cannot."""
    return make_sink(uri, fps=fps, time_base=time_base, crf=crf, overwrite=overwrite).open()
