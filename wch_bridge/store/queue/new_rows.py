"""The one place action rows are built, encoded as Action Scheduler writes them: a single action due at a date (a
serialized ``ActionScheduler_SimpleSchedule``), a recurring one, and the next instance of a recurring one (AS's
``schedule_next_instance``: same hook, args, group and priority, next date from the finish time)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from wch_bridge import phpser, schedules
from wch_bridge.models import Action
from wch_bridge.store.queue.actions import NewRow


def unix_ts(dt: datetime) -> int:
    """Naive UTC datetime -> Unix seconds."""
    return int(dt.replace(tzinfo=UTC).timestamp())


def single_row(
    hook: str, when: datetime, *, args: str, extended_args: str | None = None, group: str = "", priority: int = 10
) -> NewRow:
    """A single action due at ``when`` (naive UTC)."""
    return NewRow(
        hook=hook,
        scheduled_date_gmt=when,
        schedule=phpser.serialize_schedule(schedules.SimpleSchedule(unix_ts(when))),
        args=args,
        extended_args=extended_args,
        group=group,
        priority=priority,
    )


def recurring_row(hook: str, now: datetime, interval_seconds: int, *, group: str) -> NewRow:
    """A recurring action every ``interval_seconds``, first due ``now`` (``as_schedule_recurring_action``)."""
    return NewRow(hook=hook, scheduled_date_gmt=now, args="[]", group=group,
                  schedule=phpser.serialize_schedule(schedules.interval_first(unix_ts(now), interval_seconds)))


def next_instance_row(action: Action, schedule: Any, finished: datetime) -> NewRow:
    """The next instance of recurring ``action`` (parsed ``schedule``) that finished at ``finished`` (naive UTC)."""
    nxt = schedules.next_instance(schedule, unix_ts(finished))
    return NewRow(
        hook=action.hook,
        scheduled_date_gmt=nxt.scheduled_at(),
        schedule=phpser.serialize_schedule(nxt),
        args=action.args or "[]",
        extended_args=action.extended_args,
        group=action.group,
        priority=action.priority,
    )
