"""`wch-bridge bench` as a user runs it (the installed console script) against the test MariaDB: every mode drains
what it seeded with the real worker, prints the figures (counted, never timed here), works only under its own
scratch prefix and leaves no table behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from wch_bridge.store import make_engine

pytestmark = pytest.mark.mysql

CLI = str(Path(sys.executable).parent / "wch-bridge")
CLEAN = {"started_twice": 0, "finished_twice": 0, "finished_never_started": 0}


def bench(dsn: str, *args: str) -> dict[str, Any]:
    out = subprocess.run([CLI, "bench", "--dsn", dsn, "--json", *args], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def tables_with(dsn: str, start: str) -> list[str]:
    eng = make_engine(dsn)
    try:
        return [t for t in inspect(eng).get_table_names() if t.startswith(start)]
    finally:
        eng.dispose()


def test_noop_drain_reports_every_figure_and_cleans_up(mysql_url: str) -> None:
    res = bench(mysql_url, "--actions", "300", "--handler", "noop", "--concurrency", "16", "--batch-size", "50")
    assert res["prefix"].startswith("wchbench_") and res["prefix"].endswith("_")
    assert res["completed"] == 300 and res["failed"] == 0
    assert res["final_status"] == {"complete": 300}
    assert res["exactly_once"] == CLEAN
    assert res["actions_per_s"] > 0 and res["peak_rss_mb"] > 0
    lag = res["pickup_lag_s"]
    assert lag["samples"] == 300 and 0 <= lag["p50"] <= lag["p95"] <= lag["p99"] <= lag["max"]
    sql = res["sql"]
    # batched: a few statements per batch of up to 50, far below the PHP runner's 7 per action
    assert 0 < sql["statements_per_action"] < 1.0, sql
    assert sql["by_verb"]["UPDATE"] < 300 / 5, sql
    assert tables_with(mysql_url, res["prefix"]) == [], "the scratch tables are dropped"


def test_sleep_handler_with_two_worker_processes(mysql_url: str) -> None:
    res = bench(mysql_url, "--actions", "200", "--handler", "sleep", "--sleep-ms", "5", "--workers", "2",
                "--concurrency", "8")
    assert res["completed"] == 200 and res["final_status"] == {"complete": 200}
    assert res["exactly_once"] == CLEAN
    assert len(res["workers"]) == 2 and sum(w["completed"] for w in res["workers"]) == 200
    assert res["scenario"]["sleep_ms"] == 5.0
    assert tables_with(mysql_url, res["prefix"]) == []


def test_broadcast_sends_each_recipient_once_through_the_sandbox(mysql_url: str) -> None:
    res = bench(mysql_url, "--actions", "100", "--handler", "broadcast", "--api-latency-ms", "0",
                "--messages-per-second", "400")
    assert res["completed"] == 2, "100 recipients in batches of 50"
    b = res["broadcast"]
    assert b["accepted"] == 100 and b["duplicates"] == 0
    assert res["exactly_once"] == CLEAN
    assert tables_with(mysql_url, res["prefix"]) == []


def test_bad_options_are_a_clear_error(mysql_url: str) -> None:
    out = subprocess.run([CLI, "bench", "--dsn", mysql_url, "--actions", "0"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode != 0
    assert "actions" in (out.stderr + out.stdout).lower()
    assert "Traceback" not in out.stderr


def test_text_output_names_every_figure(mysql_url: str) -> None:
    """Without ``--json`` the bench prints what the issue asks for: actions/s, pickup lag p50/p95/p99, peak RSS,
    SQL statements per action, and the exactly-once check."""
    out = subprocess.run([CLI, "bench", "--dsn", mysql_url, "--actions", "60", "--concurrency", "4"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert re.search(r"throughput\s+[\d,.]+ actions/s\s+\(60 complete, 0 failed", text), text
    assert re.search(r"pickup lag\s+p50 \S+ m?s\s+p95 \S+ m?s\s+p99 \S+ m?s", text), text
    assert re.search(r"peak RSS\s+[\d.]+ MB", text), text
    assert re.search(r"SQL\s+[\d.]+ statements/action", text), text
    assert '"started_twice": 0' in text and '"complete": 60' in text, text
