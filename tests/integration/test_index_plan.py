"""Query plans on a 1,000,000-row actions table (MariaDB): the worker's claim read is served by the claim-order
index (no full scan, no filesort); every statement of the report reads the big tables through an index; and
``wch-bridge schema check`` prints the exact ALTER TABLE when the recommended claim-order index is missing.

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
from wch_bridge.models import CONTEXT
from wch_bridge.store import ActionStore, bulk, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.actions import TakeRequest
from wch_bridge.store.instrument import StatementCounter, explain
from wch_bridge.timeutil import Clock

pytestmark = pytest.mark.mysql

ROWS = 1_000_000
HOOKS = list(bulk.HISTORY_HOOKS)
CLAIM_INDEX_COLUMNS = "claim_id, status, priority, attempts, scheduled_date_gmt, action_id"


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


def _due_sql(store: ActionStore, *, locking: bool = True) -> tuple[str, Any]:
    """The claim read of one ``take_due`` (the one that returned the rows: after a fallback, the last one)."""
    gid = store.group_ids(["wch"])["wch"]
    with StatementCounter(store.engine, capture=True) as counter:
        taken = store.take_due(TakeRequest(HOOKS, [gid], 50), CONTEXT)
    assert taken.actions, "the seeded history has due pending actions"
    selects = [c for c in counter.captured if c.statement.lstrip().upper().startswith("SELECT")
               and "ORDER BY priority" in c.statement and store.t.actions.name in c.statement]
    assert selects, [c.statement for c in counter.captured]
    last = selects[-1]
    if locking:
        assert len(selects) == 1, [c.statement for c in counter.captured]
        assert "FOR UPDATE SKIP LOCKED" in last.statement, "the claim read locks the rows it returns"
    else:
        assert "FOR UPDATE" not in last.statement, "without the index the claim read must not lock"
    return last.statement, last.parameters


def _actions_row(store: ActionStore, plan: list[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for r in plan if r["table"] in (store.t.actions.name, "a", store.t.actions.name.lower())]
    assert rows, plan
    return rows[0]


def test_due_query_uses_the_claim_order_index_without_filesort(big_store: ActionStore) -> None:
    stmt, params = _due_sql(big_store)
    plan = explain(big_store.engine, stmt, params)
    row = _actions_row(big_store, plan)
    assert row["type"] != "ALL", plan
    assert row["key"], plan
    extras = " ".join(str(r.get("Extra") or "") for r in plan)
    assert "Using filesort" not in extras, plan
    assert "Using temporary" not in extras, plan
    assert row["key"] == "wch_bridge_claim_order", plan


def _index_names(store: ActionStore) -> set[str]:
    with store.engine.connect() as conn:
        return {str(r[2]) for r in conn.execute(text(f"SHOW INDEX FROM {store.t.actions.name}"))}  # noqa: S608


def test_schema_check_prints_the_exact_alter_table_when_the_index_is_missing(
    big_store: ActionStore, mysql_url: str
) -> None:
    table = big_store.t.actions.name
    with big_store.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} DROP INDEX wch_bridge_claim_order"))
    try:
        assert "wch_bridge_claim_order" not in _index_names(big_store)
        res = CliRunner().invoke(main, ["schema", "check", "--dsn", mysql_url, "--prefix", big_store.prefix])
        expected = f"ALTER TABLE {table} ADD INDEX wch_bridge_claim_order ({CLAIM_INDEX_COLUMNS})"
        lines = [ln.strip() for ln in res.output.splitlines()]
        assert f"recommended: {expected};" in lines, res.output
        # check only recommends: the index is still missing afterwards
        assert "wch_bridge_claim_order" not in _index_names(big_store)
        # Without the index the same query is sorted (AS's own indexes do not cover attempts): the index is what
        # removes the filesort, so this test would notice a plan change.
        # A running store notices the index is gone (its cached plan said otherwise) and takes the plain way.
        stmt, params = _due_sql(big_store, locking=False)
        plan = explain(big_store.engine, stmt, params)
        assert _actions_row(big_store, plan)["key"] != "wch_bridge_claim_order"
        assert big_store.claim_read_locks() is False
    finally:
        schema_mod.ensure_indexes(big_store.engine, schema_mod.recommended_indexes(big_store.prefix))
    assert "wch_bridge_claim_order" in _index_names(big_store)
    res = CliRunner().invoke(main, ["schema", "check", "--dsn", mysql_url, "--prefix", big_store.prefix])
    assert "ADD INDEX wch_bridge_claim_order" not in res.output, res.output


@pytest.mark.parametrize("window", ["24h", "7d"])
def test_report_aggregates_read_the_big_tables_through_indexes(big_store: ActionStore, window: str) -> None:
    """Every statement the report sends is EXPLAINed: on the 1,000,000-row actions table and its log table each
    one reads through an index (a range or lookup, never a full scan). Grouping may sort its (small) result."""
    from wch_bridge.store import reporting

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


def test_idle_poll_reads_one_index_entry_per_hook(big_store: ActionStore) -> None:
    """``next_due_at`` runs on every idle poll of every worker: each of its statements is a lookup on the bridge's
    queue index, ordered by the index itself (no filesort), not a range over every pending row of a hook."""
    gid = big_store.group_ids(["wch"])["wch"]
    with StatementCounter(big_store.engine, capture=True) as counter:
        assert big_store.next_due_at(HOOKS, [gid]) is not None
    selects = [c for c in counter.captured if c.statement.lstrip().upper().startswith("SELECT")
               and big_store.t.actions.name in c.statement]
    assert len(selects) == len(HOOKS), [c.statement for c in counter.captured]
    for cap in selects:
        plan = explain(big_store.engine, cap.statement, cap.parameters)
        row = _actions_row(big_store, plan)
        assert row["key"] == "wch_bridge_report_queue", plan
        assert row["type"] in ("ref", "range"), plan
        assert "filesort" not in str(row.get("Extra") or ""), plan
