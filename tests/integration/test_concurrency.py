"""4 bridge worker processes and Action Scheduler's PHP runners (the faithful 3.8.2 stand-in, ``tests.helpers.
php_runner``, without the must-use plugin, so PHP claims the same actions) on 2,000 due actions: every action runs
exactly once, PHP meets no error, PHP's concurrency gate never counts the bridge, nothing is left in-progress."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.conftest import REPO
from tests.helpers.php_runner import PhpSide, create_runs_table
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

N = 2000
HOOK = "wch_conc_test"


@pytest.fixture
def conc_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    """Action Scheduler's own indexes only (the bridge adds none to its tables)."""
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix)
    with eng.begin() as conn:
        create_runs_table(conn, prefix)
    store = ActionStore(eng, prefix)
    yield store
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def seed_due_actions(store: ActionStore, hook: str, n: int, group: str) -> None:
    from sqlalchemy import insert

    gid = store.group_ids([group], create=True)[group]
    now = store.now()
    sched = 'O:28:"ActionScheduler_NullSchedule":0:{}'
    rows = [{"hook": hook, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
             "schedule": sched, "group_id": gid, "args": f'{{"n":{i}}}', "priority": 10} for i in range(n)]
    with store.engine.begin() as conn:
        conn.execute(insert(store.t.actions), rows)


def test_four_workers_and_php_run_everything_exactly_once(conc_store: ActionStore, mysql_url: str) -> None:
    prefix = conc_store.prefix
    seed_due_actions(conc_store, HOOK, N, group="wch")
    stop = threading.Event()
    side = PhpSide(mysql_url, prefix)  # AS's retention: finished rows stay, the test counts them
    loops = side.loops(stop)
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.helpers.run_worker", mysql_url, prefix, HOOK, "--once",
                          "--concurrency", "4"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    try:
        for p in procs:
            out, err = p.communicate(timeout=300)
            assert p.returncode == 0, err.decode()[-2000:]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and conc_store.count_by_status([HOOK]).get("pending"):
            time.sleep(0.2)
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=60)
    with conc_store.engine.connect() as conn:
        runs = conn.execute(text(f"SELECT action_id, COUNT(*) FROM {prefix}test_runs GROUP BY action_id")).all()  # noqa: S608
        by_runner = dict(conn.execute(text(
            f"SELECT CASE WHEN runner='php' THEN 'php' ELSE 'bridge' END r, COUNT(*) FROM {prefix}test_runs GROUP BY r"  # noqa: S608
        )).all())
        bridge_claimed = conn.execute(text(
            f"SELECT COUNT(*) FROM {prefix}actionscheduler_actions a JOIN {prefix}test_runs r "  # noqa: S608
            "ON r.action_id = a.action_id WHERE r.runner != 'php' AND a.claim_id != 0")).scalar()
    assert len(runs) == N, "every action ran"
    assert all(n == 1 for _, n in runs), "no action ran twice"
    assert by_runner.get("bridge", 0) > 0
    assert conc_store.count_by_status([HOOK]) == {"complete": N}
    assert bridge_claimed == 0, "the bridge never writes a claim"
    assert not side.errors, [str(e) for e in side.errors]
    assert side.gate_checks and not side.foreign_claims, "PHP's get_claim_count never saw a claim that is not PHP's"
