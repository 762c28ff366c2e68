"""Query plans on a 1,000,000-row actions table (MariaDB): every statement the worker sends to Action Scheduler's
actions table names rows by primary key and is planned on PRIMARY (on a drained table too); the bridge's own
queue is read in claim order on its own index; every statement of the report reads the big tables through an
index; ``schema check`` names indexes an earlier bridge left on AS's table and ``schema drop-indexes`` drops them.

The table holds 1,000,000 actions and 1,000,000 log rows (seeded inside the server from MariaDB's SEQUENCE engine,
then ANALYZEd): a site's history (90 % complete, 4 % failed, 1 % canceled, 4 % pending, 1 % in-progress over
7 days). The SQL checked is what ``ActionStore.take_due`` and ``reporting.collect`` send, captured with the
store's statement listener, not a copy of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from wch_bridge.cli import main
from wch_bridge.devtools import bulk
from wch_bridge.devtools.instrument import StatementCounter, explain
from wch_bridge.models import CONTEXT
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.queue.actions import TakeRequest
from wch_bridge.timeutil import Clock

pytestmark = pytest.mark.mysql

ROWS = 1_000_000
HOOKS = list(bulk.HISTORY_HOOKS)


@pytest.fixture(scope="module")
def big_store(mysql_url: str) -> Iterator[ActionStore]:
    from tests.conftest import new_prefix

    prefix = new_prefix()
    eng = make_engine(mysql_url)
    try:
        schema_mod.install(eng, prefix, with_wordpress=True)
        store = ActionStore(eng, prefix, clock=Clock())
        if not bulk.has_sequence_engine(store):
            pytest.skip("needs MariaDB's SEQUENCE engine to seed 1,000,000 rows quickly")
        bulk.seed_history(store, ROWS, logs_per_action=1)
        bulk.analyze(store)
        yield store
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()


BY_KEY = ("by_id", "start", "statuses", "complete", "fail", "touch", "release", "cancel")


def _by_key_plans(store: ActionStore, ids: list[int]) -> dict[str, list[dict[str, Any]]]:
    """EXPLAIN of every statement that names Action Scheduler rows by id, with ``ids`` bound."""
    sql = store.sql
    lead = {"start": 2, "complete": 2, "touch": 2}
    plans = {}
    for name in BY_KEY:
        stmt = getattr(sql, name)(len(ids))
        params = tuple(["2026-01-01 00:00:00"] * lead.get(name, 0)) + tuple(ids)
        plans[name] = explain(store.engine, stmt, params)
    return plans


def _assert_primary(store: ActionStore, plans: dict[str, list[dict[str, Any]]]) -> None:
    for name, plan in plans.items():
        row = _actions_row(store, plan)
        assert row["key"] == "PRIMARY", (name, plan)
        assert row["type"] in ("range", "const", "eq_ref"), (name, plan)


def _actions_row(store: ActionStore, plan: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in plan if r["table"] in (store.t.actions.name, "a", store.t.actions.name.lower())]
    assert rows, plan
    return rows[0]


def test_every_by_key_statement_is_pinned_to_the_primary_key(big_store: ActionStore) -> None:
    """The start, finish, touch, release and cancel UPDATEs (and the reads by id) use PRIMARY on the big table,
    for a batch of in-progress and of pending ids alike: they lock just those rows (reference section 11.2)."""
    with big_store.engine.connect() as conn:
        running = [int(r[0]) for r in conn.execute(text(
            f"SELECT action_id FROM {big_store.t.actions.name} WHERE status = 'in-progress' LIMIT 50"))]  # noqa: S608
        pending = [int(r[0]) for r in conn.execute(text(
            f"SELECT action_id FROM {big_store.t.actions.name} WHERE status = 'pending' LIMIT 50"))]  # noqa: S608
    assert len(running) == 50 and len(pending) == 50
    _assert_primary(big_store, _by_key_plans(big_store, sorted(running)))
    _assert_primary(big_store, _by_key_plans(big_store, sorted(pending)))
    _assert_primary(big_store, _by_key_plans(big_store, [running[0]]))


def test_by_key_statements_stay_on_the_primary_key_on_a_drained_table(mysql_url: str) -> None:
    """A drained table (everything complete but a few running rows) is where the optimizer flipped the guarded
    UPDATEs onto the status index (then they lock every running row, PHP's included): pinned, they do not."""
    from tests.conftest import new_prefix

    prefix = new_prefix()
    eng = make_engine(mysql_url)
    try:
        schema_mod.install(eng, prefix)
        store = ActionStore(eng, prefix, clock=Clock())
        if not bulk.has_sequence_engine(store):
            pytest.skip("needs MariaDB's SEQUENCE engine to seed rows quickly")
        bulk.seed_history(store, 50_000, logs_per_action=0)
        with eng.begin() as conn:
            conn.execute(text(f"UPDATE {store.t.actions.name} SET status = 'complete'"))  # noqa: S608
            conn.execute(text(f"UPDATE {store.t.actions.name} SET status = 'in-progress' "  # noqa: S608
                              "WHERE action_id IN (7, 70, 700, 7000, 40000)"))
        bulk.analyze(store)
        ids = [7, 70, 700, 7000, 40000]
        _assert_primary(store, _by_key_plans(store, ids))
        # without the pin the same guarded finish is planned on the status index: the pin is what holds
        unpinned = store.sql.complete(len(ids)).replace(" FORCE INDEX (PRIMARY)", "")
        row = _actions_row(store, explain(eng, unpinned, ("2026-01-01 00:00:00",) * 2 + tuple(ids)))
        print("unpinned plan:", row)
    finally:
        schema_mod.drop_prefix(eng, prefix)
        eng.dispose()


def test_no_statement_of_a_take_reads_action_scheduler_s_table_by_a_secondary_index(big_store: ActionStore) -> None:
    """A take on the big table: the head of the bridge's own queue is read on its claim-order index without a
    sort, and every statement on AS's actions table is by primary key (the feed's range included)."""
    gid = big_store.group_ids(["wch"])["wch"]
    big_store.refresh_queue(HOOKS, [gid], force=True)
    with StatementCounter(big_store.engine, capture=True) as counter:
        taken = big_store.take_due(TakeRequest(HOOKS, [gid], 50), CONTEXT)
        big_store.finish([(a.action_id, True, "") for a in taken.actions], CONTEXT)
    assert len(taken.actions) == 50, "the seeded history has due pending actions"
    checked = 0
    for cap in counter.captured:
        verb = cap.statement.lstrip().upper()
        if not (verb.startswith("SELECT") or verb.startswith("UPDATE")):
            continue
        plan = explain(big_store.engine, cap.statement, cap.parameters)
        for row in plan:
            if row["table"] in (big_store.t.actions.name, "a"):  # "a": AS's table joined to the queue's head
                checked += 1
                assert row["key"] == "PRIMARY", (row, cap.statement)
            if row["table"] in (f"{big_store.prefix}wch_bridge_queue", "q") and "ORDER BY" in cap.statement:
                assert row["key"] == "claim_order", plan
                assert "filesort" not in str(row.get("Extra") or ""), plan
    assert checked >= 3, [c.statement for c in counter.captured]
    assert any(" JOIN " in c.statement for c in counter.captured), "the head is read with AS's rows, by PRIMARY"


def test_schema_check_names_leftover_bridge_indexes_and_drop_indexes_removes_them(
    big_store: ActionStore, mysql_url: str
) -> None:
    table = big_store.t.actions.name
    with big_store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} ADD INDEX wch_bridge_report_queue (status, group_id, hook, "
                          "scheduled_date_gmt)"))
    res = CliRunner().invoke(main, ["schema", "check", "--dsn", mysql_url, "--prefix", big_store.prefix])
    assert "leftover: index wch_bridge_report_queue" in res.output and "schema drop-indexes" in res.output, res.output
    res = CliRunner().invoke(main, ["schema", "drop-indexes", "--dsn", mysql_url, "--prefix", big_store.prefix,
                                    "--yes"])
    assert res.exit_code == 0 and f"dropped index wch_bridge_report_queue from {table}" in res.output, res.output
    assert schema_mod.leftover_indexes(big_store.engine, big_store.prefix) == []
    res = CliRunner().invoke(main, ["schema", "check", "--dsn", mysql_url, "--prefix", big_store.prefix])
    assert "leftover" not in res.output, res.output


@pytest.mark.parametrize("window", ["24h", "7d"])
def test_report_aggregates_read_the_big_tables_through_indexes(big_store: ActionStore, window: str) -> None:
    """Every statement the report sends is EXPLAINed: on the 1,000,000-row actions table and its log table each
    one reads through an index (a range or lookup, never a full scan). Grouping may sort its (small) result."""
    from wch_bridge.store import reports as reporting

    scope = reporting.open_scope(big_store.engine, big_store.t, ["wch"], big_store.now(), window, big_store.site)
    with StatementCounter(big_store.engine, capture=True) as counter:
        reporting.collect(scope)
    big = {big_store.t.actions.name, big_store.t.logs.name}
    checked = 0
    for cap in counter.captured:
        if not cap.statement.lstrip().upper().startswith("SELECT"):
            continue
        for row in explain(big_store.engine, cap.statement, cap.parameters):
            if row["table"] in big:
                checked += 1
                assert row["type"] != "ALL" and row["key"], (row, " ".join(cap.statement.split())[:300])
    assert checked >= 8, f"only {checked} reads of the big tables: did the report's queries change?"


def test_the_queue_s_copies_read_action_scheduler_s_table_by_primary_key_or_its_own_index(
        big_store: ActionStore) -> None:
    """The server-side copies into the pick-up queue (``INSERT … SELECT``): the feed's and the tail's read AS's
    table by a primary-key range, the reconcile's through AS's own secondary indexes (MariaDB chose an intersection
    of ``status_claim_id`` and ``group_id`` here), and the read of stale queue rows joins AS's rows by primary key;
    none scans AS's table."""
    gid = big_store.group_ids(["wch"])["wch"]
    big_store.refresh_queue(HOOKS, [gid], force=True)
    hw = big_store.queue.high_water or 0
    sql, hooks = big_store.sql, sorted(HOOKS)
    plans = {
        "feed": explain(big_store.engine, sql.queue_copy(len(hooks), 1, True), (hw - 5000, hw, *hooks, gid)),
        "feed_end": explain(big_store.engine, sql.feed_end, (hw - 5000, 20_000)),
        "reconcile": explain(big_store.engine, sql.queue_copy(len(hooks), 1, False), (*hooks, gid)),
        "stale": explain(big_store.engine, sql.queue_stale(len(hooks), 1), (*hooks, gid, hw)),
    }
    print(plans)
    for name, plan in plans.items():
        rows = [r for r in plan if r["table"] in (big_store.t.actions.name, "a")]
        assert rows and all(r["key"] and r["type"] != "ALL" for r in rows), (name, plan)
        if name != "reconcile":
            assert all(r["key"] == "PRIMARY" for r in rows), (name, plan)


def test_idle_poll_reads_the_bridge_s_queue_not_action_scheduler_s_indexes(big_store: ActionStore) -> None:
    """``next_due_at`` runs on every idle poll of every worker: it reads AS's table only by primary key (the feed
    of new ids) and finds the next due date in the bridge's own queue."""
    gid = big_store.group_ids(["wch"])["wch"]
    big_store.refresh_queue(HOOKS, [gid], force=True)
    with StatementCounter(big_store.engine, capture=True) as counter:
        assert big_store.next_due_at(HOOKS, [gid]) is not None
    for cap in counter.captured:
        if not cap.statement.lstrip().upper().startswith("SELECT"):
            continue
        for row in explain(big_store.engine, cap.statement, cap.parameters):
            if row["table"] == big_store.t.actions.name:
                assert row["key"] == "PRIMARY", (row, cap.statement)
