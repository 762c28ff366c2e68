"""Stopping with no database: the first signal stops taking work and lets running actions finish; the second
stops at once, the running action goes back to pending and the exit code is 1. The send gate is closed so a
handler waiting in an API back-off stops too."""

from __future__ import annotations

import logging
import signal
import threading
import time

import pytest

from tests.unit.worker_fake_store import FakeStore, settings
from wch_bridge.handlers.base import Job
from wch_bridge.worker import Stopper, Worker


class Gate:
    messages_per_second = 80.0
    halted = False
    halt_reason = None

    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1

    def set_rate(self, messages_per_second: float) -> None:
        self.messages_per_second = messages_per_second


def test_first_signal_finishes_second_stops(caplog: pytest.LogCaptureFixture) -> None:
    gate = Gate()
    s = Stopper(30.0, gate, running=lambda: 2)
    with caplog.at_level(logging.INFO, logger="wch_bridge.worker"):
        s.on_signal(signal.SIGTERM, None)
        assert s.stopping and not s.hard and s.event.is_set() and gate.closed == 1
        assert not s.grace_over()
        s.on_signal(signal.SIGTERM, None)
    assert s.hard and s.signals == 2
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs == [
        f"signal {int(signal.SIGTERM)}: no new work; waiting up to 30.0s for 2 running action(s)",
        f"second signal {int(signal.SIGTERM)}: stopping now",
    ]


def test_the_grace_period_runs_from_the_first_request() -> None:
    s = Stopper(0.05)
    assert not s.grace_over()  # not stopping: no deadline
    s.request()
    deadline = s.grace_deadline
    s.request()
    assert s.grace_deadline == deadline  # a second request does not extend it
    time.sleep(0.1)
    assert s.grace_over()


def test_install_only_from_the_main_thread() -> None:
    old = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    s = Stopper(1.0)
    try:
        t = threading.Thread(target=s.install)
        t.start()
        t.join()
        assert signal.getsignal(signal.SIGTERM) == old[0]
        s.install()
        assert signal.getsignal(signal.SIGTERM) == s.on_signal
        assert signal.getsignal(signal.SIGINT) == s.on_signal
    finally:
        signal.signal(signal.SIGTERM, old[0])
        signal.signal(signal.SIGINT, old[1])


def _running_worker(store: FakeStore, release: threading.Event) -> tuple[Worker, threading.Event, list[int]]:
    started = threading.Event()
    codes: list[int] = []

    def handler(job: Job) -> None:
        started.set()
        release.wait(10)

    gate = Gate()
    worker = Worker(
        store,
        {"wch_x": handler},
        settings(once=False, concurrency=2),  # type: ignore[arg-type]
        send_gate=gate,
    )
    threading.Thread(target=lambda: codes.append(worker.run()), daemon=True).start()
    assert started.wait(10)
    return worker, gate, codes  # type: ignore[return-value]


def _wait_for(codes: list[int]) -> int:
    deadline = time.monotonic() + 10
    while not codes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert codes, "the worker did not stop"
    return codes[0]


def test_a_first_stop_lets_the_running_action_finish() -> None:
    store = FakeStore()
    aid = store.add("wch_x")
    release = threading.Event()
    worker, gate, codes = _running_worker(store, release)
    worker.request_stop()
    assert gate.closed == 1
    later = store.add("wch_x")  # due, but no new work is taken once stopping
    release.set()
    assert _wait_for(codes) == 0
    assert store.status(aid) == "complete" and store.status(later) == "pending"
    assert worker.stats.completed == 1 and not worker.abandoned_threads


def test_a_second_stop_puts_the_running_action_back_and_exits_1() -> None:
    store = FakeStore()
    aid = store.add("wch_x")
    release = threading.Event()
    worker, _gate, codes = _running_worker(store, release)
    worker.request_stop()
    worker.request_stop(hard=True)
    try:
        assert _wait_for(codes) == 1
    finally:
        release.set()
    assert store.status(aid) == "pending"
    assert store.messages(aid)[-1] == (
        "action released via WCH Bridge: worker stopped before it finished; it will run again"
    )
    assert worker.abandoned_threads and worker.stats.released == 1


def test_closing_the_gate_from_a_signal_handler_never_waits_for_its_lock() -> None:
    """Seen in the heavy stop scenarios: the second SIGINT arrived while the main thread held the send gate's lock
    (the send-rate share, ``set_rate``); the signal handler's ``gate.close()`` then waited for that same lock
    forever and the worker never exited. Here a thread holds the lock and closes the gate, as that handler did."""
    from wch_bridge.api_gate import ApiGate

    gate = ApiGate(80.0)

    def interrupted_inside_the_gate() -> None:
        with gate._lock:  # noqa: SLF001 - the state the signal found the main thread in
            gate.close()

    t = threading.Thread(target=interrupted_inside_the_gate, daemon=True)
    t.start()
    t.join(timeout=2)
    assert not t.is_alive(), "close() waited for a lock its own thread holds"
    assert gate.closed


def test_a_second_signal_inside_the_first_handler_does_not_deadlock() -> None:
    """Seen with py-spy on a worker that never exited: the second SIGINT came 0-10 ms after the first and ran
    while the first handler was inside ``Event.set`` (waking the send gate's waiters); the second handler's own
    ``Event.set`` then waited for that lock forever. Here the first request's gate.close() takes the second
    signal while it holds an Event's lock, as then."""
    box: list[Stopper] = []

    class Reentered:
        def close(self) -> None:
            s = box[0]
            with s.event._cond:  # noqa: SLF001 - the first handler, interrupted inside Event.set
                s.on_signal(signal.SIGINT, None)

    box.append(Stopper(30.0, Reentered()))  # type: ignore[arg-type]
    t = threading.Thread(target=lambda: box[0].on_signal(signal.SIGINT, None), daemon=True)
    t.start()
    t.join(timeout=2)
    assert not t.is_alive(), "the second signal's handler waited for a lock the first one holds"
    assert box[0].stopping and box[0].hard and box[0].signals == 2
