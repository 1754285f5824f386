"""Threaded stages joined by bounded queues: the building block of every pipeline.

Each stage is one named thread that takes items from its input queue, calls its function and puts the
result on its output queue. :data:`END` travels downstream when the source is exhausted; a stage's
exception stops the whole chain and is re-raised in the caller by :meth:`Chain.join`. Bounded queues
give back-pressure: a slow stage makes the upstream ones wait, so nothing is dropped and order is kept.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["END", "Chain"]

log = logging.getLogger(__name__)


class _End:
    def __repr__(self) -> str:
        return "END"


END: Any = _End()
"""End-of-stream marker."""

_POLL = 0.1  # seconds between checks of the stop flag while blocked on a queue


class Chain:
    """A source iterable followed by stages, each in its own thread.

    Args:
        source: iterated in the first thread; each item goes downstream.
        stages: ``(name, fn)`` pairs; ``fn(item)`` returns the item for the next stage, or ``None`` to
            drop it. The last stage's results are discarded (it is the sink).
        depth: capacity of each queue between stages.
        latest: keep only the newest item between the source and the first stage: when the first stage is
            busy, a new item replaces the waiting one and :attr:`dropped` counts it (live sources). Otherwise
            the source waits (back-pressure, lossless).
        in_flight: with ``latest``, at most this many items between the start of the first stage and the end
            of the last (0: no limit). The first stage takes a new item only when one has left, so the items
            wait at the front, where a newer one replaces them, and not in the queues in front of a slower
            later stage: the latency stays near the sum of the stage times instead of growing with the
            queues' depth.
    """

    def __init__(
        self,
        source: Iterable[Any],
        stages: list[tuple[str, Callable[[Any], Any]]],
        *,
        depth: int = 4,
        latest: bool = False,
        in_flight: int = 0,
    ) -> None:
        self._stop = threading.Event()
        self._latest = latest
        self._slots = threading.Semaphore(in_flight) if latest and in_flight > 0 else None
        self.dropped = 0
        self._errors: list[BaseException] = []
        sizes = [1 if latest and i == 0 else depth for i in range(len(stages))]
        self._queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=n) for n in sizes]
        self.busy_seconds: dict[str, float] = {"source": 0.0, **{name: 0.0 for name, _ in stages}}
        self._threads = [
            threading.Thread(target=self._run_source, args=(source, self._queues[0]), name="source", daemon=True)
        ]
        for i, (name, fn) in enumerate(stages):
            out = self._queues[i + 1] if i + 1 < len(stages) else None
            self._threads.append(
                threading.Thread(
                    target=self._run_stage, args=(name, fn, self._queues[i], out, i == 0), name=name, daemon=True
                )
            )

    def start(self) -> Chain:
        for t in self._threads:
            t.start()
        return self

    def _put(self, q: queue.Queue[Any], item: Any) -> bool:
        while not self._stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def _put_latest(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _fail(self, err: BaseException) -> None:
        self._errors.append(err)
        self._stop.set()

    def _run_source(self, source: Iterable[Any], out: queue.Queue[Any]) -> None:
        try:
            it = iter(source)
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    break
                self.busy_seconds["source"] += time.perf_counter() - t0
                if self._latest:
                    self._put_latest(out, item)
                elif not self._put(out, item):
                    return
            self._put(out, END)
        except BaseException as err:
            self._fail(err)

    def _run_stage(
        self, name: str, fn: Callable[[Any], Any], inq: queue.Queue[Any], out: queue.Queue[Any] | None, first: bool
    ) -> None:
        slots = self._slots
        holding = False  # the first stage holds a slot for the item it is about to take
        try:
            while not self._stop.is_set():
                if first and slots is not None and not holding:
                    holding = slots.acquire(timeout=_POLL)
                    continue
                try:
                    item = inq.get(timeout=_POLL)
                except queue.Empty:
                    continue
                if item is END:
                    if out is not None:
                        self._put(out, END)
                    return
                holding = False  # the slot travels with the item
                t0 = time.perf_counter()
                result = fn(item)
                self.busy_seconds[name] += time.perf_counter() - t0
                if slots is not None and (out is None or result is None):
                    slots.release()  # the item left the chain (or was dropped): the next one may enter
                if out is not None and result is not None and not self._put(out, result):
                    return
        except BaseException as err:
            self._fail(err)

    def stop(self) -> None:
        """Ask every stage to stop (idempotent); :meth:`join` waits for them."""
        self._stop.set()

    def join(
        self,
        timeout: float | None = None,
        *,
        grace: float = 2.0,
        leave: frozenset[str] = frozenset(),
        poll: Callable[[], None] | None = None,
    ) -> None:
        """Wait for all stages to finish; re-raise the first stage error in the caller.

        Args:
            timeout: give up (stop, and raise :class:`TimeoutError`) after this many seconds.
            grace: once the chain is stopping, how long to wait for the stages named in ``leave``.
            leave: stages (pure computation, holding no resource) that may be left finishing their current
                item in the background after ``grace``: a stop then returns within about ``grace`` seconds
                even when one model call takes longer. Their late results are discarded.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        stopped_at: float | None = None
        try:
            for t in self._threads:
                while t.is_alive():
                    t.join(_POLL)
                    if poll is not None:
                        poll()
                    now = time.monotonic()
                    if deadline is not None and now > deadline:
                        self.stop()
                        raise TimeoutError(f"stage {t.name!r} did not finish within {timeout} s")
                    if self._stop.is_set():
                        stopped_at = stopped_at or now
                        if t.name in leave and now - stopped_at > grace:
                            log.warning("stage %r is still busy with its last item; not waiting for it", t.name)
                            break
        except KeyboardInterrupt:
            self.stop()
            for t in self._threads:
                t.join(2.0)
            raise
        if self._errors:
            raise self._errors[0]
