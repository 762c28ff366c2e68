"""``jobs retry``: a failed or canceled action run again as a new pending action, with the two log lines that tie
them together, in one transaction with the source row locked (idempotent: a pending retry is not doubled)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import literal, select
from sqlalchemy.engine import Connection

from wch_bridge import phpser, schedules
from wch_bridge.models import CLI_CONTEXT, Action, Status
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.queue.actions import ActionStore, NewRow

RETRY_OF = "retry of action #{}"
RETRIED_AS = "retried as action #{} via {}"
RETRIED_AS_PREFIX = "retried as action #"


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
