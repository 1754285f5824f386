"""RTSP in and out against real servers and clients.

In: GStreamer's RTSP server (tests/rtsp_server.py, run by the system Python) serves a camera-like H.264
stream whose frames carry their number as a stripe code; the source reads it, survives a restart of the
server (bounded backoff, the reconnect and the lost frames counted), and fails with one line on an address
that never answers and on wrong credentials. Out: :class:`RtspSink` is read back by FFmpeg's RTSP client
(PyAV), over TCP and UDP.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nightvision.enhancer import Enhancer
from nightvision.errors import OutputError, SourceError
from nightvision.stream.pipeline import Pipeline, mean_luma_any
from nightvision.stream.sinks import MjpegSink, NullSink, Sink, make_sink
from nightvision.stream.sources import StreamSource, SyntheticSource, open_source
from nightvision.stream.stripecode import BAND, draw_code, ms_since, read_code
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"


def _rtsp_server_missing() -> str:
    if not Path(SYSTEM_PYTHON).exists() or shutil.which("gst-inspect-1.0") is None:
        return "no system Python or GStreamer"
    probe = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer",
        ],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        return "the system Python has no GstRtspServer bindings"
    for element in ("x264enc", "rtph264pay", "appsrc"):
        if subprocess.run(["gst-inspect-1.0", element], capture_output=True, timeout=60).returncode != 0:
            return f"GStreamer has no {element}"
    return ""


_MISSING = _rtsp_server_missing()
needs_server = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"needs GStreamer's RTSP server ({_MISSING}): apt install gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 "
    "python3-gst-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


class RtspServer:
    """tests/rtsp_server.py in a child process: started, restarted and always stopped by the test."""

    def __init__(self, port: int, *args: str) -> None:
        self.port = port
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 60.0) -> float:
        """Start it and wait for READY; the time it was ready (``time.monotonic()``)."""
        cmd = [SYSTEM_PYTHON, str(ROOT / "tests" / "rtsp_server.py"), "--port", str(self.port), *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        if not lines or not lines[0].startswith("READY"):
            self.stop()
            raise AssertionError(f"the RTSP server did not start: {lines} {self.proc.stderr.read()[-2000:]}")
        self.url = lines[0].split()[1]
        return time.monotonic()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., RtspServer]]:
    """Make RTSP servers; every one is stopped at the end, whatever happened."""
    made: list[RtspServer] = []

    def make(*args: str, port: int = 0) -> RtspServer:
        server = RtspServer(port or free_port(), *args)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


class CodeSink(Sink):
    """Records the stripe code of every frame it gets (None where there is none)."""

    def __init__(self) -> None:
        self.uri = "codes://"
        self.codes: list[int | None] = []
        self.times: list[float] = []

    def _write(self, frame: np.ndarray, original: np.ndarray, pts: int) -> None:
        self.codes.append(read_code(frame))
        self.times.append(time.monotonic())


# --- RTSP in -------------------------------------------------------------------------------------------------
@needs_server
@pytest.mark.slow
def test_an_rtsp_camera_is_read_and_survives_a_server_restart(
    servers: Callable[..., RtspServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nightvision.stream.sources")
    server = servers("--fps", "25")
    server.start()
    source = StreamSource(server.url, backoff=0.25, max_backoff=1.0)
    sink = CodeSink()
    pipeline = Pipeline(source, None, [sink])
    stats: list[Any] = []
    runner = threading.Thread(target=lambda: stats.append(pipeline.run()))
    runner.start()
    try:
        wait_until(lambda: len(sink.codes) >= 25, 60, "a second of frames")
        assert source.fps == 25.0 and not source.down
        server.stop()  # the camera goes away ...
        wait_until(lambda: source.down, 30, "the source to notice")
        wait_until(lambda: caplog.text.count("cannot reopen") >= 3, 30, "three failed tries")
        before = len(sink.codes)
        ready = server.start()  # ... and comes back on the same port
        wait_until(lambda: len(sink.codes) >= before + 25, 60, "a second of frames after the restart")
    finally:
        pipeline.stop()
        runner.join(30)
    assert not runner.is_alive() and stats
    codes = sink.codes
    assert None not in codes
    steps = np.diff(np.array(codes, dtype=np.int64))
    assert (steps > 0).all(), "frames out of order"
    gap = int(steps.max()) - 1  # the frames the camera sent while the server was away
    back = sink.times[int(np.argmax(steps)) + 1]
    assert gap > 25 and back > ready
    # the reconnect is counted, and so are the frames lost meanwhile (the gap times the rate, ±15 %)
    assert source.reconnects == 1 and stats[0].reconnects == 1 and not stats[0].source_down
    assert abs(source.lost - gap) <= max(3, 0.15 * gap), (source.lost, gap)
    assert stats[0].source_dropped >= source.lost
    # bounded backoff: the delays double up to max_backoff and stay there, so the stream is back within
    # about max_backoff of the server's return
    delays = [float(d) for d in re.findall(r"next try to reopen \S+ in ([\d.]+) s", caplog.text)]
    assert delays[:3] == [0.25, 0.5, 1.0] and max(delays) == 1.0, delays
    assert back - ready < 1.0 + 10.0, f"{back - ready:.1f} s from the server's return to the first frame"


def test_an_address_that_never_answers_ends_after_the_documented_tries() -> None:
    with socket.socket() as silent:  # accepts connections and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam"
        t0 = time.monotonic()
        with pytest.raises(SourceError) as caught:
            StreamSource(url, timeout_ms=400, retries=3, backoff=0.1).open()
        elapsed = time.monotonic() - t0
    message = str(caught.value)
    assert message.startswith(f"cannot open {url}: no answer within 0.4 s (3 tries in ") and "\n" not in message
    assert 3 * 0.9 * 0.4 + 0.1 + 0.2 <= elapsed < 30
    refused = f"rtsp://127.0.0.1:{free_port()}/cam"
    with pytest.raises(SourceError, match=r"connection refused \(nothing listens on that port\) \(2 tries in"):
        open_source(refused, retries=2)


def test_ctrl_c_while_a_stream_is_connecting_stops_at_once() -> None:
    """A Ctrl-C that lands inside FFmpeg's blocking open used to be lost: the tries went on to the end."""
    with socket.socket() as silent:  # accepts connections and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"rtsp://127.0.0.1:{silent.getsockname()[1]}/cam"
        proc = subprocess.Popen(
            [sys.executable, "-m", "nightvision", "run", url, "--headless", "--retries", "5"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(2.5)  # the interpreter is up and the first try (3 s) is under way
        assert proc.poll() is None, proc.communicate()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        stopped_in = time.monotonic() - t0
    assert proc.returncode == 130 and "interrupted by SIGINT" in err and "Traceback" not in err, err
    assert stopped_in < 2.0, f"{stopped_in:.1f} s (5 tries of 3 s would have taken 15 s and more)"


@needs_server
def test_wrong_credentials_end_with_one_line_that_hides_the_password(
    servers: Callable[..., RtspServer], tmp_path: Path
) -> None:
    server = servers("--user", "admin", "--password", "s3cret-pw")
    server.start()
    host = server.url.removeprefix("rtsp://")
    with open_source(f"rtsp://admin:s3cret-pw@{host}") as src:  # the right ones work
        wait_until(lambda: src.read(0.5).frame is not None, 60, "a frame")
    t0 = time.monotonic()
    with pytest.raises(SourceError) as caught:
        open_source(f"rtsp://admin:wrong-pw@{host}")
    assert time.monotonic() - t0 < 10  # refused credentials are not tried again
    assert str(caught.value) == (
        f"cannot open rtsp://admin:***@{host}: the server refused the user name or password (401 Unauthorized); "
        "check the credentials in the URL"
    )
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # nothing holds the password
    with pytest.raises(SourceError, match="wants a user name and password"):
        open_source(server.url)
    with pytest.raises(SourceError, match=r"no stream at that path \(404 Not Found\)"):
        open_source(f"rtsp://admin:s3cret-pw@{host}-nope")
    # and the command line: one line on stderr, exit 2, the password nowhere
    out = run_cli("run", f"rtsp://admin:wrong-pw@{host}", "--headless", "-q", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "wrong-pw" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "refused the user name or password" in lines[0] and "admin:***@" in lines[0], lines


# --- RTSP out ------------------------------------------------------------------------------------------------
def _read_rtsp(url: str, frames: int, transport: str = "tcp", timeout: float = 60.0) -> list[np.ndarray]:
    """``frames`` decoded frames (BGR) of an RTSP stream, read by FFmpeg's RTSP client (PyAV)."""
    import av

    options = {"rtsp_transport": transport, "analyzeduration": "0", "probesize": "32"}  # the SDP says what it is
    out: list[np.ndarray] = []
    with av.open(url, container_options=options, timeout=(timeout, timeout)) as container:
        for frame in container.decode(video=0):
            out.append(frame.to_ndarray(format="bgr24"))
            if len(out) == frames:
                break
    return out


def _feed(sink: Sink, stop: threading.Event, written: list[tuple[int, float]]) -> None:
    """Write frames with their number as a stripe code, a bright bar moving over a dark (40/255) ground."""
    i = 0
    while not stop.is_set():
        frame = np.full((180, 320, 3), 40, np.uint8)
        frame[80:140, (i * 6) % 280 : (i * 6) % 280 + 40] = 220
        draw_code(frame, i)
        sink.write(frame, frame, i)
        written.append((i, mean_luma_any(frame[2 * BAND :])))
        i += 1
        stop.wait(0.04)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_out_is_read_back_by_a_real_client(transport: str) -> None:
    sink = make_sink("rtsp://127.0.0.1:0/night", fps=25).open()
    assert sink.uri.startswith("rtsp://127.0.0.1:") and sink.uri.endswith("/night")
    stop, written = threading.Event(), []  # type: ignore[var-annotated]
    feeder = threading.Thread(target=_feed, args=(sink, stop, written), daemon=True)
    feeder.start()
    try:
        frames = _read_rtsp(sink.uri, 40, transport)
    finally:
        stop.set()
        feeder.join(5)
        sink.close()
    assert len(frames) == 40 and frames[0].shape == (180, 320, 3)
    codes = [read_code(f) for f in frames]
    assert None not in codes
    steps = np.diff(np.array(codes))
    assert (steps >= 1).all() and int((steps - 1).sum()) <= sink.skipped, codes  # nothing lost on the way
    luma = dict(written)
    for frame, code in zip(frames, codes, strict=True):
        assert abs(mean_luma_any(frame[2 * BAND :]) - luma[code]) < 3.0  # H.264 keeps the brightness
    assert sink.served == 1 and sink.clients == 0  # the client left when it had its frames


@pytest.mark.slow
def test_rtsp_out_of_the_pipeline_is_enhanced_and_timestamped() -> None:
    source = SyntheticSource(fps=15, width=320, height=180, stamp=True)
    sink = make_sink("rtsp://127.0.0.1:0/night", fps=15)
    pipeline = Pipeline(source, Enhancer("zero-dce++", threads=1), [sink], measure_luma=True)
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: sink.is_open, 60, "the RTSP output to open")
        frames = _read_rtsp(sink.uri, 20)
        received = time.monotonic()
    finally:
        pipeline.stop()
        runner.join(30)
    stats = pipeline.stats()
    assert not runner.is_alive() and len(frames) == 20
    luma = np.mean([mean_luma_any(f) for f in frames])
    assert luma > 1.5 * stats.luma_in  # enhanced: much brighter than the dark synthetic street
    assert abs(luma - stats.luma_out) < 0.15 * stats.luma_out
    latency = ms_since(read_code(frames[-1]) or 0, received)  # glass to glass, capture to decoded
    assert 0 < latency < 5000


def test_a_port_in_use_is_one_line_naming_it_and_nothing_is_left_open(tmp_path: Path) -> None:
    from nightvision.stream.jobs import run_stream

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OutputError) as caught:
            make_sink(f"rtsp://127.0.0.1:{port}/night").open()
        assert str(caught.value).startswith(f"cannot serve RTSP on 127.0.0.1:{port}: ") and "\n" not in str(
            caught.value
        )
        # a run whose RTSP port is taken does not start; the outputs it opened first are released
        view = free_port()
        with pytest.raises(OutputError, match=f"127.0.0.1:{port}"):
            run_stream(
                "synthetic://?fps=10&size=160x90&frames=10",
                [f"http://127.0.0.1:{view}/", f"rtsp://127.0.0.1:{port}/night"],
                enhancer=lambda: pytest.fail("the model must not load when an output cannot open"),  # type: ignore[arg-type,return-value]
            )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", view))  # the MJPEG view's port is free again


@pytest.mark.slow
def test_an_rtsp_output_that_fails_mid_run_leaves_the_others_running(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import nightvision.stream.rtsp_out as rtsp_out

    calls = [0]
    real = rtsp_out.split_annexb

    def breaks_after_ten(data: bytes) -> list[bytes]:
        calls[0] += 1
        if calls[0] > 10:
            raise RuntimeError("encoder exploded")
        return real(data)

    monkeypatch.setattr(rtsp_out, "split_annexb", breaks_after_ten)
    source = SyntheticSource(fps=20, width=160, height=90)
    rtsp, null, view = make_sink("rtsp://127.0.0.1:0/night", fps=20), NullSink(), MjpegSink("127.0.0.1", 0)
    pipeline = Pipeline(source, None, [rtsp, null, view], policy="lossless")
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: rtsp.is_open, 60, "the RTSP output to open")
        with contextlib.suppress(Exception):  # the client is cut off when the output breaks
            _read_rtsp(rtsp.uri, 100)
        wait_until(lambda: rtsp.error, 60, "the RTSP output to break")  # type: ignore[attr-defined]
        at_failure = null.frames
        wait_until(lambda: null.frames >= at_failure + 20, 60, "a second of frames after it broke")
    finally:
        pipeline.stop()
        runner.join(60)
    assert not runner.is_alive()
    stats = pipeline.stats()
    assert rtsp.error == "RTSP output " + rtsp.uri + " stopped: encoder exploded"  # type: ignore[attr-defined]
    assert "stopped: encoder exploded" in caplog.text
    assert stats.stopped_by == "stopped" and stats.dropped_stale == 0  # the run went on, losslessly, to the stop
    assert null.frames == view.frames == stats.frames_out >= at_failure + 20
