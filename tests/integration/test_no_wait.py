"""The bridge never waits for a row lock on Action Scheduler's table (MariaDB): a row another session holds is
skipped by a take and left unwritten by a finish, at once and without an error, and handled a moment later when
the lock is gone. The other session here is a plain PyMySQL connection in a transaction, as PHP's runner would
hold a row between two statements of its own (REPEATABLE READ, like PHP)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from sqlalchemy.exc import OperationalError

from tests.integration.test_worker import add
from wch_bridge.devtools.instrument import StatementCounter
from wch_bridge.models import CONTEXT
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import TakeRequest

pytestmark = pytest.mark.mysql

HOOK = "wch_nowait_test"


@pytest.fixture
def holder(mysql_url: str) -> Iterator[Any]:
    """A second session that can lock rows, like PHP's runner between two statements."""
    from tests.helpers.php_runner import connect

    conn = connect(mysql_url)
    conn.autocommit(False)
    cur = conn.cursor()
    cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    yield conn
    conn.rollback()
    conn.close()


def _lock(holder: pymysql.connections.Connection, store: ActionStore, aid: int) -> None:
    cur = holder.cursor()
    cur.execute(f"UPDATE {store.t.actions.name} SET last_attempt_gmt = last_attempt_gmt "  # noqa: S608
                "WHERE action_id = %s", (aid,))


def test_a_take_skips_a_row_someone_holds_and_takes_it_once_released(mysql_store: ActionStore, holder: Any) -> None:
    gid = mysql_store.group_ids(["wch"], create=True)["wch"]
    ids = [add(mysql_store, HOOK, {"n": i}, delay=-10 + i) for i in range(4)]
    _lock(holder, mysql_store, ids[1])
    started = time.monotonic()
    with StatementCounter(mysql_store.engine) as counter:
        taken = mysql_store.take_due(TakeRequest([HOOK], [gid], 10), CONTEXT)
    assert time.monotonic() - started < 3.0, "the take waited for the lock"
    assert [a.action_id for a in taken.actions] == [ids[0], ids[2], ids[3]]
    assert "SELECT FOR UPDATE" not in counter.counts().by_verb
    assert mysql_store.get_status(ids[1]) == "pending"
    holder.rollback()
    again = mysql_store.take_due(TakeRequest([HOOK], [gid], 10), CONTEXT)
    assert [a.action_id for a in again.actions] == [ids[1]], "the skipped row went back to the pick-up queue"


def test_a_finish_leaves_a_held_row_unwritten_and_writes_it_later(mysql_store: ActionStore, holder: Any) -> None:
    gid = mysql_store.group_ids(["wch"], create=True)["wch"]
    ids = [add(mysql_store, HOOK, {"n": i}) for i in range(3)]
    assert len(mysql_store.take_due(TakeRequest([HOOK], [gid], 10), CONTEXT).actions) == 3
    _lock(holder, mysql_store, ids[0])
    out = mysql_store.finish([(i, True, "") for i in ids], CONTEXT)
    assert out == {ids[1]: None, ids[2]: None}, "the held row is left out of the answer: write it later"
    assert mysql_store.get_status(ids[0]) == "in-progress"
    holder.rollback()
    assert mysql_store.finish([(ids[0], True, "")], CONTEXT) == {ids[0]: None}
    assert [mysql_store.get_status(i) for i in ids] == ["complete"] * 3


def test_the_worker_finishes_every_action_though_rows_are_held_for_a_while(
        mysql_store: ActionStore, holder: Any) -> None:
    """End to end: a worker meets a held row at start and at finish; it neither errors nor waits on it, and every
    action ends complete once the lock is gone."""
    import threading

    from tests.integration.test_worker import settings_for
    from wch_bridge.worker import Worker

    ids = [add(mysql_store, HOOK, {"n": i}) for i in range(20)]
    _lock(holder, mysql_store, ids[5])
    release = threading.Timer(1.0, holder.rollback)
    release.start()
    worker = Worker(mysql_store, {HOOK: lambda job: None}, settings_for(mysql_store, poll_interval=0.1))
    try:
        assert worker.run() == 0
    finally:
        release.cancel()
    assert mysql_store.count_by_status([HOOK]) == {"complete": 20}


def test_feeding_the_pick_up_queue_never_waits_for_another_worker(mysql_store: ActionStore, holder: Any) -> None:
    """Seen in the heavy side-by-side run: a feed's INSERT IGNORE into the bridge's queue waited 5 s for a queue row
    another worker held, holding 272 row locks meanwhile. The queue is a hint: a feed that meets a held row gives
    up at once and the next refresh reconciles (the row is not lost)."""
    gid = mysql_store.group_ids(["wch"], create=True)["wch"]
    first = add(mysql_store, HOOK, {"n": 1}, delay=-5)
    mysql_store.refresh_queue([HOOK], [gid], force=True)
    new = add(mysql_store, HOOK, {"n": 2}, delay=-5)
    cur = holder.cursor()  # another worker's feed of the same new row, not committed yet
    cur.execute(f"INSERT INTO {mysql_store.prefix}wch_bridge_queue (action_id, hook, group_id, priority, attempts, "  # noqa: S608
                "scheduled_date_gmt) VALUES (%s, %s, %s, 10, 0, UTC_TIMESTAMP())", (new, HOOK, gid))
    started = time.monotonic()
    taken = mysql_store.take_due(TakeRequest([HOOK], [gid], 10), CONTEXT)
    assert time.monotonic() - started < 1.0, "the feed waited for the other worker's row"
    assert [a.action_id for a in taken.actions] == [first]
    holder.rollback()
    again = mysql_store.take_due(TakeRequest([HOOK], [gid], 10), CONTEXT)
    assert [a.action_id for a in again.actions] == [new], "the row the feed gave up on came back"


def test_copying_into_the_queue_neither_waits_for_nor_locks_rows_php_holds(
        mysql_store: ActionStore, holder: Any, mysql_url: str) -> None:
    """Issue 12 point 1 for the server-side copy (``INSERT … SELECT`` from AS's table into the bridge's queue): PHP's
    claim holds a pending row (an uncommitted UPDATE); the reconcile, the feed and the tail read it (its last
    committed version) without waiting or failing, and right after every statement that reads AS's table a third
    session can lock every other AS row at once, so the bridge's transaction holds no lock on any of them (its
    ``innodb_trx.trx_rows_locked``, recorded too, counts only queue rows: the duplicate check of an INSERT takes a
    lock on a queue row deleted but not purged yet). At READ COMMITTED InnoDB reads the SELECT part of ``INSERT …
    SELECT`` as a consistent read, with the binlog off or on (MIXED, ROW; STATEMENT: test_binlog_format): the same
    statement at REPEATABLE READ is a locking read and meets PHP's lock (checked at the end)."""
    from sqlalchemy import event

    from tests.helpers.php_runner import connect

    gid = mysql_store.group_ids(["wch"], create=True)["wch"]
    ids = [add(mysql_store, HOOK, {"n": i}, delay=-10 + i) for i in range(4)]
    mysql_store.refresh_queue([HOOK], [gid], force=True)
    actions, queue = mysql_store.t.actions.name, mysql_store.sql.queue
    with mysql_store.engine.begin() as conn:  # the queue lost two rows; one row stopped being pending
        conn.exec_driver_sql(f"DELETE FROM {queue} WHERE action_id IN (%s, %s)", (ids[1], ids[2]))  # noqa: S608
        conn.exec_driver_sql(f"UPDATE {actions} SET status = 'canceled' WHERE action_id = %s", (ids[3],))  # noqa: S608
    cur = holder.cursor()  # PHP's claim of ids[1], not committed
    cur.execute(f"UPDATE {actions} SET claim_id = 4242 WHERE action_id = %s", (ids[1],))  # noqa: S608
    new = [add(mysql_store, HOOK, {"n": 10 + i}) for i in range(3)]
    others = [i for i in (*ids, *new) if i != ids[1]]
    prober = connect(mysql_url)
    prober.autocommit(False)
    prober.cursor().execute("SET SESSION innodb_lock_wait_timeout = 0")
    seen: list[tuple[str, int, str]] = []  # (verb, the bridge's trx_rows_locked, what the third session met)

    def check(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if actions not in statement or "innodb_trx" in statement:
            return
        time.sleep(0.15)  # innodb_trx is a cache refreshed at most every 0.1 s
        with cursor.connection.cursor() as probe:
            probe.execute("SELECT trx_rows_locked FROM information_schema.innodb_trx "
                          "WHERE trx_mysql_thread_id = CONNECTION_ID()")
            held = sum(int(r[0]) for r in probe.fetchall())
        met = "nothing"
        try:
            with prober.cursor() as other:
                other.execute(f"SELECT action_id FROM {actions} FORCE INDEX (PRIMARY) WHERE action_id IN "  # noqa: S608
                              f"({', '.join(['%s'] * len(others))}) FOR UPDATE", others)
        except pymysql.MySQLError as exc:
            met = str(exc)
        prober.rollback()
        seen.append((statement.split(None, 1)[0], held, met))

    mysql_store.queue_is_stale()
    mysql_store.queue._last_tail = float("-inf")
    event.listen(mysql_store.engine, "after_cursor_execute", check)
    try:
        mysql_store.refresh_queue([HOOK], [gid])  # reconcile + feed
        mysql_store.queue._last_tail = float("-inf")
        mysql_store.refresh_queue([HOOK], [gid])  # feed + the tail over the ids just fed
    finally:
        event.remove(mysql_store.engine, "after_cursor_execute", check)
        prober.close()
    assert mysql_store.queue._last_reconcile != float("-inf"), "a copy met a lock and gave up"
    assert [verb for verb, _, _ in seen].count("INSERT") == 3, seen  # reconcile, feed, tail
    assert all(met == "nothing" for _, _, met in seen), seen
    with mysql_store.engine.connect() as conn:
        have = sorted(int(r[0]) for r in conn.exec_driver_sql(f"SELECT action_id FROM {queue}"))  # noqa: S608
    assert have == sorted([ids[0], ids[1], ids[2], *new]), "held row copied as last committed; canceled one dropped"
    # the control: the same copy at REPEATABLE READ is a locking read and meets PHP's lock at once
    with mysql_store.engine.connect() as conn:
        conn.exec_driver_sql(f"DELETE FROM {queue}")  # noqa: S608
        conn.commit()
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(OperationalError, match="1205"):
            conn.exec_driver_sql(mysql_store.sql.queue_copy(1, 1, False), (HOOK, gid))
        conn.rollback()
        conn.invalidate()
