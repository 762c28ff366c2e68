"""The refill policy (``wch_bridge.worker.refill``) with no database: refill at half-empty, linger, hold no
outcome longer than ``MAX_HOLD_S``, when ``--once`` / ``--max-actions`` are done, and the real loop over an
in-memory store taking in batches of at least half the pool."""

from __future__ import annotations

import queue
import threading
import time

from tests.unit.worker_fake_store import FakeStore, settings
from wch_bridge.handlers.base import Job
from wch_bridge.worker import MAX_HOLD_S, RefillPolicy, Worker
from wch_bridge.worker.refill import AfterTake, collect


def policy(**kw: object) -> RefillPolicy:
    base: dict[str, object] = dict(concurrency=32, batch_size=100, poll_interval=1.0)
    base.update(kw)
    return RefillPolicy(**base)  # type: ignore[arg-type]


def test_low_water_is_half_the_pool_or_half_a_smaller_batch() -> None:
    assert policy().low_water == 16
    assert policy(concurrency=8, batch_size=4).low_water == 2
    assert policy(concurrency=1, batch_size=1).low_water == 1


def test_free_counts_finished_but_unwritten_actions_as_free() -> None:
    p = policy(concurrency=8)
    assert p.busy(inflight=8, unwritten=3) == 5
    assert p.free(inflight=8, unwritten=3) == 3
    assert p.room(inflight=0, unwritten=0, taken_total=0) == 8


def test_room_is_capped_by_max_actions() -> None:
    p = policy(concurrency=8, max_actions=10)
    assert p.room(inflight=0, unwritten=0, taken_total=7) == 3
    assert p.room(inflight=0, unwritten=0, taken_total=10) == 0


def test_hold_while_most_of_the_pool_is_busy_but_never_longer_than_max_hold() -> None:
    p = policy(concurrency=32)
    now = 100.0
    assert p.hold_for(busy=0, room=1, oldest_unwritten=None, now=now) == 0.0  # nothing runs: go
    assert p.hold_for(busy=16, room=16, oldest_unwritten=None, now=now) == 0.0  # half free: refill now
    assert (
        p.hold_for(busy=31, room=1, oldest_unwritten=None, now=now) == 1.0
    )  # nothing to write: a result wakes us
    held = p.hold_for(busy=31, room=1, oldest_unwritten=now - 0.01, now=now)
    assert abs(held - (MAX_HOLD_S - 0.01)) < 1e-9
    assert p.hold_for(busy=31, room=1, oldest_unwritten=now - 1.0, now=now) == 0.0  # held long enough: write


def test_after_take_drains_retries_or_settles() -> None:
    assert RefillPolicy.after_take(limit=10, got=10, seen=10) is AfterTake.DRAIN
    assert RefillPolicy.after_take(limit=10, got=0, seen=4) is AfterTake.RETRY_SOON  # others took them
    assert RefillPolicy.after_take(limit=10, got=3, seen=3) is AfterTake.SETTLE
    assert RefillPolicy.after_take(limit=10, got=0, seen=0) is AfterTake.SETTLE


def test_once_is_done_when_nothing_runs_and_nothing_was_due() -> None:
    p = policy(once=True)
    assert p.finished(taken_total=5, inflight=0, seen=0)
    assert not p.finished(taken_total=5, inflight=1, seen=0)
    assert not p.finished(taken_total=5, inflight=0, seen=2)
    assert not policy().finished(taken_total=5, inflight=0, seen=0)  # a daemon never is
    assert policy(max_actions=5).finished(taken_total=5, inflight=0, seen=3)
    assert not policy(max_actions=5).finished(taken_total=5, inflight=2, seen=3)


def test_wait_at_capacity_idle_or_draining() -> None:
    p = policy(poll_interval=2.0)
    assert p.wait(limit=0, seen=0, until_next_due=lambda: 9.0) == 2.0
    assert p.wait(limit=10, seen=3, until_next_due=lambda: 0.5) == 0.5
    assert p.wait(limit=10, seen=10, until_next_due=lambda: 9.0) == 0.0
    assert p.next_due_wait(None) == 2.0
    assert p.next_due_wait(0.5) == 0.501
    assert p.next_due_wait(-3.0) == 0.0
    assert p.next_due_wait(60.0) == 2.0


def test_collect_takes_what_is_there_and_lingers_only_while_asked() -> None:
    q: queue.Queue[int] = queue.Queue()
    into: list[int] = []
    collect(q, into, 0, lambda: True)
    assert into == []
    for i in range(3):
        q.put(i)
    collect(q, into, 0, lambda: True)
    assert into == [0, 1, 2]
    threading.Timer(0.05, lambda: q.put(9)).start()
    t0 = time.monotonic()
    collect(q, into, 5.0, lambda: False)  # blocks for the first result only
    assert into == [0, 1, 2, 9] and time.monotonic() - t0 < 4.0


def test_the_loop_refills_when_half_the_pool_is_free() -> None:
    """Eight threads, eight actions running: four finishing together are written with one take of four (not
    four takes of one); the rest follow, all complete, with no database."""
    store = FakeStore()
    ids = [store.add("wch_x", f'{{"n": {i}}}') for i in range(12)]
    first_four = threading.Event()
    started: list[int] = []

    def handler(job: Job) -> None:
        started.append(job.action.action_id)
        if job.action.action_id in ids[:4]:
            first_four.wait(10)
        elif job.action.action_id in ids[4:8]:
            time.sleep(0.5)

    worker = Worker(store, {"wch_x": handler}, settings(concurrency=8, batch_size=8))  # type: ignore[arg-type]
    threading.Timer(0.2, first_four.set).start()
    assert worker.run() == 0
    assert [store.status(i) for i in ids] == ["complete"] * 12
    assert store.takes[0] == (8, 8)
    assert store.takes[1] == (4, 4), store.takes  # the four that finished together, one take
    assert worker.stats.completed == 12 and worker.stats.taken == 12
