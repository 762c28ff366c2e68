"""The health judge (``wch_bridge.health``) with no database: every rule, its named threshold on both sides, and
the one definition of a live worker."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from wch_bridge import health
from wch_bridge.health import CRITICAL, OK, WARNING, HealthFacts, WorkerBeat, judge
from wch_bridge.settings import Settings

NOW = datetime(2026, 1, 1, 12, 0, 0)


def worker(wid: str = "w", *, ago: float = 3, stopped: bool = False) -> WorkerBeat:
    beat = NOW - timedelta(seconds=ago)
    return WorkerBeat(wid, "host-a", 42, "0.1.0", beat - timedelta(hours=1), beat, beat if stopped else None, 0)


def facts(**kw: object) -> HealthFacts:
    """Healthy: a live worker, the cleanup scheduled, work completed, nothing past due, no ledger problems."""
    base = HealthFacts(now=NOW, live_seconds=30, groups=("wch",), completed_24h=7, cleanup_next=NOW + timedelta(hours=1),
                       cleanup_group="wch", api_pause={"paused": False}, in_doubt={"count": 0},
                       workers=(worker(),))
    return replace(base, **kw)  # type: ignore[arg-type]


def levels(f: HealthFacts) -> list[str]:
    return [r.level for r in judge(f).reasons]


def text(f: HealthFacts) -> str:
    return " | ".join(r.text for r in judge(f).reasons)


def test_health_rules_in_words() -> None:
    """(Moved from tests/integration/test_report.py, assertions kept.)"""
    ok = facts(past_due=2, oldest_past_due=NOW - timedelta(seconds=20))
    h = judge(ok)
    assert h.level == OK and not h.reasons and any("past due" in f for f in h.facts)
    stale = replace(ok, workers=(worker(ago=600),), oldest_past_due=NOW - timedelta(seconds=400))
    h = judge(stale)
    assert h.level == CRITICAL and [r.level for r in h.reasons] == [CRITICAL, WARNING]
    assert "No live wch-bridge worker: the last heartbeat was 10 min ago" in h.reasons[0].text
    many = replace(ok, failed_24h=30, completed_24h=10, past_due=1000)
    assert levels(many) == [CRITICAL, CRITICAL]


def test_healthy_is_ok_with_facts() -> None:
    v = judge(facts())
    assert v.level == OK and v.exit_code == 0 and not v.reasons
    assert "No past-due actions." in v.facts and any("1 live" in f for f in v.facts)


@pytest.mark.parametrize(("age", "n", "level"), [
    (health.PAST_DUE_WARNING_AGE - timedelta(seconds=1), 1, OK),
    (health.PAST_DUE_WARNING_AGE, 1, WARNING),
    (health.PAST_DUE_CRITICAL_AGE - timedelta(seconds=1), 1, WARNING),
    (health.PAST_DUE_CRITICAL_AGE, 1, CRITICAL),
    (timedelta(seconds=5), health.PAST_DUE_CRITICAL_COUNT - 1, OK),
    (timedelta(seconds=5), health.PAST_DUE_CRITICAL_COUNT, CRITICAL),
])
def test_past_due_thresholds(age: timedelta, n: int, level: str) -> None:
    assert judge(facts(past_due=n, oldest_past_due=NOW - age)).level == level


def test_past_due_critical_says_whether_a_worker_is_live() -> None:
    late = NOW - timedelta(hours=2)
    assert "a worker is live" in text(facts(past_due=1, oldest_past_due=late))
    assert "nothing is running the queue" in text(facts(past_due=1, oldest_past_due=late, workers=()))
    assert levels(facts(past_due=3, oldest_past_due=None)) == [WARNING]  # only zero dates: unknown age


@pytest.mark.parametrize(("failed", "done", "level"), [
    (1, 100, WARNING),
    (health.FAILURE_CRITICAL_COUNT - 1, 0, WARNING),
    (health.FAILURE_CRITICAL_COUNT, 30, CRITICAL),  # 25 %
    (health.FAILURE_CRITICAL_COUNT, 31, WARNING),  # under 25 %
])
def test_failure_thresholds(failed: int, done: int, level: str) -> None:
    f = facts(failed_24h=failed, completed_24h=done)
    assert judge(f).level == level
    assert f"{failed} action" in text(f) and "failed in the last 24 h" in text(f)


def test_workers() -> None:
    assert levels(facts(workers=None)) == [WARNING] and "no heartbeat table" in text(facts(workers=None))
    assert "No wch-bridge worker has registered" in text(facts(workers=()))
    stopped = facts(workers=(worker(ago=600, stopped=True),))
    assert levels(stopped) == [WARNING] and "stopped cleanly" in text(stopped)  # the demo's end: not critical
    crashed = facts(workers=(worker(ago=600),))
    assert levels(crashed) == [CRITICAL] and "never recorded a clean stop" in text(crashed)
    old_crash = facts(workers=(worker("new", ago=600, stopped=True), worker("old", ago=3 * 86400)))
    assert levels(old_crash) == [WARNING]  # the latest worker stopped cleanly; a 3-day-old crash is history
    recent_crash = facts(workers=(worker("live"), worker("dead", ago=120)))
    assert levels(recent_crash) == [WARNING] and "stopped heart-beating without a clean stop" in text(recent_crash)
    assert levels(facts(workers=(worker("live"), worker("dead", ago=2 * 86400)))) == []


def test_live_means_within_the_orphan_timeout() -> None:
    assert health.live_worker_seconds(Settings()) == 30.0
    assert health.live_worker_seconds(Settings(orphan_timeout=90)) == 90.0
    f = facts(workers=(worker(ago=30),))
    assert len(f.live_workers()) == 1 and not f.dead_workers()
    f = facts(workers=(worker(ago=31),))
    assert not f.live_workers() and len(f.dead_workers()) == 1
    assert levels(replace(f, live_seconds=60)) == []


def test_other_rules() -> None:
    assert levels(facts(unreadable="table wp_actionscheduler_actions not found")) == [CRITICAL]
    missing = facts(groups=("wch", "elsewhere"), missing_groups=("elsewhere",))
    assert levels(missing) == [WARNING] and "'elsewhere'" in text(missing)
    plugin = facts(groups=("wch", "wch-bulk"), missing_groups=("wch-bulk",))  # the plugin's own groups come and go
    assert levels(plugin) == []
    assert levels(facts(groups=("wch",), missing_groups=("wch",))) == [WARNING]  # no served group exists at all
    unowned = facts(unowned=({"group": "wch", "hook": "wch_typo", "pending": 2},))
    assert levels(unowned) == [CRITICAL] and "hooks no one runs: wch_typo (2 in wch)" in text(unowned)
    assert levels(facts(cleanup_next=None)) == [WARNING] and "not scheduled" in text(facts(cleanup_next=None))
    assert levels(facts(cleanup_next=None, cleanup_running=True)) == []
    paused = facts(api_pause={"paused": True, "error_code": 190, "last_auth_error_gmt": NOW, "error_text": "expired"})
    assert levels(paused) == [CRITICAL] and "authentication error (code 190)" in text(paused)
    doubt = facts(in_doubt={"count": 1, "sending": 1, "unknown": 0, "oldest_gmt": NOW})
    assert levels(doubt) == [WARNING] and "1 message(s) in doubt since " in text(doubt)
    worst_first = facts(cleanup_next=None, unowned=({"group": "wch", "hook": "x", "pending": 1},))
    assert levels(worst_first) == [CRITICAL, WARNING]


def test_facts_json_is_plain_data() -> None:
    out = health.facts_json(facts(past_due=1, oldest_past_due=NOW - timedelta(minutes=1)))
    assert out["available"] and out["past_due"] == 1 and out["oldest_past_due_age"] == 60
    assert out["heartbeat"] == {"available": True, "live_seconds": 30, "live": 1, "dead": 0, "stopped": 0,
                                "last_heartbeat_gmt": NOW - timedelta(seconds=3), "last_heartbeat_age": 3}


def test_object_cache_rule() -> None:
    """A persistent object cache: a warning of the verdict unless the must-use plugin serves the bridge's results;
    nothing when none is seen (or the must-use plugin says there is none)."""
    from wch_bridge.health import ObjectCache
    from wch_bridge.owners import PhpSide

    assert levels(facts(object_cache=ObjectCache())) == []
    assert levels(facts(object_cache=ObjectCache(reported=False, serves_transients=True))) == []
    drop_in = facts(object_cache=ObjectCache(drop_in="/var/www/wp-content/object-cache.php"))
    assert levels(drop_in) == [WARNING] and "(/var/www/wp-content/object-cache.php)" in text(drop_in)
    assert levels(facts(object_cache=ObjectCache(reported=True))) == [WARNING]
    served = ObjectCache.seen(None, PhpSide.parse('{"object_cache": true, "serves_transients": true}'))
    assert levels(facts(object_cache=served)) == []
    assert health.object_cache_finding(served) is not None and health.object_cache_finding(served).level == OK
    assert ObjectCache.seen(None, PhpSide.parse("not json")) == ObjectCache()
    # the warning comes last, after any critical reason (status printed it after the verdict's reasons)
    assert levels(facts(object_cache=ObjectCache(reported=True), workers=())) == [WARNING, WARNING]
    assert levels(facts(object_cache=ObjectCache(reported=True), unowned=({"group": "wch", "hook": "x",
                                                                           "pending": 1},)))[0] == CRITICAL
