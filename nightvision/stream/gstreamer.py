"""``gst://PIPELINE``: a GStreamer pipeline run by ``gst-launch-1.0`` in a child process, its frames read
from a pipe, so that it works with any OpenCV (the pip wheels have no GStreamer).

The pipeline is what you would give ``gst-launch-1.0`` in a shell (quote the same way; a trailing
``! appsink``, as OpenCV wants it, is dropped). nightvision appends
``! videoconvert ! video/x-raw,format=BGR ! fdsink`` writing into a pipe, and reads the frame size and rate
from the caps that ``gst-launch-1.0 -v`` prints. Examples::

    gst://videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1
    gst://v4l2src device=/dev/video0 ! video/x-raw,width=1280,height=720
    gst://rtspsrc location=rtsp://cam/stream latency=100 ! rtph264depay ! h264parse ! avdec_h264
    # Jetson: CSI camera, and hardware H.264 decoding of an RTSP camera
    gst://nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1
         ! nvvidconv ! video/x-raw,format=BGRx
    gst://rtspsrc location=rtsp://cam/stream latency=100 ! rtph264depay ! h264parse ! nvv4l2decoder
         ! nvvidconv ! video/x-raw,format=BGRx

A pipeline that does not parse, names an element that is not installed, or fails to start ends with one
line naming the pipeline (passwords in it masked) and GStreamer's reason; so does one that fails mid-run
(elements such as ``rtspsrc`` retry on their own first). The child process is stopped and reaped on close.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import threading
import time
import weakref
from typing import IO

import numpy as np

from nightvision.errors import InputError, SourceError
from nightvision.stream.sources import Read, ReadStatus, Source, redact

__all__ = ["GstSource", "launch_args"]

log = logging.getLogger(__name__)

SINK_NAME = "nightvision_out"
_CAPS = re.compile(rf"{SINK_NAME}\.GstPad:sink: caps = (.*)")
_APPSINK = re.compile(r"!\s*appsink(\s+[\w-]+=\S+)*\s*$")


def _field(caps: str, name: str, kind: str) -> str | None:
    match = re.search(rf"\b{name}=\({kind}\)([^,\s]+)", caps)
    return match.group(1) if match else None


def launch_args(pipeline: str, fd: int, executable: str = "gst-launch-1.0") -> list[str]:
    """The ``gst-launch-1.0`` command line that runs ``pipeline`` and writes BGR frames to ``fd``.

    Raises :class:`InputError` for an empty pipeline or unbalanced quotes."""
    text = _APPSINK.sub("", pipeline.strip()).strip()
    if not text:
        raise InputError("gst:// needs a pipeline, e.g. gst://videotestsrc ! video/x-raw,width=640,height=360")
    try:
        words = shlex.split(text)  # split as a shell would: users copy the pipeline of a working shell command
    except ValueError as err:
        raise InputError(f"GStreamer pipeline {redact(pipeline)!r}: {err} (unbalanced quotes)") from err
    tail = ["videoconvert", "!", "video/x-raw,format=BGR", "!", "fdsink", f"name={SINK_NAME}", f"fd={fd}", "sync=false"]
    return [executable, "-v", *words, "!", *tail]


def _watch_stdout(stream: IO[bytes], caps: list[str], seen: threading.Condition) -> None:
    """Collect the caps of nightvision's fdsink from what ``gst-launch-1.0 -v`` prints."""
    for raw in stream:
        match = _CAPS.search(raw.decode(errors="replace"))
        if match:
            with seen:
                caps.append(match.group(1))
                seen.notify_all()
    with seen:
        seen.notify_all()


def _watch_stderr(stream: IO[bytes], lines: collections.deque[str]) -> None:
    """Keep the last lines ``gst-launch-1.0`` printed on stderr (its errors)."""
    for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if line:
            lines.append(line)
            log.debug("gst-launch-1.0: %s", line)


def _stop(proc: subprocess.Popen[bytes], fd: int) -> None:
    """Stop gst-launch-1.0 (SIGTERM, then SIGKILL after 3 s), reap it and close the frame pipe."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(3.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with contextlib.suppress(OSError):
        os.close(fd)


class GstSource(Source):
    """Frames of a GStreamer pipeline (see the module docstring) as ``(H, W, 3)`` uint8 BGR.

    Read as a live source (the pipeline keeps the newest frame). A pipeline that ends (EOS) is the END of
    the input; one that fails is an ERROR naming the pipeline and the reason.

    Args:
        pipeline: the pipeline, without ``gst://``.
        start_timeout: seconds to wait for the pipeline to negotiate its first frame size.
        executable: the ``gst-launch-1.0`` to run.
    """

    live = True

    def __init__(self, pipeline: str, *, start_timeout: float = 15.0, executable: str = "gst-launch-1.0") -> None:
        self.uri = f"gst://{pipeline}"
        self.pipeline = pipeline
        self.start_timeout = start_timeout
        self._executable = executable
        self._proc: subprocess.Popen[bytes] | None = None
        self._fd = -1
        self._caps: list[str] = []
        self._caps_seen = threading.Condition()
        self._stderr: collections.deque[str] = collections.deque(maxlen=40)
        self._threads: list[threading.Thread] = []
        self._shape: tuple[int, int, int] = (0, 0, 0)  # height, width, row stride in bytes
        self._buf = bytearray()
        self._ended = False
        self._finalizer: weakref.finalize | None = None

    @property
    def pid(self) -> int | None:
        """The ``gst-launch-1.0`` process id while it runs (None before open)."""
        return self._proc.pid if self._proc is not None else None

    def _fail(self, reason: str) -> SourceError:
        return SourceError(f"GStreamer pipeline {redact(self.pipeline)!r} failed: {redact(reason)}")

    def _reason(self) -> str:
        """GStreamer's reason for a failure, from what gst-launch-1.0 printed."""
        lines = list(self._stderr)
        for line in lines:
            if line.startswith("WARNING: erroneous pipeline:"):
                reason = line.split(":", 2)[2].strip()
                missing = re.match(r'no element "([^"]+)"', reason)
                if missing:
                    name = missing.group(1)
                    reason += f" (not installed? `gst-inspect-1.0 {name}` says which plugin has it)"
                return reason
            match = re.match(r"ERROR: from element (\S+): (.*)", line)
            if match:
                element = match.group(1).rsplit(":", 1)[-1]
                return f"{element}: {match.group(2).strip().rstrip('.')}"
        for line in lines:
            if line.startswith("ERROR"):
                return line.removeprefix("ERROR:").strip()
        code = self._proc.returncode if self._proc is not None else None
        return f"gst-launch-1.0 exited with code {code}" + (f": {lines[-1]}" if lines else "")

    def _open(self) -> None:
        executable = shutil.which(self._executable)
        if executable is None:
            raise SourceError(
                f"gst:// needs GStreamer's {self._executable}: install it (Debian/Ubuntu: apt install "
                "gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good; JetPack has it)"
            )
        read_fd, write_fd = os.pipe()
        try:
            args = launch_args(self.pipeline, write_fd, executable)
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(write_fd,),
                start_new_session=True,  # a Ctrl-C in the terminal reaches nightvision, which stops it
            )
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._fd = read_fd
        # a source dropped without close() (or left open at exit) still stops its process
        self._finalizer = weakref.finalize(self, _stop, self._proc, read_fd)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        # the watchers hold no reference to this source, so that dropping it stops the process (the finalizer)
        for thread in (
            threading.Thread(
                target=_watch_stdout, args=(self._proc.stdout, self._caps, self._caps_seen), name="gst-stdout",
                daemon=True,
            ),
            threading.Thread(target=_watch_stderr, args=(self._proc.stderr, self._stderr), name="gst-stderr",
                             daemon=True),
        ):  # fmt: skip
            thread.start()
            self._threads.append(thread)
        try:
            self._wait_for_caps()
        except BaseException:
            self._close()
            raise

    def _wait_for_caps(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        with self._caps_seen:
            while not self._caps:
                if self._proc.poll() is not None:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise self._fail(
                        f"no frame within {self.start_timeout:g} s (is the camera or stream there? try the pipeline "
                        f"with gst-launch-1.0 -v)"
                    )
                self._caps_seen.wait(min(left, 0.1))
        if not self._caps:
            self._proc.wait()
            for thread in self._threads:
                thread.join(2.0)  # the rest of what it printed
            raise self._fail(self._reason())
        self._shape = self._parse(self._caps[0])

    def _parse(self, caps: str) -> tuple[int, int, int]:
        width, height = _field(caps, "width", "int"), _field(caps, "height", "int")
        if width is None or height is None:
            raise self._fail(f"its caps give no frame size: {caps}")
        rate = _field(caps, "framerate", "fraction")
        if rate and "/" in rate:
            num, den = rate.split("/")
            self.fps = float(num) / float(den) if float(den) else 0.0
        w, h = int(width), int(height)
        return h, w, (w * 3 + 3) & ~3  # GStreamer pads each row to 4 bytes

    def _read(self, timeout: float) -> Read:
        if self._ended:
            return Read(ReadStatus.END)
        with self._caps_seen:
            if len(self._caps) > 1 and self._parse(self._caps[-1]) != self._shape:
                (h0, w0, _), (h, w, _) = self._shape, self._parse(self._caps[-1])
                return Read(
                    ReadStatus.ERROR,
                    error=f"GStreamer pipeline {redact(self.pipeline)!r} changed its frame size from {w0}x{h0} to "
                    f"{w}x{h}; "
                    f"add `! videoscale ! video/x-raw,width={w0},height={h0}` to keep one size",
                )
        height, width, stride = self._shape
        size = stride * height
        deadline = time.monotonic() + timeout
        while len(self._buf) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._fd], [], [], left)[0]:
                return Read(ReadStatus.TIMEOUT)
            chunk = os.read(self._fd, max(size - len(self._buf), 65536))
            if not chunk:
                return self._end()
            self._buf += chunk
        data, self._buf = bytes(self._buf[:size]), self._buf[size:]
        rows = np.frombuffer(data, np.uint8).reshape(height, stride)
        frame = rows[:, : width * 3].reshape(height, width, 3).copy()
        return Read(ReadStatus.FRAME, frame, None, time.monotonic())

    def _end(self) -> Read:
        assert self._proc is not None
        try:
            code = self._proc.wait(5.0)
        except subprocess.TimeoutExpired:
            return Read(ReadStatus.ERROR, error=self._fail("it closed its output but kept running").args[0])
        for thread in self._threads:
            thread.join(2.0)
        if code != 0:
            return Read(ReadStatus.ERROR, error=self._fail(self._reason()).args[0])
        self._ended = True
        return Read(ReadStatus.END)

    def _close(self) -> None:
        proc = self._proc
        if self._finalizer is not None:
            self._finalizer()  # stops and reaps the process, closes the pipe
        self._fd = -1
        for thread in self._threads:
            thread.join(2.0)
        if proc is not None:
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
