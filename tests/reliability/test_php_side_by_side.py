"""PHP side by side: while two bridge workers drain the ``wch`` group, a PHP-style runner issues Action Scheduler's
own claim / execute / release SQL (reference 2.3 and 2.4.3-2.4.8; alternating the 3.8 plain claim and the 3.9.3
SKIP LOCKED claim, with no hook or group filter, so it also claims the bridge's group) on the same table.

Proves: no action runs twice (every run is counted in a table), PHP's concurrency gate (``get_claim_count``) never
counts a claim that is not PHP's, the bridge never takes an action PHP has claimed nor leaves a claim on what it ran,
the bridge never runs another group's actions (not even the same hook name in another group), and every other
group's action (a named group, and group_id 0) is run by the PHP side. Nothing is left pending or in-progress."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import insert, text

from tests.conftest import REPO
from tests.helpers.php_runner import PhpRunner, create_runs_table
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

pytestmark = pytest.mark.mysql

HOOK = "wch_side_by_side_test"
N_WCH, N_WOO, N_NOGROUP, N_SAME_HOOK_OTHER_GROUP = 500, 200, 60, 60


@pytest.fixture
def sbs_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix)
    with eng.begin() as conn:
        create_runs_table(conn, prefix)
    yield ActionStore(eng, prefix)
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def seed(store: ActionStore, hook: str, n: int, group: str | None) -> None:
    gid = store.group_ids([group], create=True)[group] if group else 0
    now = store.now()
    sched = 'O:28:"ActionScheduler_NullSchedule":0:{}'
    rows = [{"hook": hook, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
             "schedule": sched, "group_id": gid, "args": f'{{"n":{i}}}', "priority": 10} for i in range(n)]
    with store.engine.begin() as conn:
        conn.execute(insert(store.t.actions), rows)


def test_php_runner_and_bridge_side_by_side(sbs_store: ActionStore, mysql_url: str) -> None:
    prefix = sbs_store.prefix
    seed(sbs_store, HOOK, N_WCH, "wch")
    seed(sbs_store, "woocommerce_cleanup_sessions", N_WOO, "woocommerce")
    seed(sbs_store, "wp_some_plugin_job", N_NOGROUP, None)
    seed(sbs_store, HOOK, N_SAME_HOOK_OTHER_GROUP, "other")
    total = N_WCH + N_WOO + N_NOGROUP + N_SAME_HOOK_OTHER_GROUP
    stop = threading.Event()
    php_side = PhpRunner(mysql_url, prefix, batch=10, claim="alternate", pause=0.01)  # every hook and group
    php = php_side.thread(stop)
    procs = [subprocess.Popen([sys.executable, "-m", "tests.helpers.run_worker", mysql_url, prefix, HOOK, "--once",
                               "--concurrency", "4", "--sleep-ms", "2"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    try:
        for p in procs:
            _out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err.decode()[-2000:]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            counts = sbs_store.count_by_status()
            if counts.get("pending", 0) + counts.get("in-progress", 0) == 0 or not php.is_alive():
                break
            time.sleep(0.2)
    finally:
        stop.set()
        php.join(timeout=30)
    assert not php_side.errors, php_side.errors
    with sbs_store.engine.connect() as conn:
        runs = conn.execute(text(  # noqa: S608
            f"SELECT r.action_id, COUNT(*), MIN(r.runner), MAX(r.runner), a.hook, COALESCE(g.slug, '') "
            f"FROM {prefix}test_runs r JOIN {prefix}actionscheduler_actions a ON a.action_id = r.action_id "
            f"LEFT JOIN {prefix}actionscheduler_groups g ON g.group_id = a.group_id "
            f"GROUP BY r.action_id, a.hook, g.slug")).all()
        bridge_claimed = conn.execute(text(  # noqa: S608
            f"SELECT COUNT(*) FROM {prefix}actionscheduler_actions a JOIN {prefix}test_runs r "
            "ON r.action_id = a.action_id WHERE r.runner != 'php' AND a.claim_id != 0")).scalar()
    twice = [r for r in runs if r[1] != 1]
    assert not twice, f"actions run more than once: {twice[:5]}"
    assert len(runs) == total, f"{total - len(runs)} actions never ran"
    by_runner: dict[str, int] = {}
    for _aid, _n, runner, _mx, hook, group in runs:
        side = "php" if runner == "php" else "bridge"
        by_runner[side] = by_runner.get(side, 0) + 1
        if group != "wch":
            assert side == "php", f"the bridge ran an action of group {group!r} ({hook})"
    assert by_runner.get("bridge", 0) > 0 and by_runner.get("php", 0) > N_WOO, by_runner
    assert sbs_store.count_by_status() == {"complete": total}
    assert bridge_claimed == 0, "the bridge never writes a claim"
    assert php_side.gate_samples and max(php_side.gate_samples) == 0, "PHP's get_claim_count saw a claim that is not PHP's"
    assert sbs_store.claim_count() == 0
