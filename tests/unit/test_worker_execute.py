"""``Executor.execute`` with no database: resolving the handler and classifying what happened (complete, failed,
or release back to pending), with messages cleaned of secrets."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from wch_bridge import phpser, schedules
from wch_bridge.errors import PermanentError, ShutdownRequested, TransientStoreError
from wch_bridge.handlers.base import Job, Services
from wch_bridge.models import Action, NewAction, Outcome
from wch_bridge.timeutil import Clock
from wch_bridge.worker import MAX_MESSAGE, MAX_TRANSIENT_RERUNS, Executor, no_callback_message

SAFE = "wch_safe"
SCHEDULE = phpser.serialize_schedule(schedules.SimpleSchedule(1_700_000_000))


def action(
    hook: str = SAFE, *, args: str = "[]", schedule: str | None = SCHEDULE, attempts: int = 1
) -> Action:
    return Action(
        action_id=7,
        hook=hook,
        status="in-progress",
        scheduled_date_gmt=None,
        args=args,
        schedule=schedule,
        attempts=attempts,
    )


def executor(
    handler: Any = None,
    *,
    hook: str = SAFE,
    stop: threading.Event | None = None,
    secrets: tuple[str, ...] = (),
) -> Executor:
    registry = {hook: handler} if handler is not None else {}
    return Executor(registry, Services(), stop or threading.Event(), Clock(), frozenset({SAFE}), secrets)


def raises(exc: BaseException) -> Any:
    def handler(job: Job) -> None:
        raise exc

    return handler


def test_a_handler_that_returns_completes_with_its_outcome() -> None:
    out = Outcome(message="done  \n twice", follow_ups=(NewAction("wch_next", {}),))
    res = executor(lambda job: out).execute(action())
    assert (res.kind, res.message, res.outcome) == ("complete", "done twice", out)
    assert res.schedule == schedules.SimpleSchedule(1_700_000_000)
    res = executor(lambda job: None).execute(action())
    assert res.kind == "complete" and res.outcome == Outcome()


def test_a_hook_without_a_handler_fails_with_action_schedulers_words() -> None:
    res = executor().execute(action("wch_nobody"))
    assert (res.kind, res.message) == ("failed", no_callback_message("wch_nobody"))
    assert (
        res.message == "Scheduled action for wch_nobody will not be executed as no callbacks are registered."
    )


def test_bad_args_or_schedule_fail_before_the_handler_runs() -> None:
    ran: list[Job] = []
    res = executor(ran.append).execute(action(args="{not json"))
    assert res.kind == "failed" and res.message.startswith("invalid args: ")
    res = executor(ran.append).execute(action(schedule=None))
    assert res.kind == "failed" and res.message.startswith("invalid schedule: ")
    assert ran == []


def test_handler_errors_fail_the_action() -> None:
    res = executor(raises(PermanentError("phone number invalid"))).execute(action())
    assert (res.kind, res.message) == ("failed", "phone number invalid")
    res = executor(raises(RuntimeError("boom"))).execute(action())
    assert (res.kind, res.message) == ("failed", "RuntimeError: boom")


def test_losing_the_database_releases_a_rerunnable_hook_until_it_has_run_too_often() -> None:
    lost = raises(TransientStoreError("gone away"))
    res = executor(lost).execute(action(attempts=1))
    assert (res.kind, res.message) == (
        "release",
        "database unavailable while it ran (gone away); it will run again",
    )
    res = executor(lost).execute(action(attempts=MAX_TRANSIENT_RERUNS))
    assert (res.kind, res.message) == ("failed", "gone away")
    res = executor(lost, hook="wch_other").execute(action("wch_other"))
    assert (res.kind, res.message) == ("failed", "gone away")


def test_a_shutdown_releases_only_when_the_worker_is_stopping() -> None:
    stop = threading.Event()
    handler = raises(ShutdownRequested("stopping between recipients"))
    res = executor(handler, stop=stop).execute(action())
    assert (res.kind, res.message) == (
        "failed",
        "handler stopped without a shutdown: stopping between recipients",
    )
    stop.set()
    res = executor(handler, stop=stop).execute(action())
    assert (res.kind, res.message) == ("release", "stopping between recipients")


def test_a_shutdown_caused_by_a_database_outage_counts_as_losing_the_database() -> None:
    exc = ShutdownRequested("database away: put back")
    exc.__cause__ = TransientStoreError("gone")
    res = executor(raises(exc)).execute(action())
    assert (res.kind, res.message) == ("release", "database away: put back")


def test_messages_are_one_line_bounded_and_without_secrets() -> None:
    res = executor(
        raises(PermanentError("token s3cr3t\nrejected " + "x" * 2000)), secrets=("s3cr3t",)
    ).execute(action())
    assert res.message.startswith("token *** rejected x") and len(res.message) == MAX_MESSAGE


def test_run_never_raises_and_stamps_the_times() -> None:
    res = executor(raises(SystemExit(3))).run(action())
    assert (res.kind, res.message) == ("failed", "SystemExit: 3")
    assert (
        res.schedule is not None
    )  # parsed before the handler ran: a recurring action still gets its next one
    assert res.finished >= res.started > 0 and res.finished_at is not None


@pytest.mark.parametrize("kind", ["complete", "failed"])
def test_execute_fills_a_given_result_in_place(kind: str) -> None:
    from wch_bridge.worker import Result

    given = Result(action=action(), kind="failed")
    handler = (lambda job: None) if kind == "complete" else raises(PermanentError("no"))
    assert executor(handler).execute(action(), given) is given
    assert given.kind == kind
