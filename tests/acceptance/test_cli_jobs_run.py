"""``wch-bridge jobs run ID`` (issue 16 point 9), the installed console script against MariaDB: one action now,
through the worker's guarded path, AS's log lines with the bridge's context; clear refusals (one line, exit 1,
nothing changed); exit 3 when the action ran and failed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.helpers.cli_ops import Ops, make_ops, ts
from wch_bridge import phpser, schedules
from wch_bridge.store.queue.actions import NewRow

CLEANUP = "wch_cleanup_expired_carts"  # the one bridge hook that needs no WhatsApp settings


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def test_run_one_pending_action_now_like_the_worker(ops: Ops) -> None:
    aid = ops.add(CLEANUP, [], delay=3600)  # not due yet: jobs run does not wait
    other = ops.add(CLEANUP, [])
    r = ops.run("jobs", "run", str(aid))
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert r.stdout.startswith(f"action #{aid} ({CLEANUP}) complete in ") and r.stderr == ""
    row = ops.store.get_action(aid)
    assert row is not None and (row.status, row.attempts, row.claim_id) == ("complete", 1, 0)
    assert row.last_attempt_gmt is not None
    msgs = ops.messages(aid)
    assert msgs[:2] == ["action created", "action started via WCH Bridge"]  # the guarded start
    assert "cart(s)" in msgs[2]  # the handler's own log line, as the worker writes it
    assert msgs[-1] == "action complete via WCH Bridge"
    assert ops.status_of(other) == "pending"


def test_run_records_a_failure_and_exits_3(ops: Ops) -> None:
    when = ops.store.now() - timedelta(seconds=1)
    aid = ops.store.insert_action(NewRow(hook=CLEANUP, scheduled_date_gmt=when, args='{"broken":', group="wch",
                                         schedule=phpser.serialize_schedule(schedules.SimpleSchedule(ts(when)))))
    r = ops.run("jobs", "run", str(aid))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert f"action #{aid} ({CLEANUP}) failed in " in r.stdout and "invalid args" in r.stdout
    assert ops.status_of(aid) == "failed"
    msgs = ops.messages(aid)
    assert msgs[:2] == ["action created", "action started via WCH Bridge"]
    assert msgs[2].startswith("action failed via WCH Bridge: invalid args")


@pytest.mark.parametrize("kind", ["complete", "running", "other-group", "unknown-hook", "whatsapp-unconfigured",
                                  "missing"])
def test_run_refuses_in_one_line_and_changes_nothing(ops: Ops, kind: str) -> None:
    if kind == "complete":
        aid = ops.add(CLEANUP, [])
        ops.run_to(aid, True)
        expect = "only pending actions can be run"
    elif kind == "running":
        aid = ops.running(CLEANUP, [])
        expect = "is in-progress"
    elif kind == "other-group":
        aid = ops.add(CLEANUP, [], group="elsewhere")
        expect = "not served"
    elif kind == "unknown-hook":
        aid = ops.add("wch_no_such_hook", [])
        expect = "no handler for wch_no_such_hook"
    elif kind == "whatsapp-unconfigured":
        aid = ops.add("wch_process_sync_job", {"type": "product", "id": 1})
        expect = "WhatsApp is not configured"
    else:
        aid = 987654
        expect = "not found"
    snap = ops.snapshot()
    r = ops.run("jobs", "run", str(aid))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stdout == "" and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert expect in r.stderr and "Traceback" not in r.stderr
    assert ops.snapshot() == snap
