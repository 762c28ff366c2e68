"""Rows written by the real PHP Action Scheduler (tests/fixtures/php/action-scheduler-real.sql, a copy of
../shared/fixtures), read by the bridge."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from tests.conftest import FIXTURES
from tests.helpers.report_seed import load_php_dump
from wch_bridge import argscodec, phpser, schedules
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod
from wch_bridge.timeutil import Clock, SiteTime

DUMP = FIXTURES / "action-scheduler-real.sql"


@pytest.fixture
def php_store(mysql_url: str, prefix: str) -> Iterator[ActionStore]:
    eng = make_engine(mysql_url)
    load_php_dump(eng, prefix, DUMP)
    # The dump's site is at +05:30 (see its *_local columns); no options table in the dump.
    yield ActionStore(eng, prefix, clock=Clock(), site=SiteTime.from_options("Asia/Kolkata", ""))
    schema_mod.drop_prefix(eng, prefix)
    eng.dispose()


def test_every_php_row_is_read(php_store: ActionStore) -> None:
    a = php_store.t.actions
    with php_store.engine.connect() as conn:
        ids = [r[0] for r in conn.execute(select(a.c.action_id).order_by(a.c.action_id))]
    assert len(ids) == 18
    kinds = set()
    for aid in ids:
        action = php_store.get_action(aid)
        assert action is not None
        decoded = argscodec.decode_args(action.args_json)
        assert isinstance(decoded, list | dict)
        sched = phpser.parse_schedule(action.schedule)
        kinds.add(type(sched).__name__)
        # re-serialized bytes are exactly what PHP wrote
        assert phpser.serialize_schedule(sched) == action.schedule, aid
        if not isinstance(sched, schedules.NullSchedule):
            assert sched.scheduled_at() == action.scheduled_date_gmt, aid
    assert kinds == {"SimpleSchedule", "NullSchedule", "IntervalSchedule", "CronSchedule"}


def test_specific_php_rows(php_store: ActionStore) -> None:
    long_args = php_store.get_action(9)
    assert long_args is not None and long_args.args == "405a7dbc09554492b67e7b08ebbc7d6e"
    assert argscodec.decode_args(long_args.args_json)["job_id"] == "j6"  # type: ignore[index]
    assert argscodec.encode_args(argscodec.decode_args(long_args.args_json)) == (long_args.args, long_args.extended_args)
    wrapped = php_store.get_action(3)
    assert wrapped is not None
    inner, meta = argscodec.unwrap_payload(argscodec.decode_args(wrapped.args_json))
    assert inner == {"job_id": "j3", "sync_type": "customer", "entity_id": 7, "retry_count": 0} and meta is None
    prio = php_store.get_action(10)
    assert prio is not None and prio.priority == 5
    empty_group = php_store.get_action(14)
    assert empty_group is not None and empty_group.group == ""
    pending = php_store.get_action(5)
    assert pending is not None and pending.last_attempt_gmt is None and pending.claim_id == 0
    # the interval chain PHP created: next instance from the finish time, first timestamp kept
    first, nxt = php_store.get_action(6), php_store.get_action(17)
    assert first is not None and nxt is not None
    s1, s2 = phpser.parse_schedule(first.schedule), phpser.parse_schedule(nxt.schedule)
    assert schedules.next_instance(s1, 1795917483) == s2
    assert [e.message for e in php_store.get_logs(12)][-1] == "action failed via WP CLI: simulated failure for job j8"


def test_bridge_local_dates_match_php(php_store: ActionStore) -> None:
    row = php_store.get_action(1)
    assert row is not None and row.scheduled_date_gmt and row.last_attempt_gmt
    assert php_store.site.as_local(row.scheduled_date_gmt) == row.scheduled_date_local
    assert php_store.site.local(row.last_attempt_gmt) == row.last_attempt_local


def test_bridge_runs_php_written_pending_rows(php_store: ActionStore) -> None:
    """A pending PHP row due now is taken, run and finished next to PHP's own history."""
    import time

    from wch_bridge.settings import Settings
    from wch_bridge.worker import Worker

    php_store.clock = Clock(offset_seconds=1795917485 - time.time())  # the dump's "now": 2026-11-29 01:58:05 UTC
    ran: list[dict[str, object]] = []
    settings = Settings(dsn="unused://", prefix=php_store.prefix, once=True, hooks=("wch_process_sync_job",),
                        poll_interval=0.1)
    worker = Worker(php_store, {"wch_process_sync_job": lambda job: ran.append(job.args)}, settings)
    assert worker.run() == 0
    assert {r["job_id"] for r in ran} == {"j10"}  # j5 is due in an hour
    assert php_store.get_status(19) == "complete"
    assert [e.message for e in php_store.get_logs(19)] == [
        "action created", "action started via WCH Bridge", "action complete via WCH Bridge"]
    assert php_store.get_status(5) == "pending"
