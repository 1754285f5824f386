"""``nightvision serve CONFIG``: many cameras live, one pipeline actor per camera, one HTTP port.

>>> from nightvision.cluster.serve import serve
>>> serve("examples/serve.toml")                       # a local Ray instance; Ctrl-C stops
>>> serve("site.toml", address="auto", port=9000)       # the Ray cluster this machine belongs to

* The configuration (TOML, or YAML with PyYAML) lists cameras by URI with their model, options and outputs:
  :mod:`nightvision.cluster.serve_config` documents every key. It is checked completely before anything
  starts; a mistake is one :class:`~nightvision.errors.InputError` line naming the file, camera and key.
* Each camera runs in its own Ray actor (``cpus``/``gpus`` per camera, fractions allowed, so several
  cameras share one GPU), holding one :class:`~nightvision.stream.pipeline.Pipeline` in a thread; the model
  is loaded once per actor (:mod:`nightvision.cluster.camera`).
* A supervisor in this process restarts a camera that fails, stalls or loses its actor, with exponential
  backoff, without touching the others (:mod:`nightvision.cluster.supervisor`). A camera whose URI never opens
  is reported as ``down`` with the reason, retried with the same backoff, and the others run.
* One HTTP port (``127.0.0.1:8080`` unless told otherwise) serves an index page, each camera's MJPEG view,
  ``/health`` (200 when every camera is up, else 503) and ``/metrics`` in the Prometheus text format
  (:mod:`nightvision.cluster.web`, :mod:`nightvision.cluster.metrics`).

Where the cameras run: ``address`` (or ``[serve] address``) names a Ray cluster (``auto``, ``HOST:PORT``,
``ray://HOST:PORT``); without one, a local Ray instance is started for the server (given enough logical CPUs
for every camera: Ray's CPUs are bookkeeping, the cameras share the machine's cores) and shut down with it.
Without Ray installed, or with ``in_process=True``, the cameras run in threads of this process under the same
supervisor; a stalled camera's thread is then abandoned rather than killed, and ``cpus``/``gpus`` are ignored.

Stopping (a :class:`~nightvision.stream.pipeline.StopRequest` set by SIGINT/SIGTERM, or any object with
``is_set()``): every camera stops within a few seconds, recordings are finalised, the port is released, and
a Ray instance started here is shut down.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from nightvision.cluster.serve_config import CameraConfig, ServeConfig, load_config, with_overrides
from nightvision.cluster.supervisor import CameraView, Handle, RayHandle, Supervisor, ThreadHandle
from nightvision.cluster.web import WebServer
from nightvision.errors import InputError

__all__ = ["CameraServer", "ServeReport", "serve", "status_line"]

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _Stop(Protocol):
    def is_set(self) -> bool: ...


@dataclass
class ServeReport:
    """What a :func:`serve` call did: where it served, for how long, what stopped it, each camera at the end."""

    url: str
    seconds: float
    stopped_by: str
    mode: str  # "ray", "ray (ADDRESS)" or "in-process"
    cameras: list[CameraView] = field(default_factory=list)


class CameraServer:
    """The cameras of one configuration, supervised and served on one port (see the module docstring).

    Args:
        config: a :class:`ServeConfig` or the path of a TOML/YAML file.
        address: Ray cluster to use (over the config's ``[serve] address``); None: the config's, else a local
            Ray instance.
        host, port: where to serve (over the config's; port 0: any free port, see :attr:`port`).
        in_process: run the cameras in threads of this process instead of Ray actors.

    ``start()`` binds the port first (a port in use fails before anything starts), then joins Ray and starts
    every camera; ``stop()`` undoes all of it (idempotent). Usable as a context manager.
    """

    def __init__(
        self,
        config: ServeConfig | str | Path,
        *,
        address: str | None = None,
        host: str | None = None,
        port: int | None = None,
        in_process: bool = False,
    ) -> None:
        if in_process and address is not None:
            raise InputError(f"--in-process runs the cameras here; it cannot also use the Ray cluster {address!r}")
        cfg = config if isinstance(config, ServeConfig) else load_config(config)
        self.config = with_overrides(cfg, address=address, host=host, port=port)
        self.in_process = in_process
        self.ray: ModuleType | None = None
        self.supervisor: Supervisor | None = None
        self.web: WebServer | None = None
        self._owns_ray = False
        self._started = 0.0

    @property
    def url(self) -> str:
        return self.web.url if self.web is not None else ""

    @property
    def port(self) -> int:
        return self.web.port if self.web is not None else 0

    @property
    def mode(self) -> str:
        if self.ray is None:
            return "in-process"
        return f"ray ({self.config.address})" if self.config.address else "ray (local instance)"

    def start(self) -> CameraServer:
        cfg = self.config
        self.supervisor = Supervisor(cfg, self._make_handle)
        self.web = WebServer(self.supervisor, cfg.host, cfg.port)
        if cfg.host not in LOOPBACK:
            log.warning("serving on %s: every camera view is open to anyone who can reach it", cfg.host)
        try:
            self.ray = None if self.in_process else self._connect()
            self.supervisor.start()
            self.web.start()
        except BaseException:
            self.stop()
            raise
        self._started = time.monotonic()
        log.info("serving %d camera(s) at %s (%s)", len(cfg.cameras), self.url, self.mode)
        return self

    def views(self) -> list[CameraView]:
        return self.supervisor.views() if self.supervisor is not None else []

    def handle(self, name: str) -> Handle | None:
        """The current worker of camera ``name`` (a :class:`RayHandle` holds its actor as ``.actor``)."""
        return self.supervisor.handle(name)[0] if self.supervisor is not None else None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the cameras (recordings finalised), the HTTP server, and a Ray instance started here."""
        if self.supervisor is not None:
            self.supervisor.stop(timeout)
        if self.web is not None:
            self.web.close()
        if self.ray is not None and self._owns_ray:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> CameraServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where cameras run ----------------------------------------------------------------------------------
    def _connect(self) -> ModuleType | None:
        from nightvision.cluster.connect import connect, ray_available

        cfg = self.config
        if not ray_available() and cfg.address is None:
            log.warning('Ray is not installed (pip install "nightvision[ray]"): running the cameras in-process')
            return None
        import ray

        self._owns_ray = not ray.is_initialized()
        needed = math.ceil(sum(cam.cpus for cam in cfg.cameras))
        ray_module = connect(cfg.address, num_cpus=max(os.cpu_count() or 1, needed), required=True)
        assert ray_module is not None
        with contextlib.suppress(Exception):
            have = ray_module.cluster_resources().get("CPU", 0.0)
            if have < sum(cam.cpus for cam in cfg.cameras):
                log.warning(
                    "the cameras ask for %g CPUs and the cluster has %g: some will wait to be scheduled",
                    sum(cam.cpus for cam in cfg.cameras),
                    have,
                )
        return ray_module

    def _make_handle(self, camera: CameraConfig) -> Handle:
        cfg = self.config
        if self.ray is None:
            return ThreadHandle(camera, jpeg_quality=cfg.jpeg_quality, overwrite=cfg.overwrite)
        return RayHandle(self.ray, camera, jpeg_quality=cfg.jpeg_quality, overwrite=cfg.overwrite)


def status_line(views: list[CameraView]) -> str:
    """One line for a terminal: how many cameras are up, then each camera's state, FPS and restarts."""
    up = sum(v.state == "up" for v in views)
    parts = []
    for v in views:
        if v.state == "up":
            parts.append(f"{v.name} {v.fps_out:.1f} fps" + (f" ({v.restarts} restarts)" if v.restarts else ""))
        else:
            parts.append(f"{v.name} {v.state.upper()}" + (f": {v.reason}" if v.reason else ""))
    return f"{up}/{len(views)} up | " + " | ".join(parts)


def serve(
    config_path: str | Path,
    *,
    address: str | None = None,
    host: str | None = None,
    port: int | None = None,
    in_process: bool = False,
    stop: _Stop | None = None,
    on_ready: Callable[[str], None] | None = None,
    on_status: Callable[[list[CameraView]], None] | None = None,
) -> ServeReport:
    """Serve the cameras of ``config_path`` until ``stop`` is set (or SIGINT/SIGTERM when it is None).

    Args:
        config_path: TOML (or YAML) configuration (:mod:`nightvision.cluster.serve_config`).
        address: Ray cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``) over the config's; None: the
            config's, else a local Ray instance.
        host, port: where to serve, over the config's (default ``127.0.0.1:8080``; port 0: any free one).
        in_process: cameras in threads of this process, no Ray.
        stop: polled five times a second; e.g. a :class:`~nightvision.stream.pipeline.StopRequest` from
            :func:`~nightvision.stream.pipeline.stop_on_signals`, or a ``threading.Event``.
        on_ready: called once with the URL when serving.
        on_status: called about once a second with every camera's state (see :func:`status_line`).

    Raises:
        InputError: the configuration is invalid, or the Ray address cannot be reached (one line).
        OutputError: the port cannot be bound (in use, not allowed).
    """
    server = CameraServer(config_path, address=address, host=host, port=port, in_process=in_process)
    with _stopper(stop) as request:
        with _signal_handlers_kept():  # ray.init installs its own SIGTERM handler (it exits at once)
            server.start()
        t0 = time.monotonic()
        listening = getattr(request, "listening", None)  # a StopRequest: a signal now asks for a clean stop
        try:
            with listening() if listening is not None else contextlib.nullcontext():
                if on_ready is not None:
                    on_ready(server.url)
                next_status = 0.0
                while not request.is_set():
                    time.sleep(0.2)
                    if on_status is not None and time.monotonic() >= next_status:
                        next_status = time.monotonic() + 1.0
                        on_status(server.views())
        except KeyboardInterrupt:  # a second signal: stop without waiting for the cameras
            server.stop(timeout=1.0)
            raise
        finally:
            server.stop()
        views = server.views()  # after the stop: with the frames written while the cameras stopped
    reason = getattr(request, "reason", "") or "stopped"
    return ServeReport(server.url, time.monotonic() - t0, reason, server.mode, views)


@contextlib.contextmanager
def _signal_handlers_kept() -> Iterator[None]:
    """Put back the SIGINT/SIGTERM handlers the block replaced (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in before.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)


@contextlib.contextmanager
def _stopper(stop: _Stop | None) -> Iterator[Any]:
    if stop is not None:
        yield stop
        return
    from nightvision.stream.pipeline import stop_on_signals

    with stop_on_signals() as request:
        yield request
