"""SIGTERM mid-batch: running actions finish, the process exits 0, nothing is left in-progress or claimed.
A second signal stops at once and puts running actions back to pending."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import insert, text

from tests.conftest import REPO
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

HOOK = "wch_sig_test"


@pytest.fixture
def sig_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix)
    with eng.begin() as conn:
        conn.execute(text(f"CREATE TABLE {prefix}test_runs (id BIGINT AUTO_INCREMENT PRIMARY KEY, "  # noqa: S608
                          "action_id BIGINT NOT NULL, runner VARCHAR(64) NOT NULL)"))
    store = ActionStore(eng, prefix)
    gid = store.group_ids(["wch"], create=True)["wch"]
    now = store.now()
    rows = [{"hook": HOOK, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
             "schedule": 'O:28:"ActionScheduler_NullSchedule":0:{}', "group_id": gid, "args": f"[{i}]",
             "priority": 10} for i in range(20)]
    with eng.begin() as conn:
        conn.execute(insert(store.t.actions), rows)
    yield store
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def start_worker(dsn: str, prefix: str, sleep_ms: int, grace: float = 30) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.run_worker", dsn, prefix, HOOK, "--sleep-ms", str(sleep_ms),
         "--concurrency", "4", "--grace", str(grace)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def wait_for_runs(store: ActionStore, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with store.engine.connect() as conn:
            if conn.execute(text(f"SELECT COUNT(*) FROM {store.prefix}test_runs")).scalar() >= n:  # noqa: S608
                return
        time.sleep(0.05)
    raise AssertionError("the worker did not start running actions")


def test_sigterm_finishes_running_actions_and_exits_0(sig_store: ActionStore, mysql_url: str) -> None:
    proc = start_worker(mysql_url, sig_store.prefix, sleep_ms=1500)
    wait_for_runs(sig_store, 2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    counts = sig_store.count_by_status([HOOK])
    assert "in-progress" not in counts
    assert counts.get("complete", 0) >= 2 and counts.get("pending", 0) >= 1  # it stopped taking work
    assert sig_store.claim_count() == 0
    with sig_store.engine.connect() as conn:
        started = conn.execute(text(
            f"SELECT COUNT(*) FROM {sig_store.prefix}actionscheduler_actions WHERE attempts > 0")).scalar()  # noqa: S608
    assert started == counts["complete"], "every action it started was finished"


def test_second_signal_stops_at_once_and_releases(sig_store: ActionStore, mysql_url: str) -> None:
    proc = start_worker(mysql_url, sig_store.prefix, sleep_ms=20000)
    wait_for_runs(sig_store, 2)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1, err.decode()[-2000:]
    counts = sig_store.count_by_status([HOOK])
    assert "in-progress" not in counts and counts == {"pending": 20}
    with sig_store.engine.connect() as conn:
        msgs = [r[0] for r in conn.execute(text(
            f"SELECT message FROM {sig_store.prefix}actionscheduler_logs WHERE message LIKE 'action released%'"))]  # noqa: S608
    assert len(msgs) >= 2 and all("worker stopped before it finished" in m for m in msgs)
