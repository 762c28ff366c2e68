"""The store on both SQLite and MariaDB: rows written exactly as Action Scheduler writes them."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import insert, select, update

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.models import Status
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.timeutil import SiteTime


def add(store: ActionStore, hook: str = "wch_test", *, args: object = None, delay: int = -5, priority: int = 10,
        group: str = "wch", unique: bool = False) -> int:
    now = store.now()
    when = now + timedelta(seconds=delay)
    a, ext = argscodec.encode_args(args if args is not None else {"n": 1})
    ts = int((when - when.replace(year=1970, month=1, day=1, hour=0, minute=0, second=0)).total_seconds())
    return store.insert_action(
        NewRow(hook=hook, scheduled_date_gmt=when, schedule=phpser.serialize_schedule(schedules.SimpleSchedule(ts)),
               args=a, extended_args=ext, group=group, priority=priority),
        unique=unique,
    )


def gids(store: ActionStore) -> list[int]:
    return list(store.group_ids(["wch"], create=True).values())


def test_insert_reads_back_like_as_schedule_single_action(store: ActionStore) -> None:
    aid = add(store, args={"order_id": 123, "note": "a/b"})
    a = store.get_action(aid)
    assert a is not None
    assert a.status == "pending" and a.claim_id == 0 and a.attempts == 0 and a.priority == 10
    assert a.args == '{"order_id":123,"note":"a\\/b"}' and a.extended_args is None
    assert a.last_attempt_gmt is None and a.group == "wch"
    assert [entry.message for entry in store.get_logs(aid)] == ["action created"]
    assert isinstance(phpser.parse_schedule(a.schedule), schedules.SimpleSchedule)


def test_long_args_go_to_extended_args_with_md5(store: ActionStore) -> None:
    payload = {"k": "x" * 200}
    aid = add(store, args=payload)
    a = store.get_action(aid)
    assert a is not None and a.extended_args is not None
    assert len(a.args or "") == 32 and a.args == argscodec.encode_args(payload)[0]
    assert argscodec.decode_args(a.args_json) == payload


def test_due_order_is_as_claim_order(store: ActionStore) -> None:
    late = add(store, delay=-1)
    early = add(store, delay=-100)
    urgent = add(store, delay=-1, priority=0)
    retried = add(store, delay=-200)
    a = store.t.actions
    with store.engine.begin() as conn:
        conn.execute(update(a).where(a.c.action_id == retried).values(attempts=1))
    future = add(store, delay=3600)
    due = store.fetch_due(["wch_test"], gids(store), store.now(), 10)
    assert [x.action_id for x in due] == [urgent, early, late, retried]
    assert future not in [x.action_id for x in due]
    assert store.next_due_at(["wch_test"], gids(store)) is not None


def test_take_is_exactly_once_and_never_claims(store: ActionStore) -> None:
    ids = [add(store) for _ in range(5)]
    first = store.take(ids, "WCH Bridge")
    assert first == ids
    assert store.take(ids, "WCH Bridge") == []
    for aid in ids:
        a = store.get_action(aid)
        assert a is not None
        assert (a.status, a.attempts, a.claim_id) == ("in-progress", 1, 0)
        assert a.last_attempt_gmt is not None
        assert store.get_logs(aid)[-1].message == "action started via WCH Bridge"
    assert store.claim_count() == 0


def test_take_skips_rows_claimed_by_php(store: ActionStore) -> None:
    mine, php = add(store), add(store)
    a = store.t.actions
    with store.engine.begin() as conn:
        conn.execute(update(a).where(a.c.action_id == php).values(claim_id=7))
    assert store.take([mine, php], "WCH Bridge") == [mine]
    assert store.get_status(php) == "pending"


def test_finish_is_guarded_and_logged(store: ActionStore) -> None:
    ok, bad, stolen = (add(store) for _ in range(3))
    store.take([ok, bad, stolen], "WCH Bridge")
    a = store.t.actions
    with store.engine.begin() as conn:  # PHP's cleaner got there first
        conn.execute(update(a).where(a.c.action_id == stolen).values(status="failed"))
    out = store.finish([(ok, True, ""), (bad, False, "boom: it broke"), (stolen, True, "")], "WCH Bridge")
    assert out == {ok: None, bad: None, stolen: "failed"}
    assert store.get_status(ok) == "complete" and store.get_status(bad) == "failed"
    assert store.get_status(stolen) == "failed"
    assert store.get_logs(ok)[-1].message == "action complete via WCH Bridge"
    assert store.get_logs(bad)[-1].message == "action failed via WCH Bridge: boom: it broke"
    assert "did not record it" in store.get_logs(stolen)[-1].message


def test_touch_release_cancel(store: ActionStore) -> None:
    run, pend = add(store), add(store)
    store.take([run], "WCH Bridge")
    assert store.touch([run, pend]) == 1
    assert store.release(run, "action released via WCH Bridge: test")
    a = store.get_action(run)
    assert a is not None and (a.status, a.attempts) == ("pending", 1)
    assert store.cancel([pend, run]) == sorted([pend, run])
    assert store.cancel([pend]) == []
    assert store.get_logs(pend)[-1].message == "action canceled"


def test_unique_insert_is_suppressed_while_one_is_pending(store: ActionStore) -> None:
    first = add(store, hook="wch_u", unique=True)
    assert first > 0
    assert add(store, hook="wch_u", unique=True, args={"other": 1}) == 0
    store.take([first], "WCH Bridge")
    store.finish([(first, True, "")], "WCH Bridge")
    assert add(store, hook="wch_u", unique=True) > first


def test_site_timezone_local_columns(store: ActionStore) -> None:
    o = store.t.options
    with store.engine.begin() as conn:
        conn.execute(insert(o), [
            {"option_name": "timezone_string", "option_value": "Asia/Kolkata", "autoload": "yes"},
            {"option_name": "gmt_offset", "option_value": "", "autoload": "yes"},
        ])
    store._site = None
    assert store.site == SiteTime.from_options("Asia/Kolkata", "")
    aid = add(store)
    store.take([aid], "WCH Bridge")
    a = store.get_action(aid)
    assert a is not None and a.scheduled_date_gmt and a.scheduled_date_local and a.last_attempt_gmt
    assert a.scheduled_date_local - a.scheduled_date_gmt == timedelta(hours=5, minutes=30)
    assert a.last_attempt_local - a.last_attempt_gmt == timedelta(hours=5, minutes=30)
    lg = store.get_logs(aid)[-1]
    assert lg.log_date_local - lg.log_date_gmt == timedelta(hours=5, minutes=30)


def test_offset_only_site_keeps_as_quirk(store: ActionStore) -> None:
    store._site = SiteTime.from_options("", "2")
    aid = add(store)
    store.take([aid], "WCH Bridge")
    a = store.get_action(aid)
    assert a is not None and a.last_attempt_local and a.last_attempt_gmt
    assert a.scheduled_date_local == a.scheduled_date_gmt  # TimezoneHelper ignores a bare offset
    assert a.last_attempt_local - a.last_attempt_gmt == timedelta(hours=2)  # current_time('mysql') does not


def test_hostile_strings_round_trip(store: ActionStore) -> None:
    values = ["it's", 'say "hi"', "back\\slash", "100% _under_", "nul\x00byte", "emoji 😀🛒", "x" * 7000]
    for v in values:
        aid = add(store, args={"v": v})
        a = store.get_action(aid)
        assert a is not None
        assert argscodec.decode_args(a.args_json) == {"v": v}
    lg = store.t.logs
    with store.engine.connect() as conn:
        assert conn.execute(select(lg.c.message).limit(1)).scalar() == "action created"
    assert Status.PENDING.value in store.count_by_status()
