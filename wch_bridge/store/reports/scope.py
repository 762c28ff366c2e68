"""What every section of the status report shares: :class:`ReportScope` (engine, tables, served groups, "now",
the window), the limits, and the aggregates more than one section reads (computed once per report).

:mod:`wch_bridge.store.reports` (queue, failures, and :func:`~wch_bridge.store.reports.collect`) and
:mod:`wch_bridge.store.reports.campaigns` (carts, campaigns, catalog, workers, cleanup) both build on it; neither
imports the other's internals."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, case, cast, func, inspect, literal_column, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from wch_bridge import hooks as hook_table
from wch_bridge.errors import WchBridgeError
from wch_bridge.models import Status
from wch_bridge.store.ledger import IN_DOUBT
from wch_bridge.store.reports.buckets import fit_buckets
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import SiteTime, parse_db_date

#: ``--window`` choices -> seconds (the throughput chart's intervals are fitted to the data: ``buckets``).
WINDOWS: dict[str, int] = {"24h": 86400, "7d": 7 * 86400}
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
EPOCH = datetime(1970, 1, 2)
FINISHED = (Status.COMPLETE.value, Status.FAILED.value)

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
    site: SiteTime
    #: Aggregates more than one section needs, computed once per report (see :func:`memo`).
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def since(self) -> datetime:
        return self.now - timedelta(seconds=self.window_seconds)

    def has(self, table_obj: Any) -> bool:
        return str(table_obj.name) in self.tables

    def columns(self, name: str) -> set[str]:
        return {c["name"] for c in inspect(self.engine).get_columns(name)}


def open_scope(
    engine: Engine, t: Tables, groups: Sequence[str], now: datetime, window: str = "24h", site: SiteTime | None = None
) -> ReportScope:
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    seconds = WINDOWS[window]
    names = frozenset(n for n in inspect(engine).get_table_names() if n.startswith(t.prefix))
    gids: tuple[int, ...] = ()
    if t.groups.name in names and groups:
        with engine.connect() as conn:
            rows = conn.execute(select(t.groups.c.group_id).where(t.groups.c.slug.in_(list(groups))))
            gids = tuple(sorted(int(r[0]) for r in rows))
    dialect = "sqlite" if engine.dialect.name == "sqlite" else "mysql"
    return ReportScope(engine, t, dialect, names, tuple(groups), gids, now, window, seconds,
                       site or SiteTime.utc())


def safe(fn: Callable[[ReportScope], Section], scope: ReportScope) -> Section:
    """Run one section; a database error becomes "not available" with the reason (the report still renders)."""
    try:
        return fn(scope)
    except (SQLAlchemyError, WchBridgeError) as exc:
        detail = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return not_available(f"query failed: {detail}")

# ---------------------------------------------------------------------------------------------- helpers
def in_groups(scope: ReportScope) -> Any:
    return scope.t.actions.c.group_id.in_(list(scope.group_ids))


def args_json(scope: ReportScope) -> Any:
    a = scope.t.actions
    return func.coalesce(func.nullif(a.c.extended_args, ""), a.c.args)


def json_value(scope: ReportScope, expr: Any, *paths: str) -> Any:
    """The first of ``paths`` present in the JSON ``expr`` as text (NULL for invalid JSON or no match)."""
    if scope.dialect == "sqlite":
        vals = [func.json_extract(expr, p) for p in paths]
    else:
        vals = [func.json_unquote(func.json_extract(expr, p)) for p in paths]
    return case((func.json_valid(expr) == 1, func.coalesce(*vals) if len(vals) > 1 else vals[0]), else_=None)


def bucket_expr(scope: ReportScope, col: Any, start: datetime, step: int) -> Any:
    """The index of the ``step``-second interval from ``start`` that ``col`` falls in."""
    origin = start.strftime("%Y-%m-%d %H:%M:%S")
    if scope.dialect == "sqlite":
        diff = cast(func.strftime("%s", col) - func.strftime("%s", origin), Integer)
    else:
        diff = func.timestampdiff(literal_column("SECOND"), origin, col, type_=Integer)
    return diff // step


def percentile(sorted_values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def age(scope: ReportScope, when: datetime | None) -> int | None:
    return None if when is None else max(0, int((scope.now - when).total_seconds()))

def num(value: Any) -> float:
    try:
        return round(float(value or 0), 2)
    except (TypeError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------------------------- shared aggregates
def memo(scope: ReportScope, key: str, compute: Callable[[], Any]) -> Any:
    if key not in scope.cache:
        scope.cache[key] = compute()
    return scope.cache[key]


def finished(scope: ReportScope, conn: Any) -> list[tuple[str, str, int, int, datetime | None]]:
    """(status, hook, interval, count, latest last_attempt_gmt) of complete/failed actions in the window, the
    intervals those of :func:`throughput_fit`: from these rows the throughput chart, the window counts, the failure
    total and the cleanup runs are all derived. A range on AS's own ``last_attempt_gmt`` index."""
    a = scope.t.actions

    def compute() -> list[tuple[str, str, int, int, datetime | None]]:
        start, step, _count, _first = throughput_fit(scope, conn)
        bucket = bucket_expr(scope, a.c.last_attempt_gmt, start, step).label("bucket")
        q = (select(a.c.status, a.c.hook, bucket, func.count(), func.max(a.c.last_attempt_gmt))
             .where(*_finished_in_window(scope)).group_by(a.c.status, a.c.hook, bucket).limit(MAX_HOOKS * 2 * 64))
        return [(str(st), str(h), int(b or 0), int(n), last) for st, h, b, n, last in conn.execute(q)]

    return memo(scope, "finished", compute)


def _finished_in_window(scope: ReportScope) -> tuple[Any, ...]:
    a = scope.t.actions
    return (a.c.status.in_(FINISHED), a.c.last_attempt_gmt >= scope.since, a.c.last_attempt_gmt <= scope.now,
            in_groups(scope))


def throughput_fit(scope: ReportScope, conn: Any) -> tuple[datetime, int, int, datetime | None]:
    """(first interval's start, step seconds, intervals, first finished action) of the throughput chart
    (:func:`wch_bridge.store.reports.buckets.fit_buckets` on the window's first finished action)."""

    def compute() -> tuple[datetime, int, int, datetime | None]:
        col = scope.t.actions.c.last_attempt_gmt
        # the earliest row in the order of AS's last_attempt_gmt index (MIN() was planned as a full scan)
        first = conn.execute(select(col).where(*_finished_in_window(scope)).order_by(col).limit(1)).scalar()
        first = parse_db_date(first) if first is not None else None
        return (*fit_buckets(scope.since, scope.now, first), first)

    return memo(scope, "throughput_fit", compute)


def finished_by_hook(scope: ReportScope, conn: Any) -> dict[tuple[str, str], tuple[int, datetime | None]]:
    """(status, hook) -> (count, latest last_attempt_gmt) in the window."""
    out: dict[tuple[str, str], tuple[int, datetime | None]] = {}
    for st, h, _b, n, last in finished(scope, conn):
        prev_n, prev_last = out.get((st, h), (0, None))
        out[(st, h)] = (prev_n + n, max(filter(None, [prev_last, last]), default=None))
    return out


def hook_status_counts(scope: ReportScope, conn: Any) -> list[tuple[str, str, int]]:
    """(hook, status, count) over the served groups: one ``status = ?`` query per AS status (a range on AS's own
    ``status_scheduled_date_gmt`` index), plus one for any other status string."""
    return memo(scope, "hook_status", lambda: _hook_status_query(scope, conn))


def _hook_status_query(scope: ReportScope, conn: Any) -> list[tuple[str, str, int]]:
    a = scope.t.actions
    known = [st.value for st in Status]
    out: list[tuple[str, str, int]] = []
    extra: list[Any] = []
    for status in known:
        q = select(a.c.hook, func.count()).where(a.c.status == status, in_groups(scope), *extra).group_by(a.c.hook)
        out += [(str(h), status, int(n)) for h, n in conn.execute(q.limit(MAX_HOOKS))]
    q = (select(a.c.hook, a.c.status, func.count()).where(a.c.status.notin_(known), in_groups(scope), *extra)
         .group_by(a.c.status, a.c.hook).limit(MAX_HOOKS))
    out += [(str(h), str(st), int(n)) for h, st, n in conn.execute(q)]
    return out
