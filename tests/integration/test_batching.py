"""Batched transitions on SQLite and MariaDB: a batch's outcomes are written in one short transaction of their own
and the next batch is started in another, a finished action is written promptly even while the rest of the pool is
busy, and taking keeps AS's claim order and exactly-once start."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from tests.integration.test_worker import add, messages, settings_for
from wch_bridge.devtools.instrument import StatementCounter
from wch_bridge.handlers.base import Job
from wch_bridge.models import CONTEXT, Outcome
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import TakeRequest
from wch_bridge.worker import MAX_HOLD_S, Worker

HOOK = "wch_batch_test"


def gid(store: ActionStore) -> int:
    return store.group_ids(["wch"], create=True)["wch"]


def test_take_due_starts_in_claim_order_exactly_once(store: ActionStore) -> None:
    low = add(store, HOOK, {"n": "low"}, priority=20)
    first = add(store, HOOK, {"n": "first"}, delay=-30)
    second = add(store, HOOK, {"n": "second"}, delay=-10)
    later = add(store, HOOK, {"n": "later"}, delay=3600)
    other = add(store, "not_ours", {"n": 0})
    req = TakeRequest([HOOK], [gid(store)], 2)
    taken = store.take_due(req, CONTEXT)
    assert [a.action_id for a in taken.actions] == [first, second]
    assert taken.seen == 2
    assert taken.actions[0].group == "wch" and taken.actions[0].attempts == 0  # as read, before the start
    again = store.take_due(TakeRequest([HOOK], [gid(store)], 10), CONTEXT)
    assert [a.action_id for a in again.actions] == [low], "started rows are never taken again"
    assert store.take_due(req, CONTEXT).actions == []
    for aid in (first, second, low):
        row = store.get_action(aid)
        assert row is not None and row.status == "in-progress" and row.attempts == 1 and row.claim_id == 0
        assert messages(store, aid) == ["action created", f"action started via {CONTEXT}"]
    assert store.get_status(later) == "pending" and store.get_status(other) == "pending"


def test_finish_and_take_are_separate_short_transactions(store: ActionStore) -> None:
    ids = [add(store, HOOK, {"n": i}, delay=-100 + i) for i in range(6)]
    req = TakeRequest([HOOK], [gid(store)], 3)
    first = store.take_due(req, CONTEXT)
    assert [a.action_id for a in first.actions] == ids[:3]
    results = [(ids[0], True, ""), (ids[1], False, "boom"), (ids[2], True, "")]
    with StatementCounter(store.engine) as counter:
        out = store.finish(results, CONTEXT)
        counts = counter.counts()
    assert out == {ids[0]: None, ids[1]: None, ids[2]: None}
    assert counts.commits == 1, counts.as_dict()
    # two guarded finishes pinned to the primary key and one multi-row log INSERT: no locking read
    assert counts.statements - counts.by_verb.get("BEGIN", 0) <= 3, counts.as_dict()
    assert "SELECT FOR UPDATE" not in counts.by_verb, counts.as_dict()
    with StatementCounter(store.engine) as counter:
        nxt = store.take_due(req, CONTEXT)
        counts = counter.counts()
    assert [a.action_id for a in nxt.actions] == ids[3:]
    assert "SELECT FOR UPDATE" not in counts.by_verb or store.info.dialect == "mysql", counts.as_dict()
    assert [store.get_status(i) for i in ids] == ["complete", "failed", "complete"] + ["in-progress"] * 3
    assert messages(store, ids[1])[-1] == f"action failed via {CONTEXT}: boom"
    assert messages(store, ids[4]) == ["action created", f"action started via {CONTEXT}"]


def test_a_finished_action_is_recorded_while_the_rest_of_the_pool_is_still_busy(store: ActionStore) -> None:
    """Batching lets results gather while most of the pool is busy, but never longer than MAX_HOLD_S: a quick
    action shows ``complete`` in WordPress while seven slow ones still run."""
    release = threading.Event()

    def handler(job: Job) -> Outcome | None:
        if job.args["n"] != "quick":
            release.wait(20)
        return None

    slow = [add(store, HOOK, {"n": i}, delay=-60) for i in range(7)]
    quick = add(store, HOOK, {"n": "quick"}, delay=-1)
    worker = Worker(store, {HOOK: handler}, settings_for(store, concurrency=8, batch_size=8, poll_interval=5.0))
    done: list[int] = []
    t = threading.Thread(target=lambda: done.append(worker.run()), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10 + MAX_HOLD_S
        while time.monotonic() < deadline and store.get_status(quick) != "complete":
            time.sleep(0.02)
        assert store.get_status(quick) == "complete", "the quick action's outcome waited for the slow ones"
        assert all(store.get_status(i) == "in-progress" for i in slow)
    finally:
        release.set()
        t.join(30)
    assert done == [0]
    assert store.count_by_status([HOOK]) == {"complete": 8}


def test_take_due_with_no_room_or_nothing_to_take(store: ActionStore) -> None:
    add(store, HOOK, {"n": 1})
    g = gid(store)
    assert store.take_due(TakeRequest([HOOK], [g], 0), CONTEXT).actions == []
    assert store.take_due(TakeRequest([], [g], 5), CONTEXT).actions == []
    assert store.take_due(TakeRequest([HOOK], [], 5), CONTEXT).actions == []
    assert store.take_due(TakeRequest([HOOK], [g], 5), CONTEXT, now=store.now() - timedelta(hours=1)).actions == []
    assert store.count_by_status([HOOK]) == {"pending": 1}


@pytest.mark.mysql
def test_worker_commits_once_per_batch(mysql_store: ActionStore) -> None:
    """A drain of 600 no-op actions: a batch costs a few short transactions (claim from the bridge's queue, start,
    finish), not one per action."""
    n = 600
    for i in range(n):
        add(mysql_store, HOOK, {"n": i})
    worker = Worker(mysql_store, {HOOK: lambda job: None}, settings_for(mysql_store, concurrency=32, batch_size=100))
    with StatementCounter(mysql_store.engine) as counter:
        assert worker.run() == 0
        counts = counter.counts()
    assert mysql_store.count_by_status([HOOK]) == {"complete": n}
    print(counts.as_dict())
    # at least half the pool (16) per batch: <= 38 batches of three transactions, plus the feed and side tasks
    assert counts.commits <= 3 * n / 16 + 40, counts.as_dict()


def test_live_workers_share_the_sites_send_limit(store: ActionStore) -> None:
    """``messages_per_second`` is the limit of the site's one WhatsApp number: two live workers send at most half
    of it each (re-checked at every heartbeat); when one stops, the other gets the whole limit back."""
    from wch_bridge.handlers.base import Services
    from wch_bridge.store.workers import WorkerRegistry
    from wch_bridge.whatsapp import ApiGate, WhatsAppClient

    def worker() -> Worker:
        client = WhatsAppClient(base_url="http://127.0.0.1:9", phone_number_id="1", token="t", gate=ApiGate(80))
        services = Services(clock=store.clock, site=store.site, whatsapp=client)
        return Worker(store, {HOOK: lambda job: None}, settings_for(store, messages_per_second=80.0), services,
                      heartbeats=WorkerRegistry(store.engine, store.t), send_gate=client.gate)

    a, b = worker(), worker()
    a.liveness.beat()
    assert a.services.whatsapp.gate.messages_per_second == 80.0
    b.liveness.beat()
    a.liveness.beat()
    assert a.services.whatsapp.gate.messages_per_second == 40.0
    assert b.services.whatsapp.gate.messages_per_second == 40.0
    b.liveness.beat(stopped=True)
    a.liveness.beat()
    assert a.services.whatsapp.gate.messages_per_second == 80.0


def test_worker_warns_about_indexes_an_earlier_bridge_left_on_the_actions_table(
        store: ActionStore, caplog: pytest.LogCaptureFixture) -> None:
    """The bridge adds no index to Action Scheduler's tables (they change PHP's plans); one left by an earlier
    version is named at start with the command that drops it, and the worker runs all the same."""
    import logging

    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text(f"CREATE INDEX wch_bridge_claim_order ON {store.t.actions.name} "
                          "(claim_id, status, priority, attempts, scheduled_date_gmt, action_id)"))
    ids = [add(store, HOOK, {"n": i}) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="wch_bridge.worker"):
        assert Worker(store, {HOOK: lambda job: None}, settings_for(store)).run() == 0
    assert [store.get_status(i) for i in ids] == ["complete"] * 5
    assert any("wch_bridge_claim_order" in r.getMessage() and "wch-bridge schema drop-indexes" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_handler_threads_are_all_started_up_front(store: ActionStore) -> None:
    """The pool's ``--concurrency`` threads exist from the first action to the last: none is created in the middle
    of a drain (which made the worker's RSS creep up over a long drain)."""
    counts: list[int] = []

    def on_result(_r: object) -> None:
        counts.append(threading.active_count())

    for i in range(300):
        add(store, HOOK, {"n": i})
    before = threading.active_count()
    worker = Worker(store, {HOOK: lambda job: None}, settings_for(store, concurrency=24, batch_size=50),
                    on_result=on_result)
    assert worker.run() == 0
    assert len(counts) == 300
    assert min(counts) == max(counts) == before + 24, (before, min(counts), max(counts))
    assert threading.active_count() == before, "the pool's threads end with the worker"
