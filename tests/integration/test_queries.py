"""store/operator_queries/ on SQLite and MariaDB: status aggregates, paging, retry (atomic, idempotent), purge batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.errors import SchemaError, StoreError
from wch_bridge.models import Action
from wch_bridge.store import ActionStore
from wch_bridge.store import operator_queries as queries
from wch_bridge.store.operator_queries import retries
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.store.workers import WorkerRegistry

DAY = timedelta(days=1)


def add(store: ActionStore, hook: str, args: Any = None, *, group: str = "wch", at: datetime | None = None,
        priority: int = 10) -> int:
    when = at or store.now() - timedelta(seconds=1)
    a, ext = argscodec.encode_args(args if args is not None else [])
    sched = phpser.serialize_schedule(schedules.SimpleSchedule(int(when.replace(tzinfo=UTC).timestamp())))
    return store.insert_action(NewRow(hook=hook, scheduled_date_gmt=when, schedule=sched, args=a, extended_args=ext,
                                      group=group, priority=priority))


def finish(store: ActionStore, aid: int, ok: bool, when: datetime | None = None, msg: str = "boom") -> None:
    when = when or store.now()
    assert store.take([aid], "WCH Bridge", when) == [aid]
    assert store.finish([(aid, ok, msg)], "WCH Bridge", when) == {aid: None}


def gids(store: ActionStore, *slugs: str) -> list[int]:
    return list(queries.served_group_ids(store, slugs or ("wch",)))


def msgs(store: ActionStore, aid: int) -> list[str]:
    return [e.message for e in store.get_logs(aid)]


def test_status_snapshot_aggregates(store: ActionStore) -> None:
    now = store.now()
    done = add(store, "wch_a")
    finish(store, done, True, now)  # at ``now``: a finish a second later falls outside the window ending at ``now``
    bad = add(store, "wch_a")
    finish(store, bad, False, now)
    old_bad = add(store, "wch_a", at=now - 3 * DAY)
    finish(store, old_bad, False, now - 3 * DAY)
    add(store, "wch_b", at=now - timedelta(minutes=10))
    add(store, "wch_b", at=now + timedelta(hours=1))
    add(store, "wch_b", group="elsewhere", at=now - DAY)
    add(store, queries.CLEANUP_HOOK, at=now + timedelta(hours=1), group="wch-maintenance")
    reg = WorkerRegistry(store.engine, store.t)
    reg.beat("live", host="h", pid=1, version="v", started_at=now, now=now, in_hand_ids=[1, 2])
    reg.beat("dead", host="h", pid=2, version="v", started_at=now - DAY, now=now - timedelta(minutes=5), in_hand_ids=[])
    reg.beat("gone", host="h", pid=3, version="v", started_at=now - DAY, now=now, in_hand_ids=[], stopped=True)

    snap = queries.status_snapshot(store, ("wch",), now)
    assert snap.counts == {"wch_a": {"complete": 1, "failed": 2}, "wch_b": {"pending": 2}}
    assert snap.past_due == 1 and snap.oldest_past_due == now - timedelta(minutes=10)
    assert snap.failed_24h == 1
    assert snap.newest_completion is not None and snap.newest_completion <= store.now()
    assert snap.cleanup_pending == now + timedelta(hours=1) and snap.cleanup_pending_group == "wch-maintenance"
    assert snap.workers is not None
    assert {w.worker_id: w.live(now, snap.facts.live_seconds) for w in snap.workers} == {"live": True, "dead": False}

    with store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {store.prefix}wch_bridge_workers"))  # noqa: S608 - test prefix
    assert queries.status_snapshot(store, ("wch",), now).workers is None
    empty = queries.status_snapshot(store, ("no-such-group",), now)
    assert empty.counts == {} and empty.past_due == 0 and empty.groups == {}


def test_require_tables(store: ActionStore) -> None:
    queries.require_tables(store)
    other = ActionStore(store.engine, "zz" + store.prefix)
    with pytest.raises(SchemaError, match="zz.*actionscheduler_actions does not exist"):
        queries.require_tables(other)


def test_list_pages_filters_and_last_errors(store: ActionStore) -> None:
    now = store.now()
    ids = [add(store, "wch_a", {"n": i}) for i in range(7)]
    finish(store, ids[2], False, msg="action failed? no: this text is the handler's")
    store.log(ids[2], "action failed via WCH Bridge: the newest error")
    old = add(store, "wch_a", at=now - 10 * DAY)
    add(store, "wch_a", group="elsewhere")
    served = gids(store)
    page1, more1 = queries.list_actions(store, served, limit=3)
    assert [a.action_id for a in page1] == [old, ids[6], ids[5]] and more1
    page3, more3 = queries.list_actions(store, served, limit=3, offset=6)
    assert [a.action_id for a in page3] == [ids[1], ids[0]] and not more3
    assert isinstance(page1[0], Action) and page1[0].group == "wch"
    failed, _ = queries.list_actions(store, served, statuses=["failed"], hook="wch_a")
    assert [a.action_id for a in failed] == [ids[2]]
    recent, _ = queries.list_actions(store, served, since=now - DAY)
    assert old not in [a.action_id for a in recent] and len(recent) == 7
    assert queries.list_actions(store, [], limit=3) == ([], False)
    errors = queries.last_errors(store, [a.action_id for a in page1 + page3 + failed])
    assert errors == {ids[2]: "action failed via WCH Bridge: the newest error"}


def test_retry_is_atomic_idempotent_and_reads_back(store: ActionStore) -> None:
    src = add(store, "wch_a", {"phone": "+15551237890", "x": "z" * 300}, priority=3)
    finish(store, src, False)
    now = store.now()
    dry = queries.retry_action(store, src, dry_run=True, now=now)
    assert dry.would and dry.new_id is None
    assert msgs(store, src)[-1].startswith("action failed")  # dry run wrote nothing

    r = queries.retry_action(store, src, now=now)
    assert r.new_id and r.skipped is None
    new, old = store.get_action(r.new_id), store.get_action(src)
    assert new is not None and old is not None
    assert (new.status, new.claim_id, new.attempts, new.last_attempt_gmt, new.scheduled_date_gmt) == (
        "pending", 0, 0, None, now)
    assert (new.hook, new.args, new.extended_args, new.group_id, new.priority) == (
        old.hook, old.args, old.extended_args, old.group_id, 3)
    assert phpser.parse_schedule(new.schedule) == schedules.SimpleSchedule(int(now.replace(tzinfo=UTC).timestamp()))
    assert msgs(store, r.new_id) == ["action created", f"retry of action #{src}"]
    assert msgs(store, src)[-1] == f"retried as action #{r.new_id} via WCH Bridge CLI"

    again = queries.retry_action(store, src, now=now)
    assert again.skipped == "already has a pending retry" and again.existing_id == r.new_id
    forced = queries.retry_action(store, src, force=True, now=now)
    assert forced.new_id and forced.new_id != r.new_id

    # once the retries ran, the bulk mode skips the original (its newest retry carries the chain on)
    for rid in (r.new_id, forced.new_id):
        finish(store, rid, False)
    bulk = queries.retry_action(store, src, skip_retried=True, now=now)
    assert bulk.skipped == "was retried before" and bulk.existing_id == forced.new_id
    assert queries.retry_action(store, src, now=now).new_id  # explicit: allowed again

    pending = add(store, "wch_a")
    assert queries.retry_action(store, pending).skipped == "status is pending"
    assert queries.retry_action(store, 10**9).skipped == "not found"


def test_retry_rolls_back_completely_on_error(store: ActionStore, monkeypatch: pytest.MonkeyPatch) -> None:
    src = add(store, "wch_a", {"n": 1})
    finish(store, src, False)
    before_rows = queries.count_actions(store, gids(store), statuses=["pending", "failed"])
    before_logs = msgs(store, src)

    def boom(*_a: Any, **_k: Any) -> None:
        raise StoreError("disk full")

    monkeypatch.setattr(retries, "_insert_logs", boom)
    with pytest.raises(StoreError):
        queries.retry_action(store, src)
    assert queries.count_actions(store, gids(store), statuses=["pending", "failed"]) == before_rows
    assert msgs(store, src) == before_logs


def test_bulk_selection_keyset(store: ActionStore) -> None:
    ids = [add(store, "wch_a") for _ in range(7)]
    for aid in ids[:5]:
        finish(store, aid, False)
    served = gids(store)
    assert queries.count_actions(store, served, statuses=["failed"]) == 5
    seen: list[int] = []
    after = 0
    while page := queries.action_ids_page(store, served, statuses=["failed"], after_id=after, limit=2):
        seen += page
        after = page[-1]
    assert seen == ids[:5]
    assert queries.action_ids_page(store, [], statuses=["failed"]) == []


def test_purge_batches_guards_and_age_rules(store: ActionStore) -> None:
    now = store.now()
    old = now - 10 * DAY
    complete_old = [add(store, "wch_a", at=old) for _ in range(5)]
    for aid in complete_old:
        finish(store, aid, True, old)
    complete_new = add(store, "wch_a")
    finish(store, complete_new, True)
    canceled_never_ran_old = add(store, "wch_a", at=old)
    canceled_never_ran_new = add(store, "wch_a", at=now - timedelta(minutes=1))
    store.cancel([canceled_never_ran_old, canceled_never_ran_new])
    pending_old = add(store, "wch_a", at=old)
    served = gids(store)
    cutoff = now - 7 * DAY
    assert queries.count_purgeable(store, served, "complete", cutoff) == 5
    assert queries.count_purgeable(store, served, "canceled", cutoff) == 1
    with pytest.raises(ValueError):
        queries.count_purgeable(store, served, "pending", cutoff)

    total_actions = total_logs = 0
    after = 0
    batches = 0
    while (b := queries.purge_batch(store, served, "complete", cutoff, after_id=after, limit=2)).last_id:
        total_actions += b.actions
        total_logs += b.logs
        after = b.last_id
        batches += 1
    assert (batches, total_actions, total_logs) == (3, 5, 15)
    assert all(store.get_status(a) is None and store.get_logs(a) == [] for a in complete_old)
    assert store.get_status(complete_new) == "complete"
    b = queries.purge_batch(store, served, "canceled", cutoff)
    assert (b.actions, b.logs) == (1, 2)
    assert store.get_status(canceled_never_ran_old) is None
    assert store.get_status(canceled_never_ran_new) == "canceled"
    assert store.get_status(pending_old) == "pending"
    lg = store.t.logs
    with store.engine.connect() as conn:
        orphans = conn.execute(select(lg.c.action_id).where(lg.c.action_id.in_(complete_old))).all()
    assert orphans == []
