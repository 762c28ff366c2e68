"""Read/aggregate queries and guarded bulk writes for the operator commands (``wch-bridge status`` / ``jobs``).

Functions over an :class:`~wch_bridge.store.queue.actions.ActionStore` (its engine, tables and clock); SQLAlchemy Core
only, every value bound. Aggregates are computed in SQL; long selections are walked with keyset paging on
``action_id``; bulk writes run in short transactions (one per retried action, one per batch of 500 ids for
purge) so a large queue never holds locks for long and a failure leaves nothing half-done."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, inspect, literal, or_, select
from sqlalchemy.engine import Connection

from wch_bridge import hooks, phpser, schedules
from wch_bridge.errors import SchemaError, StoreError
from wch_bridge.health import HealthFacts, WorkerBeat, live_worker_seconds
from wch_bridge.models import CLI_CONTEXT, Action, Status
from wch_bridge.settings import Settings
from wch_bridge.store.engine import missing_table_message, retry_transient, translate_errors
from wch_bridge.store.queue.actions import ActionStore, NewRow
from wch_bridge.store.reports.health_facts import read_health_facts

ZERO_DATE = "0000-00-00 00:00:00"
#: Rows per purge transaction / per keyset page of the bulk commands.
BATCH = 500
CLEANUP_HOOK = hooks.CART_CLEANUP

RETRY_OF = "retry of action #{}"
RETRIED_AS = "retried as action #{} via {}"
RETRIED_AS_PREFIX = "retried as action #"
#: Log messages that carry an action's error (AS 3.8 English source strings, section 4 of the reference).
ERROR_PREFIXES = ("action failed", "action marked as failed", "unexpected shutdown", "There was a failure")
AS_TABLES = ("actionscheduler_actions", "actionscheduler_groups", "actionscheduler_logs")


# ---------------------------------------------------------------------------------------------- basics
@translate_errors
def require_tables(store: ActionStore) -> None:
    """SchemaError naming the first missing Action Scheduler table (wrong prefix, WooCommerce not active...)."""
    have = set(inspect(store.engine).get_table_names())
    for suffix in AS_TABLES:
        name = f"{store.prefix}{suffix}"
        if name not in have:
            raise SchemaError(missing_table_message(name, store.engine, store.prefix))


@translate_errors
def served_group_ids(store: ActionStore, slugs: Sequence[str]) -> dict[int, str]:
    """Every group row whose slug is served (AS has no unique index on slug: duplicates count too)."""
    g = store.t.groups
    with store.engine.connect() as conn:
        rows = conn.execute(select(g.c.group_id, g.c.slug).where(g.c.slug.in_(list(slugs))))
        return {int(gid): str(slug) for gid, slug in rows}


def database_info(store: ActionStore) -> dict[str, Any]:
    """Where we are looking: dialect, server version, host, database, prefix (never the password)."""
    url = store.engine.url
    host = url.host or ""
    if url.port:
        host = f"{host}:{url.port}"
    return {
        "dialect": store.info.dialect,
        "server": store.info.version,
        "host": host or None,
        "database": url.database,
        "prefix": store.prefix,
    }


def _activity_since(store: ActionStore, since: datetime) -> Any:
    """Scheduled or last attempted at or after ``since`` (two indexed columns, OR-ed)."""
    a = store.t.actions
    return or_(a.c.scheduled_date_gmt >= since, a.c.last_attempt_gmt >= since)


@dataclass(frozen=True)
class Narrow:
    """The finer filters of ``jobs list``: args text, a scheduled-date window, in-progress for too long."""

    args_contains: str | None = None  # in ``args`` or ``extended_args`` (LIKE, wildcards escaped)
    scheduled_after: datetime | None = None  # scheduled_date_gmt >= this
    scheduled_before: datetime | None = None  # scheduled_date_gmt < this
    started_before: datetime | None = None  # in-progress with last_attempt_gmt (start / last touch) <= this


def _narrow(store: ActionStore, n: Narrow) -> list[Any]:
    a = store.t.actions
    cond: list[Any] = []
    if n.args_contains:
        text = n.args_contains
        cond.append(or_(a.c.args.contains(text, autoescape=True), a.c.extended_args.contains(text, autoescape=True)))
    if n.scheduled_after is not None:
        cond.append(a.c.scheduled_date_gmt >= n.scheduled_after)
    if n.scheduled_before is not None:
        cond.append(a.c.scheduled_date_gmt < n.scheduled_before)
    if n.started_before is not None:
        cond += [a.c.status == Status.RUNNING.value, a.c.last_attempt_gmt <= n.started_before]
    return cond


def _filters(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str] | None = None, hook: str | None = None,
    since: datetime | None = None, narrow: Narrow | None = None,
) -> list[Any]:
    a = store.t.actions
    cond: list[Any] = [a.c.group_id.in_(list(gids))]
    if statuses:
        cond.append(a.c.status.in_(list(statuses)))
    if hook:
        cond.append(a.c.hook == hook)
    if since is not None:
        cond.append(_activity_since(store, since))
    if narrow is not None:
        cond += _narrow(store, narrow)
    return cond


# ---------------------------------------------------------------------------------------------- status
@dataclass
class StatusSnapshot:
    """Everything ``wch-bridge status`` shows, for the served groups: the health facts (read once, judged by
    ``wch_bridge.health``) plus the counts by hook and status and the newest completion."""

    facts: HealthFacts
    groups: dict[int, str]
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # hook -> status -> n
    newest_completion: datetime | None = None

    @property
    def now(self) -> datetime:
        return self.facts.now

    @property
    def past_due(self) -> int:
        return self.facts.past_due

    @property
    def oldest_past_due(self) -> datetime | None:
        return self.facts.oldest_past_due

    @property
    def failed_24h(self) -> int:
        return self.facts.failed_24h

    @property
    def cleanup_pending(self) -> datetime | None:
        return self.facts.cleanup_next

    @property
    def cleanup_pending_group(self) -> str | None:
        return self.facts.cleanup_group

    @property
    def workers(self) -> list[WorkerBeat] | None:
        """Workers that have not recorded a stop (None: no heartbeat table)."""
        return None if self.facts.workers is None else [w for w in self.facts.workers if w.stopped_at is None]

    @property
    def unowned(self) -> list[dict[str, Any]]:
        return list(self.facts.unowned)

    @property
    def in_doubt(self) -> dict[str, Any] | None:
        return self.facts.in_doubt


@translate_errors
def status_snapshot(store: ActionStore, group_slugs: Sequence[str], now: datetime,
                    live_seconds: float | None = None) -> StatusSnapshot:
    """``live_seconds``: :func:`wch_bridge.health.live_worker_seconds` of the caller's settings (default settings
    when None)."""
    a = store.t.actions
    limit = live_worker_seconds(Settings()) if live_seconds is None else live_seconds
    snap = StatusSnapshot(facts=read_health_facts(store, group_slugs, now, limit),
                          groups=served_group_ids(store, group_slugs))
    ids = list(snap.groups)
    if ids:
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(a.c.hook, a.c.status, func.count()).where(a.c.group_id.in_(ids)).group_by(a.c.hook, a.c.status)
            )
            for hook, status, n in rows:
                snap.counts.setdefault(str(hook), {})[str(status)] = int(n)
            snap.newest_completion = conn.execute(
                select(func.max(a.c.last_attempt_gmt)).where(a.c.group_id.in_(ids), a.c.status == Status.COMPLETE.value)
            ).scalar()
    return snap


# ---------------------------------------------------------------------------------------------- list / show
@translate_errors
def list_actions(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str] | None = None, hook: str | None = None,
    since: datetime | None = None, limit: int = 50, offset: int = 0, narrow: Narrow | None = None,
) -> tuple[list[Action], bool]:
    """One page, newest first (``action_id`` descending). Returns the page and whether more rows follow."""
    ids = list(gids)
    if not ids:
        return [], False
    a, g = store.t.actions, store.t.groups
    q = (
        select(a, func.coalesce(g.c.slug, "").label("group_slug"))
        .select_from(a.outerjoin(g, a.c.group_id == g.c.group_id))
        .where(*_filters(store, ids, statuses=statuses, hook=hook, since=since, narrow=narrow))
        .order_by(a.c.action_id.desc())
        .limit(limit + 1)
        .offset(offset)
    )
    with store.engine.connect() as conn:
        rows = [store._row_to_action(r) for r in conn.execute(q)]  # noqa: SLF001 - same package
    return rows[:limit], len(rows) > limit


@translate_errors
def last_errors(store: ActionStore, action_ids: Sequence[int]) -> dict[int, str]:
    """The newest error-carrying log message of each action (bounded by the page it is called for)."""
    if not action_ids:
        return {}
    lg = store.t.logs
    like = or_(*[lg.c.message.like(f"{p}%") for p in ERROR_PREFIXES])
    q = (
        select(lg.c.action_id, lg.c.message)
        .where(lg.c.action_id.in_(list(action_ids)), like)
        .order_by(lg.c.log_id)
    )
    out: dict[int, str] = {}
    with store.engine.connect() as conn:
        for aid, msg in conn.execute(q):
            out[int(aid)] = str(msg)
    return out


# ---------------------------------------------------------------------------------------------- retry
@dataclass(frozen=True)
class RetryResult:
    source_id: int
    new_id: int | None = None  # set when a retry was scheduled (or, with dry_run, None and would=True)
    skipped: str | None = None  # why nothing was done
    existing_id: int | None = None  # the pending retry / earlier retry that made us skip
    would: bool = False  # dry run: a retry would be scheduled


def pending_retry_of(store: ActionStore, conn: Connection, source: Action) -> int | None:
    """A pending/in-progress action of the same hook whose log says ``retry of action #M`` (M = source)."""
    a, lg = store.t.actions, store.t.logs
    q = (
        select(a.c.action_id)
        .select_from(a.join(lg, lg.c.action_id == a.c.action_id))
        .where(
            a.c.hook == source.hook,
            a.c.status.in_([Status.PENDING.value, Status.RUNNING.value]),
            lg.c.message == RETRY_OF.format(source.action_id),
        )
        .order_by(a.c.action_id)
        .limit(1)
    )
    found = conn.execute(q).scalar()
    return int(found) if found is not None else None


def earlier_retry(store: ActionStore, conn: Connection, source_id: int) -> int | None:
    """The id from the newest ``retried as action #N`` line on the source (it was retried before), if any."""
    lg = store.t.logs
    q = (
        select(lg.c.message)
        .where(lg.c.action_id == source_id, lg.c.message.like(f"{RETRIED_AS_PREFIX}%"))
        .order_by(lg.c.log_id.desc())
        .limit(1)
    )
    msg = conn.execute(q).scalar()
    if msg is None:
        return None
    digits = str(msg)[len(RETRIED_AS_PREFIX):].split(" ", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _read_action(store: ActionStore, conn: Connection, action_id: int, *, lock: bool) -> Action | None:
    a = store.t.actions
    # No join with the groups table: a locking read would lock the group row too.
    sel = select(a, literal("").label("group_slug")).where(a.c.action_id == action_id)
    if lock and store.info.dialect == "mysql":
        sel = sel.with_for_update()
    row = conn.execute(sel).first()
    return store._row_to_action(row) if row else None  # noqa: SLF001 - same package


@retry_transient
@translate_errors
def retry_action(
    store: ActionStore, action_id: int, *, force: bool = False, skip_retried: bool = False,
    dry_run: bool = False, now: datetime | None = None, context: str = CLI_CONTEXT,
) -> RetryResult:
    """Schedule a new pending action with the source's hook, args (columns copied as they are), group and
    priority, due now (SimpleSchedule), and log ``retry of action #M`` on it and ``retried as action #N via
    <context>`` on the source: all in one transaction, the source row locked so two retries cannot race.

    Skipped (nothing written) when the source is not failed/canceled, when a pending/in-progress retry of it
    exists, or with ``skip_retried`` when it was retried before (bulk mode: retry the newest of a chain only);
    ``force`` disables the last two checks."""
    now = now or store.now()
    store.site  # noqa: B018 - time zone loaded before the transaction (SQLite allows one writer)
    ctx = store.engine.connect() if dry_run else store.engine.begin()
    with ctx as conn:
        src = _read_action(store, conn, action_id, lock=not dry_run)
        if src is None:
            return RetryResult(action_id, skipped="not found")
        if src.status not in (Status.FAILED.value, Status.CANCELED.value):
            return RetryResult(action_id, skipped=f"status is {src.status}")
        if not force:
            existing = pending_retry_of(store, conn, src)
            if existing is not None:
                return RetryResult(action_id, skipped="already has a pending retry", existing_id=existing)
            if skip_retried:
                earlier = earlier_retry(store, conn, action_id)
                if earlier is not None:
                    return RetryResult(action_id, skipped="was retried before", existing_id=earlier or None)
        if dry_run:
            return RetryResult(action_id, would=True)
        ts = int(now.replace(tzinfo=UTC).timestamp())
        row = NewRow(
            hook=src.hook,
            scheduled_date_gmt=now,
            schedule=phpser.serialize_schedule(schedules.SimpleSchedule(ts)),
            args=src.args if src.args is not None else "[]",
            extended_args=src.extended_args,
            priority=src.priority,
        )
        new_id = store.insert_action_in(conn, row, now=now, group_id=src.group_id)
        _insert_logs(store, conn, [(new_id, RETRY_OF.format(action_id)),
                                   (action_id, RETRIED_AS.format(new_id, context))], now)
    return RetryResult(action_id, new_id=new_id)


def _insert_logs(store: ActionStore, conn: Connection, items: Sequence[tuple[int, str]], now: datetime) -> None:
    local = store.site.as_local(now)
    conn.execute(
        store.t.logs.insert(),
        [{"action_id": aid, "message": msg, "log_date_gmt": now, "log_date_local": local} for aid, msg in items],
    )


# ---------------------------------------------------------------------------------------------- bulk selection
@translate_errors
def count_actions(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str], hook: str | None = None,
    since: datetime | None = None,
) -> int:
    ids = list(gids)
    if not ids:
        return 0
    with store.engine.connect() as conn:
        q = select(func.count()).select_from(store.t.actions).where(
            *_filters(store, ids, statuses=statuses, hook=hook, since=since)
        )
        return int(conn.execute(q).scalar_one())


@translate_errors
def due_pending_by_hook(store: ActionStore, gids: Iterable[int], hooks: Sequence[str], now: datetime) -> dict[str, int]:
    """Pending actions of ``hooks`` in the groups ``gids`` that are due at ``now``, counted per hook."""
    ids, names = list(gids), list(hooks)
    if not ids or not names:
        return {}
    a = store.t.actions
    q = (
        select(a.c.hook, func.count())
        .where(a.c.group_id.in_(ids), a.c.status == Status.PENDING.value, a.c.hook.in_(names),
               a.c.scheduled_date_gmt <= now)
        .group_by(a.c.hook)
    )
    with store.engine.connect() as conn:
        return {str(h): int(n) for h, n in conn.execute(q)}


@translate_errors
def action_ids_page(
    store: ActionStore, gids: Iterable[int], *, statuses: Sequence[str], hook: str | None = None,
    since: datetime | None = None, after_id: int = 0, limit: int = BATCH,
) -> list[int]:
    """The next ``limit`` matching ids above ``after_id``, ascending (keyset paging: one pass in total)."""
    ids = list(gids)
    if not ids:
        return []
    a = store.t.actions
    q = (
        select(a.c.action_id)
        .where(*_filters(store, ids, statuses=statuses, hook=hook, since=since), a.c.action_id > after_id)
        .order_by(a.c.action_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [int(r[0]) for r in conn.execute(q)]


# ---------------------------------------------------------------------------------------------- purge
PURGEABLE = (Status.COMPLETE.value, Status.CANCELED.value, Status.FAILED.value)


def _older_than(store: ActionStore, cutoff: datetime) -> Any:
    """Last run at or before ``cutoff`` (AS's cleaner: ``last_attempt_gmt``); an action that never ran (zero or
    NULL ``last_attempt_gmt``, e.g. canceled while pending) is measured on ``scheduled_date_gmt`` instead."""
    a = store.t.actions
    ran = a.c.last_attempt_gmt > ZERO_DATE
    never_ran = or_(a.c.last_attempt_gmt.is_(None), a.c.last_attempt_gmt <= ZERO_DATE)
    return or_(and_(ran, a.c.last_attempt_gmt <= cutoff), and_(never_ran, a.c.scheduled_date_gmt <= cutoff))


def _purge_where(store: ActionStore, gids: Sequence[int], status: str, cutoff: datetime,
                 hook: str | None = None) -> list[Any]:
    if status not in PURGEABLE:
        raise ValueError(f"purge never touches {status!r} actions")
    a = store.t.actions
    where = [a.c.group_id.in_(list(gids)), a.c.status == status, _older_than(store, cutoff)]
    return [*where, a.c.hook == hook] if hook else where


@translate_errors
def count_purgeable(store: ActionStore, gids: Iterable[int], status: str, cutoff: datetime,
                    hook: str | None = None) -> int:
    ids = list(gids)
    if not ids:
        return 0
    with store.engine.connect() as conn:
        q = select(func.count()).select_from(store.t.actions).where(*_purge_where(store, ids, status, cutoff, hook))
        return int(conn.execute(q).scalar_one())


@dataclass(frozen=True)
class PurgeBatch:
    actions: int  # action rows deleted
    logs: int  # log rows deleted
    last_id: int  # keyset position for the next batch (0: nothing was left)


@retry_transient
@translate_errors
def purge_batch(
    store: ActionStore, gids: Sequence[int], status: str, cutoff: datetime, *, after_id: int = 0,
    limit: int = BATCH, hook: str | None = None,
) -> PurgeBatch:
    """Delete up to ``limit`` matching actions above ``after_id`` and their log rows, in one short transaction.

    The DELETE is guarded on the status again (only complete/canceled/failed rows are ever deleted)."""
    ids_served = list(gids)
    if not ids_served:
        return PurgeBatch(0, 0, 0)
    a, lg = store.t.actions, store.t.logs
    where = _purge_where(store, ids_served, status, cutoff, hook)
    with store.engine.begin() as conn:
        # a plain read (no lock); the DELETE names the rows by primary key and checks the status again
        sel = select(a.c.action_id).where(*where, a.c.action_id > after_id).order_by(a.c.action_id).limit(limit)
        ids = [int(r[0]) for r in conn.execute(sel)]
        if not ids:
            return PurgeBatch(0, 0, 0)
        gone = conn.exec_driver_sql(store.sql.purge(len(ids)), (*ids, status)).rowcount
        if gone != len(ids):  # someone changed a row meanwhile: never leave logs without their action
            raise StoreError(f"purge: {gone} of {len(ids)} rows deleted (some changed meanwhile); batch rolled back, "
                             "run the command again")
        logs = conn.execute(delete(lg).where(lg.c.action_id.in_(ids))).rowcount
    return PurgeBatch(int(gone), int(logs), max(ids))
