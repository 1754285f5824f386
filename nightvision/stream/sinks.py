"""Frame sinks named by URI, with one lifecycle: ``open``, ``write(frame)``, ``close()`` (or ``with``).

=================================  ===============================================================
URI                                 sink
=================================  ===============================================================
``out.mp4`` (any video suffix)      an H.264 file, finalised (playable) on close, even after Ctrl-C
``frames/`` or ``frames/%06d.png``  an image sequence
``http://127.0.0.1:8090/``          an MJPEG viewer page for headless boxes (loopback unless a host is given)
``display://``                      a window (Tk; keys q / Esc, space, c, s)
``null://``                         discards frames (benchmarks)
=================================  ===============================================================
"""

from __future__ import annotations

import contextlib
import gc
import logging
import queue
import threading
import time
import urllib.parse
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from nightvision.errors import InputError, SourceError
from nightvision.io.images import write_image
from nightvision.io.video import VideoWriter, is_video

__all__ = ["DisplaySink", "ImageSequenceSink", "MjpegSink", "NullSink", "Sink", "VideoFileSink", "open_sink"]

log = logging.getLogger(__name__)


class Sink:
    """Base class. ``write`` gets the enhanced frame, the original, and the pts in ``time_base`` units."""

    uri: str = ""

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    @property
    def wants_stop(self) -> bool:
        """True when the user asked this sink to stop the pipeline (a window's q / Esc)."""
        return False

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NullSink(Sink):
    def __init__(self) -> None:
        self.uri = "null://"
        self.frames = 0

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.frames += 1


class VideoFileSink(Sink):
    """An H.264 video; the writer opens on the first frame (its size) and is finalised on close."""

    def __init__(self, path: str | Path, *, fps: float, time_base: Fraction) -> None:
        self.uri = str(path)
        self.path = Path(path)
        self._fps, self._time_base = fps or 30.0, time_base
        self._writer: VideoWriter | None = None

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if self._writer is None:
            h, w = frame.shape[:2]
            self._writer = VideoWriter(
                self.path, w, h, Fraction(self._fps).limit_denominator(1001), time_base=self._time_base
            )
        self._writer.write(frame, pts)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class ImageSequenceSink(Sink):
    """Numbered image files: ``folder/`` (PNG, ``%06d.png``) or a printf-style pattern."""

    def __init__(self, target: str) -> None:
        self.uri = target
        self.pattern = target if "%" in target else str(Path(target) / "%06d.png")
        self.count = 0

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        write_image(self.pattern % self.count, frame)
        self.count += 1


class MjpegSink(Sink):
    """Serve the newest frame as MJPEG: ``/`` a viewer page, ``/stream.mjpg`` the stream, ``/snapshot.jpg``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8090, *, quality: int = 80) -> None:
        self._jpeg: bytes | None = None
        self._seq = 0
        self._cond = threading.Condition()
        self._closed = False
        self._quality = quality
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                log.debug("mjpeg %s", format % args)

            def send_body(self, content_type: str, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path in ("/", "/index.html"):
                    page = b"<!doctype html><title>nightvision</title><body style='margin:0;background:#000'>"
                    self.send_body("text/html", page + b"<img src='/stream.mjpg' style='width:100%'></body>")
                elif self.path == "/snapshot.jpg":
                    jpeg, _ = sink.wait_frame(0, 5.0)  # the first frame, or the newest
                    if jpeg is None:
                        self.send_error(503, "no frame yet")
                        return
                    self.send_body("image/jpeg", jpeg)
                elif self.path == "/stream.mjpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.end_headers()
                    seq = 0
                    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                        while True:
                            jpeg, seq = sink.wait_frame(seq, 1.0)
                            if sink._closed:
                                return
                            if jpeg is None:
                                continue
                            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                            self.wfile.write(head.encode() + jpeg + b"\r\n")
                else:
                    self.send_error(404)

        try:
            self._server = ThreadingHTTPServer((host, port), Handler)
        except OSError as err:
            raise SourceError(f"cannot serve MJPEG on {host}:{port}: {err}") from err
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.uri = f"http://{host}:{self.port}/"
        self._thread = threading.Thread(target=self._server.serve_forever, name="mjpeg-server", daemon=True)
        self._thread.start()
        log.warning("MJPEG viewer at %s", self.uri)

    def wait_frame(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest JPEG once its sequence number is past ``after`` (or None on timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self._closed, timeout)
            return (self._jpeg if self._seq > after else None), self._seq

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        if ok:
            with self._cond:
                self._jpeg = buf.tobytes()
                self._seq += 1
                self._cond.notify_all()

    def close(self) -> None:
        if self._closed:
            return
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)


class DisplaySink(Sink):
    """A window: q / Esc quit, space pauses, c toggles input|output side by side, s saves a snapshot.

    Uses a Tk window (Python's standard library, no GUI build of OpenCV needed) that lives in its own thread,
    since Tk must be driven from the thread that created it; frames reach it through a one-slot mailbox, so a
    slow screen never holds the pipeline back.
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
        self._thread = threading.Thread(target=self._run, name="display", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise SourceError(
                f"cannot open a window ({self._error}); is there a display (DISPLAY)? "
                "Use --headless with a file or http:// output on a machine without one"
            ) from self._error

    @property
    def wants_stop(self) -> bool:
        return self._stop

    def write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        if self.paused:
            return
        with contextlib.suppress(queue.Empty):
            self._mailbox.get_nowait()  # drop the frame the window has not shown yet
        self._mailbox.put((frame, original, pts))

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

    def close(self) -> None:
        self._closed.set()
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


def open_sink(uri: str, *, fps: float = 30.0, time_base: Fraction | None = None) -> Sink:
    """Open the sink a URI names (see the module docstring)."""
    parsed = urllib.parse.urlsplit(uri)
    scheme = parsed.scheme.lower() if "://" in uri else ""
    if scheme == "null":
        return NullSink()
    if scheme == "display":
        return DisplaySink()
    if scheme in ("http", "mjpeg"):
        return MjpegSink(parsed.hostname or "127.0.0.1", parsed.port or 8090)
    path = Path(uri.removeprefix("file://"))
    if is_video(path):
        return VideoFileSink(path, fps=fps, time_base=time_base or Fraction(1, 1000))
    if "%" in uri or uri.endswith("/") or path.is_dir() or not path.suffix:
        return ImageSequenceSink(uri)
    raise InputError(f"unsupported output {uri!r}: a video file, a folder, http://HOST:PORT/, display:// or null://")
