"""The WhatsApp Commerce Hub sections of the status report: carts, campaigns, catalog sync, workers, cleanup.

Same rules as :mod:`wch_bridge.store.reports` (aggregates only, bounded scans, "not available" for absent
tables); built on :mod:`wch_bridge.store.reports.scope`, which both share (no import circle)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, column, func, literal_column, or_, select, table

from wch_bridge import phpser
from wch_bridge.models import Status
from wch_bridge.store.ledger import SENT_STATUSES
from wch_bridge.store.reports.scope import (
    BROADCAST_HOOK,
    CART_EXPIRY_HOURS,
    CART_HOOK,
    CLEANUP_HOOK,
    DOUBT_STATUSES,
    FAILED_STATUSES,
    JSON_SCAN_LIMIT,
    MAX_CAMPAIGNS,
    MAX_WORKERS_LISTED,
    RETRY_STATUSES,
    SYNC_HOOK,
    ReportScope,
    Section,
    age,
    args_json,
    finished_by_hook,
    hook_status_counts,
    in_groups,
    json_value,
    not_available,
    num,
)


# ---------------------------------------------------------------------------------------------- carts
def carts_section(scope: ReportScope) -> Section:
    """Cart counts by status, reminders sent and the value reminded vs recovered in the window (site-local)."""
    name = scope.t.carts.name
    if name not in scope.tables:
        return not_available(f"table {name} not found")
    cols = scope.columns(name)
    c = table(name, *[column(n) for n in sorted(cols)])
    since_local = scope.site.local(scope.since).strftime("%Y-%m-%d %H:%M:%S")
    idle_local = scope.site.local(scope.now - timedelta(hours=CART_EXPIRY_HOURS)).strftime("%Y-%m-%d %H:%M:%S")
    reminder_cols = [n for n in ("reminder_sent_at", "reminder_1_sent_at", "reminder_2_sent_at", "reminder_3_sent_at")
                     if n in cols]
    any_in_window = or_(*[c.c[n] >= since_local for n in reminder_cols]) if reminder_cols else None
    any_reminder = or_(*[c.c[n].is_not(None) for n in reminder_cols]) if reminder_cols else None
    converted = c.c.status.in_(["converted", "completed"])
    if "recovered" in cols:
        converted = or_(converted, c.c.recovered == 1)
    recovered_at = func.coalesce(c.c.recovered_at, c.c.updated_at) if "recovered_at" in cols else c.c.updated_at
    value = func.coalesce(c.c.recovered_revenue, c.c.total) if "recovered_revenue" in cols else c.c.total
    with scope.engine.connect() as conn:
        by_status = {str(s): int(n) for s, n in conn.execute(select(c.c.status, func.count()).group_by(c.c.status))}
        idle = conn.execute(select(func.count()).where(c.c.status == "active", c.c.updated_at < idle_local)).scalar()
        out: Section = {"available": True, "by_status": by_status, "active": by_status.get("active", 0),
                        "abandoned": by_status.get("abandoned", 0), "expired": by_status.get("expired", 0),
                        "completed": by_status.get("converted", 0) + by_status.get("completed", 0),
                        "total": sum(by_status.values()), "active_idle_over_72h": int(idle or 0)}
        if reminder_cols:
            sent = conn.execute(select(*[func.count(case((c.c[n] >= since_local, 1))) for n in reminder_cols])).one()
            carts, val = conn.execute(select(func.count(), func.sum(c.c.total)).where(any_in_window)).one()
            rec_n, rec_val = conn.execute(
                select(func.count(), func.sum(value)).where(any_reminder, converted, recovered_at >= since_local)
            ).one()
            out.update(reminders_sent=int(sum(sent)), carts_reminded=int(carts), value_reminded=num(val),
                       carts_recovered=int(rec_n), value_recovered=num(rec_val))
        else:
            out.update(reminders_sent=None, carts_reminded=None, value_reminded=None, carts_recovered=None,
                       value_recovered=None)
    m = scope.t.messages
    if scope.has(m):
        with scope.engine.connect() as conn:
            out["ledger_reminders_sent"] = int(conn.execute(
                select(func.count()).where(m.c.hook == CART_HOOK, m.c.status.in_(SENT_STATUSES),
                                           m.c.created_at >= scope.since)
            ).scalar_one())
    else:
        out["ledger_reminders_sent"] = None
    return out


# ---------------------------------------------------------------------------------------------- campaigns
def _batch_counts(scope: ReportScope, conn: Any) -> tuple[dict[str, dict[str, int]], bool]:
    """campaign id -> {status: batches}, from the latest :data:`JSON_SCAN_LIMIT` broadcast batch actions per status
    (pending and in-progress ones whenever scheduled, finished ones scheduled within the window)."""
    a = scope.t.actions
    out: dict[str, dict[str, int]] = {}
    capped = False
    if not scope.group_ids:
        return out, capped
    for status in [st.value for st in Status]:
        cond = [a.c.status == status, in_groups(scope), a.c.hook == BROADCAST_HOOK]
        if status not in (Status.PENDING.value, Status.RUNNING.value):
            cond.append(a.c.scheduled_date_gmt >= scope.since)
        inner = (select(args_json(scope).label("args_json")).where(*cond)
                 .order_by(a.c.scheduled_date_gmt.desc()).limit(JSON_SCAN_LIMIT).subquery())
        cid = json_value(scope, inner.c.args_json, "$.campaign_id", "$[0].campaign_id", "$[0].args.campaign_id")
        scanned = 0
        for camp, n in conn.execute(select(cid.label("cid"), func.count()).select_from(inner)
                                    .group_by(literal_column("cid"))):
            key = "(none)" if camp in (None, "") else str(camp)
            out.setdefault(key, {})[status] = out.get(key, {}).get(status, 0) + int(n)
            scanned += int(n)
        capped = capped or scanned >= JSON_SCAN_LIMIT
    return out, capped


def campaigns_section(scope: ReportScope) -> Section:
    """Per campaign: batches done/pending (AS rows), messages sent/failed and failures by error code (ledger)."""
    a, m = scope.t.actions, scope.t.messages
    has_a, has_m = scope.has(a), scope.has(m)
    if not has_a and not has_m:
        return not_available("neither the actions table nor the message ledger was found")
    out: Section = {"available": True, "ledger_available": has_m, "scan_limit": JSON_SCAN_LIMIT}
    with scope.engine.connect() as conn:
        batches, capped = _batch_counts(scope, conn) if has_a else ({}, False)
        out["batches_partial"] = capped
        recent: list[str] = []
        msgs: dict[str, dict[str, int]] = {}
        codes: dict[str, dict[str, int]] = {}
        if has_m:
            recent = [str(r[0]) for r in conn.execute(
                select(m.c.campaign_id).where(m.c.campaign_id.is_not(None), m.c.campaign_id != "",
                                              m.c.created_at >= scope.since)
                .group_by(m.c.campaign_id).order_by(func.max(m.c.created_at).desc()).limit(MAX_CAMPAIGNS))]
        ids = list(dict.fromkeys(recent + [k for k in batches if k != "(none)"]))[:MAX_CAMPAIGNS]
        if has_m and ids:
            for camp, status, n in conn.execute(
                select(m.c.campaign_id, m.c.status, func.count()).where(m.c.campaign_id.in_(ids))
                .group_by(m.c.campaign_id, m.c.status)
            ):
                msgs.setdefault(str(camp), {})[str(status)] = int(n)
            for camp, code, n in conn.execute(
                select(m.c.campaign_id, m.c.error_code, func.count())
                .where(m.c.campaign_id.in_(ids), m.c.error_code.is_not(None), m.c.status.notin_(SENT_STATUSES))
                .group_by(m.c.campaign_id, m.c.error_code)
            ):
                codes.setdefault(str(camp), {})[str(code)] = int(n)
        if has_m:
            out.update(_messages_in_window(scope, conn))
    rows = []
    for camp in ids + (["(none)"] if "(none)" in batches else []):
        b, s = batches.get(camp, {}), msgs.get(camp, {})
        rows.append({
            "campaign_id": camp,
            "batches_done": b.get(Status.COMPLETE.value, 0), "batches_failed": b.get(Status.FAILED.value, 0),
            "batches_pending": b.get(Status.PENDING.value, 0) + b.get(Status.RUNNING.value, 0),
            "batches_canceled": b.get(Status.CANCELED.value, 0),
            "sent": sum(n for k, n in s.items() if k in SENT_STATUSES),
            "failed": sum(n for k, n in s.items() if k in FAILED_STATUSES),
            "retrying": sum(n for k, n in s.items() if k in RETRY_STATUSES),
            "in_doubt": sum(n for k, n in s.items() if k in DOUBT_STATUSES),
            "other": sum(n for k, n in s.items()
                         if k not in SENT_STATUSES + FAILED_STATUSES + RETRY_STATUSES + DOUBT_STATUSES),
            "errors": [{"error_code": int(k), "count": n} for k, n in sorted(codes.get(camp, {}).items(),
                                                                             key=lambda kv: -kv[1])],
        })
    out["campaigns"] = rows
    return out


def _messages_in_window(scope: ReportScope, conn: Any) -> Section:
    """Every outbound message of the window by kind and status, and its failures by WhatsApp error code."""
    m = scope.t.messages
    win = {(str(k), str(s)): int(n) for k, s, n in conn.execute(
        select(m.c.kind, m.c.status, func.count()).where(m.c.created_at >= scope.since)
        .group_by(m.c.kind, m.c.status))}
    return {
        "messages_in_window": {
            "sent": sum(n for (_, s), n in win.items() if s in SENT_STATUSES),
            "failed": sum(n for (_, s), n in win.items() if s in FAILED_STATUSES),
            "retrying": sum(n for (_, s), n in win.items() if s in RETRY_STATUSES),
            "total": sum(win.values()),
            "by_kind": [{"kind": k, "status": s, "count": n} for (k, s), n in sorted(win.items())],
        },
        "errors_in_window": [{"error_code": int(code), "count": int(n)} for code, n in conn.execute(
            select(m.c.error_code, func.count()).where(m.c.created_at >= scope.since, m.c.error_code.is_not(None),
                                                       m.c.status.notin_(SENT_STATUSES))
            .group_by(m.c.error_code).order_by(func.count().desc()).limit(20))],
    }


# ---------------------------------------------------------------------------------------------- catalog
def catalog_section(scope: ReportScope) -> Section:
    """Sync jobs by status (AS), pending retries (bounded JSON scan), products by ``_wch_sync_status``."""
    a = scope.t.actions
    if not scope.has(a):
        return not_available(f"table {a.name} not found")
    out: Section = {"available": True}
    with scope.engine.connect() as conn:
        jobs = {st: n for h, st, n in hook_status_counts(scope, conn) if h == SYNC_HOOK}
        win = {st: n for (st, h), (n, _l) in finished_by_hook(scope, conn).items() if h == SYNC_HOOK}
        inner = (select(args_json(scope).label("args_json"))
                 .where(a.c.status == Status.PENDING.value, in_groups(scope), a.c.hook == SYNC_HOOK)
                 .order_by(a.c.scheduled_date_gmt.desc()).limit(JSON_SCAN_LIMIT).subquery())
        retry = json_value(scope, inner.c.args_json, "$.retry_count", "$[0].retry_count", "$[0].args.retry_count")
        scanned, retries = conn.execute(
            select(func.count(), func.count(case((cast(retry, Integer) > 0, 1)))).select_from(inner)).one()
        out.update(jobs_by_status=jobs, completed_in_window=win.get(Status.COMPLETE.value, 0),
                   failed_in_window=win.get(Status.FAILED.value, 0), pending=jobs.get(Status.PENDING.value, 0),
                   pending_retries=int(retries or 0), retries_partial=int(scanned) >= JSON_SCAN_LIMIT,
                   scan_limit=JSON_SCAN_LIMIT)
        pm_name = f"{scope.t.prefix}postmeta"
        if pm_name in scope.tables:
            pm = table(pm_name, column("meta_key"), column("meta_value"))
            products = {str(v): int(n) for v, n in conn.execute(
                select(pm.c.meta_value, func.count()).where(pm.c.meta_key == "_wch_sync_status")
                .group_by(pm.c.meta_value).limit(50))}
            out["products"] = {"available": True, "by_status": products,
                               "synced": sum(n for v, n in products.items() if v in ("synced", "success")),
                               "failed": sum(n for v, n in products.items() if v in ("failed", "error")),
                               "pending": sum(n for v, n in products.items() if v in ("pending", "queued"))}
        else:
            out["products"] = not_available(f"table {pm_name} not found")
    return out


# ---------------------------------------------------------------------------------------------- workers
def workers_section(scope: ReportScope, live_seconds: float) -> Section:
    """Live (a heartbeat within ``live_seconds``: :func:`wch_bridge.health.live_worker_seconds`), dead (older,
    never stopped) and stopped workers (``stale_seconds`` in the JSON is ``live_seconds``)."""
    w = scope.t.workers
    if not scope.has(w):
        return not_available(f"table {w.name} not found")
    cutoff = scope.now - timedelta(seconds=live_seconds)
    state = case((w.c.stopped_at.is_not(None), "stopped"), (w.c.heartbeat_at >= cutoff, "live"), else_="dead")
    with scope.engine.connect() as conn:
        counts = {str(s): int(n) for s, n in conn.execute(select(state.label("wstate"), func.count())
                                                           .group_by(literal_column("wstate")))}
        rows = conn.execute(
            select(w.c.worker_id, w.c.host, w.c.pid, w.c.version, w.c.started_at, w.c.heartbeat_at, w.c.stopped_at,
                   w.c.in_hand, state.label("wstate"))
            .order_by(w.c.heartbeat_at.desc()).limit(MAX_WORKERS_LISTED)
        ).all()
    return {
        "available": True, "stale_seconds": live_seconds, "live": counts.get("live", 0),
        "dead": counts.get("dead", 0), "stopped": counts.get("stopped", 0),
        "workers": [{"worker_id": str(r.worker_id), "host": str(r.host), "pid": int(r.pid), "version": str(r.version),
                     "started_gmt": r.started_at, "heartbeat_gmt": r.heartbeat_at,
                     "heartbeat_age": age(scope, r.heartbeat_at), "stopped_gmt": r.stopped_at,
                     "in_hand": int(r.in_hand), "state": str(r.wstate)} for r in rows],
    }


# ---------------------------------------------------------------------------------------------- cleanup
def cleanup_section(scope: ReportScope) -> Section:
    """The recurring cleanup action's next run, and ``wch_cart_cleanup_last_result`` (option, else transient)."""
    a, o = scope.t.actions, scope.t.options
    out: Section = {"available": True, "scheduled": None, "next_gmt": None, "last_run_gmt": None,
                    "runs_in_window": None}
    if scope.has(a):
        with scope.engine.connect() as conn:
            out["next_gmt"] = conn.execute(select(func.min(a.c.scheduled_date_gmt)).where(
                a.c.hook == CLEANUP_HOOK, a.c.status.in_([Status.PENDING.value, Status.RUNNING.value]))).scalar()
            out["scheduled"] = out["next_gmt"] is not None or bool(conn.execute(select(func.count()).where(
                a.c.hook == CLEANUP_HOOK, a.c.status.in_([Status.PENDING.value, Status.RUNNING.value]))).scalar())
            runs = [v for (_st, h), v in finished_by_hook(scope, conn).items() if h == CLEANUP_HOOK]
            out["runs_in_window"] = sum(n for n, _l in runs)
            out["last_run_gmt"] = max((last for _n, last in runs if last is not None), default=None)
    if not scope.has(o):
        out["last_result"] = not_available(f"table {o.name} not found")
        return out
    names = ["wch_cart_cleanup_last_result", "_transient_wch_cart_cleanup_last_result"]
    with scope.engine.connect() as conn:
        found = dict(conn.execute(select(o.c.option_name, o.c.option_value).where(o.c.option_name.in_(names))).all())
    raw = next((found[n] for n in names if found.get(n)), None)
    if raw is None:
        out["last_result"] = not_available("no wch_cart_cleanup_last_result option or transient yet")
        return out
    out["last_result"] = {"available": True, "source": "option" if found.get(names[0]) else "transient",
                          **_cleanup_value(raw)}
    return out


def _cleanup_value(raw: str) -> dict[str, Any]:
    """The stored array as scalars (PHP-serialized as WordPress stores it, or JSON)."""
    value: Any = phpser.maybe_unserialize(raw)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict):
        return {"fields": {}, "unreadable": True}
    fields = {str(k): (v if isinstance(v, int | float) else str(v)[:100]) for k, v in list(value.items())[:12]
              if isinstance(v, int | float | str) and not isinstance(v, bool)}
    return {"fields": fields, "unreadable": False}
