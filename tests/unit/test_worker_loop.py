"""The worker loop over an in-memory store (no database): what it takes once the send gate passed in by ``app``
is halted, follow-ups and the next instance of recurring actions written through the store, and a store without
table objects is enough (the worker reads no ``store.t``)."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from tests.unit.worker_fake_store import FakeStore, settings
from wch_bridge import argscodec, phpser, schedules
from wch_bridge.handlers.base import Job
from wch_bridge.hooks import WHATSAPP_HOOKS
from wch_bridge.models import NewAction, Outcome
from wch_bridge.store.queue.new_rows import unix_ts
from wch_bridge.timeutil import Clock
from wch_bridge.worker import Worker

SEND = sorted(WHATSAPP_HOOKS)[0]


class HaltedGate:
    messages_per_second = 80.0
    halted = True
    halt_reason = "auth error 190"

    def close(self) -> None:
        pass

    def set_rate(self, messages_per_second: float) -> None:
        pass


def test_a_halted_send_gate_leaves_whatsapp_hooks_pending(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore()
    send, other = store.add(SEND), store.add("wch_x")
    registry = {SEND: lambda job: None, "wch_x": lambda job: None}
    worker = Worker(store, registry, settings(), send_gate=HaltedGate())  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="wch_bridge.worker"):
        assert worker.run() == 0
    assert store.status(send) == "pending" and store.status(other) == "complete"
    assert any("WhatsApp sends are halted (auth error 190)" in r.getMessage() for r in caplog.records)


def test_without_a_send_gate_every_hook_is_taken() -> None:
    store = FakeStore()
    send = store.add(SEND)
    assert Worker(store, {SEND: lambda job: None}, settings()).run() == 0  # type: ignore[arg-type]
    assert store.status(send) == "complete"


def test_follow_ups_are_logged_on_the_parent_before_it_finishes() -> None:
    store = FakeStore()
    parent = store.add("wch_x")

    def handler(job: Job) -> Outcome:
        return Outcome(
            follow_ups=(NewAction("wch_retry", {"n": 1}, delay_seconds=60, purpose="retry"),),
            log_lines=("sent 2",),
        )

    worker = Worker(store, {"wch_x": handler}, settings())  # type: ignore[arg-type]
    assert worker.run() == 0
    (row,) = store.inserted
    assert (row.hook, row.args, row.group, row.priority) == (
        "wch_retry",
        argscodec.encode_args({"n": 1})[0],
        "wch",
        10,
    )
    assert row.scheduled_date_gmt is not None
    assert row.schedule == phpser.serialize_schedule(
        schedules.SimpleSchedule(unix_ts(row.scheduled_date_gmt))
    )
    msgs = store.messages(parent)
    assert msgs[1:3] == ["sent 2", "retry scheduled as action #1001 (wch_retry, due in 60 s)"]
    assert msgs[3].startswith("action complete via WCH Bridge")


def _add_hourly(store: FakeStore) -> int:
    """A due ``wch_cron`` action on an hourly interval schedule."""
    aid = store.add("wch_cron")
    due = store.rows[aid].scheduled_date_gmt
    assert due is not None
    store.rows[aid] = replace(
        store.rows[aid], schedule=phpser.serialize_schedule(schedules.interval_first(unix_ts(due), 3600))
    )
    return aid


def test_a_recurring_action_gets_its_next_instance() -> None:
    store = FakeStore()
    _add_hourly(store)
    worker = Worker(store, {"wch_cron": lambda job: None}, settings())  # type: ignore[arg-type]
    assert worker.run() == 0
    (row,) = store.inserted
    assert row.hook == "wch_cron" and row.group == "wch"
    nxt = phpser.parse_schedule(row.schedule)
    assert nxt.is_recurring and row.scheduled_date_gmt == nxt.scheduled_at()


class TickingClock(Clock):
    """A clock one second further on at each reading: the finish is written at a later second than the handler
    ended at (on a real machine: a batch's outcomes are written together, after the last of them ended)."""

    def now(self) -> datetime:
        self.advance(1.0)
        return super().now()


def test_the_next_instance_is_due_one_interval_after_the_finish_was_written() -> None:
    """AS's ``schedule_next_instance`` runs after ``mark_complete`` and counts from the time it reads then, so the next
    instance is never due less than one interval after the finished row's ``last_attempt_gmt``. CI saw the bridge's
    hourly cart cleanup scheduled 3,599 s after its ``last_attempt_gmt``: it counted from when the handler ended."""
    store = FakeStore()
    store.clock = TickingClock()
    aid = _add_hourly(store)
    assert Worker(store, {"wch_cron": lambda job: None}, settings()).run() == 0  # type: ignore[arg-type]
    (row,) = store.inserted
    finished = store.rows[aid].last_attempt_gmt
    assert finished is not None and row.scheduled_date_gmt == finished + timedelta(seconds=3600)
