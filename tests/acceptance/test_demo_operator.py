"""The demo as a new user meets it (issue 16.5): every ``--actions`` value ``--help`` allows seeds a shop (no duplicate
cart phone above ~605); after the demo no timestamp lies in the future, the report is not CRITICAL for a worker that
stopped cleanly, pickup lag is in real seconds, and the "try next" commands work exactly as printed."""

from __future__ import annotations

import json
import os
import shlex
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from wch_bridge.demo import Demo
from wch_bridge.sandbox import Sandbox

WCH = str(Path(sys.executable).parent / "wch-bridge")


@pytest.mark.parametrize("actions", [20, 606, 2000])
def test_every_allowed_size_seeds(tmp_path: Path, actions: int) -> None:
    demo = Demo(tmp_path / "out", actions=actions)
    store = demo.prepare_database()
    try:
        with Sandbox(token=demo.token) as sandbox:
            shop = demo.seed(store, sandbox)
        assert shop["carts"] > 0 and demo.seeded >= actions // 2
    finally:
        store.engine.dispose()


def test_after_the_demo(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WCH_BRIDGE_")}
    env["PATH"] = "/usr/bin:/bin"  # the venv is not activated: the printed commands must still work
    r = subprocess.run([WCH, "demo", "--out", "out"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    finished_at = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S")

    db = sqlite3.connect(tmp_path / "out" / "demo.sqlite")
    written = [
        db.execute("SELECT MAX(last_attempt_gmt) FROM wp_actionscheduler_actions").fetchone()[0],
        db.execute("SELECT MAX(log_date_gmt) FROM wp_actionscheduler_logs").fetchone()[0],
        db.execute("SELECT MAX(heartbeat_at) FROM wp_wch_bridge_workers").fetchone()[0],
    ]
    for value in written:
        assert value is not None and value <= finished_at, f"future timestamp {value} (demo ended {finished_at})"
    # pickup lag of what ran: scheduled -> started, in real seconds (far below a minute on a local demo)
    lags = [row[0] for row in db.execute(
        "SELECT (julianday(last_attempt_gmt) - julianday(scheduled_date_gmt)) * 86400 FROM wp_actionscheduler_actions "
        "WHERE status IN ('complete', 'failed')")]
    assert lags and sorted(lags)[len(lags) // 2] < 30, sorted(lags)[len(lags) // 2]
    # the recurring cleanup too: each run starts when due (a jump to real time once made one start 5 h late)
    cleanup_lags = [row[0] for row in db.execute(
        "SELECT (julianday(last_attempt_gmt) - julianday(scheduled_date_gmt)) * 86400 FROM wp_actionscheduler_actions "
        "WHERE status = 'complete' AND hook = 'wch_cleanup_expired_carts'")]
    assert cleanup_lags and max(cleanup_lags) < 60, cleanup_lags

    rep = subprocess.run([WCH, "report", "--dsn", f"sqlite:///{tmp_path / 'out' / 'demo.sqlite'}", "--json", "-"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    health = json.loads(rep.stdout)["health"]
    assert health["status"] != "critical", health

    lines = r.stdout.split("try next", 1)[1].splitlines()[1:]
    commands = [ln.strip() for ln in lines if ln.startswith("  ")]
    assert len(commands) >= 5 and any(" jobs show " in c for c in commands), r.stdout
    for cmd in commands:
        out = subprocess.run(shlex.split(cmd), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode in (0, 1), (cmd, out.stdout, out.stderr)  # status: 1 = warnings (2 failed actions)
        assert "error:" not in out.stderr, (cmd, out.stderr)
