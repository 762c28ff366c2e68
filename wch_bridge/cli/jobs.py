"""``wch-bridge jobs list|show``: see the served groups' queue without WordPress. The commands that change it
are one module each: ``jobs_retry``, ``jobs_cancel``, ``jobs_purge``, ``jobs_run`` (their checks: ``jobs_guards``)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import click

from wch_bridge import operations
from wch_bridge.cli.common import UsageError, echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs_table import list_table, output_width
from wch_bridge.cli.output import (
    STATUSES,
    error_text,
    first_line,
    fmt_dt,
    mask_json_text,
    mask_value,
    parse_duration,
    status_text,
    style,
)
from wch_bridge.cli.run import AT_FORMS, parse_when
from wch_bridge.errors import ActionDataError, ConfigError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.models import Action


@main.group("jobs")
def jobs_group() -> None:
    """List, inspect, retry, cancel and purge the served groups' Action Scheduler actions."""


def _args_summary(action: Action) -> str:
    try:
        return operations.summarize_args(mask_value(operations.decode_args(action.args_json)), 60)
    except ActionDataError as exc:
        return f"<invalid args: {first_line(str(exc), 40)}>"


# ---------------------------------------------------------------------------------------------- list
def _when(value: str | None, option: str, now: datetime) -> datetime | None:
    """--before/--after: a DURATION ago (30m, 24h, 7d, as --since) or a time in the forms of `enqueue --at`."""
    if value is None:
        return None
    try:
        window = parse_duration(value, option)
    except ConfigError:
        window = None
    if window is not None:
        return now - window
    try:
        return parse_when(value, now)
    except ConfigError:
        raise ConfigError(f"{option}: cannot read {value!r}: use a DURATION ago (30m, 24h, 7d) or {AT_FORMS}") from None


@jobs_group.command("list")
@pass_cli_context
@click.option("--status", "status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--hook", default=None, help="Only this hook.")
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    help="Only actions scheduled or last attempted within DURATION (30m, 24h, 7d).",
)
@click.option("--args-contains", "args_contains", default=None, metavar="TEXT",
              help="Only actions whose stored args contain TEXT (as stored: JSON; case-insensitive on most sites).")
@click.option("--after", default=None, metavar="WHEN",
              help="Only actions scheduled at or after WHEN: a DURATION ago (7d) or a time as for enqueue --at.")
@click.option("--before", default=None, metavar="WHEN",
              help="Only actions scheduled before WHEN: a DURATION ago (2h) or a time as for enqueue --at.")
@click.option("--stuck", default=None, is_flag=False, flag_value="", metavar="[DURATION]",
              help="Only in-progress actions started (or last touched) more than DURATION ago (default: the "
                   "orphan timeout, 30 s).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Rows per page.")
@click.option(
    "--page", type=click.IntRange(1), default=1, show_default=True, help="Page number (1 = newest)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (shape: docs/cli-json.md).")
def list_cmd(
    cli: CliContext,
    status: str | None,
    hook: str | None,
    since: str | None,
    args_contains: str | None,
    after: str | None,
    before: str | None,
    stuck: str | None,
    limit: int,
    page: int,
    as_json: bool,
) -> None:
    """Actions of the served groups, newest first (by action id), one page at a time: id, hook, status,
    scheduled date and last attempt (UTC), attempts, the first line of the last error, and the args (phone
    numbers masked). On a terminal (or with COLUMNS set) the table fits its width: hook, error and args are
    cut with "…", dates shortened (HH:MM today, else MM-DD); `jobs show ID` has everything."""
    settings = cli.settings
    window, stuck_for = _list_windows(status, since, stuck, settings.orphan_timeout)
    store = cli.store()
    now = store.now()
    cutoff = now - window if window else None
    narrow = _list_narrow(now, args_contains, after, before, stuck_for)
    served = operations.served_group_ids(store, settings.groups)
    rows, has_more = operations.list_actions(
        store,
        served,
        statuses=[status] if status else None,
        hook=hook,
        since=cutoff,
        limit=limit,
        offset=(page - 1) * limit,
        narrow=narrow,
    )
    errors = operations.last_errors(store, [a.action_id for a in rows])
    items = [_list_item(a, errors) for a in rows]
    if as_json:
        filters = {"status": status, "hook": hook, "since": since, "since_gmt": fmt_dt(cutoff),
                   **_narrow_filters(narrow, stuck_for), "groups": list(settings.groups)}
        echo_json(_list_json(items, page, limit, has_more, filters))
        return
    _print_list(items, page, has_more, now)


def _list_windows(
    status: str | None, since: str | None, stuck: str | None, orphan_timeout: float
) -> tuple[timedelta | None, timedelta | None]:
    """--since and --stuck read as durations (a bare --stuck: the orphan timeout); --stuck only with in-progress."""
    if stuck is not None and status not in (None, "in-progress"):
        raise UsageError("--stuck lists in-progress actions: it cannot be combined with --status " + str(status))
    window = parse_duration(since, "--since")
    stuck_for = parse_duration(stuck, "--stuck") if stuck else None
    if stuck is not None and stuck_for is None:
        stuck_for = timedelta(seconds=orphan_timeout)
    return window, stuck_for


def _list_narrow(
    now: datetime, args_contains: str | None, after: str | None, before: str | None, stuck_for: timedelta | None
) -> operations.Narrow:
    """The finer filters: --args-contains, --after/--before, --stuck."""
    return operations.Narrow(
        args_contains=args_contains or None,
        scheduled_after=_when(after, "--after", now),
        scheduled_before=_when(before, "--before", now),
        started_before=now - stuck_for if stuck_for is not None else None,
    )


def _narrow_filters(narrow: operations.Narrow, stuck_for: timedelta | None) -> dict[str, Any]:
    return {
        "args_contains": narrow.args_contains,
        "after_gmt": fmt_dt(narrow.scheduled_after),
        "before_gmt": fmt_dt(narrow.scheduled_before),
        "stuck_seconds": int(stuck_for.total_seconds()) if stuck_for is not None else None,
    }


def _list_json(
    items: list[dict[str, Any]], page: int, limit: int, has_more: bool, filters: dict[str, Any]
) -> dict[str, Any]:
    """The JSON of ``jobs list --json`` (docs/cli-json.md)."""
    return {
        "page": page,
        "limit": limit,
        "has_more": has_more,
        "next_page": page + 1 if has_more else None,
        "filters": filters,
        "actions": items,
    }


def _list_item(a: Action, errors: dict[int, str]) -> dict[str, Any]:
    return {
        "id": a.action_id,
        "hook": a.hook,
        "status": a.status,
        "group": a.group,
        "priority": a.priority,
        "scheduled_gmt": fmt_dt(a.scheduled_date_gmt),
        "last_attempt_gmt": fmt_dt(a.last_attempt_gmt),
        "attempts": a.attempts,
        "last_error": error_text(errors.get(a.action_id)),
        "args_summary": _args_summary(a),
    }


def _print_list(items: list[dict[str, Any]], page: int, has_more: bool, now: datetime) -> None:
    if not items:
        click.echo("no actions match" + (f" on page {page}" if page > 1 else ""))
        return
    width = output_width()
    for line in list_table(items, width, now):
        click.echo(line)
    more = f"; more on --page {page + 1}" if has_more else ""
    click.echo(style(f"page {page}: {len(items)} action(s){more}", dim=True))


# ---------------------------------------------------------------------------------------------- show
def _links(messages: list[str]) -> tuple[int | None, list[int]]:
    retry_of, retried_as = None, []
    of_prefix = operations.RETRY_OF.format("")
    for m in messages:
        if m.startswith(of_prefix) and m[len(of_prefix) :].isdigit():
            retry_of = int(m[len(of_prefix) :])
        elif m.startswith(operations.RETRIED_AS_PREFIX):
            digits = m[len(operations.RETRIED_AS_PREFIX) :].split(" ", 1)[0]
            if digits.isdigit():
                retried_as.append(int(digits))
    return retry_of, retried_as


@jobs_group.command("show")
@pass_cli_context
@click.argument("action_id", type=click.IntRange(1), metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (shape: docs/cli-json.md).")
def show_cmd(cli: CliContext, action_id: int, as_json: bool) -> None:
    """One action: the whole row, its decoded args (phone numbers masked) and schedule, and its log lines in
    order. Any group can be shown (read only)."""
    settings = cli.settings
    store = cli.store()
    a = store.get_action(action_id)
    if a is None:
        raise UsageError(f"action #{action_id} not found under prefix {settings.prefix!r}")
    data = _show_data(a, store.get_logs(action_id))
    if as_json:
        echo_json(data)
        return
    _print_show(a, data)


def _show_data(a: Action, logs: list[Any]) -> dict[str, Any]:
    try:
        decoded: Any = mask_value(operations.decode_args(a.args_json))
        args_error = None
    except ActionDataError as exc:
        decoded, args_error = None, str(exc)
    retry_of, retried_as = _links([lg.message for lg in logs])
    return {
        "action": {
            "action_id": a.action_id,
            "hook": a.hook,
            "status": a.status,
            "group": a.group,
            "group_id": a.group_id,
            "priority": a.priority,
            "scheduled_date_gmt": fmt_dt(a.scheduled_date_gmt),
            "scheduled_date_local": fmt_dt(a.scheduled_date_local),
            "attempts": a.attempts,
            "last_attempt_gmt": fmt_dt(a.last_attempt_gmt),
            "last_attempt_local": fmt_dt(a.last_attempt_local),
            "claim_id": a.claim_id,
            "args": mask_json_text(a.args),
            "extended_args": mask_json_text(a.extended_args),
            "schedule": a.schedule,
        },
        "args": decoded,
        "args_error": args_error,
        "schedule": operations.schedule_json(a.schedule),
        "retry_of": retry_of,
        "retried_as": retried_as,
        "logs": [
            {
                "log_id": lg.log_id,
                "message": mask_phones_in_text(lg.message),
                "log_date_gmt": fmt_dt(lg.log_date_gmt),
                "log_date_local": fmt_dt(lg.log_date_local),
            }
            for lg in logs
        ],
    }


def _print_show(a: Action, data: dict[str, Any]) -> None:
    row = data["action"]
    click.echo(style(f"action #{a.action_id}", bold=True) + f"  {a.hook}  " + status_text(a.status))
    for key in (
        "group",
        "group_id",
        "priority",
        "scheduled_date_gmt",
        "scheduled_date_local",
        "attempts",
        "last_attempt_gmt",
        "last_attempt_local",
        "claim_id",
        "args",
        "extended_args",
    ):
        value = row[key]
        if key == "args" and row["extended_args"] is not None:
            value = f"{value} (md5 of extended_args)"
        elif key == "extended_args" and value is not None:  # large args: printed once, decoded below
            value = f"{len(a.extended_args or '')} characters (decoded below)"
        click.echo(f"  {key:<21} {'-' if value is None else value}")
    raw_schedule = (a.schedule or "-").replace("\0", "\\0")
    click.echo(f"  {'schedule':<21} {raw_schedule}")
    sched = data["schedule"]
    click.echo(f"  {'schedule (decoded)':<21} " + ", ".join(f"{k}={v}" for k, v in sched.items()))
    if data["retry_of"]:
        click.echo(f"  {'retry of':<21} #{data['retry_of']}")
    if data["retried_as"]:
        click.echo(f"  {'retried as':<21} " + ", ".join(f"#{i}" for i in data["retried_as"]))
    click.echo("args (decoded):")
    if data["args_error"]:
        click.echo("  " + style(f"invalid: {data['args_error']}", fg="red"))
    else:
        for line in json.dumps(data["args"], indent=2, ensure_ascii=False).splitlines():
            click.echo("  " + line)
    click.echo(f"logs ({len(data['logs'])}):")
    for lg in data["logs"]:
        head = f"  #{lg['log_id']}  {lg['log_date_gmt'] or '-'}  "
        click.echo(head + lg["message"].replace("\n", "\n" + " " * len(head)))
