"""One health verdict: the facts (:class:`HealthFacts`, read once by ``store.reports.health_facts``) judged by one set of
named thresholds (:func:`judge`). ``wch-bridge status``, the report, and the metrics (``wch_bridge_health``) all
present the same :class:`Verdict`, so they never disagree on the same database. Pure: no I/O, no clock.

A worker is *live* while its heartbeat is at most :func:`live_worker_seconds` old and it has not recorded a stop;
that is the orphan timeout, after which other workers take its actions over. Every place that asks "is a worker
live?" uses it (status, report, metrics, ``hooks list``, ``enqueue``, ownership, ``wch-bridge health``).

Rules (docs/cli-json.md and docs/report.md say the same):

* critical: the Action Scheduler tables cannot be read; past-due actions whose oldest has waited
  :data:`PAST_DUE_CRITICAL_AGE` or more, or :data:`PAST_DUE_CRITICAL_COUNT`+ past due; :data:`FAILURE_CRITICAL_COUNT`+
  failures in the last 24 h that are :data:`FAILURE_CRITICAL_RATIO`+ of the finished actions; pending actions of
  hooks no one runs; no live worker and the latest one stopped beating without a clean stop; WhatsApp sending
  paused by an authentication error.
* warning: past-due actions older than :data:`PAST_DUE_WARNING_AGE`; any failure in the last 24 h; a served group
  named by hand that does not exist (or no served group exists); no heartbeat table; no worker ever registered; no
  live worker after a clean stop; a worker that stopped beating without a clean stop in the last 24 h; the
  recurring cart cleanup not scheduled; messages in doubt; a persistent object cache in front of the site's
  transients that the must-use plugin does not serve the bridge's results past (:func:`object_cache_finding`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from wch_bridge.hooks import CART_CLEANUP, PLUGIN_GROUPS
from wch_bridge.owners import PhpSide
from wch_bridge.settings import Settings

OK, WARNING, CRITICAL = "ok", "warning", "critical"
RANK = {OK: 0, WARNING: 1, CRITICAL: 2}
EXIT_CODES = {OK: 0, WARNING: 1, CRITICAL: 2}

#: Past-due actions: warning once the oldest has waited this long (younger ones are a fact: the worker polls)...
PAST_DUE_WARNING_AGE = timedelta(minutes=5)
#: ... critical once it has waited this long, or once this many are past due.
PAST_DUE_CRITICAL_AGE = timedelta(minutes=30)
PAST_DUE_CRITICAL_COUNT = 1000
#: Failures are counted over this window (whatever the report's ``--window``): any is a warning; critical when
#: at least FAILURE_CRITICAL_COUNT and at least FAILURE_CRITICAL_RATIO of the finished actions.
FAILURE_WINDOW = timedelta(hours=24)
FAILURE_CRITICAL_COUNT = 10
FAILURE_CRITICAL_RATIO = 0.25
#: A worker that stopped beating without a clean stop is reported (warning) for this long.
DEAD_WORKER_WINDOW = timedelta(hours=24)


def live_worker_seconds(settings: Settings) -> float:
    """How old a heartbeat may be for its worker to count as live: the orphan timeout (default 30 s), after which
    other workers take over the actions it holds. The one definition of "live worker"."""
    return float(settings.orphan_timeout)


@dataclass(frozen=True)
class WorkerBeat:
    """One row of ``{prefix}wch_bridge_workers``."""

    worker_id: str
    host: str
    pid: int
    version: str
    started_at: datetime | None
    heartbeat_at: datetime | None
    stopped_at: datetime | None
    in_hand: int = 0

    def live(self, now: datetime, limit_seconds: float) -> bool:
        return (self.stopped_at is None and self.heartbeat_at is not None
                and (now - self.heartbeat_at).total_seconds() <= limit_seconds)


#: The transients the bridge writes for the plugin to read (``get_transient``).
RESULT_TRANSIENTS = "wch_job_result_*, wch_broadcast_summary_*, wch_broadcast_result_*, wch_cart_cleanup_last_result"


@dataclass(frozen=True)
class ObjectCache:
    """A persistent object cache in front of the site's transients, as the bridge can see it (``objectcache``):
    the drop-in file next to ``wp-config.php``, and the must-use plugin's report (option ``wch_bridge_php_side``)."""

    drop_in: str | None = None  # the site's object-cache.php, when found
    reported: bool | None = None  # the must-use plugin says WordPress uses one (None: it did not say)
    serves_transients: bool = False  # ... and that it serves the bridge's results from the database

    @classmethod
    def seen(cls, drop_in: str | None, php: PhpSide | None) -> ObjectCache:
        """From the drop-in found (or None) and the must-use plugin's report (None: no report)."""
        return cls(drop_in=drop_in, reported=php.object_cache if php else None,
                   serves_transients=bool(php and php.serves_transients))


@dataclass(frozen=True)
class HealthFacts:
    """Everything the verdict is decided from, for the served groups at ``now`` (naive UTC)."""

    now: datetime
    live_seconds: float
    unreadable: str | None = None  # why the Action Scheduler tables could not be read (then nothing else is known)
    groups: tuple[str, ...] = ()
    missing_groups: tuple[str, ...] = ()  # served slugs with no actionscheduler_groups row
    past_due: int = 0
    oldest_past_due: datetime | None = None  # zero dates ignored
    failed_24h: int = 0
    completed_24h: int = 0
    cleanup_next: datetime | None = None  # the earliest pending recurring cleanup, in any group
    cleanup_group: str | None = None
    cleanup_running: bool = False
    unowned: tuple[dict[str, Any], ...] = ()  # {"group", "hook", "pending"}, most first
    api_pause: dict[str, Any] | None = None  # ledger.auth_pause(); None: no ledger table
    in_doubt: dict[str, Any] | None = None  # ledger.in_doubt_counts(); None: no ledger table
    workers: tuple[WorkerBeat, ...] | None = None  # every row, newest heartbeat first; None: no heartbeat table
    object_cache: ObjectCache | None = None  # None: not looked at

    @property
    def cleanup_state(self) -> str:
        return "scheduled" if self.cleanup_next is not None else "running" if self.cleanup_running else "missing"

    def age(self, then: datetime | None) -> int | None:
        return None if then is None else max(0, int((self.now - then).total_seconds()))

    def live_workers(self) -> list[WorkerBeat]:
        return [w for w in self.workers or () if w.live(self.now, self.live_seconds)]

    def dead_workers(self) -> list[WorkerBeat]:
        """Not live and never recorded a stop."""
        return [w for w in self.workers or () if w.stopped_at is None and not w.live(self.now, self.live_seconds)]


class Reason(NamedTuple):
    level: str
    text: str


@dataclass
class Verdict:
    """``level`` is the worst level among ``reasons`` (most severe first); ``facts`` is the good news."""

    reasons: list[Reason] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)

    def add(self, level: str, text: str) -> None:
        self.reasons.append(Reason(level, text))

    @property
    def level(self) -> str:
        return max((r.level for r in self.reasons), key=RANK.__getitem__, default=OK)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.level]


def fmt_duration(seconds: float | None) -> str:
    """``0.4 s``, ``42 s``, ``3 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if seconds is None:
        return "—"
    s = float(seconds)
    if s < 10:
        return f"{s:.1f} s"
    if s < 60:
        return f"{s:.0f} s"
    m, sec = divmod(int(s), 60)
    if m < 60:
        return f"{m} min {sec} s" if sec else f"{m} min"
    h, m = divmod(m, 60)
    if h < 48:
        return f"{h} h {m} min" if m else f"{h} h"
    d, h = divmod(h, 24)
    return f"{d} d {h} h" if h else f"{d} d"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "an unknown date"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def missing_groups_to_warn(served: Sequence[str], missing: Sequence[str]) -> list[str]:
    """The one rule on served groups with no ``actionscheduler_groups`` row (the verdict and ``schema check`` both
    ask it): the plugin's own groups come and go with its versions, so their missing rows are normal (the bridge
    creates them on first run) and worth nothing; a missing group named by hand (a typo?), or no served group
    existing at all, is worth a warning, which then names every missing group."""
    missing = list(missing)
    if all(g in PLUGIN_GROUPS for g in missing) and len(missing) < len(served):
        return []
    return missing


def judge(f: HealthFacts) -> Verdict:
    """The verdict on ``f``: every rule of the module docstring, reasons sorted most severe first."""
    v = Verdict()
    if f.unreadable is not None:
        v.add(CRITICAL, f"The Action Scheduler tables could not be read: {f.unreadable}.")
        return v
    missing = missing_groups_to_warn(f.groups, f.missing_groups)
    if missing:
        v.add(WARNING, "Group(s) " + ", ".join(repr(g) for g in missing)
              + " do not exist yet (no action was ever scheduled there).")
    _past_due(f, v)
    _failures(f, v)
    if f.unowned:
        v.add(CRITICAL, unowned_text(f.unowned))
    _workers(f, v)
    if f.cleanup_state == "missing":
        v.add(WARNING, f"The recurring cart cleanup ({CART_CLEANUP}) is not scheduled (the plugin schedules it "
              "again on the next WordPress request; check WP-Cron).")
    _api(f, v)
    cache = object_cache_finding(f.object_cache)
    if cache is not None and cache.level == WARNING:
        v.add(WARNING, cache.text)
    v.reasons.sort(key=lambda r: -RANK[r.level])
    return v


def _past_due(f: HealthFacts, v: Verdict) -> None:
    n, age = f.past_due, f.age(f.oldest_past_due)
    if not n:
        v.facts.append("No past-due actions.")
        return
    text = (f"{n:,} action{'s are' if n != 1 else ' is'} past due; the oldest has waited {fmt_duration(age)} "
            f"(since {_when(f.oldest_past_due)} UTC)")
    if n >= PAST_DUE_CRITICAL_COUNT or (age is not None and age >= PAST_DUE_CRITICAL_AGE.total_seconds()):
        v.add(CRITICAL, text + (": a worker is live, so they are hooks it does not run or it is far behind."
                                if f.live_workers() else ": nothing is running the queue (is `wch-bridge run` up?)."))
    elif age is None or age >= PAST_DUE_WARNING_AGE.total_seconds():
        v.add(WARNING, text + ".")
    else:
        v.facts.append(text + ".")


def _failures(f: HealthFacts, v: Verdict) -> None:
    failed, done = f.failed_24h, f.completed_24h
    if not failed:
        v.facts.append(f"No failures in the last 24 h ({done:,} actions completed).")
        return
    ratio = failed / max(1, failed + done)
    level = CRITICAL if failed >= FAILURE_CRITICAL_COUNT and ratio >= FAILURE_CRITICAL_RATIO else WARNING
    v.add(level, f"{_plural(failed, 'action')} failed in the last 24 h ({ratio:.0%} of {failed + done:,} finished): "
          "wch-bridge jobs list --status failed --since 24h.")


def _workers(f: HealthFacts, v: Verdict) -> None:
    named = None  # the worker a "no live worker" reason already names
    if f.workers is None:
        v.add(WARNING, "Worker heartbeats are not recorded here (no heartbeat table): cannot tell whether a "
              "wch-bridge worker is running; `wch-bridge run` creates it.")
        return
    live = f.live_workers()
    if not f.workers:
        v.add(WARNING, "No wch-bridge worker has registered a heartbeat yet.")
    elif live:
        newest = max(w.heartbeat_at for w in live if w.heartbeat_at is not None)
        v.facts.append(f"Worker heartbeat {fmt_duration(f.age(newest))} ago ({len(live)} live).")
    else:
        last = max(f.workers, key=lambda w: w.heartbeat_at or datetime.min)
        named = last.worker_id
        if last.stopped_at is not None:
            v.add(WARNING, f"No wch-bridge worker is running: the last one ({last.host} pid {last.pid}) stopped "
                  f"cleanly {fmt_duration(f.age(last.stopped_at))} ago. Start `wch-bridge run` to serve the queue.")
        else:
            v.add(CRITICAL, "No live wch-bridge worker: " + (
                f"the last heartbeat was {fmt_duration(f.age(last.heartbeat_at))} ago ({_when(last.heartbeat_at)} "
                f"UTC, {last.host} pid {last.pid}) and it never recorded a clean stop."
                if last.heartbeat_at else "no registered worker ever sent a heartbeat."))
    window = DEAD_WORKER_WINDOW.total_seconds()
    dead = [w for w in f.dead_workers() if w.worker_id != named and w.heartbeat_at is not None
            and (f.age(w.heartbeat_at) or 0) <= window]
    if dead:
        who = ", ".join(f"{w.host} pid {w.pid}" for w in dead[:5])
        v.add(WARNING, f"{len(dead)} worker(s) stopped heart-beating without a clean stop in the last 24 h: {who}.")


def _api(f: HealthFacts, v: Verdict) -> None:
    api = f.api_pause or {}
    if api.get("paused"):
        code = api.get("error_code")
        v.add(CRITICAL, "WhatsApp sending is paused by an authentication error"
              + (f" (code {code})" if code is not None else "")
              + f" since {_when(api.get('last_auth_error_gmt'))} UTC, with no message sent after it"
              + (f": {api['error_text']}" if api.get("error_text") else "")
              + ". Renew the access token and restart the worker.")
    doubt = f.in_doubt or {}
    if doubt.get("count"):
        v.add(WARNING, f"{doubt['count']} message(s) in doubt since {_when(doubt.get('oldest_gmt'))} UTC "
              f"({doubt.get('sending', 0)} sending, {doubt.get('unknown', 0)} unknown): the request left but no answer "
              "was recorded (a worker stopped mid-send or the connection dropped), so they may or may not have reached "
              "WhatsApp and are not re-sent automatically (wch-bridge messages list --status unknown; "
              "wch-bridge messages resend).")


def object_cache_finding(oc: ObjectCache | None) -> Reason | None:
    """None when no object cache is seen (no drop-in found, the must-use plugin did not report one); ``ok`` when
    the must-use plugin serves the bridge's results from the database; else ``warning``: WordPress reads
    transients from the cache and the plugin does not see the bridge's results. ``schema check`` shows it too."""
    if oc is None or (oc.drop_in is None and not oc.reported):
        return None
    where = oc.drop_in if oc.drop_in is not None else "reported by the must-use plugin"
    if oc.serves_transients and oc.reported:
        return Reason(OK, f"a persistent object cache is in use ({where}): the must-use plugin serves the "
                      f"bridge's results ({RESULT_TRANSIENTS}) to WordPress from the database")
    return Reason(WARNING, f"a persistent object cache is in use ({where}): WordPress reads transients from it, "
                  f"not from the options table, so the plugin does not see the bridge's results ({RESULT_TRANSIENTS})"
                  "; install the must-use plugin docker/mu-plugins/wch-bridge.php 0.3.0+ (it serves them from the "
                  "database) and let PHP's queue run once")


def unowned_text(unowned: Sequence[Mapping[str, Any]]) -> str:
    """The one sentence about pending actions of hooks no one runs (``[{"group", "hook", "pending"}]``): the
    verdict's reason, and the worker's warning at start."""
    names = ", ".join(f"{u['hook']} ({int(u['pending']):,} in {u['group']})" for u in unowned[:10])
    total = sum(int(u["pending"]) for u in unowned)
    return (f"{_plural(total, 'pending action')} of hooks no one runs: {names} (neither the bridge nor PHP has a "
            "handler for them: a typo in the hook name, or let PHP run them; see `wch-bridge hooks list`).")


def facts_json(f: HealthFacts) -> dict[str, Any]:
    """The facts as plain data (datetimes kept; the presenters format them)."""
    live, dead = f.live_workers(), f.dead_workers()
    last = max((w.heartbeat_at for w in f.workers or () if w.heartbeat_at), default=None)
    return {
        "available": f.unreadable is None, **({"reason": f.unreadable} if f.unreadable else {}),
        "past_due": f.past_due, "oldest_past_due_gmt": f.oldest_past_due,
        "oldest_past_due_age": f.age(f.oldest_past_due),
        "failed_24h": f.failed_24h, "completed_24h": f.completed_24h,
        "missing_groups": list(f.missing_groups), "cleanup_state": f.cleanup_state, "cleanup_next_gmt": f.cleanup_next,
        "unowned": [dict(u) for u in f.unowned],
        "api": {"available": f.api_pause is not None, **(f.api_pause or {})},
        "in_doubt": None if f.in_doubt is None else dict(f.in_doubt),
        "object_cache": None if f.object_cache is None else {
            "drop_in": f.object_cache.drop_in, "reported_by_php": f.object_cache.reported,
            "serves_transients": f.object_cache.serves_transients},
        "heartbeat": {"available": f.workers is not None, "live_seconds": f.live_seconds, "live": len(live),
                      "dead": len(dead), "stopped": sum(1 for w in f.workers or () if w.stopped_at is not None),
                      "last_heartbeat_gmt": last, "last_heartbeat_age": f.age(last)},
    }
