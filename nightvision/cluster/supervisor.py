"""Keeping every camera of ``nightvision serve`` running: one worker per camera, restarted when it fails.

The :class:`Supervisor` runs in the server process. It polls each camera's worker (a Ray actor, or a thread
in-process) twice a second, without ever waiting on one camera to look at another, and acts per camera:

* delivers frames: ``up``; after :data:`HEALTHY_AFTER` seconds up, its failure streak is forgotten;
* its source or model fails, or its source ends: ``down`` (the source did not open or ended) or
  ``restarting``; a new run starts in the same worker after the backoff (the model stays loaded);
* stalls (no new frame for ``stall_seconds``, or no first frame within ``start_timeout`` of a start):
  ``restarting``; the worker is killed and a new one started after the backoff (a stuck thread cannot be
  stopped; a process can);
* its worker dies or stops answering: ``restarting``; a new worker after the backoff;
* its network stream is reconnecting by itself: ``down`` with the reason, not restarted (the source has its
  own backoff);
* its restarts keep failing: ``down``, given up, after ``max_restarts`` restarts in a row (None: never).

The backoff doubles with each failure in a row, from ``restart_delay`` up to ``restart_delay_max``. No
action on one camera touches another. Counters (frames, drops, reconnects, restarts) are kept here across
runs and workers, so they only grow.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from nightvision.cluster.camera import CameraWorker
from nightvision.cluster.serve_config import CameraConfig, ServeConfig

__all__ = ["HEALTHY_AFTER", "CameraView", "Handle", "RayHandle", "Supervisor", "ThreadHandle", "WorkerLost"]

log = logging.getLogger(__name__)

HEALTHY_AFTER = 30.0
"""Seconds a camera must deliver frames before its failure streak (backoff, ``max_restarts``) is forgotten."""
POLL = 0.5  # seconds between two looks at every camera
COUNTERS = ("frames_in", "frames_out", "dropped", "reconnects")


class WorkerLost(Exception):
    """A camera's worker process died (or was killed)."""


class Handle(Protocol):
    """A camera's worker, wherever it runs. Nothing here blocks for long."""

    where: str

    def start(self, run: int) -> None: ...

    def poll(self) -> dict[str, Any] | None:
        """The worker's latest status (:meth:`CameraWorker.status`), None while it has not answered yet;
        :class:`WorkerLost` when it died."""
        ...

    def waiting(self) -> float:
        """Seconds the current status request has gone unanswered."""
        ...

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]: ...

    def stop(self, timeout: float) -> dict[str, Any] | None:
        """Stop gracefully (recordings are finalised), then release the worker; its final status, if it gave
        one (the frames written while it stopped count too)."""
        ...

    def kill(self) -> None:
        """End the worker now (its recording in progress is lost)."""
        ...


class ThreadHandle:
    """A camera run in a thread of this process (no Ray). A stalled thread cannot be killed: it is told to
    stop and left behind, and a new worker takes over."""

    def __init__(self, camera: CameraConfig, *, jpeg_quality: int, overwrite: bool) -> None:
        self.worker = CameraWorker(camera, jpeg_quality=jpeg_quality, overwrite=overwrite)
        self.where = "in-process"
        self._dead = False

    def start(self, run: int) -> None:
        self.worker.start(run)

    def poll(self) -> dict[str, Any] | None:
        if self._dead:
            raise WorkerLost("the worker was killed")
        return self.worker.status()

    def waiting(self) -> float:
        return 0.0

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        if self._dead:
            raise WorkerLost("the worker was killed")
        return self.worker.wait_jpeg(after, timeout)

    def stop(self, timeout: float) -> dict[str, Any] | None:
        return self.worker.stop(timeout)

    def kill(self) -> None:
        self._dead = True
        threading.Thread(target=self.worker.stop, args=(5.0,), name="camera-abandon", daemon=True).start()


class RayHandle:
    """A camera run by a Ray actor (``num_cpus``/``num_gpus`` from the camera's ``cpus``/``gpus``; Ray's own
    actor restarts are off: the supervisor restarts it)."""

    def __init__(self, ray: Any, camera: CameraConfig, *, jpeg_quality: int, overwrite: bool) -> None:
        self._ray = ray
        actor_class = ray.remote(CameraWorker)
        self.actor = actor_class.options(
            num_cpus=camera.cpus,
            num_gpus=camera.gpus,
            max_restarts=0,
            max_concurrency=16,  # status, stop and the views' frame requests while the pipeline runs
        ).remote(camera, jpeg_quality=jpeg_quality, overwrite=overwrite)
        self.where = "ray actor"
        self._pending: Any = None
        self._since = 0.0
        self._node: Any = self.actor.node.remote()

    def start(self, run: int) -> None:
        self.actor.start.remote(run)

    def poll(self) -> dict[str, Any] | None:
        ray = self._ray
        if self._node is not None:
            ready, _ = ray.wait([self._node], timeout=0)
            if ready:
                with contextlib.suppress(Exception):
                    self.where = f"ray actor on {ray.get(self._node)}"
                self._node = None
        if self._pending is None:
            self._pending = self.actor.status.remote()
            self._since = time.monotonic()
        ready, _ = ray.wait([self._pending], timeout=0)
        if not ready:
            return None
        ref, self._pending = self._pending, None
        try:
            status: dict[str, Any] = ray.get(ref)
        except ray.exceptions.RayActorError as err:
            raise WorkerLost(_actor_error(err)) from err
        return status

    def waiting(self) -> float:
        return time.monotonic() - self._since if self._pending is not None else 0.0

    def wait_jpeg(self, after: int, timeout: float) -> tuple[bytes | None, int]:
        ray = self._ray
        try:
            jpeg, seq = ray.get(self.actor.wait_jpeg.remote(after, timeout), timeout=timeout + 10.0)
        except ray.exceptions.RayActorError as err:
            raise WorkerLost(_actor_error(err)) from err
        except ray.exceptions.GetTimeoutError:
            return None, after
        return jpeg, seq

    def stop(self, timeout: float) -> dict[str, Any] | None:
        status: dict[str, Any] | None = None
        with contextlib.suppress(Exception):
            status = self._ray.get(self.actor.stop.remote(timeout), timeout=timeout + 1.0)
        self.kill()
        return status

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self._ray.kill(self.actor, no_restart=True)


def _actor_error(err: BaseException) -> str:
    text = str(err)
    if "ray.kill" in text or "killed" in text.lower():
        return "its worker was killed"
    if "OOM" in text or "out of memory" in text.lower():
        return "its worker ran out of memory"
    return "its worker died"


HandleFactory = Callable[[CameraConfig], Handle]


@dataclass
class CameraView:
    """What the server shows of one camera (a snapshot; counters count since the server started).

    ``state``: ``starting`` (first start, no frame yet), ``up`` (frames flowing), ``restarting`` (after a
    crash, stall or lost worker), ``down`` (the source does not deliver: not opened, reconnecting, or given up).
    """

    name: str
    uri: str
    model: str
    state: str
    reason: str
    restarts: int
    retry_in: float | None
    last_frame_age: float | None
    where: str
    frames_in: int
    frames_out: int
    dropped: int
    reconnects: int
    fps_in: float
    fps_out: float
    latency_p50_s: float
    latency_p95_s: float
    outputs: list[str]

    def health(self) -> dict[str, Any]:
        """The camera's entry in ``/health``."""
        out: dict[str, Any] = {"state": self.state, "reason": self.reason, "restarts": self.restarts}
        if self.retry_in is not None:
            out["retry_in_s"] = round(self.retry_in, 1)
        out["last_frame_age_s"] = None if self.last_frame_age is None else round(self.last_frame_age, 2)
        out.update(frames_out=self.frames_out, fps_out=round(self.fps_out, 2), where=self.where)
        return out


class _Slot:
    """The supervisor's record of one camera."""

    def __init__(self, camera: CameraConfig) -> None:
        self.camera = camera
        self.handle: Handle | None = None
        self.generation = 0  # handles made so far
        self.run = -1  # the run number last started (0 is the first)
        self.state = "starting"
        self.reason = "waiting for its worker"
        self.restarts = 0
        self.streak = 0  # failures since the camera was last healthy
        self.retry_at: float | None = None
        self.new_worker = True
        self.given_up = False
        self.run_started = 0.0
        self.last_progress = 0.0
        self.last_frame: float | None = None
        self.up_since: float | None = None
        self.status: dict[str, Any] = {}
        self.base = dict.fromkeys(COUNTERS, 0)  # totals of the runs before the current one
        self.current = dict.fromkeys(COUNTERS, 0)
        self.current_run = -1
        self.frames_seen = 0
        self.answered = False  # the current worker answered at least once


class Supervisor:
    """Start one worker per camera and keep each running (see the module docstring).

    Args:
        config: the server's configuration (the cameras and the restart policy).
        factory: makes a camera's worker: :class:`RayHandle` or :class:`ThreadHandle` (via a lambda).
    """

    def __init__(self, config: ServeConfig, factory: HandleFactory) -> None:
        self.config = config
        self.factory = factory
        self._slots = {cam.name: _Slot(cam) for cam in config.cameras}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def start(self) -> None:
        """Start every camera's worker and the supervising thread."""
        now = time.monotonic()
        for slot in self._slots.values():
            self._launch(slot, now)
        self._thread = threading.Thread(target=self._loop, name="supervisor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every camera (in parallel; recordings finalised) and the supervising thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            handles = [(s, s.handle) for s in self._slots.values() if s.handle is not None]
            for slot in self._slots.values():
                slot.handle = None
        finals: dict[str, dict[str, Any]] = {}

        def stop_one(slot: _Slot, handle: Handle) -> None:
            final = handle.stop(timeout)
            if isinstance(final, dict):
                finals[slot.camera.name] = final

        stoppers = [threading.Thread(target=stop_one, args=(s, h), daemon=True) for s, h in handles]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(timeout + 6.0)
        with self._lock:  # the frames written while stopping count too (the views said 201 of 203)
            for slot, _ in handles:
                final = finals.get(slot.camera.name)
                if final is not None and "run" in final:
                    self._count(slot, final)

    def handle(self, name: str) -> tuple[Handle | None, int]:
        """The current worker of camera ``name`` and its generation (a new worker, a new number)."""
        with self._lock:
            slot = self._slots[name]
            return slot.handle, slot.generation

    def views(self) -> list[CameraView]:
        """Every camera's state and figures, in configuration order."""
        with self._lock:
            return [self._view(slot, time.monotonic()) for slot in self._slots.values()]

    # --- the loop -------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(POLL):
            now = time.monotonic()
            for slot in list(self._slots.values()):
                try:
                    self._check(slot, now)
                except Exception:  # a supervisor bug must not stop the supervision of the others
                    log.exception("supervising camera %s", slot.camera.name)

    def _check(self, slot: _Slot, now: float) -> None:
        with self._lock:
            if slot.given_up or self._stop.is_set():
                return
            if slot.retry_at is not None:
                if now >= slot.retry_at:
                    self._launch(slot, now)
                return
            handle = slot.handle
        if handle is None:
            return
        try:
            status = handle.poll()
        except WorkerLost as err:
            self._fail(slot, now, str(err), kind="worker", new_worker=True)
            return
        cfg = self.config
        if status is None:
            waited = handle.waiting()
            if not slot.answered and waited > cfg.start_timeout:
                cam = slot.camera
                needs = f"{cam.cpus:g} CPU" + (f" and {cam.gpus:g} GPU" if cam.gpus else "")
                why = f"its worker did not start within {waited:.0f} s (does the cluster have {needs} free?)"
                self._fail(slot, now, why, "worker", True)
            elif slot.answered and waited > cfg.stall_seconds:
                self._fail(slot, now, f"its worker has not answered for {waited:.0f} s", "worker", True)
            return
        slot.answered = True
        if status.get("run") != slot.run:
            return  # an answer from before the latest start
        with self._lock:
            self._count(slot, status)
            slot.status = status
        phase = status["phase"]
        if phase == "failed":
            self._fail(slot, now, status["error"], kind=status["error_kind"], new_worker=False)
        elif phase == "ended":
            self._fail(slot, now, status["error"] or "the source ended", kind="source", new_worker=False)
        elif phase == "running":
            self._running(slot, now, status)
        elif phase in ("opening", "loading"):
            if now - slot.run_started > cfg.start_timeout:
                what = "its source did not open" if phase == "opening" else "its model did not load"
                self._fail(slot, now, f"{what} within {cfg.start_timeout:g} s", "worker", True)
            elif slot.state == "starting":
                with self._lock:
                    slot.reason = "opening its source" if phase == "opening" else "loading its model"

    def _running(self, slot: _Slot, now: float, status: dict[str, Any]) -> None:
        with self._lock:
            frames = int(status["frames_out"])
            if frames > slot.frames_seen:
                slot.frames_seen = frames
                slot.last_progress = slot.last_frame = now
                if slot.state != "up":
                    level = logging.WARNING if slot.restarts else logging.INFO
                    log.log(level, "camera %s is up (restarts: %d)", slot.camera.name, slot.restarts)
                    slot.up_since = now
                slot.state, slot.reason = "up", ""
                if slot.up_since is not None and now - slot.up_since >= HEALTHY_AFTER:
                    slot.streak = 0
                return
            if status.get("source_down"):
                slot.last_progress = now  # the source reconnects by itself, with its own backoff
                slot.state = "down"
                slot.reason = f"stream lost, reconnecting ({status.get('reconnects', 0)} reconnects so far)"
                slot.up_since = None
                return
            idle = now - slot.last_progress
        # a run's first frame may take a while (a network stream's first keyframe, a model's first call on a
        # busy machine): until then the start timeout applies, after it the stall limit
        limit = self.config.stall_seconds if slot.frames_seen else self.config.start_timeout
        if idle > limit:
            what = "no frame" if slot.frames_seen == 0 else "no new frame"
            self._fail(slot, now, f"stalled: {what} for {idle:.0f} s", kind="stall", new_worker=True)

    def _count(self, slot: _Slot, status: dict[str, Any]) -> None:
        if status["run"] != slot.current_run:
            slot.current_run = status["run"]
            slot.frames_seen = 0
        for key in COUNTERS:
            slot.current[key] = max(slot.current[key], int(status.get(key, 0)))

    def _fail(self, slot: _Slot, now: float, reason: str, kind: str, new_worker: bool) -> None:
        cfg = self.config
        name = slot.camera.name
        with self._lock:
            if self._stop.is_set():
                return
            if kind == "config":  # no restart mends it: say so once, and leave the camera down
                self._give_up(slot, f"cannot run as configured: {reason}; fix its [[camera]] entry and restart serve")
                return
            slot.streak += 1
            slot.up_since = None
            slot.new_worker = new_worker or slot.new_worker
            if slot.new_worker and slot.handle is not None:
                slot.handle.kill()
                slot.handle = None
            limit = cfg.max_restarts
            if limit is not None and slot.streak > limit:
                self._give_up(slot, f"gave up after {limit} restarts in a row: {reason}")
                return
            delay = min(cfg.restart_delay * 2 ** (slot.streak - 1), cfg.restart_delay_max)
            slot.retry_at = now + delay
            slot.state = "down" if kind == "source" else "restarting"
            repeated = reason == slot.reason
            slot.reason = reason
        # the first failure of a kind is a warning; the same one again (a camera that stays away) is info
        log.log(
            logging.INFO if repeated else logging.WARNING, "camera %s: %s; restarting in %.1f s", name, reason, delay
        )

    @staticmethod
    def _give_up(slot: _Slot, reason: str) -> None:
        """Leave ``slot``'s camera down for good, saying ``reason``, its worker ended (under the lock)."""
        slot.given_up, slot.state, slot.retry_at, slot.reason = True, "down", None, reason
        if slot.handle is not None:
            slot.handle.kill()
            slot.handle = None
        log.error("camera %s: %s", slot.camera.name, reason)

    def _launch(self, slot: _Slot, now: float) -> None:
        """Start the next run of ``slot``: in its worker, or in a new one when it has none (or lost it)."""
        with self._lock:
            first = slot.run < 0
            self._fold(slot)
            if slot.handle is None or slot.new_worker:
                if slot.handle is not None:
                    slot.handle.kill()
                try:
                    slot.handle = self.factory(slot.camera)
                except Exception as err:  # e.g. Ray refusing the actor's resources
                    slot.handle = None
                    slot.retry_at = None
                    self._fail(slot, now, f"cannot start its worker: {err}".splitlines()[0], "worker", True)
                    return
                slot.generation += 1
                slot.new_worker = False
                slot.answered = False
            slot.run += 1
            slot.retry_at = None
            slot.run_started = slot.last_progress = now
            if not first:
                slot.restarts += 1
            slot.handle.start(slot.run)

    @staticmethod
    def _fold(slot: _Slot) -> None:
        """Add the finished run's counts to the totals before the next run starts counting from 0."""
        for key in COUNTERS:
            slot.base[key] += slot.current[key]
            slot.current[key] = 0
        slot.frames_seen = 0

    def _view(self, slot: _Slot, now: float) -> CameraView:
        st = slot.status if slot.status.get("run") == slot.run else {}
        live = slot.state == "up"
        cam = slot.camera
        return CameraView(
            name=cam.name,
            uri=_redacted(cam.uri),
            model=cam.model,
            state=slot.state,
            reason=slot.reason,
            restarts=slot.restarts,
            retry_in=max(0.0, slot.retry_at - now) if slot.retry_at is not None else None,
            last_frame_age=None if slot.last_frame is None else now - slot.last_frame,
            where=slot.handle.where if slot.handle is not None else "",
            frames_in=slot.base["frames_in"] + slot.current["frames_in"],
            frames_out=slot.base["frames_out"] + slot.current["frames_out"],
            dropped=slot.base["dropped"] + slot.current["dropped"],
            reconnects=slot.base["reconnects"] + slot.current["reconnects"],
            fps_in=float(st.get("fps_in", 0.0)) if live else 0.0,
            fps_out=float(st.get("fps_out", 0.0)) if live else 0.0,
            latency_p50_s=float(st.get("latency_p50_s", math.nan)),
            latency_p95_s=float(st.get("latency_p95_s", math.nan)),
            outputs=list(st.get("outputs", [])),
        )


def _redacted(uri: str) -> str:
    from nightvision.stream.sources import redact

    return redact(uri)
