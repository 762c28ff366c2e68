"""Fast multi-row seeding of Action Scheduler rows (benchmarks, load tests, the index-plan test). Never used by
the worker.

Two paths:

* ``insert_actions``: any server (MariaDB/MySQL/SQLite). Rows built in Python and sent with ``executemany`` in
  chunks (PyMySQL turns each chunk into one multi-row ``INSERT ... VALUES``).
* ``seed_due_sequence`` / ``seed_history``: MariaDB only. ``INSERT ... SELECT`` from the SEQUENCE engine's
  ``seq_1_to_N`` tables: the rows are generated inside the server (about 1,000,000 rows in well under a
  minute here). ``has_sequence_engine`` says whether it is available.

Rows are shaped as ``ActionScheduler_DBStore::save_action`` writes them (pending, ``claim_id`` 0, ``attempts`` 0,
default zero dates for ``last_attempt_*``). Table names come from ``Tables`` (validated prefix) only."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, or_, select, text

from wch_bridge import hooks as hook_table
from wch_bridge.models import Status
from wch_bridge.store.engine import translate_errors
from wch_bridge.store.queue.actions import ActionStore, NewRow
from wch_bridge.timeutil import fmt

#: Upper bound of one ``seq_1_to_N`` chunk (one INSERT ... SELECT statement / transaction).
SEQ_CHUNK = 200_000


@dataclass(frozen=True)
class Seeded:
    first_id: int
    last_id: int
    count: int


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@translate_errors
def insert_actions(
    store: ActionStore, rows: Iterable[NewRow], *, now: datetime | None = None, created_log: bool = False,
    chunk: int = 2000,
) -> Seeded:
    """Insert pending actions with multi-row INSERTs (plus AS's ``action created`` log rows when asked).

    Unlike ``ActionStore.insert_action`` (one action, one transaction, its id back) this returns only the id range;
    ids are consecutive per chunk on InnoDB (``innodb_autoinc_lock_mode`` 1 or 2 with a single writer)."""
    now = now or store.now()
    a, lg = store.t.actions, store.t.logs
    site = store.site
    group_ids: dict[str, int] = {}
    first = last = 0
    total = 0

    def shaped(row: NewRow) -> dict[str, Any]:
        if row.group not in group_ids:
            group_ids[row.group] = store.group_ids([row.group], create=True)[row.group]
        sched = row.scheduled_date_gmt or now
        values: dict[str, Any] = {
            "hook": row.hook,
            "status": Status.PENDING.value,
            "scheduled_date_gmt": sched,
            "scheduled_date_local": sched if row.scheduled_date_gmt is None else site.as_local(sched),
            "schedule": row.schedule,
            "group_id": group_ids[row.group],
            "args": row.args,
            "extended_args": row.extended_args,
            "attempts": 0,
            "claim_id": 0,
            "last_attempt_gmt": None,
            "last_attempt_local": None,
        }
        if store.t.has_priority:
            values["priority"] = max(0, min(255, int(row.priority)))
        return values

    for part in _chunks((shaped(r) for r in rows), chunk):
        with store.engine.begin() as conn:
            before = conn.execute(select(func.max(a.c.action_id))).scalar() or 0
            conn.execute(insert(a), part)
            ids = [int(r[0]) for r in conn.execute(
                select(a.c.action_id).where(a.c.action_id > before).order_by(a.c.action_id).limit(len(part))
            )]
            if created_log and ids:
                local = site.as_local(now)
                conn.execute(insert(lg), [
                    {"action_id": i, "message": "action created", "log_date_gmt": now, "log_date_local": local}
                    for i in ids
                ])
        if ids:
            first = first or ids[0]
            last = ids[-1]
        total += len(part)
    return Seeded(first, last, total)


@translate_errors
def has_sequence_engine(store: ActionStore) -> bool:
    """MariaDB's SEQUENCE engine (``seq_1_to_N`` virtual tables) is available."""
    if store.info.dialect != "mysql" or not store.info.is_mariadb:
        return False
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT SUPPORT FROM information_schema.ENGINES WHERE ENGINE = 'SEQUENCE'")).all()
    return bool(rows) and str(rows[0][0]).upper() in ("YES", "DEFAULT")


def _seq_parts(n: int) -> Iterator[tuple[int, int]]:
    """(offset, size) chunks of at most SEQ_CHUNK covering 1..n."""
    done = 0
    while done < n:
        size = min(SEQ_CHUNK, n - done)
        yield done, size
        done += size


@translate_errors
def seed_due_sequence(
    store: ActionStore, n: int, hook: str, *, group: str = "wch", scheduled_gmt: datetime | None = None,
    schedule: str = 'O:28:"ActionScheduler_NullSchedule":0:{}', priority: int = 10, created_log: bool = False,
    now: datetime | None = None,
) -> Seeded:
    """``n`` due pending actions of ``hook`` generated in the server (MariaDB). ``args`` is ``[<i>]``."""
    if n <= 0:
        return Seeded(0, 0, 0)
    n = int(n)
    now = now or store.now()
    sched = scheduled_gmt or now
    gid = store.group_ids([group], create=True)[group]
    a, lg = store.t.actions.name, store.t.logs.name
    first = last = 0
    params = {
        "hook": hook, "status": Status.PENDING.value, "sched": fmt(sched), "sched_local": fmt(sched),
        "schedule": schedule, "gid": gid, "prio": max(0, min(255, int(priority))),
        "now": fmt(now), "now_local": fmt(store.site.as_local(now)),
    }
    for offset, size in _seq_parts(n):
        with store.engine.begin() as conn:
            before = conn.execute(text(f"SELECT COALESCE(MAX(action_id), 0) FROM {a}")).scalar_one()  # noqa: S608
            conn.execute(
                text(
                    f"INSERT INTO {a} (hook, status, scheduled_date_gmt, scheduled_date_local, priority, args, "  # noqa: S608
                    f"schedule, group_id, attempts, claim_id) "
                    f"SELECT :hook, :status, :sched, :sched_local, :prio, CONCAT('[', seq + :off, ']'), :schedule, "
                    f":gid, 0, 0 FROM seq_1_to_{int(size)}"
                ),
                {**params, "off": offset},
            )
            lo, hi = conn.execute(
                text(f"SELECT MIN(action_id), MAX(action_id) FROM {a} WHERE action_id > :b"), {"b": before}  # noqa: S608
            ).one()
            if created_log:
                conn.execute(
                    text(
                        f"INSERT INTO {lg} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                        f"SELECT action_id, 'action created', :now, :now_local FROM {a} WHERE action_id > :b"
                    ),
                    {**params, "b": before},
                )
        first = first or int(lo)
        last = int(hi)
    return Seeded(first, last, n)


#: The plugin's hooks, used to give the seeded history a realistic mix.
HISTORY_HOOKS = (
    hook_table.BROADCAST_BATCH,
    hook_table.ABANDONED_CART,
    "wch_sync_product_batch",
    hook_table.CART_CLEANUP,
    hook_table.RETRY_MESSAGE,
)


@translate_errors
def seed_history(
    store: ActionStore, n_actions: int, logs_per_action: int = 5, *, group: str = "wch", days: float = 7.0,
    now: datetime | None = None, hooks: Sequence[str] = HISTORY_HOOKS,
) -> Seeded:
    """A site's history (MariaDB): ``n_actions`` actions spread over the last ``days`` (about 90 % complete, 4 %
    failed, 1 % canceled, 4 % pending, 1 % in-progress; 5 hooks) and ``logs_per_action`` log rows each (created,
    started, complete/failed, ...). For the report's scale test and the index-plan test."""
    if n_actions <= 0:
        return Seeded(0, 0, 0)
    now = now or store.now()
    gid = store.group_ids([group], create=True)[group]
    a, lg = store.t.actions.name, store.t.logs.name
    span = max(1, int(days * 86400))
    start = now - timedelta(seconds=span)
    hook_case = f"ELT(1 + (seq MOD {len(hooks)}), {', '.join(f':h{i}' for i in range(len(hooks)))})"
    hook_params = {f"h{i}": h for i, h in enumerate(hooks)}
    status_case = (
        "CASE WHEN seq MOD 100 < 90 THEN 'complete' WHEN seq MOD 100 < 94 THEN 'failed' "
        "WHEN seq MOD 100 < 95 THEN 'canceled' WHEN seq MOD 100 < 99 THEN 'pending' ELSE 'in-progress' END"
    )
    first = last = 0
    for offset, size in _seq_parts(int(n_actions)):
        with store.engine.begin() as conn:
            before = conn.execute(text(f"SELECT COALESCE(MAX(action_id), 0) FROM {a}")).scalar_one()  # noqa: S608
            conn.execute(
                text(
                    f"INSERT INTO {a} (hook, status, scheduled_date_gmt, scheduled_date_local, priority, args, "  # noqa: S608
                    f"schedule, group_id, attempts, last_attempt_gmt, last_attempt_local, claim_id) "
                    f"SELECT h, st, sd, sd, 10, CONCAT('[', seq + :off, ']'), "
                    f"'O:28:\"ActionScheduler_NullSchedule\":0:{{}}', :gid, "
                    f"IF(st = 'pending', 0, 1 + (seq MOD 3 = 0)), "
                    f"IF(st = 'pending', '0000-00-00 00:00:00', sd + INTERVAL (seq MOD 7) SECOND), "
                    f"IF(st = 'pending', '0000-00-00 00:00:00', sd + INTERVAL (seq MOD 7) SECOND), 0 "
                    f"FROM (SELECT seq, {hook_case} AS h, {status_case} AS st, "
                    f"  :start + INTERVAL FLOOR((seq + :off) * :step) SECOND AS sd FROM seq_1_to_{int(size)}) s"
                ),
                {"off": offset, "gid": gid, "start": fmt(start), "step": span / float(n_actions), **hook_params},
            )
            lo, hi = conn.execute(
                text(f"SELECT MIN(action_id), MAX(action_id) FROM {a} WHERE action_id > :b"), {"b": before}  # noqa: S608
            ).one()
            if logs_per_action > 0:
                conn.execute(
                    text(
                        f"INSERT INTO {lg} (action_id, message, log_date_gmt, log_date_local) "  # noqa: S608
                        f"SELECT x.action_id, CASE WHEN k.seq = 1 THEN 'action created' "
                        f"  WHEN k.seq = 2 THEN 'action started via WCH Bridge' "
                        f"  WHEN k.seq = 3 AND x.status = 'failed' THEN 'action failed via WCH Bridge: (#131000) Something went wrong' "
                        f"  WHEN k.seq = 3 THEN 'action complete via WCH Bridge' "
                        f"  ELSE CONCAT('note ', k.seq) END, "
                        f"  x.scheduled_date_gmt + INTERVAL k.seq SECOND, x.scheduled_date_gmt + INTERVAL k.seq SECOND "
                        f"FROM {a} x JOIN seq_1_to_{int(logs_per_action)} k WHERE x.action_id > :b"
                    ),
                    {"b": before},
                )
        first = first or int(lo)
        last = int(hi)
    return Seeded(first, last, int(n_actions))


@translate_errors
def analyze(store: ActionStore) -> None:
    """``ANALYZE TABLE`` on the actions and logs tables (fresh statistics after a bulk load)."""
    if store.info.dialect != "mysql":
        return
    with store.engine.connect() as conn:
        for name in (store.t.actions.name, store.t.logs.name):
            conn.execute(text(f"ANALYZE TABLE {name}")).all()  # noqa: S608 - validated prefix


@translate_errors
def count_rows(store: ActionStore) -> dict[str, int]:
    a, lg = store.t.actions, store.t.logs
    with store.engine.connect() as conn:
        return {
            "actions": int(conn.execute(select(func.count()).select_from(a)).scalar_one()),
            "logs": int(conn.execute(select(func.count()).select_from(lg)).scalar_one()),
        }


@translate_errors
def start_log_anomalies(store: ActionStore) -> dict[str, int]:
    """Exactly-once evidence from AS's log table: actions with more than one ``action started`` line, finished
    actions (complete/failed) with no start line, and actions with more than one ``complete``/``failed`` line."""
    a, lg = store.t.actions, store.t.logs
    started = lg.c.message.like("action started via %")
    finished_line = or_(lg.c.message.like("action complete via %"), lg.c.message.like("action failed via %"))
    with store.engine.connect() as conn:
        starts = (
            select(lg.c.action_id, func.count().label("n")).where(started).group_by(lg.c.action_id).subquery()
        )
        multi_start = conn.execute(select(func.count()).select_from(starts).where(starts.c.n > 1)).scalar_one()
        ends = (
            select(lg.c.action_id, func.count().label("n")).where(finished_line).group_by(lg.c.action_id).subquery()
        )
        multi_end = conn.execute(select(func.count()).select_from(ends).where(ends.c.n > 1)).scalar_one()
        no_start = conn.execute(
            select(func.count()).select_from(a.outerjoin(starts, starts.c.action_id == a.c.action_id)).where(
                a.c.status.in_([Status.COMPLETE.value, Status.FAILED.value]), starts.c.action_id.is_(None)
            )
        ).scalar_one()
    return {"started_twice": int(multi_start), "finished_twice": int(multi_end), "finished_never_started": int(no_start)}
