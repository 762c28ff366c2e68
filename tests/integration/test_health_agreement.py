"""``wch-bridge status`` and ``wch-bridge report`` give the same health verdict on the same database (one pipeline:
``store.reports.health_facts`` -> ``health.judge``), for each seeded situation, on SQLite and MariaDB. Through the CLI only,
so the test says what an operator sees."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.cli import main
from wch_bridge.hooks import PLUGIN_GROUPS
from wch_bridge.metrics import StoreCollector
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.store.wordpress.base import WpBase
from wch_bridge.store.workers import WorkerRegistry

CLEANUP = "wch_cleanup_expired_carts"
HOOK = "wch_retry_failed_message"


def add(store: ActionStore, hook: str, at: datetime, status: str = "pending") -> int:
    a, ext = argscodec.encode_args([])
    sched = phpser.serialize_schedule(schedules.SimpleSchedule(int(at.replace(tzinfo=UTC).timestamp())))
    aid = store.insert_action(NewRow(hook=hook, scheduled_date_gmt=at, schedule=sched, args=a, extended_args=ext,
                                     group="wch"))
    if status != "pending":
        t = store.t.actions
        with store.engine.begin() as conn:
            conn.execute(update(t).where(t.c.action_id == aid).values(status=status, last_attempt_gmt=at,
                                                                      last_attempt_local=at))
    return aid


def beat(store: ActionStore, worker_id: str, ago: timedelta, *, stopped: bool = False) -> None:
    now = store.now() - ago
    WorkerRegistry(store.engine, store.t).beat(worker_id, host="host-a", pid=4242, version="0.1.0",
                                               started_at=now - timedelta(minutes=5), now=now, in_hand_ids=[],
                                               stopped=stopped)


def base(store: ActionStore) -> None:
    """Nothing wrong with the queue itself: the recurring cleanup scheduled, one completed action."""
    now = store.now()
    add(store, CLEANUP, now + timedelta(hours=1))
    add(store, HOOK, now - timedelta(minutes=3), status="complete")


def healthy(store: ActionStore) -> None:
    base(store)
    beat(store, "w-live", timedelta(0))


def backlog(store: ActionStore) -> None:
    healthy(store)
    add(store, HOOK, store.now() - timedelta(hours=2))


def young_past_due(store: ActionStore) -> None:
    healthy(store)
    add(store, HOOK, store.now() - timedelta(minutes=2))


def a_failure(store: ActionStore) -> None:
    healthy(store)
    add(store, HOOK, store.now() - timedelta(hours=1), status="failed")


def failure_storm(store: ActionStore) -> None:
    healthy(store)
    for _ in range(12):
        add(store, HOOK, store.now() - timedelta(hours=1), status="failed")


def crashed_worker(store: ActionStore) -> None:
    base(store)
    beat(store, "w-crashed", timedelta(minutes=10))


def cleanly_stopped(store: ActionStore) -> None:
    base(store)
    beat(store, "w-stopped", timedelta(minutes=10), stopped=True)


def old_crash_then_clean_stop(store: ActionStore) -> None:
    base(store)
    beat(store, "w-crashed-long-ago", timedelta(days=3))
    beat(store, "w-stopped", timedelta(minutes=10), stopped=True)


SITUATIONS: dict[str, tuple[Callable[[ActionStore], None], str]] = {
    "healthy": (healthy, "ok"),
    "young past-due": (young_past_due, "ok"),
    "past-due backlog": (backlog, "critical"),
    "a failure": (a_failure, "warning"),
    "failure storm": (failure_storm, "critical"),
    "crashed worker": (crashed_worker, "critical"),
    "cleanly stopped worker": (cleanly_stopped, "warning"),
    "old crash, then a clean stop": (old_crash_then_clean_stop, "warning"),
}


def verdicts(store: ActionStore) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    url = store.engine.url.render_as_string(hide_password=False)
    db = ["--dsn", url, "--prefix", store.prefix]
    runner = CliRunner()
    status = runner.invoke(main, ["status", "--json", *db], catch_exceptions=False)
    rep = json.loads(status.output)
    assert status.exit_code == rep["exit_code"], status.output
    report = runner.invoke(main, ["report", "--json", "-", *db], catch_exceptions=False)
    assert report.exit_code == 0, report.output
    data = json.loads(report.stdout)
    return rep["health"], data["health"]["status"], rep, data["health"]


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_status_and_report_agree(store: ActionStore, situation: str) -> None:
    seed, expected = SITUATIONS[situation]
    seed(store)
    status, report, rep, banner = verdicts(store)
    assert status == report, (situation, rep["reasons"], banner["reasons"])
    assert status == expected, (situation, rep["reasons"])
    # the same reasons, word for word (numbers aside: the two commands run a moment apart, so "10 min" may be
    # "10 min 1 s" in the second)
    def words(text: str) -> str:
        durations = re.sub(r"\d+(?:\.\d+)? (?:s|min|h|d)\b(?: \d+ (?:s|min|h)\b)?", "<duration>", text)
        return re.sub(r"\d+", "#", durations)

    assert [(r["level"], words(r["message"])) for r in rep["reasons"]] == [
        (r["level"], words(r["text"])) for r in banner["reasons"]]


def test_one_definition_of_a_live_worker(store: ActionStore) -> None:
    """A heartbeat 45 s old: dead for status, the report and the container probe alike (the orphan timeout, 30 s
    by default; `health --max-age` used to default to 60 s, the report to max(30, 6 x heartbeat interval))."""
    base(store)
    beat(store, "w-slow", timedelta(seconds=45))
    status, report, rep, _banner = verdicts(store)
    assert status == report == "critical" and rep["workers"]["live"] == []
    db = ["--dsn", store.engine.url.render_as_string(hide_password=False), "--prefix", store.prefix]
    probe = CliRunner().invoke(main, ["health", "--any-host", *db])
    assert probe.exit_code == 2 and "within 30 s" in probe.output, probe.output
    assert CliRunner().invoke(main, ["health", "--any-host", "--max-age", "60", *db]).exit_code == 0


#: Served groups (``--group``) on a database where only ``wch`` has a row: a typo beside an existing group, a
#: plugin group beside it, only plugin groups (none exists), a plugin group and a typo (neither exists).
GROUP_CASES = ["wch,wch-typo", "wch,wch-bulk", "wch-bulk", "wch-bulk,wch-typo", "wch,wch-bulk,wch-typo",
               "wch-bulk,wch-orders"]


@pytest.mark.parametrize("groups", GROUP_CASES)
def test_status_and_schema_check_warn_about_the_same_missing_groups(store: ActionStore, groups: str) -> None:
    """One rule (health.missing_groups_to_warn) for "a served group has no row": the verdict of status and the
    warnings of schema check name the same groups; the others are schema check's plan ("create on first run")."""
    base(store)
    db = ["--dsn", store.engine.url.render_as_string(hide_password=False), "--prefix", store.prefix,
          "--group", groups]
    runner = CliRunner()
    status = json.loads(runner.invoke(main, ["status", "--json", *db], catch_exceptions=False).output)
    said = [r["message"] for r in status["reasons"] if "do not exist yet" in r["message"]]
    by_status = set(re.findall(r"'([^']+)'", said[0])) if said else set()
    check = runner.invoke(main, ["schema", "check", "--json", *db], catch_exceptions=False)
    found = json.loads(check.output)
    by_check = {m.group(1) for w in found["warnings"] if (m := re.match(r"group '([^']+)' has no row yet", w))}
    assert by_status == by_check, (groups, said, found["warnings"], found["plan"])
    missing = {g for g in groups.split(",") if g != "wch"}
    planned = [p for p in found["plan"] if p.startswith("create the group row(s)")]
    assert set(planned[0].split(" row(s) ")[1].removesuffix(" on first run").split(", ") if planned else []) == (
        missing - by_check)


def _drop_in_site(tmp_path: Path) -> Path:
    """A site's files: wp-config.php with an object-cache.php drop-in in its wp-content."""
    (tmp_path / "www" / "wp-content").mkdir(parents=True)
    (tmp_path / "www" / "wp-content" / "object-cache.php").write_text("<?php\n")
    config = tmp_path / "www" / "wp-config.php"
    config.write_text("<?php\n$table_prefix = 'wp_';\n")
    return config


@pytest.mark.parametrize("how", ["drop-in", "older must-use plugin", "must-use plugin serves them"])
def test_status_and_report_agree_on_an_object_cache(store: ActionStore, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    """A persistent object cache hides the bridge's results from WordPress unless the must-use plugin serves them:
    status, the report's banner (and so /healthz and the metrics, from the same verdict) say it alike."""
    healthy(store)
    monkeypatch.delenv("WCH_BRIDGE_WP_CONFIG", raising=False)
    if how == "drop-in":
        monkeypatch.setenv("WCH_BRIDGE_WP_CONFIG", str(_drop_in_site(tmp_path)))
    else:
        doc = {"v": 1, "mode": "hooks", "object_cache": True, "serves_transients": how.endswith("serves them")}
        WpBase(store.engine, store.prefix).update_option("wch_bridge_php_side", json.dumps(doc), autoload="no")
    status, report, rep, banner = verdicts(store)
    expected = "ok" if how.endswith("serves them") else "warning"
    assert status == report == expected, (how, rep["reasons"], banner["reasons"])
    assert [r["message"] for r in rep["reasons"]] == [r["text"] for r in banner["reasons"]]
    assert any("persistent object cache" in r["text"] for r in banner["reasons"]) == (expected == "warning")
    # /metrics' wch_bridge_health and /healthz's body: the collector's verdict of the same facts
    collector = StoreCollector(store, PLUGIN_GROUPS, worker_id=lambda: None, cache_seconds=0,
                               wp_config=os.environ.get("WCH_BRIDGE_WP_CONFIG"))
    list(collector.collect())
    assert collector.last_health == expected
