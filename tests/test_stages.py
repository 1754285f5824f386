"""Threaded stages: order kept, back-pressure, errors re-raised in the caller, stop."""

from __future__ import annotations

import threading
import time

import pytest

from nightvision.stream.stages import Chain


def test_items_arrive_in_order_and_none_are_lost() -> None:
    seen: list[int] = []

    def slow_double(i: int) -> int:
        time.sleep(0.001 if i % 7 else 0.01)
        return 2 * i

    Chain(range(200), [("double", slow_double), ("sink", seen.append)], depth=2).start().join(timeout=30)
    assert seen == [2 * i for i in range(200)]


def test_back_pressure_bounds_what_is_in_flight() -> None:
    produced = []
    release = threading.Event()

    def source():  # type: ignore[no-untyped-def]
        for i in range(100):
            produced.append(i)
            yield i

    def blocked_sink(i: int) -> None:
        release.wait(5)

    chain = Chain(source(), [("mid", lambda i: i), ("sink", blocked_sink)], depth=2).start()
    time.sleep(0.5)
    # sink holds 1, each of the 2 queues holds 2, mid holds 1, the source 1 waiting to put
    assert len(produced) <= 8
    release.set()
    chain.join(timeout=30)
    assert len(produced) == 100


@pytest.mark.parametrize("in_flight", [0, 2])
def test_a_live_chain_keeps_at_most_in_flight_items_between_its_ends(in_flight: int) -> None:
    """Latest-item mode with a slow last stage: without a limit the items pile up in the queues in front of it
    (latency grows with their depth); with one, at most ``in_flight`` items are between the first stage's start
    and the last stage's end, and the rest are dropped at the front, where newer ones replace them."""
    lock = threading.Lock()
    inside: list[int] = [0]
    most: list[int] = [0]
    done: list[int] = []

    def source():  # type: ignore[no-untyped-def]
        for i in range(300):
            time.sleep(0.001)
            yield i

    def enter(i: int) -> int:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        return i

    def drop_odd(i: int) -> int | None:
        if i % 2:
            with lock:
                inside[0] -= 1  # a stage that drops an item frees its place
            return None
        return i

    def slow_exit(i: int) -> None:
        time.sleep(0.01)
        with lock:
            inside[0] -= 1
        done.append(i)

    stages = [("enter", enter), ("filter", drop_odd), ("mid", lambda i: i), ("exit", slow_exit)]
    chain = Chain(source(), stages, depth=2, latest=True, in_flight=in_flight).start()
    chain.join(timeout=30)
    assert done == sorted(done) and chain.dropped > 0
    if in_flight:
        assert most[0] <= in_flight
    else:
        assert most[0] >= 5  # one in each of three stages and queues holding more


def test_a_stage_error_is_raised_in_the_caller_and_stops_everything() -> None:
    def boom(i: int) -> int:
        if i == 5:
            raise ValueError("frame 5 is bad")
        return i

    chain = Chain(iter(range(10_000_000)), [("boom", boom), ("sink", lambda i: None)]).start()
    with pytest.raises(ValueError, match="frame 5 is bad"):
        chain.join(timeout=30)
    assert not any(t.is_alive() for t in threading.enumerate() if t.name in ("source", "boom", "sink"))


def test_stop_ends_an_endless_source_quickly() -> None:
    def endless():  # type: ignore[no-untyped-def]
        while True:
            yield 1

    chain = Chain(endless(), [("sink", lambda i: time.sleep(0.001))]).start()
    time.sleep(0.1)
    t0 = time.monotonic()
    chain.stop()
    chain.stop()  # idempotent
    chain.join(timeout=5)
    assert time.monotonic() - t0 < 2


def test_a_stop_leaves_a_busy_compute_stage_behind_after_the_grace() -> None:
    started = threading.Event()

    def slow(i: int) -> int:
        started.set()
        time.sleep(2.0)
        return i

    polls: list[float] = []
    chain = Chain(iter(range(100)), [("compute", slow), ("sink", lambda i: None)]).start()
    started.wait(5)
    chain.stop()
    t0 = time.monotonic()
    chain.join(grace=0.3, leave=frozenset({"compute"}), poll=lambda: polls.append(time.monotonic()))
    assert time.monotonic() - t0 < 1.0  # not the 2 s the compute stage still needs
    assert polls  # the caller's check ran while waiting
    assert not any(t.is_alive() for t in threading.enumerate() if t.name in ("source", "sink"))
    for t in threading.enumerate():
        if t.name == "compute":
            t.join(5)
