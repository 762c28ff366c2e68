"""The numbers behind ``wch-bridge report``: one function per report section, aggregate queries only.

Every function takes a :class:`ReportScope` (engine, tables, the served groups, "now" and the window) and returns
plain data (dicts, lists, numbers, strings, naive-UTC ``datetime``). Nothing here loads a table into Python: counts
come from ``GROUP BY`` / ``COUNT`` / ``MIN`` / ``MAX``; the few row lists are bounded by ``LIMIT`` (latest
failures, the pickup-lag sample, the JSON scans of batch args). A section whose table is absent (carts, ledger,
workers, options, postmeta, even the AS tables) comes back as ``{"available": False, "reason": ...}``.

Choices (see docs/report.md for the operator's version and the indexes):

* Scope: the actions of the served groups (``wch`` by default), found by ``group_id``.
* Throughput buckets finished actions by ``last_attempt_gmt`` (``complete``: end time, ``failed``: start time,
  as AS writes them) over the window: 1 h buckets for 24 h, 6 h buckets for 7 d.
* Pickup lag = start - ``scheduled_date_gmt``. Start = the first ``action started via ...`` log row of the
  action; where that row is missing (translated sites, cleaned logs) ``last_attempt_gmt`` stands in (the start for
  in-progress/failed rows, the end for complete rows: an upper bound, counted as ``approximate``). Sample: the
  latest :data:`LAG_SAMPLE_PER_HOOK` started actions per hook scheduled within the window; p50/p95/max by nearest
  rank over that sample.
* Campaign ids of ``wch_send_broadcast_batch`` rows live in the args JSON (often in ``extended_args``): extracted
  in SQL (``JSON_EXTRACT`` / ``json_extract``) over a bounded scan: the latest :data:`JSON_SCAN_LIMIT` rows per
  status (``batches_partial`` says when that bound was hit). Messages per campaign come from the ledger.
* Failures grouped by message: over the latest :data:`ERROR_SAMPLE` failed actions of the window.
* Counting by status runs one query per status (``status = ?`` first), so each is a covering range on the
  ``wch_bridge_report_queue`` index instead of a scan by ``group_id``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal_column, or_, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from wch_bridge import argscodec
from wch_bridge import hooks as hook_table
from wch_bridge.errors import ActionDataError, WchBridgeError
from wch_bridge.models import Status
from wch_bridge.store.ledger import IN_DOUBT, auth_pause, in_doubt_counts
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import SiteTime

#: ``--window`` choices -> (seconds, throughput bucket seconds).
WINDOWS: dict[str, tuple[int, int]] = {"24h": (86400, 3600), "7d": (7 * 86400, 6 * 3600)}
LAG_SAMPLE_PER_HOOK = 500
LATEST_FAILURES = 20
ERROR_GROUPS = 15
MAX_HOOKS = 200
JSON_SCAN_LIMIT = 1000  # rows per status whose args JSON is read (campaign ids, retry counts), latest first
ERROR_SAMPLE = 2000  # failures grouped by message: the latest this many failed actions of the window
MAX_CAMPAIGNS = 50
MAX_WORKERS_LISTED = 20
FAILED_STATUSES = ("failed",)
RETRY_STATUSES = ("retry",)
DOUBT_STATUSES = IN_DOUBT  # sending / unknown: may or may not have reached WhatsApp
CLEANUP_HOOK = hook_table.CART_CLEANUP
BROADCAST_HOOK = hook_table.BROADCAST_BATCH
SYNC_HOOK = hook_table.SYNC_JOB
CART_HOOK = hook_table.ABANDONED_CART
CART_EXPIRY_HOURS = 72
_EPOCH = datetime(1970, 1, 2)
_FINISHED = (Status.COMPLETE.value, Status.FAILED.value)
_STARTED = (Status.RUNNING.value, Status.COMPLETE.value, Status.FAILED.value)
_FAILURE_LINES = ("action failed%", "action marked as failed%", "unexpected shutdown%")

Section = dict[str, Any]


def not_available(reason: str) -> Section:
    return {"available": False, "reason": reason}


@dataclass(frozen=True)
class ReportScope:
    """What every section query needs. Build it with :func:`open_scope`."""

    engine: Engine
    t: Tables
    dialect: str  # "mysql" | "sqlite"
    tables: frozenset[str]
    groups: tuple[str, ...]
    group_ids: tuple[int, ...]
    now: datetime
    window: str
    window_seconds: int
    bucket_seconds: int
    site: SiteTime
    #: Aggregates more than one section needs, computed once per report (see :func:`_memo`).
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def since(self) -> datetime:
        return self.now - timedelta(seconds=self.window_seconds)

    def has(self, table_obj: Any) -> bool:
        return str(table_obj.name) in self.tables

    def columns(self, name: str) -> set[str]:
        from sqlalchemy import inspect

        return {c["name"] for c in inspect(self.engine).get_columns(name)}


def open_scope(
    engine: Engine, t: Tables, groups: Sequence[str], now: datetime, window: str = "24h", site: SiteTime | None = None
) -> ReportScope:
    from sqlalchemy import inspect

    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    seconds, bucket = WINDOWS[window]
    names = frozenset(n for n in inspect(engine).get_table_names() if n.startswith(t.prefix))
    gids: tuple[int, ...] = ()
    if t.groups.name in names and groups:
        with engine.connect() as conn:
            rows = conn.execute(select(t.groups.c.group_id).where(t.groups.c.slug.in_(list(groups))))
            gids = tuple(sorted(int(r[0]) for r in rows))
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    return ReportScope(engine, t, dialect, names, tuple(groups), gids, now, window, seconds, bucket,
                       site or SiteTime.utc())


def safe(fn: Callable[[ReportScope], Section], scope: ReportScope) -> Section:
    """Run one section; a database error becomes "not available" with the reason (the report still renders)."""
    try:
        return fn(scope)
    except (SQLAlchemyError, WchBridgeError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return not_available(f"query failed: {detail}")


def collect(scope: ReportScope, *, worker_stale_seconds: float = 60.0) -> dict[str, Section]:
    """Every section, each guarded by :func:`safe`."""
    from wch_bridge.store.reporting_wch import (
        campaigns_section,
        carts_section,
        catalog_section,
        cleanup_section,
        workers_section,
    )

    return {
        "health": safe(health_inputs, scope),
        "queue": safe(queue_section, scope),
        "failures": safe(failures_section, scope),
        "carts": safe(carts_section, scope),
        "campaigns": safe(campaigns_section, scope),
        "catalog": safe(catalog_section, scope),
        "workers": safe(lambda s: workers_section(s, stale_seconds=worker_stale_seconds), scope),
        "cleanup": safe(cleanup_section, scope),
    }


# ---------------------------------------------------------------------------------------------- helpers
def _in_groups(scope: ReportScope) -> Any:
    return scope.t.actions.c.group_id.in_(list(scope.group_ids))


def _args_json(scope: ReportScope) -> Any:
    a = scope.t.actions
    return func.coalesce(func.nullif(a.c.extended_args, ""), a.c.args)


def _json_value(scope: ReportScope, expr: Any, *paths: str) -> Any:
    """The first of ``paths`` present in the JSON ``expr`` as text (NULL for invalid JSON or no match)."""
    if scope.dialect == "sqlite":
        vals = [func.json_extract(expr, p) for p in paths]
    else:
        vals = [func.json_unquote(func.json_extract(expr, p)) for p in paths]
    return case((func.json_valid(expr) == 1, func.coalesce(*vals) if len(vals) > 1 else vals[0]), else_=None)


def _bucket_expr(scope: ReportScope, col: Any) -> Any:
    since = scope.since.strftime("%Y-%m-%d %H:%M:%S")
    if scope.dialect == "sqlite":
        diff = cast(func.strftime("%s", col) - func.strftime("%s", since), Integer)
    else:
        diff = func.timestampdiff(literal_column("SECOND"), since, col, type_=Integer)
    return diff // scope.bucket_seconds


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _age(scope: ReportScope, when: datetime | None) -> int | None:
    return None if when is None else max(0, int((scope.now - when).total_seconds()))


def _strip_failure(message: str) -> str:
    """``action failed via WCH Bridge: boom`` -> ``boom``; other lines unchanged."""
    if message.startswith("action failed"):
        head, sep, rest = message.partition(": ")
        if sep and len(head) <= 80:
            return rest
    return message


def _num(value: Any) -> float:
    try:
        return round(float(value or 0), 2)
    except (TypeError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------------------------- health
def health_inputs(scope: ReportScope) -> Section:
    """The raw facts the banner is decided from (the decision itself is in ``wch_bridge.report``)."""
    a, out = scope.t.actions, {"available": True}
    if not scope.has(a):
        return not_available(f"table {a.name} not found")
    pending_due = and_(a.c.status == Status.PENDING.value, a.c.scheduled_date_gmt <= scope.now, _in_groups(scope))
    with scope.engine.connect() as conn:
        count, oldest = conn.execute(
            select(func.count(), func.min(case((a.c.scheduled_date_gmt > _EPOCH, a.c.scheduled_date_gmt))))
            .where(pending_due)
        ).one()
        finished = {st: sum(n for (st2, _h), (n, _l) in _finished_by_hook(scope, conn).items() if st2 == st)
                    for st in _FINISHED}
        cleanup_next = conn.execute(
            select(func.min(a.c.scheduled_date_gmt)).where(
                a.c.hook == CLEANUP_HOOK, a.c.status.in_([Status.PENDING.value, Status.RUNNING.value])
            )
        ).scalar()
        cleanup_rows = conn.execute(
            select(func.count()).where(
                a.c.hook == CLEANUP_HOOK, a.c.status.in_([Status.PENDING.value, Status.RUNNING.value])
            )
        ).scalar_one()
    out.update(
        past_due=int(count), oldest_past_due_gmt=oldest, oldest_past_due_age=_age(scope, oldest),
        failed_in_window=int(finished.get(Status.FAILED.value, 0)),
        completed_in_window=int(finished.get(Status.COMPLETE.value, 0)),
        cleanup_scheduled=bool(cleanup_rows), cleanup_next_gmt=cleanup_next,
        api=_api_pause(scope), heartbeat=_heartbeat(scope),
    )
    return out


def _api_pause(scope: ReportScope) -> Section:
    """Paused when the latest auth error (code 0/190) or halt row of the ledger is newer than the latest send."""
    m = scope.t.messages
    if not scope.has(m):
        return not_available(f"table {m.name} not found")
    with scope.engine.connect() as conn:
        doubt = in_doubt_counts(conn, m)
        return {"available": True, **auth_pause(conn, m, scope.since), "in_doubt": doubt["count"],
                "in_doubt_since_gmt": doubt["oldest_gmt"]}


def _heartbeat(scope: ReportScope) -> Section:
    w = scope.t.workers
    if not scope.has(w):
        return not_available(f"table {w.name} not found")
    with scope.engine.connect() as conn:
        last, n = conn.execute(select(func.max(w.c.heartbeat_at), func.count()).where(w.c.stopped_at.is_(None))).one()
        ever = conn.execute(select(func.count()).select_from(w)).scalar_one()
    return {"available": True, "last_heartbeat_gmt": last, "last_heartbeat_age": _age(scope, last),
            "registered": int(n), "ever": int(ever)}


# ---------------------------------------------------------------------------------------------- queue
def _memo(scope: ReportScope, key: str, compute: Callable[[], Any]) -> Any:
    if key not in scope.cache:
        scope.cache[key] = compute()
    return scope.cache[key]


def _finished(scope: ReportScope, conn: Any) -> list[tuple[str, str, int, int, datetime | None]]:
    """(status, hook, bucket, count, latest last_attempt_gmt) of complete/failed actions in the window: ONE
    covering range on ``wch_bridge_report_finished`` (status, last_attempt_gmt, group_id, hook), from which the
    throughput chart, the window counts, the failure total and the cleanup runs are all derived."""
    a = scope.t.actions

    def compute() -> list[tuple[str, str, int, int, datetime | None]]:
        bucket = _bucket_expr(scope, a.c.last_attempt_gmt).label("bucket")
        q = (select(a.c.status, a.c.hook, bucket, func.count(), func.max(a.c.last_attempt_gmt))
             .where(a.c.status.in_(_FINISHED), a.c.last_attempt_gmt >= scope.since,
                    a.c.last_attempt_gmt <= scope.now, _in_groups(scope))
             .group_by(a.c.status, a.c.hook, bucket).limit(MAX_HOOKS * 2 * 64))
        return [(str(st), str(h), int(b or 0), int(n), last) for st, h, b, n, last in conn.execute(q)]

    return _memo(scope, "finished", compute)


def _finished_by_hook(scope: ReportScope, conn: Any) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(status, hook) -> (count, latest last_attempt_gmt) in the window."""
    out: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    for st, h, _b, n, last in _finished(scope, conn):
        prev_n, prev_last = out.get((st, h), (0, None))
        out[(st, h)] = (prev_n + n, max(filter(None, [prev_last, last]), default=None))
    return out


def _hook_status_counts(scope: ReportScope, conn: Any) -> list[tuple[str, str, int]]:
    """(hook, status, count) over the served groups: one ``status = ?`` query per AS status (a covering range on
    ``wch_bridge_report_queue``), plus one for any other status string."""
    return _memo(scope, "hook_status", lambda: _hook_status_query(scope, conn))


def _hook_status_query(scope: ReportScope, conn: Any) -> list[tuple[str, str, int]]:
    a = scope.t.actions
    known = [st.value for st in Status]
    out: list[tuple[str, str, int]] = []
    extra: list[Any] = []
    for status in known:
        q = select(a.c.hook, func.count()).where(a.c.status == status, _in_groups(scope), *extra).group_by(a.c.hook)
        out += [(str(h), status, int(n)) for h, n in conn.execute(q.limit(MAX_HOOKS))]
    q = (select(a.c.hook, a.c.status, func.count()).where(a.c.status.notin_(known), _in_groups(scope), *extra)
         .group_by(a.c.status, a.c.hook).limit(MAX_HOOKS))
    out += [(str(h), str(st), int(n)) for h, st, n in conn.execute(q)]
    return out


def queue_section(scope: ReportScope) -> Section:
    """Hooks x statuses, past-due by hook, throughput per bucket, pickup lag per hook."""
    a = scope.t.actions
    if not scope.has(a):
        return not_available(f"table {a.name} not found")
    out: Section = {"available": True, "groups": list(scope.groups), "group_ids": list(scope.group_ids)}
    with scope.engine.connect() as conn:
        hooks: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for hook, status, n in _hook_status_counts(scope, conn):
            hooks.setdefault(str(hook), {})[str(status)] = int(n)
            totals[str(status)] = totals.get(str(status), 0) + int(n)
        out["statuses"] = [s.value for s in Status] + sorted(set(totals) - {s.value for s in Status})
        out["hooks"] = [{"hook": h, "counts": c, "total": sum(c.values())} for h, c in sorted(hooks.items())]
        out["totals"] = {**totals, "total": sum(totals.values())}
        due = conn.execute(
            select(a.c.hook, func.count(), func.min(case((a.c.scheduled_date_gmt > _EPOCH, a.c.scheduled_date_gmt))))
            .where(a.c.status == Status.PENDING.value, _in_groups(scope), a.c.scheduled_date_gmt <= scope.now)
            .group_by(a.c.hook).order_by(func.count().desc()).limit(MAX_HOOKS)
        ).all()
        by_hook = [{"hook": str(h), "count": int(n), "oldest_gmt": o, "oldest_age": _age(scope, o)} for h, n, o in due]
        oldest = min((r["oldest_gmt"] for r in by_hook if r["oldest_gmt"]), default=None)
        out["past_due"] = {"total": sum(r["count"] for r in by_hook), "oldest_gmt": oldest,
                           "oldest_age": _age(scope, oldest), "by_hook": by_hook}
        out["throughput"] = _throughput(scope, conn)
        out["pickup_lag"] = _pickup_lag(scope, conn, sorted(hooks))
    return out


def _throughput(scope: ReportScope, conn: Any) -> Section:
    n = math.ceil(scope.window_seconds / scope.bucket_seconds)
    buckets = [{"start_gmt": scope.since + timedelta(seconds=i * scope.bucket_seconds), "completed": 0, "failed": 0}
               for i in range(n)]
    for status, _hook, idx, count, _last in _finished(scope, conn):
        i = min(max(idx, 0), n - 1)
        buckets[i]["completed" if status == Status.COMPLETE.value else "failed"] += count
    return {"bucket_seconds": scope.bucket_seconds, "buckets": buckets,
            "completed": sum(b["completed"] for b in buckets), "failed": sum(b["failed"] for b in buckets)}


def _pickup_lag(scope: ReportScope, conn: Any, hooks: Sequence[str]) -> Section:
    a, lg = scope.t.actions, scope.t.logs
    result = []
    for hook in hooks[:MAX_HOOKS]:
        sample: list[tuple[int, datetime, datetime | None]] = []
        for status in _STARTED:
            for gid in scope.group_ids:
                sample += conn.execute(
                    select(a.c.action_id, a.c.scheduled_date_gmt, a.c.last_attempt_gmt)
                    .where(a.c.status == status, a.c.group_id == gid, a.c.hook == hook,
                           a.c.scheduled_date_gmt >= scope.since, a.c.scheduled_date_gmt <= scope.now)
                    .order_by(a.c.scheduled_date_gmt.desc()).limit(LAG_SAMPLE_PER_HOOK)
                ).all()
        sample = sorted(sample, key=lambda r: r[1], reverse=True)[:LAG_SAMPLE_PER_HOOK]
        if not sample:
            continue
        starts: dict[int, datetime] = {}
        ids = [int(r[0]) for r in sample]
        if scope.has(lg):
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                starts.update(
                    (int(aid), when) for aid, when in conn.execute(
                        select(lg.c.action_id, func.min(lg.c.log_date_gmt))
                        .where(lg.c.action_id.in_(chunk), lg.c.message.like("action started%"))
                        .group_by(lg.c.action_id)
                    ) if when is not None
                )
        lags, approx = [], 0
        for aid, scheduled, last_attempt in sample:
            start = starts.get(int(aid))
            if start is None:
                start, approx = last_attempt, approx + (last_attempt is not None)
            if start is not None and scheduled is not None:
                lags.append(max(0.0, (start - scheduled).total_seconds()))
        lags.sort()
        if lags:
            result.append({"hook": hook, "samples": len(lags), "approximate": approx, "p50": percentile(lags, 50),
                           "p95": percentile(lags, 95), "max": lags[-1]})
    return {"sample_per_hook": LAG_SAMPLE_PER_HOOK, "hooks": result}


# ---------------------------------------------------------------------------------------------- failures
def failures_section(scope: ReportScope) -> Section:
    """The latest failed actions in the window (with their log error) and failures grouped by error message."""
    a, lg = scope.t.actions, scope.t.logs
    if not scope.has(a):
        return not_available(f"table {a.name} not found")
    failed_win = and_(a.c.status == Status.FAILED.value, a.c.last_attempt_gmt >= scope.since,
                      a.c.last_attempt_gmt <= scope.now, _in_groups(scope))
    with scope.engine.connect() as conn:
        total = sum(n for (st, _h), (n, _l) in _finished_by_hook(scope, conn).items() if st == Status.FAILED.value)
        rows = conn.execute(
            select(a.c.action_id, a.c.hook, a.c.attempts, a.c.last_attempt_gmt, a.c.scheduled_date_gmt, a.c.args,
                   a.c.extended_args).where(failed_win)
            .order_by(a.c.last_attempt_gmt.desc(), a.c.action_id.desc()).limit(LATEST_FAILURES)
        ).all()
        lines: dict[int, list[tuple[int, str, datetime | None]]] = {}
        if rows and scope.has(lg):
            q = (select(lg.c.action_id, lg.c.log_id, lg.c.message, lg.c.log_date_gmt)
                 .where(lg.c.action_id.in_([int(r.action_id) for r in rows]),
                        lg.c.message.notlike("action created%"), lg.c.message.notlike("action started%"))
                 .order_by(lg.c.log_id).limit(LATEST_FAILURES * 50))
            for aid, log_id, msg, when in conn.execute(q):
                lines.setdefault(int(aid), []).append((int(log_id), str(msg or ""), when))
        groups: list[dict[str, Any]] = []
        if scope.has(lg) and total:
            msg = func.substr(lg.c.message, 1, 300).label("msg")
            latest_failed = (select(a.c.action_id.label("aid")).where(failed_win)
                             .order_by(a.c.last_attempt_gmt.desc()).limit(ERROR_SAMPLE).subquery())
            q = (select(msg, func.count(lg.c.action_id.distinct()), func.max(lg.c.log_date_gmt))
                 .select_from(lg.join(latest_failed, latest_failed.c.aid == lg.c.action_id))
                 .where(or_(*[lg.c.message.like(p) for p in _FAILURE_LINES]))
                 .group_by(msg).order_by(func.count(lg.c.action_id.distinct()).desc()).limit(ERROR_GROUPS * 4))
            merged: dict[str, dict[str, Any]] = {}
            for text, n, last in conn.execute(q):
                key = _strip_failure(str(text or ""))
                g = merged.setdefault(key, {"error": key, "count": 0, "last_gmt": None})
                g["count"] += int(n)
                g["last_gmt"] = max(filter(None, [g["last_gmt"], last]), default=None)
            groups = sorted(merged.values(), key=lambda g: (-g["count"], g["error"]))[:ERROR_GROUPS]
    latest = []
    for r in rows:
        found = lines.get(int(r.action_id), [])
        fail = [x for x in found if any(x[1].startswith(p.rstrip("%")) for p in _FAILURE_LINES)]
        pick = (fail or found or [None])[-1]
        latest.append({
            "action_id": int(r.action_id), "hook": str(r.hook), "attempts": int(r.attempts),
            "failed_gmt": (pick[2] if pick and pick[2] else r.last_attempt_gmt),
            "scheduled_gmt": r.scheduled_date_gmt,
            "error": _strip_failure(pick[1])[:500] if pick else "(no failure message in the log)",
            "args_summary": _summary(r.extended_args or r.args),
        })
    shown = sum(g["count"] for g in groups)
    return {"available": True, "failed_in_window": int(total), "latest": latest, "by_error": groups,
            "other_count": max(0, min(int(total), ERROR_SAMPLE) - shown), "by_error_sample": ERROR_SAMPLE,
            "by_error_sampled": int(total) > ERROR_SAMPLE}


def _summary(args_json: str | None) -> str:
    try:
        return argscodec.args_summary(argscodec.decode_args(args_json))
    except ActionDataError:
        return "(undecodable args)"
