"""Seed data for the status-report tests: actions through the real ``ActionStore`` verbs (insert/take/finish/cancel,
so rows and log lines are exactly what the worker writes), carts, ledger rows, heartbeats, options and post meta
through SQLAlchemy Core. ``EXPECTED`` is what the report must show for it; ``PHONES`` must never appear unmasked.

Also a loader of the PHP-written dump (``tests/fixtures/php/action-scheduler-real.sql``, a copy of ``../shared/fixtures``) for MariaDB (executed as
is) and for SQLite (its INSERT rows parsed and bound as parameters)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import column, insert, table
from sqlalchemy.engine import Engine

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.models import CONTEXT
from wch_bridge.store import ActionStore
from wch_bridge.store import schema as schema_mod
from wch_bridge.store.queue.actions import NewRow

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
PHONE_A = "+15551237890"
PHONE_B = "+447700900123"
PHONES = (PHONE_A, PHONE_B, "15551237890", "447700900123", "+15551230001", "+15551230002")
EVIL_HOOK = f"wch_evil {XSS_SCRIPT}"
EVIL_HOOK2 = f"wch_evil2 {XSS_IMG}"
EVIL_CAMPAIGN = f"camp {XSS_SCRIPT}"
SYNC_ERROR = f"API error {XSS_SCRIPT} for {PHONE_A}"
BATCH_ERROR = f"batch broke {XSS_IMG}"

#: What the report must show for :func:`seed` (``None``: not asserted).
EXPECTED: dict[str, Any] = {
    "hooks": {
        "wch_process_sync_job": {"complete": 3, "failed": 2, "pending": 3, "canceled": 1},
        "wch_send_broadcast_batch": {"complete": 2, "pending": 1, "failed": 1},
        "wch_cleanup_expired_carts": {"pending": 1},
        EVIL_HOOK: {"failed": 1},
        EVIL_HOOK2: {"in-progress": 1},
    },
    "past_due": {"wch_process_sync_job": 1},
    "failed_in_window": 4,
    "completed_in_window": 5,
    "sync_lag": {"samples": 5, "p50": 30.0, "p95": 90.0, "max": 90.0},
    "carts": {"active": 3, "active_idle_over_72h": 1, "abandoned": 2, "expired": 1, "completed": 2,
              "reminders_sent": 2, "carts_reminded": 2, "value_reminded": 125.5, "carts_recovered": 1,
              "value_recovered": 80.0},
    "campaigns": {"camp-1": {"batches_done": 2, "batches_pending": 1, "batches_failed": 0, "sent": 15, "failed": 3,
                             "errors": {"131026": 2, "131049": 1, "130429": 1}},
                  EVIL_CAMPAIGN: {"batches_done": 0, "batches_pending": 0, "batches_failed": 1, "sent": 0,
                                  "failed": 1, "errors": {"100": 1}}},
    "messages": {"sent": 17, "failed": 5},
    "workers": {"live": 1, "dead": 1, "stopped": 1},
    "catalog": {"pending": 3, "pending_retries": 2, "synced": 4, "failed": 1},
}


def _ts(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


def add_action(store: ActionStore, hook: str, args: Any, scheduled: datetime, status: str = "pending", *,
               lag: float = 30.0, run: float = 5.0, message: str = "") -> int:
    """One action in ``status``, written with the store's own verbs (started ``lag`` s after it was due)."""
    enc, ext = argscodec.encode_args(args)
    row = NewRow(hook=hook, scheduled_date_gmt=scheduled, args=enc, extended_args=ext, group="wch",
                 schedule=phpser.serialize_schedule(schedules.SimpleSchedule(_ts(scheduled))))
    aid = store.insert_action(row, now=scheduled - timedelta(minutes=1))
    start = scheduled + timedelta(seconds=lag)
    if status in ("in-progress", "complete", "failed"):
        assert store.take([aid], CONTEXT, now=start) == [aid]
    if status in ("complete", "failed"):
        store.finish([(aid, status == "complete", message)], CONTEXT, now=start + timedelta(seconds=run))
    if status == "canceled":
        store.cancel([aid], now=scheduled)
    return aid


def seed(store: ActionStore, now: datetime) -> None:
    h = timedelta(hours=1)
    sync = "wch_process_sync_job"
    for i in range(3):
        add_action(store, sync, {"job_id": f"ok{i}", "sync_type": "product", "entity_id": i, "retry_count": 0},
                   now - (3 + i) * h, "complete")
    for i in range(2):
        add_action(store, sync, {"job_id": f"bad{i}", "sync_type": "product", "entity_id": 10 + i, "retry_count": 3},
                   now - (2 + i) * h, "failed", lag=90, message=SYNC_ERROR)
    add_action(store, sync, {"job_id": "due", "sync_type": "order", "entity_id": 5, "retry_count": 2},
               now - timedelta(minutes=10))
    add_action(store, sync, {"job_id": "f1", "sync_type": "product", "entity_id": 6, "retry_count": 1}, now + h)
    add_action(store, sync, {"job_id": "f2", "sync_type": "product", "entity_id": 7, "retry_count": 0}, now + 2 * h)
    add_action(store, sync, {"job_id": "c", "sync_type": "product", "entity_id": 8, "retry_count": 0},
               now - 5 * h, "canceled")
    batch = [PHONE_A, PHONE_B] + [f"+1555123{n:04d}" for n in range(1, 9)]
    bc = "wch_send_broadcast_batch"
    for n in range(2):
        add_action(store, bc, {"batch": batch, "batch_num": n, "campaign_id": "camp-1", "message": "Hi"},
                   now - 4 * h + n * timedelta(seconds=1), "complete", lag=2)
    add_action(store, bc, {"batch": batch, "batch_num": 2, "campaign_id": "camp-1", "message": "Hi"}, now + h)
    add_action(store, bc, {"batch": batch, "batch_num": 0, "campaign_id": EVIL_CAMPAIGN, "message": XSS_SCRIPT},
               now - 6 * h, "failed", lag=5, message=BATCH_ERROR)
    add_action(store, "wch_cleanup_expired_carts", [], now + h / 2)
    add_action(store, EVIL_HOOK, {"phone": PHONE_B, "note": XSS_SCRIPT, "x": XSS_IMG}, now - 2 * h, "failed",
               message=f"{XSS_IMG} {PHONE_B}")
    add_action(store, EVIL_HOOK2, [XSS_IMG, PHONE_A], now - timedelta(minutes=3), "in-progress", lag=1)
    _seed_tables(store, now)


def _seed_tables(store: ActionStore, now: datetime) -> None:
    t = store.t
    local = store.site.local
    h = timedelta(hours=1)
    carts = [  # status, total, updated_at, reminder_sent_at, recovered, recovered_revenue, recovered_at
        ("active", "10.00", now - h, None, 0, None, None),
        ("active", "20.00", now - 2 * h, None, 0, None, None),
        ("active", "30.00", now - 80 * h, None, 0, None, None),
        ("abandoned", "50.00", now - 30 * h, now - h, 0, None, None),
        ("abandoned", "60.00", now - 50 * h, now - 40 * h, 0, None, None),
        ("converted", "75.50", now - 2 * h, now - 5 * h, 1, "80.00", now - 2 * h),
        ("converted", "99.00", now - 3 * h, None, 0, None, None),
        ("expired", "5.00", now - 100 * h, None, 0, None, None),
    ]
    c = table(t.carts.name, *[column(n) for n in (
        "customer_phone", "items", "total", "status", "reminder_sent_at", "recovered", "recovered_revenue",
        "recovered_at", "expires_at", "created_at", "updated_at")])

    def d(x: datetime | None) -> str | None:
        return None if x is None else local(x).strftime("%Y-%m-%d %H:%M:%S")

    rows = [{"customer_phone": f"+1555123{i:04d}", "items": "[]", "total": tot, "status": st,
             "reminder_sent_at": d(rem), "recovered": rec, "recovered_revenue": rev, "recovered_at": d(rat),
             "expires_at": d(upd + 72 * h), "created_at": d(upd - h), "updated_at": d(upd)}
            for i, (st, tot, upd, rem, rec, rev, rat) in enumerate(carts, start=1)]
    msgs: list[dict[str, Any]] = []

    def msg(key: str, camp: str | None, status: str, code: int | None, at: datetime, hook: str, kind: str) -> None:
        msgs.append({"idempotency_key": key, "action_id": 0, "hook": hook, "campaign_id": camp,
                     "recipient": PHONE_A, "kind": kind, "status": status, "error_code": code,
                     "error_text": None if code is None else f"error {code} for {PHONE_A} {XSS_SCRIPT}",
                     "attempts": 1, "created_at": at, "updated_at": at, "sent_at": at if status == "sent" else None})

    bh = "wch_send_broadcast_batch"
    for i in range(15):
        msg(f"b:camp-1:{i}", "camp-1", "sent", None, now - 4 * h, bh, "template")
    for i, code in enumerate((131026, 131026, 131049)):
        msg(f"b:camp-1:f{i}", "camp-1", "failed", code, now - 4 * h, bh, "template")
    msg("b:camp-1:r", "camp-1", "retry", 130429, now - 4 * h, bh, "template")
    msg("b:evil:0", EVIL_CAMPAIGN, "failed", 100, now - 6 * h, bh, "template")
    for i in range(2):
        msg(f"cart:{i}", None, "sent", None, now - h, "wch_process_abandoned_cart", "text")
    msg("order:1", None, "failed", 190, now - timedelta(minutes=10), "wch_process_sync_job", "text")
    w = t.workers
    beat = [("w-live", now - timedelta(seconds=5), None), ("w-dead", now - 2 * h, None),
            ("w-stopped", now - 3 * h, now - 3 * h)]
    workers = [{"worker_id": wid, "host": f"host-{wid} {PHONE_A}", "pid": 100 + i, "version": "0.1.0",
                "started_at": now - 5 * h, "heartbeat_at": hb, "stopped_at": st, "in_hand": i, "in_hand_ids": ""}
               for i, (wid, hb, st) in enumerate(beat)]
    pm = table(f"{t.prefix}postmeta", column("post_id"), column("meta_key"), column("meta_value"))
    meta = [{"post_id": i, "meta_key": "_wch_sync_status", "meta_value": v}
            for i, v in enumerate(["synced"] * 4 + ["error"], start=1)]
    cleanup = phpser.php_serialize({"deleted_count": 4, "expiry_date": "2026-11-26 00:00:00",
                                    "timestamp": f"2026-11-29 00:00:00 {XSS_SCRIPT}"})
    with store.engine.begin() as conn:
        conn.execute(insert(c), rows)
        conn.execute(insert(t.messages), msgs)
        conn.execute(insert(w), workers)
        conn.execute(insert(pm), meta)
        conn.execute(insert(t.options).values(option_name="wch_cart_cleanup_last_result", option_value=cleanup,
                                              autoload="no"))


# ---------------------------------------------------------------------------------------------- PHP dump
_INSERT = re.compile(r"^INSERT INTO `(\w+)` \(([^)]*)\) VALUES \((.*)\);$")
_TOKEN = re.compile(r"'((?:[^'\\]|\\.)*)'|(NULL)|(-?\d+(?:\.\d+)?)")
_ESC = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a", "b": "\b"}


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESC.get(m.group(1), m.group(1)), text)


def load_php_dump(engine: Engine, prefix: str, dump: Path) -> None:
    """The mysqldump under ``prefix``: executed as is on MySQL; on SQLite the AS tables are created from sql/ and
    each INSERT's values are parsed and bound."""
    sql = dump.read_text(encoding="utf-8").replace("`wp_", f"`{prefix}")
    if engine.dialect.name != "sqlite":
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            for stmt in re.split(r";\n", sql):
                body = "\n".join(line for line in stmt.splitlines() if not line.startswith("--")).strip()
                if body:
                    cur.execute(body)
            raw.commit()
        finally:
            raw.close()
        return
    schema_mod.install(engine, prefix, parts=("actionscheduler",))
    with engine.begin() as conn:
        for line in sql.splitlines():
            m = _INSERT.match(line)
            if not m:
                continue
            cols = [c.strip().strip("`") for c in m.group(2).split(",")]
            values: list[Any] = []
            for tok in _TOKEN.finditer(m.group(3)):
                s, null, num = tok.groups()
                values.append(None if null else (_unescape(s) if s is not None else (float(num) if "." in num
                                                                                     else int(num))))
            assert len(values) == len(cols), line[:120]
            conn.execute(insert(table(m.group(1), *[column(c) for c in cols])).values(dict(zip(cols, values,
                                                                                               strict=True))))
