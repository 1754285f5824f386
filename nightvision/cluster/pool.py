"""Where a batch job's tasks run: a pool of :class:`~nightvision.cluster.worker.Worker` s.

* :class:`RayPool` — one Ray actor per worker, each with ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs
  (fractions share a GPU), as many as the cluster holds. Each actor loads the model once and runs one task
  at a time, so tasks wait in the coordinator, not behind a busy or dead actor. A task whose actor died
  (its node lost, the process killed, out of memory) comes back as *lost* and the coordinator runs it
  again elsewhere; a replacement actor is started and joins when Ray finds room for it.
* :class:`LocalPool` — one worker in this process, tasks run in a background thread: the same code path
  minus Ray.

Both offer: ``free()`` (idle workers), ``submit(task)``, ``wait(timeout)`` (finished tasks as
:class:`Outcome` s), ``progress()`` (frames done by the tasks in flight), ``stop()`` and ``close()``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from nightvision.errors import EngineError, InputError

from .worker import Settings, Task, TaskResult, Worker

__all__ = ["LocalPool", "Outcome", "RayPool"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """A task that ended: its ``result`` (which may carry an input error), or ``lost`` (its worker died: run it
    again), or ``error`` (the worker raised: a bug or an environment problem, reported for that file)."""

    task: Task
    result: TaskResult | None = None
    lost: bool = False
    error: str = ""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


class LocalPool:
    """One :class:`Worker` in this process; tasks run one at a time in a background thread."""

    kind = "in-process"

    def __init__(self, settings: Settings, *, threads: int = 0) -> None:
        self.worker = Worker(settings, threads=threads)
        self.workers = 1
        self.nodes = 1
        self.lost = 0
        self._executor = cf.ThreadPoolExecutor(1, thread_name_prefix="batch-worker")
        self._running: tuple[cf.Future[TaskResult], Task] | None = None

    def free(self) -> int:
        return 0 if self._running is not None else 1

    def busy(self) -> int:
        return 0 if self._running is None else 1

    def submit(self, task: Task) -> None:
        if self._running is not None:
            raise EngineError("LocalPool runs one task at a time")
        self._running = (self._executor.submit(self.worker.run, task), task)

    def wait(self, timeout: float) -> list[Outcome]:
        if self._running is None:
            time.sleep(timeout)
            return []
        future, task = self._running
        try:
            result = future.result(timeout=timeout)
        except cf.TimeoutError:
            return []
        except Exception as err:
            self._running = None
            return [Outcome(task, error=_first_line(err))]
        self._running = None
        return [Outcome(task, result)]

    def progress(self) -> dict[str, int]:
        return {self._running[1].id: self.worker.progress()} if self._running is not None else {}

    def check(self) -> None:
        pass

    def stop(self) -> None:
        self.worker.stop()

    def close(self) -> None:
        self.worker.stop()
        self._executor.shutdown(wait=True)


class RayPool:
    """Ray actors running :class:`Worker` s (see the module docstring).

    Args:
        ray: the initialised ``ray`` module (:func:`~nightvision.cluster.connect.connect`).
        settings: model and stages.
        cpus_per_task, gpus_per_task: resources of each actor (fractions allowed).
        workers: how many actors (default: as many as the cluster's CPUs and GPUs hold, at most ``tasks``).
        tasks: the number of tasks of the job (no more actors than that).
        start_timeout: seconds without any live actor after which the job gives up.
    """

    kind = "ray"

    def __init__(
        self,
        ray: ModuleType,
        settings: Settings,
        *,
        cpus_per_task: float = 1.0,
        gpus_per_task: float = 0.0,
        workers: int | None = None,
        tasks: int = 1,
        start_timeout: float = 120.0,
    ) -> None:
        if cpus_per_task < 0 or gpus_per_task < 0 or cpus_per_task + gpus_per_task <= 0:
            raise InputError(
                f"cpus_per_task and gpus_per_task must be at least 0 and not both 0, got "
                f"{cpus_per_task:g} and {gpus_per_task:g}"
            )
        self.ray = ray
        resources = ray.cluster_resources()
        cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        fits = []
        if cpus_per_task > 0:
            fits.append(math.floor(cpus / cpus_per_task + 1e-9))
        if gpus_per_task > 0:
            if gpus == 0:
                raise InputError(f"--gpus-per-task {gpus_per_task:g}: the Ray cluster has no GPU")
            fits.append(math.floor(gpus / gpus_per_task + 1e-9))
        room = min(fits)
        if room < 1:
            raise InputError(
                f"the Ray cluster ({cpus:g} CPUs, {gpus:g} GPUs) has no room for one task of "
                f"{cpus_per_task:g} CPUs and {gpus_per_task:g} GPUs; ask for less per task"
            )
        self.workers = max(1, min(workers or room, tasks))
        self.nodes = len([n for n in ray.nodes() if n.get("Alive")])
        self.lost = 0
        threads = max(1, math.ceil(cpus_per_task)) if cpus_per_task > 0 else 0
        self._actor_class = ray.remote(Worker).options(
            num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_concurrency=2, max_restarts=0
        )
        self._args = (settings, threads)
        self._starting: dict[Any, Any] = {}  # ready ref -> actor
        self._idle: list[Any] = []
        self._running: dict[Any, tuple[Any, Task]] = {}  # result ref -> (actor, task)
        self._progress: dict[Any, tuple[Any, str]] = {}  # progress ref -> (actor, task id)
        self._done: dict[str, int] = {}
        self._start_timeout = start_timeout
        self._live_since = time.monotonic()
        for _ in range(self.workers):
            self._spawn()
        log.info(
            "Ray: %d worker(s) of %g CPU / %g GPU on %d node(s) (%g CPUs, %g GPUs)",
            self.workers,
            cpus_per_task,
            gpus_per_task,
            self.nodes,
            cpus,
            gpus,
        )

    def _spawn(self) -> None:
        actor = self._actor_class.remote(*self._args)
        self._starting[actor.ready.remote()] = actor

    def free(self) -> int:
        return len(self._idle)

    def busy(self) -> int:
        return len(self._running)

    def submit(self, task: Task) -> None:
        actor = self._idle.pop()
        self._running[actor.run.remote(task)] = (actor, task)

    def _lost_actor(self, actor: Any) -> None:
        self.lost += 1
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception as err:  # already gone: nothing to end
            log.debug("kill of a lost actor: %s", err)
        self._spawn()

    def wait(self, timeout: float) -> list[Outcome]:
        ray = self.ray
        refs = [*self._running, *self._starting]
        if not refs:
            time.sleep(timeout)
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        outcomes = []
        for ref in ready:
            if ref in self._starting:
                actor = self._starting.pop(ref)
                try:
                    node = ray.get(ref)
                except ray.exceptions.RayActorError as err:
                    if err.actor_init_failed:
                        raise EngineError(f"a worker could not load the model: {_last_line(err)}") from err
                    log.warning("a worker died while starting (%s); starting another", _first_line(err))
                    self._lost_actor(actor)
                    continue
                log.info("worker ready on %s", node)
                self._idle.append(actor)
                continue
            actor, task = self._running.pop(ref)
            self._done.pop(task.id, None)
            try:
                result = ray.get(ref)
            except (
                ray.exceptions.RayActorError,
                ray.exceptions.WorkerCrashedError,
                ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError,
            ) as err:
                log.warning("lost the worker running %s (%s); running it again", task.id, _first_line(err))
                self._lost_actor(actor)
                outcomes.append(Outcome(task, lost=True))
                continue
            except ray.exceptions.RayTaskError as err:
                self._idle.append(actor)
                cause = err.cause if isinstance(err.cause, BaseException) else err
                outcomes.append(Outcome(task, error=_first_line(cause)))
                continue
            self._idle.append(actor)
            outcomes.append(Outcome(task, result))
        if self._idle or self._running:
            self._live_since = time.monotonic()
        return outcomes

    def check(self) -> None:
        """Raise :class:`EngineError` when no worker has been alive for ``start_timeout`` seconds."""
        if not self._idle and not self._running and time.monotonic() - self._live_since > self._start_timeout:
            raise EngineError(
                f"no worker could start for {self._start_timeout:.0f} s: the Ray cluster has no free room for "
                "a task (see --cpus-per-task / --gpus-per-task, and `ray status`)"
            )

    def progress(self) -> dict[str, int]:
        """Frames done by each task in flight (asked of the actors; answers arrive by the next call)."""
        ray = self.ray
        if self._progress:
            ready, _ = ray.wait(list(self._progress), num_returns=len(self._progress), timeout=0)
            for ref in ready:
                _, task_id = self._progress.pop(ref)
                with contextlib.suppress(ray.exceptions.RayError):  # the task's own result says what happened
                    self._done[task_id] = int(ray.get(ref))
        asked = {actor for actor, _ in self._progress.values()}
        for actor, task in self._running.values():
            if actor not in asked:
                self._progress[actor.progress.remote()] = (actor, task.id)
        running = {task.id for _, task in self._running.values()}
        return {k: v for k, v in self._done.items() if k in running}

    def stop(self) -> None:
        for actor, _ in self._running.values():
            actor.stop.remote()

    def close(self) -> None:
        for actor in [*self._idle, *(a for a, _ in self._running.values()), *self._starting.values()]:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception as err:
                log.debug("kill at close: %s", err)
        self._idle.clear()
        self._running.clear()
        self._starting.clear()
        self._progress.clear()


def _last_line(err: BaseException) -> str:
    """The exception line at the end of a remote traceback (``InputError: no model named ...``)."""
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__
