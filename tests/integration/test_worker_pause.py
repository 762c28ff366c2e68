"""``wch-bridge hooks pause|resume`` honoured by the real Worker (issue 16 point 9): a paused hook is not taken
(any group), the other hooks are; a live worker sees a pause within one poll interval (at least 1 s), lets the paused hook's
running action finish, and takes the hook again after a resume."""

from __future__ import annotations

import threading
import time

from tests.integration.test_worker import add, messages, settings_for
from wch_bridge.handlers.base import Job
from wch_bridge.store import ActionStore
from wch_bridge.store.paused import PAUSED_OPTION, paused_hooks, set_paused
from wch_bridge.worker import Worker


def test_set_paused_is_idempotent_and_stored_not_autoloaded(store: ActionStore) -> None:
    assert paused_hooks(store) == {}
    assert set_paused(store, "wch_a", True) is True
    assert set_paused(store, "wch_a", True) is False
    assert set_paused(store, "wch_b", True) is True
    assert sorted(paused_hooks(store)) == ["wch_a", "wch_b"]
    o = store.t.options
    with store.engine.connect() as conn:
        row = conn.execute(o.select().where(o.c.option_name == PAUSED_OPTION)).mappings().one()
    assert row["autoload"] == "no"
    assert set_paused(store, "wch_a", False) is True and set_paused(store, "wch_a", False) is False
    assert list(paused_hooks(store)) == ["wch_b"]


def test_once_worker_leaves_a_paused_hook_pending(store: ActionStore) -> None:
    ran: list[str] = []
    a = [add(store, "wch_a", {"n": i}) for i in range(3)]
    b = [add(store, "wch_b", {"n": i}, group="other") for i in range(3)]
    set_paused(store, "wch_a", True)
    registry = {"wch_a": lambda job: ran.append("a"), "wch_b": lambda job: ran.append("b")}
    assert Worker(store, registry, settings_for(store, groups=("wch", "other"))).run() == 0
    assert ran == ["b"] * 3
    assert [store.get_status(i) for i in a] == ["pending"] * 3
    assert [store.get_status(i) for i in b] == ["complete"] * 3
    assert messages(store, a[0]) == ["action created"]


def test_live_worker_honours_pause_within_one_poll_and_resume(store: ActionStore) -> None:
    gate = threading.Event()
    started = threading.Event()
    done: list[int] = []

    def slow(job: Job) -> None:
        started.set()
        gate.wait(10)
        done.append(job.action.action_id)

    def fast(job: Job) -> None:
        done.append(job.action.action_id)

    worker = Worker(store, {"wch_a": slow, "wch_b": fast}, settings_for(store, once=False, poll_interval=0.2))
    runner = threading.Thread(target=worker.run, daemon=True)
    first = add(store, "wch_a", {"n": 0})
    runner.start()
    try:
        assert started.wait(10)
        set_paused(store, "wch_a", True)
        time.sleep(1.2)  # more than one poll interval (the paused hooks are read at most once a second)
        later = add(store, "wch_a", {"n": 1})
        other = add(store, "wch_b", {"n": 2})
        gate.set()  # the running action of the paused hook finishes
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not {first, other} <= set(done):
            time.sleep(0.05)
        time.sleep(0.5)
        assert store.get_status(first) == "complete"
        assert store.get_status(other) == "complete"
        assert store.get_status(later) == "pending"
        set_paused(store, "wch_a", False)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and store.get_status(later) != "complete":
            time.sleep(0.05)
        assert store.get_status(later) == "complete"
    finally:
        gate.set()
        worker.request_stop()
        runner.join(10)
