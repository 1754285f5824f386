"""The MJPEG view opened in a real browser: headless Chromium, driven over the DevTools protocol (a minimal
websocket client below: nothing to install besides Chromium)."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from nightvision.stream.pipeline import Pipeline
from nightvision.stream.sinks import MjpegSink, make_sink
from nightvision.stream.sources import Read, ReadStatus, Source

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
SCALE = 2  # the page shows the 320x180 stream 640 wide


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


class DevTools:
    """A minimal client of one page's DevTools websocket: send a command, get its result."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(url)
        assert parts.hostname is not None and parts.port is not None
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            f"GET {parts.path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        self.next_id = 0

    def _recv(self) -> bytes:
        data = self.sock.recv(1 << 16)
        if not data:
            raise ConnectionError("the browser closed the DevTools connection")
        return data

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _message(self) -> dict[str, Any]:
        payload = b""
        while True:
            b0, b1 = self._exactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._exactly(2), "big")
            elif n == 127:
                n = int.from_bytes(self._exactly(8), "big")
            data = self._exactly(n)  # a server sends unmasked frames
            if b0 & 0x0F == 0x8:
                raise ConnectionError("the browser closed the DevTools connection")
            if b0 & 0x0F in (0x0, 0x1):
                payload += data
                if b0 & 0x80:
                    return dict(json.loads(payload))

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        data = json.dumps({"id": self.next_id, "method": method, "params": params}).encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (
            bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
            if n < 1 << 16 else bytes([0x80 | 127]) + n.to_bytes(8, "big")
        )  # fmt: skip
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
        while True:
            message = self._message()  # events (none enabled) and older replies are skipped
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def screenshot(self) -> np.ndarray:
        png = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def browser() -> Iterator[Callable[[str], DevTools]]:
    """Headless Chromium; ``browser(url)`` opens a page there. Everything is stopped at the end."""
    if CHROMIUM is None:
        pytest.skip("needs Chromium (apt install chromium)")
    profile = tempfile.mkdtemp(prefix="nightvision-chromium-")
    flags = [
        "--headless=new",
        "--no-sandbox",  # the sandbox needs user namespaces, absent in containers and as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--mute-audio",
        "--force-device-scale-factor=1",
        "--window-size=640,480",
        f"--user-data-dir={profile}",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    proc = subprocess.Popen(
        [CHROMIUM, *flags], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    pages: list[DevTools] = []
    try:
        active = Path(profile) / "DevToolsActivePort"
        wait_until(lambda: active.exists() and active.read_text().count("\n") >= 1, 90, "Chromium to start")
        port = int(active.read_text().split()[0])

        def open_page(url: str) -> DevTools:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
            target = json.loads(urllib.request.urlopen(request, timeout=60).read())
            page = DevTools(target["webSocketDebuggerUrl"])
            pages.append(page)
            return page

        yield open_page
    finally:
        for page in pages:
            page.close()
        try:  # Chromium runs as a group of processes: stop the whole group
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


class MovingBox(Source):
    """A live 320x180 scene at ``fps``: a still textured ground (never changes) and a white box 30 pixels
    square moving right by 8 pixels a frame along rows 100-130."""

    live = True

    def __init__(self, fps: float = 10.0) -> None:
        self.uri = "test://moving-box"
        self.fps = fps
        rng = np.random.default_rng(0)
        ground = cv2.resize(
            rng.integers(20, 90, (18, 32, 3), dtype=np.uint8), (320, 180), interpolation=cv2.INTER_NEAREST
        )
        self.ground = ground
        self.n = 0
        self.next = 0.0

    def _read(self, timeout: float) -> Read:
        now = time.monotonic()
        if now < self.next:
            time.sleep(min(timeout, self.next - now))
            return Read(ReadStatus.TIMEOUT)
        self.next = max(self.next, now) + 1 / self.fps
        frame = self.ground.copy()
        x = (self.n * 8) % 290
        frame[100:130, x : x + 30] = 255
        self.n += 1
        return Read(ReadStatus.FRAME, frame, None, time.monotonic())


@pytest.mark.slow
def test_the_mjpeg_page_in_chromium_moves_and_shows_the_rate(browser: Callable[[str], DevTools]) -> None:
    sink = MjpegSink("127.0.0.1", 0)
    pipeline = Pipeline(MovingBox(fps=10), None, [sink])
    runner = threading.Thread(target=pipeline.run)
    runner.start()
    try:
        wait_until(lambda: sink.is_open, 60, "the view to open")
        page = browser(sink.uri)
        wait_until(lambda: page.evaluate("document.getElementById('view').naturalWidth") == 320, 60, "the stream")

        def rate_shown() -> str | None:  # the page polls /stats once a second
            text = str(page.evaluate("document.getElementById('stats').textContent") or "")
            match = re.fullmatch(r"([\d.]+) fps · 320x180 · [1-9]\d* viewer\(s\)", text)
            return text if match and float(match.group(1)) > 0 else None

        text = wait_until(rate_shown, 60, "the overlay to show a rate and this viewer")
        fps = float(text.split()[0])
        assert 2.0 < fps < 20.0, text  # a 10 fps source, on a busy machine
        box = page.evaluate("JSON.stringify(document.getElementById('stats').getBoundingClientRect())")
        assert json.loads(box)["width"] > 50  # shown, not just in the page
        assert sink.clients >= 1
        first = page.screenshot()
        time.sleep(1.0)  # a second apart: the box has moved about 80 pixels
        second = page.screenshot()
        status, body = page.evaluate("fetch('/nope').then(async r => [r.status, await r.text()])")
    finally:
        pipeline.stop()
        runner.join(30)
    assert not runner.is_alive()
    assert status == 404 and body.startswith("not found: /nope"), (status, body)
    assert first.shape == second.shape and first.shape[1] == 640 and first.shape[0] >= 180 * SCALE
    diff = np.abs(first.astype(np.int16) - second.astype(np.int16)).max(axis=2)
    # where the picture moves (the box's rows): changed; elsewhere (away from the JPEG blocks the box touches
    # and from the overlay): exactly the same
    moving = diff[100 * SCALE : 130 * SCALE]
    assert (moving > 100).mean() > 0.05, "the picture did not move"
    still = np.concatenate([diff[40 * SCALE : 84 * SCALE], diff[146 * SCALE : 180 * SCALE]])
    assert still.max() <= 8 and still.mean() < 0.5, (still.max(), still.mean())
    assert first[100 * SCALE : 130 * SCALE].max() == 255  # the box is there (white)


def test_the_view_binds_loopback_unless_told_and_unknown_paths_are_404() -> None:
    sink = make_sink("http://:0/")
    assert isinstance(sink, MjpegSink) and sink.host == "127.0.0.1"
    with sink:
        assert sink.uri.startswith("http://127.0.0.1:")
        stats = json.loads(urllib.request.urlopen(sink.uri + "stats", timeout=10).read())
        assert stats == {"fps": 0.0, "frames": 0, "width": 0, "height": 0, "clients": 0, "encoded": 0}
        for path in ("nope", "stream.mjpg/x", "favicon.ico"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(sink.uri + path, timeout=10)
            assert caught.value.code == 404
            assert caught.value.read().decode() == (
                f"not found: /{path} (try /, /stream.mjpg, /snapshot.jpg, /stats)\n"
            )


def test_viewers_that_stall_or_vanish_never_hold_the_pipeline_back() -> None:
    rng = np.random.default_rng(0)
    colours = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40)]  # each with noise: big JPEGs
    frames = [np.clip(rng.integers(-40, 40, (360, 640, 3)) + c, 0, 255).astype(np.uint8) for c in colours]
    with MjpegSink("127.0.0.1", 0, send_timeout=30) as sink:
        request = b"GET /stream.mjpg HTTP/1.1\r\nHost: test\r\n\r\n"
        stalled = socket.create_connection(("127.0.0.1", sink.port), timeout=10)
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(request)  # ... and never reads: its server thread blocks in a write
        vanishing = [socket.create_connection(("127.0.0.1", sink.port), timeout=10) for _ in range(5)]
        for s in vanishing:
            s.sendall(request)
        sink.write(frames[0], frames[0], 0)
        wait_until(lambda: sink.clients == 6 and sink.encoded >= 1, 30, "six viewers")
        for s in vanishing:  # gone mid-stream, without a goodbye (a reset)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        slowest, encoded, start = 0.0, sink.encoded, time.monotonic()
        for i in range(1, 201):
            t0 = time.perf_counter()
            sink.write(frames[i % 4], frames[i % 4], i)
            slowest = max(slowest, time.perf_counter() - t0)
            time.sleep(0.002)
        assert slowest < 0.05, f"a write took {slowest * 1000:.0f} ms"
        # frames nobody asked for are never encoded, and never more than max_fps a second
        assert sink.encoded - encoded <= sink.max_fps * (time.monotonic() - start) + 2
        wait_until(lambda: sink.clients == 1, 30, "the vanished viewers to be let go")  # the stalled one stays

        def newest() -> bool:  # a new viewer gets the newest frame (within 1 / max_fps s), not a backlog
            with urllib.request.urlopen(sink.uri + "snapshot.jpg", timeout=10) as reply:
                jpeg = cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_COLOR)
            return bool(np.abs(jpeg.mean(axis=(0, 1)) - colours[200 % 4]).max() < 8)

        wait_until(newest, 5, "the last frame written")
        stalled.close()
