"""The numbers behind ``wch-bridge report``: one function per report section, aggregate queries only.

Every function takes a :class:`ReportScope` (engine, tables, the served groups, "now" and the window) and returns
plain data (dicts, lists, numbers, strings, naive-UTC ``datetime``). Nothing here loads a table into Python: counts
come from ``GROUP BY`` / ``COUNT`` / ``MIN`` / ``MAX``; the few row lists are bounded by ``LIMIT`` (latest
failures, the pickup-lag sample, the JSON scans of batch args). A section whose table is absent (carts, ledger,
workers, options, postmeta, even the AS tables) comes back as ``{"available": False, "reason": ...}``.

Choices (see docs/report.md for the operator's version and the indexes):

* Scope: the actions of the served groups (``wch`` by default), found by ``group_id``.
* Throughput buckets finished actions by ``last_attempt_gmt`` (``complete``: end time, ``failed``: start time,
  as AS writes them), in clock-aligned intervals fitted to the data (``buckets``: from the window's first finished
  action to now, 12 to 31 intervals of 10 s to 6 h).
* Pickup lag = start - ``scheduled_date_gmt``. Start = the first ``action started via ...`` log row of the
  action; where that row is missing (translated sites, cleaned logs) ``last_attempt_gmt`` stands in (the start for
  in-progress/failed rows, the end for complete rows: an upper bound, counted as ``approximate``). Sample: the
  latest :data:`LAG_SAMPLE_PER_HOOK` started actions per hook scheduled within the window; p50/p95/max by nearest
  rank over that sample.
* Campaign ids of ``hooks.BROADCAST_BATCH`` rows live in the args JSON (often in ``extended_args``): extracted
  in SQL (``JSON_EXTRACT`` / ``json_extract``) over a bounded scan: the latest :data:`JSON_SCAN_LIMIT` rows per
  status (``batches_partial`` says when that bound was hit). Messages per campaign come from the ledger.
* Failures grouped by message: over the latest :data:`ERROR_SAMPLE` failed actions of the window.
* Counting by status runs one query per status (``status = ?`` first), so each is a covering range on the
  ``wch_bridge_report_queue`` index instead of a scan by ``group_id``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from wch_bridge import argscodec
from wch_bridge.errors import ActionDataError
from wch_bridge.health import live_worker_seconds
from wch_bridge.models import Status
from wch_bridge.settings import Settings
from wch_bridge.store.reports.campaigns import (
    campaigns_section,
    carts_section,
    catalog_section,
    cleanup_section,
    workers_section,
)
from wch_bridge.store.reports.scope import (
    EPOCH,
    ERROR_GROUPS,
    ERROR_SAMPLE,
    LAG_SAMPLE_PER_HOOK,
    LATEST_FAILURES,
    MAX_HOOKS,
    WINDOWS,
    ReportScope,
    Section,
    age,
    finished,
    finished_by_hook,
    hook_status_counts,
    in_groups,
    not_available,
    open_scope,
    percentile,
    safe,
    throughput_fit,
)

__all__ = ["WINDOWS", "ReportScope", "Section", "collect", "failures_section", "open_scope", "queue_section", "safe"]

_STARTED = (Status.RUNNING.value, Status.COMPLETE.value, Status.FAILED.value)
_FAILURE_LINES = ("action failed%", "action marked as failed%", "unexpected shutdown%")


def collect(scope: ReportScope, *, live_seconds: float | None = None) -> dict[str, Section]:
    """Every section, each guarded by :func:`safe`. The health facts are not a section: they are read by
    ``store.reports.health_facts`` (the same facts ``status`` judges). ``live_seconds``: how old a live worker's heartbeat
    may be (:func:`wch_bridge.health.live_worker_seconds`; the default settings' when None)."""
    live = live_worker_seconds(Settings()) if live_seconds is None else live_seconds
    return {
        "queue": safe(queue_section, scope),
        "failures": safe(failures_section, scope),
        "carts": safe(carts_section, scope),
        "campaigns": safe(campaigns_section, scope),
        "catalog": safe(catalog_section, scope),
        "workers": safe(lambda s: workers_section(s, live_seconds=live), scope),
        "cleanup": safe(cleanup_section, scope),
    }


def _strip_failure(message: str) -> str:
    """``action failed via WCH Bridge: boom`` -> ``boom``; other lines unchanged."""
    if message.startswith("action failed"):
        head, sep, rest = message.partition(": ")
        if sep and len(head) <= 80:
            return rest
    return message


def queue_section(scope: ReportScope) -> Section:
    """Hooks x statuses, past-due by hook, throughput per bucket, pickup lag per hook."""
    a = scope.t.actions
    if not scope.has(a):
        return not_available(f"table {a.name} not found")
    out: Section = {"available": True, "groups": list(scope.groups), "group_ids": list(scope.group_ids)}
    with scope.engine.connect() as conn:
        hooks: dict[str, dict[str, int]] = {}
        totals: dict[str, int] = {}
        for hook, status, n in hook_status_counts(scope, conn):
            hooks.setdefault(str(hook), {})[str(status)] = int(n)
            totals[str(status)] = totals.get(str(status), 0) + int(n)
        out["statuses"] = [s.value for s in Status] + sorted(set(totals) - {s.value for s in Status})
        out["hooks"] = [{"hook": h, "counts": c, "total": sum(c.values())} for h, c in sorted(hooks.items())]
        out["totals"] = {**totals, "total": sum(totals.values())}
        due = conn.execute(
            select(a.c.hook, func.count(), func.min(case((a.c.scheduled_date_gmt > EPOCH, a.c.scheduled_date_gmt))))
            .where(a.c.status == Status.PENDING.value, in_groups(scope), a.c.scheduled_date_gmt <= scope.now)
            .group_by(a.c.hook).order_by(func.count().desc()).limit(MAX_HOOKS)
        ).all()
        by_hook = [{"hook": str(h), "count": int(n), "oldest_gmt": o, "oldest_age": age(scope, o)} for h, n, o in due]
        oldest = min((r["oldest_gmt"] for r in by_hook if r["oldest_gmt"]), default=None)
        out["past_due"] = {"total": sum(r["count"] for r in by_hook), "oldest_gmt": oldest,
                           "oldest_age": age(scope, oldest), "by_hook": by_hook}
        out["throughput"] = _throughput(scope, conn)
        out["pickup_lag"] = _pickup_lag(scope, conn, sorted(hooks))
    return out


def _throughput(scope: ReportScope, conn: Any) -> Section:
    rows = finished(scope, conn)
    start, step, n, first = throughput_fit(scope, conn)
    buckets = [{"start_gmt": start + timedelta(seconds=i * step), "completed": 0, "failed": 0} for i in range(n)]
    for status, _hook, idx, count, _last in rows:
        i = min(max(idx, 0), n - 1)
        buckets[i]["completed" if status == Status.COMPLETE.value else "failed"] += count
    return {"bucket_seconds": step, "buckets": buckets, "first_finished_gmt": first,
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
                      a.c.last_attempt_gmt <= scope.now, in_groups(scope))
    with scope.engine.connect() as conn:
        total = sum(n for (st, _h), (n, _l) in finished_by_hook(scope, conn).items() if st == Status.FAILED.value)
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
