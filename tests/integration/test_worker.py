"""The worker end to end on SQLite and MariaDB: outcomes, recurring actions, bad rows, follow-ups."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.errors import PermanentError
from wch_bridge.handlers.base import Job
from wch_bridge.models import NewAction, Outcome
from wch_bridge.settings import Settings
from wch_bridge.store import ActionStore
from wch_bridge.store.queue.actions import NewRow
from wch_bridge.worker import Worker


def ts(dt: datetime) -> int:
    return int(dt.replace(tzinfo=UTC).timestamp())


def add(store: ActionStore, hook: str, args: object = None, *, schedule: schedules.Schedule | None = None,
        raw_args: str | None = None, raw_schedule: str | None = None, delay: int = -1, priority: int = 10,
        group: str = "wch") -> int:
    when = store.now() + timedelta(seconds=delay)
    a, ext = argscodec.encode_args(args if args is not None else [])
    sched = raw_schedule if raw_schedule is not None else phpser.serialize_schedule(
        schedule or schedules.SimpleSchedule(ts(when)))
    return store.insert_action(NewRow(hook=hook, scheduled_date_gmt=when, schedule=sched,
                                      args=raw_args if raw_args is not None else a, extended_args=ext,
                                      group=group, priority=priority))


def settings_for(store: ActionStore, **kw: object) -> Settings:
    base: dict[str, object] = {"dsn": "sqlite://", "prefix": store.prefix, "once": True, "poll_interval": 0.05,
                               "concurrency": 4}
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def messages(store: ActionStore, aid: int) -> list[str]:
    return [e.message for e in store.get_logs(aid)]


def test_runs_each_due_action_once_and_completes(store: ActionStore) -> None:
    seen: list[int] = []
    lock = threading.Lock()

    def handler(job: Job) -> None:
        with lock:
            seen.append(job.args["n"])

    ids = [add(store, "wch_count", {"n": i}) for i in range(30)]
    later = add(store, "wch_count", {"n": 99}, delay=3600)
    other = add(store, "not_ours", {"n": -1})
    code = Worker(store, {"wch_count": handler}, settings_for(store, batch_size=7)).run()
    assert code == 0
    assert sorted(seen) == list(range(30))
    for aid in ids:
        a = store.get_action(aid)
        assert a is not None and (a.status, a.attempts, a.claim_id) == ("complete", 1, 0)
        assert messages(store, aid) == ["action created", "action started via WCH Bridge",
                                        "action complete via WCH Bridge"]
    assert store.get_status(later) == "pending" and store.get_status(other) == "pending"


def test_bad_rows_fail_alone_with_clear_messages(store: ActionStore) -> None:
    ran: list[int] = []
    good = add(store, "wch_x", {"ok": 1})
    bad_json = add(store, "wch_x", raw_args='{"broken":')
    not_array = add(store, "wch_x", raw_args='"just a string"')
    bad_class = add(store, "wch_x", raw_schedule='O:29:"ActionScheduler_SimpleSchedulX":0:{}')
    boom = add(store, "wch_x", {"raise": "value"})
    perm = add(store, "wch_x", {"raise": "permanent"})
    no_handler = add(store, "wch_unhandled", {})

    def handler(job: Job) -> None:
        if job.args.get("raise") == "value":
            raise ValueError("bad value <script>")
        if job.args.get("raise") == "permanent":
            raise PermanentError("entity not found: product 42")
        ran.append(job.action.action_id)

    worker = Worker(store, {"wch_x": handler}, settings_for(store, hooks=("wch_x", "wch_unhandled")))
    assert worker.run() == 0
    assert ran == [good]
    assert store.get_status(good) == "complete"
    expect = {
        bad_json: "action failed via WCH Bridge: invalid args: ",
        not_array: "action failed via WCH Bridge: invalid args: ",
        bad_class: "action failed via WCH Bridge: invalid schedule: ",
        boom: "action failed via WCH Bridge: ValueError: bad value <script>",
        perm: "action failed via WCH Bridge: entity not found: product 42",
        no_handler: "action failed via WCH Bridge: Scheduled action for wch_unhandled will not be executed as no "
                    "callbacks are registered.",
    }
    for aid, prefix in expect.items():
        assert store.get_status(aid) == "failed", aid
        assert messages(store, aid)[-1].startswith(prefix), messages(store, aid)


def test_unhandled_hooks_are_never_taken_without_narrowing(store: ActionStore) -> None:
    foreign = add(store, "wch_unhandled", {})
    Worker(store, {"wch_x": lambda job: None}, settings_for(store)).run()
    assert store.get_status(foreign) == "pending"


def test_recurring_interval_gets_next_instance_like_repeat(store: ActionStore) -> None:
    now = store.now()
    first_ts = ts(now) - 7200
    sched = schedules.IntervalSchedule(ts(now) - 5, first_ts, 3600)
    aid = add(store, "wch_tick", [], schedule=sched, delay=-5, priority=3)
    Worker(store, {"wch_tick": lambda job: None}, settings_for(store)).run()
    assert store.get_status(aid) == "complete"
    pending = store.fetch_due(["wch_tick"], None, now + timedelta(hours=2), 10)
    assert len(pending) == 1
    nxt = pending[0]
    parsed = phpser.parse_schedule(nxt.schedule)
    assert isinstance(parsed, schedules.IntervalSchedule)
    assert parsed.first_timestamp == first_ts and parsed.recurrence == 3600
    assert 3600 <= parsed.scheduled_timestamp - ts(now) <= 3700
    assert (nxt.hook, nxt.args, nxt.group, nxt.priority) == ("wch_tick", "[]", "wch", 3)
    assert messages(store, nxt.action_id) == ["action created"]


def test_recurring_cron_next_is_next_utc_match(store: ActionStore) -> None:
    now = store.now()
    sched = schedules.CronSchedule(ts(now) - 60, ts(now) - 3600, "0 * * * *")
    add(store, "wch_cron", {"k": "v"}, schedule=sched, delay=-60)
    Worker(store, {"wch_cron": lambda job: (_ for _ in ()).throw(RuntimeError("fails"))}, settings_for(store)).run()
    pending = store.fetch_due(["wch_cron"], None, now + timedelta(hours=2), 10)
    assert len(pending) == 1  # a failed run still schedules the next instance, as AS does
    nxt = pending[0].scheduled_date_gmt
    assert nxt is not None and nxt.minute == 0 and nxt.second == 0 and nxt > now


def test_follow_ups_are_scheduled_and_named_on_the_parent(store: ActionStore) -> None:
    def handler(job: Job) -> Outcome:
        return Outcome(follow_ups=(NewAction("wch_next", {"retry_count": 1}, delay_seconds=60, purpose="retry"),))

    aid = add(store, "wch_parent", {"retry_count": 0}, priority=4)
    Worker(store, {"wch_parent": handler}, settings_for(store)).run()
    assert store.get_status(aid) == "complete"
    logs = messages(store, aid)
    assert any(m.startswith("retry scheduled as action #") for m in logs)
    new_id = int(next(m for m in logs if m.startswith("retry scheduled")).split("#")[1].split()[0])
    child = store.get_action(new_id)
    assert child is not None and child.status == "pending" and child.args == '{"retry_count":1}'
    assert child.priority == 4 and child.group == "wch"
    assert child.scheduled_date_gmt is not None
    assert 59 <= (child.scheduled_date_gmt - store.now()).total_seconds() <= 61


def test_shutdown_requested_puts_the_action_back(store: ActionStore) -> None:
    worker: Worker

    def handler(job: Job) -> None:
        worker.request_stop()  # as SIGTERM does
        job.check_stop()  # a handler checks between units of work

    aid = add(store, "wch_stop", {})
    worker = Worker(store, {"wch_stop": handler}, settings_for(store))
    worker.run()
    a = store.get_action(aid)
    assert a is not None and a.status == "pending" and a.attempts == 1
    assert messages(store, aid)[-1].startswith("action released via WCH Bridge")


def test_long_running_action_refreshes_last_attempt(store: ActionStore) -> None:
    aid = add(store, "wch_slow", {})
    seen: dict[str, object] = {}

    def handler(job: Job) -> None:
        start = store.get_action(job.action.action_id).last_attempt_gmt  # type: ignore[union-attr]
        seen["start"] = start
        store.clock.advance(90)  # PHP's cleaner would look at this row in 300 s; our clock moved on
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now_val = store.get_action(job.action.action_id).last_attempt_gmt  # type: ignore[union-attr]
            if now_val != start:
                seen["touched"] = now_val
                return
            time.sleep(0.05)

    Worker(store, {"wch_slow": handler}, settings_for(store, touch_interval=0.2)).run()
    assert "touched" in seen and seen["touched"] > seen["start"]  # type: ignore[operator]
    assert store.get_status(aid) == "complete"


def test_finish_does_not_overwrite_a_row_php_failed_meanwhile(store: ActionStore) -> None:
    aid = add(store, "wch_race", {})

    def handler(job: Job) -> None:
        a = store.t.actions
        with store.engine.begin() as conn:  # PHP's cleaner: mark_failure without a status guard
            conn.execute(update(a).where(a.c.action_id == job.action.action_id).values(status="failed"))

    worker = Worker(store, {"wch_race": handler}, settings_for(store))
    worker.run()
    assert store.get_status(aid) == "failed"
    assert worker.stats.not_recorded == 1
    assert "did not record it" in messages(store, aid)[-1]


def test_max_actions_stops_after_n(store: ActionStore) -> None:
    for i in range(10):
        add(store, "wch_m", {"i": i})
    w = Worker(store, {"wch_m": lambda job: None}, settings_for(store, once=False, max_actions=4, batch_size=2))
    assert w.run() == 0
    assert store.count_by_status(["wch_m"]) == {"complete": 4, "pending": 6}
