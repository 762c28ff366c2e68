"""The commands queue users expect (issue 16 point 9), the installed console script against MariaDB:
``jobs list --args-contains/--before/--after/--stuck`` and its last-attempt column, ``jobs list`` within 80
columns, ``jobs purge --hook`` with several statuses, ``hooks pause|resume`` shown by ``status``, and
``status --watch`` stopped by Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from tests.helpers.cli_ops import WCH, Ops, make_ops, ts

DAY = 86400


@pytest.fixture
def ops(mysql_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(mysql_url, prefix)


def _ids(out: dict) -> list[int]:  # type: ignore[type-arg]
    return [a["id"] for a in out["actions"]]


def _age_running(ops: Ops, aid: int, seconds: float) -> None:
    a = ops.store.t.actions
    with ops.store.engine.begin() as conn:
        conn.execute(update(a).where(a.c.action_id == aid)
                     .values(last_attempt_gmt=ops.store.now() - timedelta(seconds=seconds)))


# ---------------------------------------------------------------------------------------------- list
def test_list_args_contains_matches_the_stored_args_literally(ops: Ops) -> None:
    hit = ops.add("wch_a", {"order_id": 4711, "note": "50%_off"})
    ops.add("wch_a", {"order_id": 4712, "note": "5000 off"})
    also = ops.add("wch_b", {"ids": [1, 4711]})
    assert _ids(ops.json("jobs", "list", "--args-contains", "4711")) == [also, hit]
    assert _ids(ops.json("jobs", "list", "--args-contains", "50%_")) == [hit]  # wildcards are literal
    out = ops.json("jobs", "list", "--args-contains", "4711", "--hook", "wch_a")
    assert _ids(out) == [hit] and out["filters"]["args_contains"] == "4711"


def test_list_before_and_after_take_durations_and_dates(ops: Ops) -> None:
    old = ops.add("wch_a", {"n": 1}, delay=-3 * DAY)
    mid = ops.add("wch_a", {"n": 2}, delay=-1 * 3600)
    future = ops.add("wch_a", {"n": 3}, delay=2 * DAY)
    assert _ids(ops.json("jobs", "list", "--before", "2d")) == [old]
    assert _ids(ops.json("jobs", "list", "--after", "2d")) == [future, mid]
    assert _ids(ops.json("jobs", "list", "--after", "2d", "--before", "+1d")) == [mid]
    when = ops.store.now() + timedelta(days=1)
    iso = when.strftime("%Y-%m-%dT%H:%M:%S")
    out = ops.json("jobs", "list", "--after", iso)
    assert _ids(out) == [future] and out["filters"]["after_gmt"] == when.strftime("%Y-%m-%d %H:%M:%S")
    assert _ids(ops.json("jobs", "list", "--before", str(ts(ops.store.now() - timedelta(days=2))))) == [old]
    bad = ops.run("jobs", "list", "--before", "tomorrow")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1
    assert "--before" in bad.stderr and "ISO date-time" in bad.stderr and "30m" in bad.stderr


def test_list_stuck_in_progress_default_limit_and_duration(ops: Ops) -> None:
    fresh = ops.running("wch_a")
    stuck = ops.running("wch_a")
    very = ops.running("wch_b")
    _age_running(ops, stuck, 120)
    _age_running(ops, very, 7200)
    ops.add("wch_a")
    out = ops.json("jobs", "list", "--status", "in-progress", "--stuck")
    assert _ids(out) == [very, stuck] and out["filters"]["stuck_seconds"] == 30  # orphan_timeout
    assert fresh not in _ids(out)
    assert _ids(ops.json("jobs", "list", "--stuck", "1h")) == [very]
    refused = ops.run("jobs", "list", "--status", "failed", "--stuck")
    assert refused.returncode == 1 and "in-progress" in refused.stderr


def test_list_shows_the_last_attempt(ops: Ops) -> None:
    done = ops.add("wch_a")
    ops.run_to(done, True)
    waiting = ops.add("wch_a")
    out = ops.json("jobs", "list")
    by = {a["id"]: a for a in out["actions"]}
    assert by[done]["last_attempt_gmt"] and by[waiting]["last_attempt_gmt"] is None
    piped = {k: v for k, v in ops.env().items() if k != "COLUMNS"}  # whole values (no width: not a terminal)
    r = ops.run("jobs", "list", env=piped)
    header, first, second = r.stdout.splitlines()[:3]
    col = header.index("LAST ATTEMPT (UTC)")
    assert first[col:].startswith("-") and second[col:].startswith(by[done]["last_attempt_gmt"])


def test_list_fits_80_columns(ops: Ops) -> None:
    ops.failed("wch_retry_failed_message", {"message_id": 123456, "phone": "+15551237890", "note": "x" * 200},
               message="WhatsApp said: (#131026) Message undeliverable because the recipient is not on WhatsApp")
    ops.running("wch_cleanup_expired_carts", {"note": "y" * 100})
    ops.add("wch_a_hook_with_a_really_long_name_that_goes_on_and_on", {"k": "z" * 300}, delay=40 * DAY)
    r = ops.run("jobs", "list", env=ops.env(COLUMNS="80"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 5 and all(len(line) <= 80 for line in lines), [len(x) for x in lines]
    assert lines[0].split() == ["ID", "HOOK", "STATUS", "DUE", "RAN", "TRY", "ERROR", "·", "ARGS"]
    assert "wch_a_hook_with_a_really…" in lines[1] or "…" in lines[1].split()[1]
    assert "! WhatsApp said" in lines[3] and "5551237890" not in r.stdout
    wide = ops.run("jobs", "list", env=ops.env(COLUMNS="200"))
    assert max(len(x) for x in wide.stdout.splitlines()) > 80
    assert all(len(x) <= 200 for x in wide.stdout.splitlines())


# ---------------------------------------------------------------------------------------------- purge
def test_purge_one_hook_several_statuses_all_or_nothing(ops: Ops) -> None:
    old = 10 * DAY
    gone = []
    for status_ok in (True, False):
        aid = ops.add("wch_a")
        ops.run_to(aid, status_ok, ago=old)
        gone.append(aid)
    canceled = ops.add("wch_a", delay=-old)
    ops.store.cancel([canceled])
    other_hook = ops.add("wch_b")
    ops.run_to(other_hook, True, ago=old)
    recent = ops.add("wch_a")
    ops.run_to(recent, False)
    pending = ops.add("wch_a", delay=-old)
    dry = ops.run("jobs", "purge", "--status", "complete", "--status", "failed", "--hook", "wch_a",
                  "--older-than", "7d", "--dry-run")
    assert dry.returncode == 0 and "would delete 2 complete or failed action(s)" in dry.stdout
    assert "of hook wch_a" in dry.stdout
    r = ops.run("jobs", "purge", "--status", "complete", "--status", "failed", "--hook", "wch_a",
                "--older-than", "7d", "--yes")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["deleted 1 complete action(s) and 3 log row(s)",
                                     "deleted 1 failed action(s) and 3 log row(s)"]
    left = {row["action_id"] for row in ops.rows()}
    assert not left & set(gone)
    assert {canceled, other_hook, recent, pending} <= left
    assert not [aid for aid, _ in ops.logs() if aid in gone]


# ---------------------------------------------------------------------------------------------- hooks pause
def test_hooks_pause_resume_shown_by_status(ops: Ops) -> None:
    r = ops.run("hooks", "pause", "wch_process_sync_job")
    assert r.returncode == 0 and r.stdout.startswith("paused wch_process_sync_job"), r.stderr
    again = ops.run("hooks", "pause", "wch_process_sync_job")
    assert again.returncode == 0 and "already paused" in again.stdout
    rep = ops.json("status", code=1)
    assert [p["hook"] for p in rep["paused_hooks"]] == ["wch_process_sync_job"]
    assert rep["paused_hooks"][0]["paused_at_gmt"]
    text = ops.run("status")
    assert any(line.startswith("paused hooks") and "wch_process_sync_job" in line
               for line in text.stdout.splitlines()), text.stdout
    assert ops.run("hooks", "resume", "wch_process_sync_job").returncode == 0
    assert ops.json("status", code=1)["paused_hooks"] == []
    assert "paused hooks" not in ops.run("status").stdout
    assert "was not paused" in ops.run("hooks", "resume", "wch_process_sync_job").stdout


# ---------------------------------------------------------------------------------------------- status --watch
def test_status_watch_redraws_until_ctrl_c(ops: Ops) -> None:
    proc = subprocess.Popen([str(WCH), "status", "--watch", "0.3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ops.env())
    try:
        frames = 0
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while frames < 2 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            frames += line.startswith("health: ")
        assert frames == 2
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Aborted" not in err


def test_report_json_names_the_paused_hooks(ops: Ops, tmp_path: Path) -> None:
    assert ops.run("hooks", "pause", "wch_process_sync_job").returncode == 0
    r = ops.run("report", "--out", str(tmp_path / "r.html"), "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["paused_hooks"] == ["wch_process_sync_job"]
