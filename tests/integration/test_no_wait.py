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
