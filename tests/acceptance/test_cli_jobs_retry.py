"""``wch-bridge jobs retry`` (installed console script) against MariaDB: what it writes reads back like PHP's
Action Scheduler rows, it is idempotent, the bulk form's safety options, and the worker runs the retry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.cli_ops import Ops, make_ops
from wch_bridge import phpser, schedules
from wch_bridge.handlers.base import Job
from wch_bridge.settings import Settings
from wch_bridge.worker import Worker


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def retries_of(ops: Ops, aid: int) -> list[int]:
    return [r["action_id"] for r in ops.rows() if f"retry of action #{aid}" in ops.messages(r["action_id"])]


def test_retry_writes_a_pending_action_php_reads_back(ops: Ops) -> None:
    src = ops.failed("wch_send_message", {"phone": "+15551237890", "note": "y" * 300}, priority=5)
    before = ops.store.get_action(src)
    r = ops.run("jobs", "retry", str(src))
    assert r.returncode == 0, r.stderr
    (new,) = retries_of(ops, src)
    assert r.stdout.splitlines()[0] == f"retried #{src} as #{new}"
    a = ops.store.get_action(new)
    assert a is not None and before is not None
    # What PHP's ActionScheduler_DBStore reads: pending, unclaimed, never attempted, due now, same everything
    assert (a.status, a.claim_id, a.attempts, a.last_attempt_gmt) == ("pending", 0, 0, None)
    assert a.scheduled_date_gmt is not None and a.scheduled_date_gmt <= ops.store.now()
    assert (a.hook, a.args, a.extended_args, a.group_id, a.group, a.priority) == (
        before.hook, before.args, before.extended_args, before.group_id, "wch", 5)
    sched = phpser.parse_schedule(a.schedule)
    assert isinstance(sched, schedules.SimpleSchedule) and sched.scheduled_at() == a.scheduled_date_gmt
    assert ops.messages(new) == ["action created", f"retry of action #{src}"]
    assert ops.messages(src)[-1] == f"retried as action #{new} via WCH Bridge CLI"
    assert ops.status_of(src) == "failed"  # the source keeps its status
    data = ops.json("jobs", "show", str(new))
    assert data["retry_of"] == src
    assert ops.json("jobs", "show", str(src))["retried_as"] == [new]


def test_second_retry_does_nothing_unless_force(ops: Ops) -> None:
    src = ops.failed("wch_x", {"n": 1})
    assert ops.run("jobs", "retry", str(src)).returncode == 0
    snap = ops.snapshot()
    r = ops.run("jobs", "retry", str(src))
    assert r.returncode == 0
    assert "skipped" in r.stdout and "already has a pending retry" in r.stdout and "--force" in r.stdout
    assert ops.snapshot() == snap
    r = ops.run("jobs", "retry", str(src), "--force")
    assert r.returncode == 0 and "retried" in r.stdout
    assert len(retries_of(ops, src)) == 2


def test_canceled_action_can_be_retried(ops: Ops) -> None:
    aid = ops.add("wch_x", {"n": 2}, delay=3600)
    assert ops.store.cancel([aid]) == [aid]
    r = ops.run("jobs", "retry", str(aid))
    assert r.returncode == 0, r.stderr
    assert len(retries_of(ops, aid)) == 1


@pytest.mark.parametrize("kind", ["pending", "running", "complete", "unknown", "other-group"])
def test_wrong_status_unknown_or_unserved_id_changes_nothing(ops: Ops, kind: str) -> None:
    good = ops.failed("wch_x", {"n": 0})
    if kind == "pending":
        aid = ops.add("wch_x")
    elif kind == "running":
        aid = ops.running("wch_x")
    elif kind == "complete":
        aid = ops.add("wch_x")
        ops.run_to(aid, True)
    elif kind == "other-group":
        aid = ops.failed("wch_x", group="elsewhere")
    else:
        aid = 99999
    snap = ops.snapshot()
    r = ops.run("jobs", "retry", str(good), str(aid))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert f"#{aid}" in r.stderr and "nothing was changed" in r.stderr
    assert ops.snapshot() == snap


def test_all_failed_dry_run_and_refusal_change_nothing(ops: Ops) -> None:
    for i in range(3):
        ops.failed("wch_x", {"n": i})
    snap = ops.snapshot()
    r = ops.run("jobs", "retry", "--all-failed", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "would retry 3" in r.stdout and "nothing was changed" in r.stdout
    assert ops.snapshot() == snap
    r = ops.run("jobs", "retry", "--all-failed", input="n\n")
    assert r.returncode == 1
    assert "Retry 3 failed action(s)" in r.stdout and "aborted: nothing was changed" in r.stderr
    assert ops.snapshot() == snap
    r = ops.run("jobs", "retry", "--all-failed")  # no terminal, no answer: no
    assert r.returncode == 1 and ops.snapshot() == snap


def test_all_failed_bulk_with_filters_confirmation_and_chains(ops: Ops) -> None:
    a = [ops.failed("wch_a", {"n": i}) for i in range(3)]
    b = ops.failed("wch_b", {"n": 9})
    canceled = ops.add("wch_a", {"n": 7}, delay=600)
    ops.store.cancel([canceled])
    elsewhere = ops.failed("wch_a", {"n": 8}, group="elsewhere")
    r = ops.run("jobs", "retry", "--all-failed", "--hook", "wch_a", input="y\n")
    assert r.returncode == 0, r.stderr
    assert "Retry 3 failed action(s) in group(s) wch, wch-critical, " in r.stdout and "of hook wch_a" in r.stdout and "retried 3" in r.stdout
    assert all(len(retries_of(ops, x)) == 1 for x in a)
    assert retries_of(ops, b) == [] and retries_of(ops, canceled) == [] and retries_of(ops, elsewhere) == []
    # Again: each has a pending retry -> nothing new.
    snap = ops.snapshot()
    r = ops.run("jobs", "retry", "--all-failed", "--hook", "wch_a", "--yes")
    assert r.returncode == 0 and "retried 0" in r.stdout and "already has a pending retry" in r.stdout
    assert ops.snapshot() == snap
    # The retries fail too: the bulk form retries the newest of each chain only, not the originals as well.
    first_retries = [retries_of(ops, x)[0] for x in a]
    for rid in first_retries:
        ops.run_to(rid, False, "still broken")
    r = ops.run("jobs", "retry", "--all-failed", "--hook", "wch_a", "--yes")
    assert r.returncode == 0, r.stderr
    assert "retried 3" in r.stdout and "was retried before" in r.stdout
    assert all(len(retries_of(ops, rid)) == 1 for rid in first_retries)
    assert all(len(retries_of(ops, x)) == 1 for x in a)
    # --since: only recent failures
    old = ops.add("wch_c", {"n": 1}, delay=-3 * 86400)
    ops.run_to(old, False, "old", ago=3 * 86400)
    recent = ops.failed("wch_c", {"n": 2})
    r = ops.run("jobs", "retry", "--all-failed", "--hook", "wch_c", "--since", "1d", "--yes")
    assert r.returncode == 0, r.stderr
    assert retries_of(ops, old) == [] and len(retries_of(ops, recent)) == 1


def test_usage_errors(ops: Ops) -> None:
    aid = ops.failed("wch_x")
    snap = ops.snapshot()
    for args in (["jobs", "retry"], ["jobs", "retry", str(aid), "--all-failed"],
                 ["jobs", "retry", str(aid), "--hook", "wch_x"], ["jobs", "retry", "--all-failed", "--since", "soon"],
                 ["jobs", "retry", "abc"], ["jobs", "retry", "--bogus"]):
        r = ops.run(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    assert ops.snapshot() == snap


def test_worker_runs_the_retried_action(ops: Ops) -> None:
    src = ops.failed("wch_flaky", {"order_id": 42}, message="temporary outage")
    r = ops.run("jobs", "retry", str(src))
    assert r.returncode == 0, r.stderr
    (new,) = retries_of(ops, src)
    seen: list[tuple[int, object]] = []

    def handler(job: Job) -> None:
        seen.append((job.action.action_id, job.args))

    settings = Settings(dsn=ops.url, prefix=ops.prefix, once=True, poll_interval=0.05, concurrency=2)
    assert Worker(ops.store, {"wch_flaky": handler}, settings).run() == 0
    assert seen == [(new, {"order_id": 42})]
    assert ops.status_of(new) == "complete" and ops.status_of(src) == "failed"
    assert ops.messages(new)[:3] == ["action created", f"retry of action #{src}", "action started via WCH Bridge"]
    assert ops.messages(new)[-1] == "action complete via WCH Bridge"
    # Completed: the source no longer has a pending retry, so an explicit retry is allowed again.
    assert "retried" in ops.run("jobs", "retry", str(src)).stdout
