"""``wch-bridge jobs cancel`` and ``jobs purge`` (installed console script) against MariaDB."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.helpers.cli_ops import Ops, make_ops

DAY = 86400


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


# ---------------------------------------------------------------------------------------------- cancel
def test_cancel_ids_like_action_scheduler(ops: Ops) -> None:
    a, b = ops.add("wch_x", {"n": 1}, delay=600), ops.add("wch_x", {"n": 2})
    r = ops.run("jobs", "cancel", str(a), str(b))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"canceled #{a}", f"canceled #{b}", "canceled 2"]
    for aid in (a, b):
        row = ops.store.get_action(aid)
        assert row is not None
        assert (row.status, row.attempts, row.last_attempt_gmt) == ("canceled", 0, None)  # only the status changed
        assert ops.messages(aid) == ["action created", "action canceled"]


@pytest.mark.parametrize("kind", ["running", "complete", "failed", "canceled", "unknown", "other-group"])
def test_cancel_never_touches_other_statuses(ops: Ops, kind: str) -> None:
    pending = ops.add("wch_x")
    if kind == "running":
        aid = ops.running("wch_x")
    elif kind in ("complete", "failed"):
        aid = ops.add("wch_x")
        ops.run_to(aid, kind == "complete")
    elif kind == "canceled":
        aid = ops.add("wch_x")
        ops.store.cancel([aid])
    elif kind == "other-group":
        aid = ops.add("wch_x", group="elsewhere")
    else:
        aid = 424242
    snap = ops.snapshot()
    r = ops.run("jobs", "cancel", str(pending), str(aid))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and f"#{aid}" in r.stderr
    assert ops.snapshot() == snap


def test_cancel_by_hook_dry_run_refusal_and_bulk(ops: Ops) -> None:
    targets = [ops.add("wch_x", {"n": i}, delay=60) for i in range(4)]
    running = ops.running("wch_x")
    done = ops.add("wch_x")
    ops.run_to(done, True)
    other_hook = ops.add("wch_y")
    other_group = ops.add("wch_x", group="elsewhere")
    snap = ops.snapshot()
    r = ops.run("jobs", "cancel", "--hook", "wch_x", "--dry-run")
    assert r.returncode == 0 and "would cancel 4" in r.stdout and ops.snapshot() == snap
    r = ops.run("jobs", "cancel", "--hook", "wch_x", input="n\n")
    assert r.returncode == 1 and "Cancel 4 pending wch_x" in r.stdout and "aborted" in r.stderr
    assert ops.snapshot() == snap
    r = ops.run("jobs", "cancel", "--hook", "wch_x", "--status", "pending", input="y\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().endswith("canceled 4")
    assert [ops.status_of(t) for t in targets] == ["canceled"] * 4
    assert (ops.status_of(running), ops.status_of(done), ops.status_of(other_hook), ops.status_of(other_group)) == (
        "in-progress", "complete", "pending", "pending")
    r = ops.run("jobs", "cancel", "--hook", "wch_x", "--yes")
    assert r.returncode == 0 and "no pending wch_x" in r.stdout


def test_cancel_usage_errors(ops: Ops) -> None:
    aid = ops.add("wch_x")
    snap = ops.snapshot()
    for args in (["jobs", "cancel"], ["jobs", "cancel", str(aid), "--hook", "wch_x"],
                 ["jobs", "cancel", "--hook", "wch_x", "--status", "failed"]):
        r = ops.run(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert ops.snapshot() == snap


# ---------------------------------------------------------------------------------------------- purge
def seed_history(ops: Ops) -> dict[str, int]:
    """Finished actions of every kind, old and recent, plus rows purge must never touch."""
    ids: dict[str, int] = {}
    for name, ok in (("old_complete", True), ("old_failed", False)):
        ids[name] = ops.add("wch_x", {"k": name}, delay=-10 * DAY)
        ops.run_to(ids[name], ok, ago=10 * DAY)
    ids["new_complete"] = ops.add("wch_x", {"k": "new"})
    ops.run_to(ids["new_complete"], True)
    # Canceled without ever running: AS's cleaner would measure the zero last_attempt_gmt and delete at once.
    ids["old_canceled"] = ops.add("wch_x", {"k": "oc"}, delay=-10 * DAY)
    ids["new_canceled"] = ops.add("wch_x", {"k": "nc"}, delay=-60)
    ops.store.cancel([ids["old_canceled"], ids["new_canceled"]])
    ids["old_pending"] = ops.add("wch_x", {"k": "op"}, delay=-10 * DAY)
    ids["old_running"] = ops.add("wch_x", {"k": "or"}, delay=-10 * DAY)
    assert ops.store.take([ids["old_running"]], "WCH Bridge", ops.store.now() - timedelta(days=10))
    ids["other_group"] = ops.add("wch_x", {"k": "og"}, group="elsewhere", delay=-10 * DAY)
    ops.run_to(ids["other_group"], True, ago=10 * DAY)
    return ids


def test_purge_deletes_old_finished_actions_and_their_logs_only(ops: Ops) -> None:
    ids = seed_history(ops)
    r = ops.run("jobs", "purge", "--status", "complete", "--older-than", "7d", "--yes")
    assert r.returncode == 0, r.stderr
    assert "deleted 1 complete action(s) and 3 log row(s)" in r.stdout
    assert ops.status_of(ids["old_complete"]) is None and ops.messages(ids["old_complete"]) == []
    assert ops.status_of(ids["new_complete"]) == "complete" and ops.status_of(ids["other_group"]) == "complete"
    r = ops.run("jobs", "purge", "--status", "canceled", "--older-than", "7d", "--yes")
    assert r.returncode == 0 and "deleted 1 canceled" in r.stdout
    assert ops.status_of(ids["old_canceled"]) is None
    assert ops.status_of(ids["new_canceled"]) == "canceled"  # never ran: measured on its scheduled date
    r = ops.run("jobs", "purge", "--status", "failed", "--older-than", "7d", "--yes")
    assert r.returncode == 0 and "deleted 1 failed" in r.stdout
    assert ops.status_of(ids["old_pending"]) == "pending" and ops.status_of(ids["old_running"]) == "in-progress"
    assert ops.messages(ids["old_pending"]) == ["action created"]


def test_purge_dry_run_refusal_and_options(ops: Ops) -> None:
    seed_history(ops)
    snap = ops.snapshot()
    r = ops.run("jobs", "purge", "--status", "complete", "--older-than", "7d", "--dry-run")
    assert r.returncode == 0 and "would delete 1 complete" in r.stdout and ops.snapshot() == snap
    r = ops.run("jobs", "purge", "--status", "complete", "--older-than", "7d", input="n\n")
    assert r.returncode == 1 and "Delete 1 complete" in r.stdout and ops.snapshot() == snap
    r = ops.run("jobs", "purge", "--status", "complete", "--older-than", "30d", "--yes")
    assert r.returncode == 0 and "no complete action(s)" in r.stdout and ops.snapshot() == snap
    for args in (["--status", "pending", "--older-than", "7d"], ["--status", "complete"],
                 ["--status", "complete", "--older-than", "7 days"], ["--older-than", "7d"]):
        r = ops.run("jobs", "purge", *args, "--yes")
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert ops.snapshot() == snap
    help_text = ops.run("jobs", "purge", "--help").stdout
    assert "last_attempt_gmt" in help_text and "scheduled_date_gmt" in help_text
