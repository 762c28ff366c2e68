"""The bridge's pick-up queue (``store.queue.claim_queue``) on SQLite and MariaDB: it finds new rows by primary key, rows
that committed late (below the highest id already seen), rows PHP released, and drops rows that stopped being
pending; two workers never claim the same id; the queue is only a hint (the guarded start decides)."""

from __future__ import annotations

from sqlalchemy import insert, update

from tests.integration.test_worker import add
from wch_bridge import phpser, schedules
from wch_bridge.devtools import bulk
from wch_bridge.devtools.instrument import Counts, StatementCounter
from wch_bridge.models import CONTEXT
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import NewRow, TakeRequest

HOOK = "wch_queue_test"


def gid(store: ActionStore) -> int:
    return store.group_ids(["wch"], create=True)["wch"]


def queued(store: ActionStore) -> list[int]:
    with store.engine.connect() as conn:
        return sorted(int(r[0]) for r in conn.exec_driver_sql(f"SELECT action_id FROM {store.sql.queue}"))  # noqa: S608


def take_ids(store: ActionStore, limit: int = 50) -> list[int]:
    return [a.action_id for a in store.take_due(TakeRequest([HOOK], [gid(store)], limit), CONTEXT).actions]


def test_new_rows_are_fed_in_claim_order_and_other_groups_and_hooks_are_not(store: ActionStore) -> None:
    g = gid(store)
    store.refresh_queue([HOOK], [g], force=True)
    low = add(store, HOOK, {"n": "low"}, priority=20)
    first = add(store, HOOK, {"n": "first"}, delay=-30)
    other_hook = add(store, "wch_someone_else", {"n": 1})
    other_group = add(store, HOOK, {"n": 2}, group="woocommerce")
    store.refresh_queue([HOOK], [g])
    assert queued(store) == sorted([low, first])
    assert take_ids(store) == [first, low]
    assert store.get_status(other_hook) == "pending" and store.get_status(other_group) == "pending"
    assert queued(store) == []


def test_a_late_commit_below_the_high_water_mark_is_found_by_the_tail_pass(store: ActionStore) -> None:
    g = gid(store)
    early = add(store, HOOK, {"n": 0})
    store.refresh_queue([HOOK], [g], force=True)
    later = add(store, HOOK, {"n": 2})
    store.refresh_queue([HOOK], [g])
    assert store.queue.high_water == later
    # an insert that got its id before `later` but committed after it was fed
    row = store.get_action(early)
    assert row is not None
    values = {"action_id": later - 1 if later - 1 != early else later + 50, "hook": HOOK, "status": "pending",
              "scheduled_date_gmt": row.scheduled_date_gmt, "scheduled_date_local": row.scheduled_date_local,
              "schedule": row.schedule, "group_id": g, "args": "[]", "priority": 10, "attempts": 0, "claim_id": 0}
    with store.engine.begin() as conn:
        conn.execute(insert(store.t.actions).values(**values))
    late = values["action_id"]
    store.queue._last_tail = float("-inf")  # the tail pass is due (it runs about once a second)
    store.refresh_queue([HOOK], [g])
    store.queue._last_tail = float("-inf")
    store.refresh_queue([HOOK], [g])
    assert late in queued(store)
    assert sorted(take_ids(store)) == sorted([early, later, late])


def test_a_claim_php_released_comes_back_with_the_reconciling_pass(store: ActionStore) -> None:
    g = gid(store)
    aid = add(store, HOOK, {"n": 0})
    a = store.t.actions
    with store.engine.begin() as conn:  # PHP claimed it before the bridge started
        conn.execute(update(a).where(a.c.action_id == aid).values(claim_id=77))
    store.refresh_queue([HOOK], [g], force=True)
    assert queued(store) == [] and take_ids(store) == []
    with store.engine.begin() as conn:  # PHP's release_claim
        conn.execute(update(a).where(a.c.action_id == aid).values(claim_id=0))
    store.queue_is_stale()  # the periodic pass (every 60 s), made due now
    assert take_ids(store) == [aid]


def test_a_row_canceled_meanwhile_is_dropped_not_started(store: ActionStore) -> None:
    g = gid(store)
    keep, gone = add(store, HOOK, {"n": 1}), add(store, HOOK, {"n": 2})
    store.refresh_queue([HOOK], [g], force=True)
    assert store.cancel([gone]) == [gone]
    assert take_ids(store) == [keep]
    assert store.get_status(gone) == "canceled" and queued(store) == []


def test_a_released_action_goes_back_to_the_queue(store: ActionStore) -> None:
    aid = add(store, HOOK, {"n": 1})
    assert take_ids(store) == [aid]
    assert store.release(aid, "action released via WCH Bridge: test")
    assert queued(store) == [aid]
    assert take_ids(store) == [aid]


def test_two_workers_never_claim_the_same_id(store: ActionStore) -> None:
    g = gid(store)
    ids = [add(store, HOOK, {"n": i}) for i in range(40)]
    other = ActionStore(store.engine, store.prefix, clock=store.clock)
    store.refresh_queue([HOOK], [g], force=True)
    other.refresh_queue([HOOK], [g], force=True)
    now = store.now()
    a = store.queue.claim([HOOK], [g], now, 15)
    b = other.queue.claim([HOOK], [g], now, 15)
    c = store.queue.claim([HOOK], [g], now, 100)
    assert len(a) == 15 and len(b) == 15 and not set(a) & set(b) and not (set(a) | set(b)) & set(c)
    assert sorted(a + b + c) == ids


def sent(counts: Counts) -> int:
    """Statements sent, SQLite's BEGIN IMMEDIATE not counted."""
    return counts.statements - counts.by_verb.get("BEGIN", 0)


def test_the_queue_is_copied_on_the_server_in_a_fixed_number_of_statements(store: ActionStore) -> None:
    """Issue 12 point 4: feeding and reconciling copy Action Scheduler's rows into the queue with ``INSERT … SELECT``
    on the server, not through Python (which read every pending row and inserted them 500 at a time: about 1.3 s of
    a 20,000-action drain). A feed of 1,200 new rows and a reconcile of 1,200 missing ones are a few statements
    each, whatever the number of rows (the Python copy sent 5 and 7 here: a SELECT per page of 1,000 rows and an
    INSERT per 500). The reconcile's refresh also feeds (nothing new: one SELECT)."""
    g = gid(store)
    store.refresh_queue([HOOK], [g], force=True)
    sched = phpser.serialize_schedule(schedules.NullSchedule())
    seeded = bulk.insert_actions(store, (NewRow(hook=HOOK, scheduled_date_gmt=store.now(), schedule=sched,
                                                group="wch", args=f"[{i}]") for i in range(1200)))
    ids = list(range(seeded.first_id, seeded.last_id + 1))
    with StatementCounter(store.engine) as counter:
        store.refresh_queue([HOOK], [g])
        fed = counter.counts()
    assert queued(store) == ids
    assert sent(fed) <= 2, fed.as_dict()
    with store.engine.begin() as conn:  # the queue lost them (another worker's reconcile, a crash)
        conn.exec_driver_sql(f"DELETE FROM {store.sql.queue}")  # noqa: S608
    store.queue_is_stale()
    store.queue._last_tail = float("inf")
    with StatementCounter(store.engine) as counter:
        store.refresh_queue([HOOK], [g])
        reconciled = counter.counts()
    assert queued(store) == ids
    assert sent(reconciled) <= 4, reconciled.as_dict()
