"""``wch-bridge status`` (the installed console script, as a subprocess) against MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from tests.helpers.cli_ops import Ops, make_ops
from wch_bridge.hooks import PLUGIN_GROUPS
from wch_bridge.store.workers import WorkerRegistry

STATUS_KEYS = {"health", "exit_code", "reasons", "database", "groups", "group_ids", "now_gmt", "counts", "totals",
               "past_due", "failed_last_24h", "unowned", "newest_completion_gmt", "newest_completion_age_seconds", "cleanup",
               "messages_in_doubt", "workers", "paused_hooks"}
COUNT_KEYS = {"pending", "in-progress", "complete", "failed", "canceled", "other", "total"}


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def beat(ops: Ops, worker_id: str = "w-1", *, ago: float = 0, stopped: bool = False) -> None:
    now = ops.store.now() - timedelta(seconds=ago)
    WorkerRegistry(ops.store.engine, ops.store.t).beat(
        worker_id, host="host-a", pid=4242, version="0.1.0", started_at=now - timedelta(minutes=5), now=now,
        in_hand_ids=[], stopped=stopped,
    )


def healthy(ops: Ops) -> None:
    """A queue with nothing wrong: a live worker, the recurring cleanup scheduled, completed work."""
    beat(ops)
    ops.add("wch_cleanup_expired_carts", [], delay=3600)
    ops.run_to(ops.add("wch_retry_failed_message", {"phone": "+15551237890"}), True)


def test_healthy_queue_exits_0_and_shows_where_it_looks(ops: Ops) -> None:
    healthy(ops)
    r = ops.run("status")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "health: OK" in r.stdout
    assert "127.0.0.1" in r.stdout and f"prefix {ops.prefix}" in r.stdout
    assert "wch_retry_failed_message" in r.stdout and "wch_cleanup_expired_carts: scheduled" in r.stdout
    assert "1 live" in r.stdout
    assert "\x1b[" not in r.stdout  # no colours when stdout is not a terminal
    assert r.stderr == ""


def test_json_shape_counts_and_workers(ops: Ops) -> None:
    healthy(ops)
    ops.failed("wch_retry_failed_message", {"phone": "+15551237890"})
    ops.add("wch_retry_failed_message", [], delay=600)
    ops.add("wch_process_sync_job", [], group="elsewhere")
    beat(ops, "w-dead", ago=120)
    beat(ops, "w-stopped", ago=5, stopped=True)
    rep = ops.json("status", code=1)
    assert set(rep) == STATUS_KEYS
    assert rep["health"] == "warning" and rep["exit_code"] == 1
    assert rep["database"]["prefix"] == ops.prefix and rep["database"]["dialect"] == "mysql"
    assert rep["database"]["host"].startswith("127.0.0.1") and rep["database"]["database"] == "test"
    assert rep["groups"] == list(PLUGIN_GROUPS) and len(rep["group_ids"]) == 1
    by_hook = {c["hook"]: c for c in rep["counts"]}
    assert set(by_hook) == {"wch_retry_failed_message", "wch_cleanup_expired_carts"}  # other groups are not counted
    assert set(by_hook["wch_retry_failed_message"]) == COUNT_KEYS | {"hook"}
    assert by_hook["wch_retry_failed_message"]["complete"] == 1
    assert by_hook["wch_retry_failed_message"]["failed"] == 1
    assert by_hook["wch_retry_failed_message"]["pending"] == 1
    assert rep["totals"]["total"] == 4
    assert rep["failed_last_24h"] == 1
    assert rep["newest_completion_gmt"] is not None
    assert rep["past_due"]["count"] == 0 and rep["past_due"]["oldest_scheduled_gmt"] is None
    assert rep["cleanup"]["state"] == "scheduled" and rep["cleanup"]["group"] == "wch"
    assert [w["worker_id"] for w in rep["workers"]["live"]] == ["w-1"]
    assert [w["worker_id"] for w in rep["workers"]["dead"]] == ["w-dead"]
    assert set(rep["workers"]["live"][0]) == {"worker_id", "host", "pid", "version", "started_at_gmt",
                                              "heartbeat_at_gmt", "heartbeat_age_seconds", "in_hand"}
    messages = " | ".join(x["message"] for x in rep["reasons"])
    assert "failed in the last 24 h" in messages and "stopped heart-beating" in messages
    assert {x["level"] for x in rep["reasons"]} == {"warning"}


def test_old_past_due_action_is_critical(ops: Ops) -> None:
    healthy(ops)
    ops.add("wch_retry_failed_message", [], delay=-3600)
    r = ops.run("status")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "health: CRITICAL" in r.stdout and "past-due" in r.stdout
    rep = ops.json("status", code=2)
    assert rep["health"] == "critical"
    assert rep["past_due"]["count"] == 1 and rep["past_due"]["oldest_age_seconds"] >= 3600


def test_missing_cleanup_no_worker_and_no_heartbeat_table_are_warnings(ops: Ops) -> None:
    with ops.store.engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {ops.prefix}wch_bridge_workers"))  # noqa: S608 - test prefix
    r = ops.run("status")
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "NOT scheduled" in r.stdout and "no heartbeat table" in r.stdout
    rep = ops.json("status", code=1)
    assert rep["workers"] == {"table_exists": False, "live": [], "dead": []}
    assert rep["cleanup"] == {"hook": "wch_cleanup_expired_carts", "state": "missing", "next_due_gmt": None,
                              "group": None}


def test_served_groups_come_from_group_option_and_env(ops: Ops) -> None:
    ops.add("wch_process_sync_job", [], group="elsewhere", delay=60)
    rep = ops.json("status", "--group", "elsewhere", code=1)
    assert [c["hook"] for c in rep["counts"]] == ["wch_process_sync_job"]
    r = ops.run("status", "--json", env=ops.env(WCH_BRIDGE_GROUPS="wch,elsewhere"))
    assert r.returncode == 1
    assert '"elsewhere"' in r.stdout


def test_a_missing_group_warns_only_when_named_by_hand(ops: Ops) -> None:
    """Issue 18: the bridge serves the plugin's groups by default, most of which a site never uses: their absence
    is no warning. A group named by hand that does not exist (a typo?) still is."""
    healthy(ops)
    assert ops.run("status").returncode == 0
    r = ops.run("status", "--group", "wch,wch-typo")
    assert r.returncode == 1 and "'wch-typo' do not exist yet" in r.stdout, (r.stdout, r.stderr)
