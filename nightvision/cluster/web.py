"""The one HTTP port of ``nightvision serve`` (standard library ``ThreadingHTTPServer``; loopback by default).

===========================  ====================================================================================
path                          what
===========================  ====================================================================================
``/``                         an index page: every camera's live view and status (refreshed every 2 s)
``/cam/NAME/``                one camera's page
``/cam/NAME/stream.mjpg``     its enhanced video as MJPEG (``multipart/x-mixed-replace``)
``/cam/NAME/snapshot.jpg``    its newest enhanced frame as JPEG (503 while it has none)
``/health``                   JSON: ``{"status": "ok" | "degraded", "cameras": {NAME: {"state", "reason",
                              "restarts", "last_frame_age_s", "frames_out", "fps_out", "where", ...}}}``; state is
                              ``up``, ``starting``, ``restarting`` or ``down``. HTTP 200 when every camera is up,
                              503 otherwise (a load balancer or probe sees any camera that is not delivering).
``/metrics``                  Prometheus text format (:mod:`nightvision.cluster.metrics`)
===========================  ====================================================================================

Frames reach the views through one relay per camera: it asks the camera's worker for new frames only while
someone watches (a stream open, a snapshot asked for in the last few seconds), however many viewers there are.
"""

from __future__ import annotations

import contextlib
import errno
import html
import json
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from nightvision.cluster.metrics import CONTENT_TYPE, camera_metrics
from nightvision.cluster.supervisor import Supervisor, WorkerLost
from nightvision.errors import OutputError
from nightvision.io.atomic import describe_os_error

__all__ = ["FrameRelay", "WebServer"]

log = logging.getLogger(__name__)

DEMAND = 3.0  # seconds a snapshot request keeps the relay fetching


class FrameRelay:
    """The newest JPEG of one camera, fetched from its current worker while someone wants it."""

    def __init__(self, supervisor: Supervisor, name: str) -> None:
        self.supervisor = supervisor
        self.name = name
        self.seq = 0
        self.jpeg: bytes | None = None
        self._fetched = 0.0  # when the newest frame arrived
        self._viewers = 0
        self._demand_until = 0.0
        self._cond = threading.Condition()
        self._wake = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"relay-{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._wake.set()
        self._thread.join(2.0)

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Keep the relay fetching while a stream is open."""
        with self._cond:
            self._viewers += 1
        self._wake.set()
        try:
            yield
        finally:
            with self._cond:
                self._viewers -= 1

    def wait_frame(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        """The newest JPEG once its number is past ``after`` (None on timeout or when closing)."""
        with self._cond:
            self._cond.wait_for(lambda: self.seq > after or self._closed, timeout)
            return (self.jpeg if self.seq > after else None), self.seq

    def snapshot(self, timeout: float) -> bytes | None:
        """A recent frame: the relay's newest when it is under a second old, else the next one to come."""
        with self._cond:
            self._demand_until = time.monotonic() + DEMAND
            fresh = self.jpeg is not None and time.monotonic() - self._fetched < 1.0
            after = self.seq - 1 if fresh else self.seq
        self._wake.set()
        jpeg, _ = self.wait_frame(after, timeout)
        return jpeg

    def _wanted(self) -> bool:
        with self._cond:
            return self._viewers > 0 or time.monotonic() < self._demand_until

    def _loop(self) -> None:
        generation, after = -1, 0
        while not self._closed:
            if not self._wanted():
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            handle, gen = self.supervisor.handle(self.name)
            if handle is None:
                time.sleep(0.2)
                continue
            if gen != generation:
                generation, after = gen, 0  # a new worker numbers its frames from 1 again
            try:
                jpeg, seq = handle.wait_jpeg(after, 1.0)
            except WorkerLost:
                time.sleep(0.2)
                continue
            except Exception as err:  # a worker being replaced; the next loop asks the new one
                log.debug("relay %s: %s", self.name, err)
                time.sleep(0.2)
                continue
            if seq < after:  # the worker was replaced under the same generation: start over
                after = 0
                continue
            if jpeg is not None:
                after = seq
                with self._cond:
                    self.jpeg, self._fetched = jpeg, time.monotonic()
                    self.seq += 1
                    self._cond.notify_all()


def _page(title: str, body: str) -> bytes:
    style = (
        "body{font-family:sans-serif;background:#111;color:#ddd;margin:1em}a{color:#8cf}"
        ".grid{display:flex;flex-wrap:wrap;gap:1em}.cam{background:#222;padding:.5em;width:480px}"
        ".cam img{width:100%;background:#000;min-height:120px}.up{color:#6c6}.down,.restarting{color:#e66}"
        ".starting{color:#fc6}code{color:#aaa}"
    )
    script = (
        "<script>async function tick(){try{const r=await fetch('/health');const h=await r.json();"
        "for(const [n,c] of Object.entries(h.cameras)){const e=document.getElementById('st-'+n);"
        "if(e){e.className=c.state;e.textContent=c.state+(c.reason?': '+c.reason:'')+"
        "(c.state==='up'?' \\u2014 '+c.fps_out+' fps':'')+' \\u2014 restarts '+c.restarts;}}}catch(e){}}"
        "setInterval(tick,2000);tick();</script>"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{style}</style></head><body>{body}{script}</body></html>"
    ).encode()


class WebServer:
    """Serve the views, ``/health`` and ``/metrics`` of a :class:`Supervisor`'s cameras on one port.

    The port is bound in the constructor (port 0: any free port; :attr:`port` says which), so a port in use
    fails before anything else starts: an :class:`~nightvision.errors.OutputError` of one line naming it.
    :meth:`start` serves in a thread; :meth:`close` stops (idempotent).
    """

    def __init__(self, supervisor: Supervisor, host: str = "127.0.0.1", port: int = 8080) -> None:
        self.supervisor = supervisor
        self.host = host
        try:
            self._server = ThreadingHTTPServer((host, port), self._handler())
        except OSError as err:
            raise OutputError(f"cannot serve on {host}:{port}: {_why(err, port)}") from err
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self._relays = {name: FrameRelay(supervisor, name) for name in supervisor.names}
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for relay in self._relays.values():
            relay.close()
        if self._thread is not None:
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(2.0)

    # --- pages ----------------------------------------------------------------------------------------------
    def health(self) -> tuple[int, dict[str, Any]]:
        """``/health``: HTTP status (200 all up, else 503) and the JSON body."""
        views = self.supervisor.views()
        ok = all(v.state == "up" for v in views)
        body = {"status": "ok" if ok else "degraded", "cameras": {v.name: v.health() for v in views}}
        return (200 if ok else 503), body

    def index(self) -> bytes:
        cams = []
        for v in self.supervisor.views():
            name = urllib.parse.quote(v.name)
            cams.append(
                f"<div class='cam'><h3><a href='/cam/{name}/'>{html.escape(v.name)}</a></h3>"
                f"<img src='/cam/{name}/stream.mjpg' alt=''><div id='st-{html.escape(v.name)}' "
                f"class='{v.state}'>{v.state}</div><code>{html.escape(v.uri)} · {html.escape(v.model)}</code></div>"
            )
        links = "<p><a href='/health'>/health</a> · <a href='/metrics'>/metrics</a></p>"
        return _page("nightvision", f"<h2>nightvision</h2>{links}<div class='grid'>{''.join(cams)}</div>")

    def camera_page(self, name: str) -> bytes:
        q = urllib.parse.quote(name)
        body = (
            f"<p><a href='/'>all cameras</a> · <a href='/cam/{q}/snapshot.jpg'>snapshot</a></p>"
            f"<h2>{html.escape(name)}</h2><div id='st-{html.escape(name)}'></div>"
            f"<img src='/cam/{q}/stream.mjpg' style='max-width:100%' alt=''>"
        )
        return _page(f"nightvision · {name}", body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        web = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "nightvision"

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http %s", format % args)

            def send_body(self, code: int, content_type: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the viewer went away
                    self.route(path)

            def route(self, path: str) -> None:
                if path in ("/", "/index.html"):
                    self.send_body(200, "text/html; charset=utf-8", web.index())
                elif path == "/health":
                    code, body = web.health()
                    self.send_body(code, "application/json", json.dumps(body, indent=1).encode() + b"\n")
                elif path == "/metrics":
                    self.send_body(200, CONTENT_TYPE, camera_metrics(web.supervisor.views()).encode())
                elif path.startswith("/cam/"):
                    name, _, what = path[len("/cam/") :].partition("/")
                    name = urllib.parse.unquote(name)
                    relay = web._relays.get(name)
                    if relay is None:
                        self.send_error(404, f"no camera named {name!r}")
                    elif what == "":
                        self.send_body(200, "text/html; charset=utf-8", web.camera_page(name))
                    elif what == "snapshot.jpg":
                        jpeg = relay.snapshot(5.0)
                        if jpeg is None:
                            self.send_error(503, f"camera {name!r} has no frame yet")
                        else:
                            self.send_body(200, "image/jpeg", jpeg)
                    elif what == "stream.mjpg":
                        self.stream(relay)
                    else:
                        self.send_error(404)
                else:
                    self.send_error(404)

            def stream(self, relay: FrameRelay) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command == "HEAD":
                    return
                seq = 0
                with relay.watching():
                    while not web._closed:
                        jpeg, seq = relay.wait_frame(seq, 1.0)
                        if jpeg is None:
                            continue
                        head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                        self.wfile.write(head.encode() + jpeg + b"\r\n")

        return Handler


def _why(err: OSError, port: int) -> str:
    if err.errno == errno.EADDRINUSE:
        return f"port {port} is already in use (choose another with --port, or port = ... in [serve])"
    if err.errno == errno.EACCES and port < 1024:
        return f"permission denied (port {port} is below 1024: choose --port 1024 or above)"
    if err.errno == errno.EADDRNOTAVAIL:
        return "this machine has no such address (use 127.0.0.1, or 0.0.0.0 for every interface)"
    if isinstance(err, socket.gaierror):
        return f"unknown host ({err.strerror or err})"
    return describe_os_error(err)
