"""Guarded UPDATEs by primary key that never wait for a row lock.

Every change the bridge makes to an Action Scheduler row is an UPDATE pinned to the primary key and guarded on the
status it expects (``… WHERE action_id IN (…) AND status = 'pending' AND claim_id = 0``). The bridge's sessions
never wait for a lock (``innodb_lock_wait_timeout`` 0 on MariaDB, 1 s on MySQL, its minimum: ``engine``), so a
statement that meets a row someone else holds fails at once with 1205; the bridge cannot then be part of a
wait-for cycle with PHP's statements.

``apply`` runs a list of steps (statement builder, leading parameters, ids) in the caller's transaction:

- fast path: one statement per step; when every step changed as many rows as it named, done;
- otherwise (fewer rows changed, or 1205): ``Mismatch`` is raised, the caller rolls its transaction back and calls
  again with ``one_by_one``: one statement per id, which tells exactly which rows changed, which did not (someone
  else changed them first) and which were **busy** (locked by someone else right now: skipped, tried later)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from wch_bridge.errors import LockBusyError
from wch_bridge.store.engine import ER_LOCK_WAIT_TIMEOUT, mysql_errno


class Mismatch(Exception):
    """The fast path changed fewer rows than it named, or met a lock: roll back and go one by one."""


@dataclass(frozen=True)
class Step:
    build: Callable[[int], str]  # number of ids -> SQL text (``TransitionSql``)
    params: tuple[Any, ...]  # bound before the ids
    ids: Sequence[int]  # ascending


@dataclass
class Applied:
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)  # the guard did not match: someone changed the row first
    busy: list[int] = field(default_factory=list)  # locked by someone else just now: skipped


def _is_lock_wait(exc: DBAPIError) -> bool:
    return mysql_errno(exc) == ER_LOCK_WAIT_TIMEOUT


def apply(conn: Connection, steps: Sequence[Step], *, one_by_one: bool, whole_tx_rolls_back: bool) -> Applied:
    """Run ``steps`` (see the module doc). ``whole_tx_rolls_back``: the server rolls back the whole transaction on
    a lock-wait timeout (``innodb_rollback_on_timeout``), so a busy row cannot be skipped inside it: the caller's
    transaction is given up (LockBusyError) and retried later."""
    out = Applied()
    for step in steps:
        if not step.ids:
            continue
        if not one_by_one:
            try:
                res = conn.exec_driver_sql(step.build(len(step.ids)), (*step.params, *step.ids))
            except DBAPIError as exc:
                if not _is_lock_wait(exc):
                    raise
                raise Mismatch from None
            if res.rowcount != len(step.ids):
                raise Mismatch
            out.changed.extend(step.ids)
            continue
        sql = step.build(1)
        for aid in step.ids:
            try:
                res = conn.exec_driver_sql(sql, (*step.params, aid))
            except DBAPIError as exc:
                if not _is_lock_wait(exc):
                    raise
                if whole_tx_rolls_back:
                    raise LockBusyError("a row was locked by another session; trying again shortly") from None
                out.busy.append(aid)
                continue
            (out.changed if res.rowcount == 1 else out.unchanged).append(aid)
    return out
