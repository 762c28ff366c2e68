"""The hand-off between PHP and the bridge, with the must-use plugin's own code: the plugin runs in php-cli over a
real connection to the test database (``tests/helpers/php_wordpress.php``: a stand-in ``$wpdb`` on mysqli), reads
what the bridge published (heartbeat rows, the option ``wch_bridge_owned``) and returns its claim ORDER BY; that
exact string goes into Action Scheduler's claim statement (plain 3.0-3.9.2 and SKIP LOCKED 3.9.3+, alternating)
in the PHP runners' stand-in of ``tests/helpers/php_runner.py``.

Proves: with a live bridge, PHP runs a hook the bridge does not own in ``wch`` and never an owned one (nor the
owned hook in another owned group), and still runs the bridge's hook in a group the bridge does not serve; with
the bridge stopped PHP keeps off the owned hooks unless ``WCH_BRIDGE_FAILOVER_AFTER`` passed, then runs them;
an older bridge (no published hooks) and Action Scheduler before 3.4 fall back to whole-group exclusion."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text, update
from sqlalchemy.engine import make_url

from tests.conftest import IN_CI, REPO
from tests.helpers.php_runner import ORDER, PhpSide, create_runs_table
from wch_bridge import hooks
from wch_bridge.store import ActionStore, make_engine, ownership
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.store.workers import WorkerRegistry

pytestmark = pytest.mark.mysql

MU_PLUGIN = REPO / "docker" / "mu-plugins" / "wch-bridge.php"
HARNESS = Path(__file__).resolve().parents[1] / "helpers" / "php_wordpress.php"
OWNED = hooks.BROADCAST_BATCH
PHP_ONLY = "wch_send_order_notification"  # one of the plugin's hooks only PHP runs
SERVED = ("wch", "wch-bulk")


@pytest.fixture(scope="module")
def php() -> str:
    exe = shutil.which("php")
    ok = exe is not None and "mysqli" in subprocess.run([exe, "-m"], capture_output=True, text=True).stdout
    if not ok:
        if IN_CI:
            pytest.fail("php with mysqli (Debian's php-cli and php-mysql) is required in CI")
        pytest.skip("php with mysqli not installed")
    return str(exe)


@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    eng = make_engine(mysql_url)
    schema_mod.install(eng, prefix, with_wordpress=True)
    with eng.begin() as conn:
        create_runs_table(conn, prefix)
    yield ActionStore(eng, prefix)
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def seed(store: ActionStore, hook: str, n: int, group: str) -> list[int]:
    gid = store.group_ids([group], create=True)[group]
    now = store.now()
    rows = [{"hook": hook, "status": "pending", "scheduled_date_gmt": now, "scheduled_date_local": now,
             "schedule": 'O:28:"ActionScheduler_NullSchedule":0:{}', "group_id": gid, "args": f'{{"n":{i}}}',
             "priority": 10} for i in range(n)]
    with store.engine.begin() as conn:
        conn.execute(insert(store.t.actions), rows)
        return [int(r[0]) for r in conn.execute(text(f"SELECT action_id FROM {store.t.actions.name} WHERE "
                                                     "hook = :h AND group_id = :g"), {"h": hook, "g": gid})]


def beat(store: ActionStore, *, age: float = 0.0, stopped: bool = False) -> None:
    now = store.now() - timedelta(seconds=age)
    WorkerRegistry(store.engine, store.t).beat("w1", host="h", pid=1, version="t", started_at=now, now=now,
                                               in_hand_ids=[], stopped=stopped, groups=SERVED, hooks=[OWNED])


def run_plugin(php: str, mysql_url: str, prefix: str, *consts: str) -> dict[str, Any]:
    u = make_url(mysql_url)
    proc = subprocess.run([php, "-d", "display_errors=stderr", "-d", "error_reporting=E_ALL", str(HARNESS),
                           str(MU_PLUGIN), u.host or "127.0.0.1", str(u.port or 3306), u.username or "root",
                           u.database or "test", prefix, *consts], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def php_claims(store: ActionStore, mysql_url: str, order_by: str, expect: int) -> set[int]:
    """Run the PHP-style runner with ``order_by`` until it ran ``expect`` actions (or stalls); the ids it ran."""
    side = PhpSide(mysql_url, store.prefix, claim="alternate", order_by=order_by)
    stop = threading.Event()
    loops = side.loops(stop, cli_batch=7, cron_batch=7)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and len(ran(store)) < expect:
            time.sleep(0.05)
        time.sleep(0.3)  # a few more rounds: anything it could still claim would show
    finally:
        stop.set()
        for t in loops:
            t.join(timeout=30)
    assert not side.errors, [str(e) for e in side.errors]
    return ran(store)


def ran(store: ActionStore) -> set[int]:
    with store.engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(text(f"SELECT action_id FROM {store.prefix}test_runs"))}


def test_live_bridge_php_runs_every_hook_but_the_owned_ones(php: str, site: ActionStore, mysql_url: str) -> None:
    owned = seed(site, OWNED, 20, "wch") + seed(site, OWNED, 10, "wch-bulk")
    php_only = seed(site, PHP_ONLY, 20, "wch")
    elsewhere = seed(site, OWNED, 10, "other")  # the bridge does not serve this group
    beat(site)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    out = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}")
    assert out["ownership"]["status"] == "live" and out["state"]["mode"] == "hooks"
    assert out["order_by"].startswith("AND NOT ( ( group_id IN (") and out["order_by"].endswith(ORDER)
    assert out["exclude"] == ""  # no whole group is kept off PHP
    assert OWNED in out["text"] and "every other hook" in out["text"]
    assert php_claims(site, mysql_url, out["order_by"], 30) == set(php_only + elsewhere)
    with site.engine.connect() as conn:
        left = conn.execute(text(f"SELECT COUNT(*) FROM {site.t.actions.name} WHERE status = 'pending' AND "
                                 "claim_id = 0")).scalar_one()
    assert left == len(owned)
    side = json.loads(ownership._options(site).get_option_raw("wch_bridge_php_side") or "{}")
    assert side["mode"] == "hooks" and PHP_ONLY in side["php_hooks"]  # what PHP told the bridge


def test_stopped_bridge_keeps_its_hooks_without_failover(php: str, site: ActionStore, mysql_url: str) -> None:
    seed(site, OWNED, 10, "wch")
    php_only = seed(site, PHP_ONLY, 5, "wch")
    beat(site, age=3600, stopped=True)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    out = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}")
    assert out["ownership"]["status"] == "down" and "wait for it" in out["text"]
    assert php_claims(site, mysql_url, out["order_by"], 5) == set(php_only)


def test_failover_gives_php_the_owned_hooks_after_the_delay(php: str, site: ActionStore, mysql_url: str) -> None:
    owned = seed(site, OWNED, 10, "wch")
    beat(site, age=100, stopped=True)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    early = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_FAILOVER_AFTER=300")
    assert early["ownership"]["status"] == "down" and "NOT (" in early["order_by"]
    site.engine.dispose()
    with site.engine.begin() as conn:  # the last heartbeat is now older than the failover delay
        conn.execute(update(site.t.workers).values(heartbeat_at=site.now() - timedelta(seconds=400)))
    late = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_FAILOVER_AFTER=300")
    assert late["ownership"]["status"] == "failover" and late["order_by"] == ORDER
    assert "PHP runs every hook" in late["text"]
    assert php_claims(site, mysql_url, late["order_by"], 10) == set(owned)
    beat(site)  # a worker is live again: PHP gives them up
    back = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_FAILOVER_AFTER=300")
    assert back["ownership"]["status"] == "live" and "NOT (" in back["order_by"]


def test_older_bridge_or_action_scheduler_fall_back_to_whole_groups(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    seed(site, OWNED, 3, "wch")
    other = seed(site, PHP_ONLY, 3, "other")
    with site.engine.begin() as conn:  # a bridge from before served_groups/served_hooks
        conn.execute(text(f"ALTER TABLE {site.t.workers.name} DROP COLUMN served_groups"))
    site.engine.dispose()
    with site.engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {site.t.workers.name} (worker_id, host, pid, version, started_at, "
                          "heartbeat_at, in_hand) VALUES ('old', 'h', 1, '0.1', :n, :n, 0)"), {"n": site.now()})
    legacy = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_GROUPS=wch")
    assert legacy["ownership"]["status"] == "legacy"
    assert legacy["order_by"].startswith("AND group_id NOT IN (")
    assert php_claims(site, mysql_url, legacy["order_by"], 3) == set(other)
    old_as = run_plugin(php, mysql_url, site.prefix, "AS_VERSION=3.3.0", "WCH_BRIDGE_GROUPS=wch")
    assert old_as["state"]["mode"] == "groups" and old_as["exclude"] == ["wch"]
    assert old_as["order_by"] == ORDER


def test_before_any_bridge_published_php_keeps_off_the_whole_groups(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    """Seen beside the real Action Scheduler: PHP's runners started in the same second as a bridge that had not yet
    written a heartbeat, and with nothing published the plugin used to let PHP claim the sidecar's actions. Until a
    worker says what it runs, the whole groups stay off PHP (failover, when defined, still hands them over)."""
    owned = seed(site, OWNED, 4, "wch")
    other = seed(site, PHP_ONLY, 3, "other")
    with site.engine.begin() as conn:  # an older bridge's table, no heartbeat yet
        conn.execute(text(f"ALTER TABLE {site.t.workers.name} DROP COLUMN served_groups"))
    site.engine.dispose()
    out = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_GROUPS=wch")
    assert out["ownership"]["status"] == "none", out
    assert out["order_by"].startswith("AND group_id NOT IN ("), out
    assert "kept off the whole group(s) wch" in out["text"]
    assert php_claims(site, mysql_url, out["order_by"], 3) == set(other)
    failover = run_plugin(php, mysql_url, site.prefix, "WCH_BRIDGE_GROUPS=wch", "WCH_BRIDGE_FAILOVER_AFTER=300")
    assert failover["ownership"]["status"] == "failover" and failover["order_by"] == ORDER
    assert php_claims(site, mysql_url, failover["order_by"], 7) == set(other + owned)


def test_while_action_scheduler_migrates_php_still_keeps_off_the_owned_hooks(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    """Seen with the real Action Scheduler 3.8.2 (WordPress 6.1): until its migration from posts completes (at
    least a minute on a new site) the store is ``ActionScheduler_HybridStore``, which has no claim filters, so the
    plugin stood aside and PHP ran an owned hook while a worker was live. The hybrid store's claims end in the DB
    store's claim statement, which applies the ORDER BY filter: the plugin now filters there, hook by hook, and in
    whole-group mode keeps the whole groups off through the same filter."""
    owned = seed(site, OWNED, 6, "wch")
    php_only = seed(site, PHP_ONLY, 4, "wch")
    beat(site)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    out = run_plugin(php, mysql_url, site.prefix, "STORE=hybrid", f"PHP_HOOK={PHP_ONLY}")
    assert out["state"]["status"] == "ok" and out["state"]["store"] == "migrating", out
    assert out["order_by"].startswith("AND NOT ( ( group_id IN ("), out
    assert php_claims(site, mysql_url, out["order_by"], 4) == set(php_only)
    whole = run_plugin(php, mysql_url, site.prefix, "STORE=hybrid", "WCH_BRIDGE_EXCLUDE=groups", "WCH_BRIDGE_GROUPS=wch")
    assert whole["state"]["mode"] == "groups" and whole["order_by"].startswith("AND group_id NOT IN ("), whole
    with site.engine.connect() as conn:
        left = conn.execute(text(f"SELECT COUNT(*) FROM {site.t.actions.name} WHERE status = 'pending'")).scalar_one()
    assert left == len(owned)


def add_log_lines(store: ActionStore, lines: list[tuple[int, str]], *, age: float = 60.0) -> None:
    when = store.now() - timedelta(seconds=age)
    with store.engine.begin() as conn:
        for action_id, message in lines:
            conn.execute(text(f"INSERT INTO {store.prefix}actionscheduler_logs (action_id, message, log_date_gmt, "
                              "log_date_local) VALUES (:a, :m, :d, :d)"), {"a": action_id, "m": message, "d": when})


def test_bridge_outcomes_are_replayed_as_action_schedulers_php_hooks_once_each(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    """Issue 15 point 11: PHP listeners (the plugin's dead-letter queue on ``action_scheduler_failed_action``) hear
    the actions the bridge ran, once each, with Action Scheduler's arguments, on PHP's queue runs; Action Scheduler's
    own logger does not hear them (it would write the log line again). Checked beside the real Action Scheduler
    3.8.2 too (8 concurrent PHP runners, 40 bridge outcomes: each heard once)."""
    done, failed, by_php, by_cli, later = seed(site, OWNED, 5, "wch-bulk")
    add_log_lines(site, [(done, "action started via WCH Bridge")])
    first = run_plugin(php, mysql_url, site.prefix, "REPLAY=1")  # the cursor starts at the newest line
    assert first["replayed"] == []
    add_log_lines(site, [(done, "action complete via WCH Bridge"), (failed, "action started via WCH Bridge"),
                         (failed, "action failed via WCH Bridge: (#131026) Message undeliverable"),
                         (by_php, "action complete via WP Cron"), (by_cli, "action complete via WCH Bridge CLI")])
    add_log_lines(site, [(later, "action complete via WCH Bridge")], age=0)  # too young: a lower id may commit late
    with ThreadPoolExecutor(4) as pool:  # concurrent PHP runners: each line replayed by one of them only
        outs = list(pool.map(lambda _: run_plugin(php, mysql_url, site.prefix, "REPLAY=1"), range(4)))
    heard = [event for out in outs for event in out["replayed"]]
    assert heard == [["completed_action", done],
                     ["failed_execution", failed, "(#131026) Message undeliverable", "WCH Bridge"],
                     ["failed_action", failed, 0]]
    assert all(out["as_logger"] == [0, True] for out in outs)  # detached meanwhile, attached again after
    assert run_plugin(php, mysql_url, site.prefix, "REPLAY=1")["replayed"] == []
    with site.engine.begin() as conn:
        conn.execute(text(f"UPDATE {site.prefix}actionscheduler_logs SET log_date_gmt = :d WHERE action_id = :a"),
                     {"d": site.now() - timedelta(seconds=60), "a": later})
    assert run_plugin(php, mysql_url, site.prefix, "REPLAY=1")["replayed"] == [["completed_action", later]]
    add_log_lines(site, [(failed, "action failed via WCH Bridge: again")])
    off = run_plugin(php, mysql_url, site.prefix, "REPLAY=1", "WCH_BRIDGE_REPLAY_FAILED_ACTION=0")
    assert off["replayed"] == [["failed_execution", failed, "again", "WCH Bridge"]]  # as Action Scheduler alone


def test_wp_cli_warns_only_where_its_options_can_bypass_the_plugin(php: str, site: ActionStore, mysql_url: str) -> None:
    """``wp action-scheduler run --group=wch`` bypasses only the whole-group ``exclude-groups`` claim filter; the
    hook-level ORDER BY applies to every claim (seen with the real Action Scheduler 3.8.2: a claim for group
    ``wch`` kept the owned hooks out), so the plugin no longer warns that PHP would run the sidecar's actions."""
    beat(site)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    hooks_mode = run_plugin(php, mysql_url, site.prefix, "CLI=group=wch", "WCH_BRIDGE_GROUPS=wch")
    assert hooks_mode["cli_warnings"] == [] and "NOT (" in hooks_mode["order_by"]
    whole = run_plugin(php, mysql_url, site.prefix, "CLI=group=wch", "WCH_BRIDGE_GROUPS=wch", "WCH_BRIDGE_EXCLUDE=groups")
    assert len(whole["cli_warnings"]) == 1 and "--group makes PHP run them too" in whole["cli_warnings"][0]
    replaced = run_plugin(php, mysql_url, site.prefix, "CLI=exclude-groups=other", "WCH_BRIDGE_GROUPS=wch",
                          "WCH_BRIDGE_EXCLUDE=groups")
    assert len(replaced["cli_warnings"]) == 1 and "--exclude-groups replaces" in replaced["cli_warnings"][0]


def test_with_a_persistent_object_cache_the_plugin_reads_the_sidecars_transients(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    """Issue 15 point 9: with an object-cache drop-in get_transient() reads only the cache, never the options table
    the sidecar writes. The must-use plugin serves the sidecar's transients (job, broadcast, cart-cleanup results)
    from the database then (wp-admin, cron, CLI, REST; not front-end page views unless told), unexpired ones only;
    other transients stay the cache's. Checked with the real WordPress 6.1 and a Redis drop-in too."""
    wp = WordPressData(site.engine, site.prefix)
    wp.set_transient("wch_job_result_j1", {"job_id": "j1", "status": "completed"}, 3600)
    wp.set_transient("wch_broadcast_summary_7", {"sent": 3}, 3600)
    wp.set_transient("wch_broadcast_result_7_0", {"sent": 1}, 3600)
    with site.engine.begin() as conn:  # expired a minute ago
        conn.execute(text(f"UPDATE {site.prefix}options SET option_value = :t WHERE option_name = "
                          "'_transient_timeout_wch_broadcast_result_7_0'"), {"t": str(int(time.time()) - 60)})
    wp.set_transient("someone_elses", "x", 3600)
    names = "TRANSIENTS=wch_job_result_j1,wch_broadcast_summary_7,wch_broadcast_result_7_0,someone_elses,wch_job_result_j2"
    out = run_plugin(php, mysql_url, site.prefix, "EXT_CACHE=1", "DOING_CRON=1", names)
    assert out["transients"] == {"wch_job_result_j1": {"job_id": "j1", "status": "completed"},
                                 "wch_broadcast_summary_7": {"sent": 3}, "wch_broadcast_result_7_0": False,
                                 "someone_elses": False, "wch_job_result_j2": False}
    no_cache = run_plugin(php, mysql_url, site.prefix, names)  # WordPress reads the options table itself then
    assert no_cache["transients"] == dict.fromkeys(no_cache["transients"], False)
    front = run_plugin(php, mysql_url, site.prefix, "EXT_CACHE=1", names)  # a page view: not worth the `all` hook
    assert front["transients"] == dict.fromkeys(front["transients"], False)
    everywhere = run_plugin(php, mysql_url, site.prefix, "EXT_CACHE=1", "WCH_BRIDGE_TRANSIENTS_EVERYWHERE=1", names)
    assert everywhere["transients"] == out["transients"]


def test_php_side_is_written_when_it_changed_or_is_old_not_on_every_request(
    php: str, site: ActionStore, mysql_url: str
) -> None:
    """Each PHP request starts afresh, so the plugin's "at most every 5 min" wrote ``wch_bridge_php_side`` on every
    request's first claim (seen beside the real WordPress: a write per queue run). Now: only when it changed or is
    5 min old."""
    beat(site)
    ownership.publish(site, {(g, OWNED) for g in SERVED}, 30)
    first = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}")
    again = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}")
    assert (first["option_writes"], again["option_writes"]) == (1, 0)
    changed = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}", "PHP_HOOK=wch_other_php_hook")
    assert changed["option_writes"] == 1
    with site.engine.begin() as conn:  # 6 minutes later
        raw = conn.execute(text(f"SELECT option_value FROM {site.prefix}options WHERE option_name = "
                                "'wch_bridge_php_side'")).scalar_one()
        doc = json.loads(raw)
        assert doc["object_cache"] is False and doc["serves_transients"] is True and doc["version"] == "0.3.0"
        doc["seen_gmt"] = (site.now() - timedelta(minutes=6)).strftime("%Y-%m-%d %H:%M:%S")
        conn.execute(text(f"UPDATE {site.prefix}options SET option_value = :v WHERE option_name = "
                          "'wch_bridge_php_side'"), {"v": json.dumps(doc)})
    late = run_plugin(php, mysql_url, site.prefix, f"PHP_HOOK={PHP_ONLY}", "PHP_HOOK=wch_other_php_hook")
    assert late["option_writes"] == 1

