"""``wch-bridge jobs list|show|retry|cancel|purge``: see and fix the served groups' queue without WordPress."""

from __future__ import annotations

import json
import sys
from collections import Counter
from datetime import datetime
from typing import Any

import click

from wch_bridge import argscodec, phpser, schedules
from wch_bridge.cli.common import (
    EXIT_ENV,
    EXIT_USAGE,
    db_options,
    echo_json,
    fail,
    handle_errors,
    main,
    make_settings,
)
from wch_bridge.cli.opsutil import (
    STATUSES,
    OpsGroup,
    confirm,
    error_text,
    first_line,
    fmt_dt,
    mask_json_text,
    mask_value,
    open_ops_store,
    parse_duration,
    progress,
    refused,
    status_text,
    style,
    table,
)
from wch_bridge.errors import ActionDataError, WchBridgeError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.models import Action, Status
from wch_bridge.store import queries
from wch_bridge.store.actions import ActionStore

MAX_LINES = 20  # per-action lines printed by the bulk forms before "... and N more"


@main.group("jobs", cls=OpsGroup)
def jobs_group() -> None:
    """List, inspect, retry, cancel and purge the served groups' Action Scheduler actions."""


def _served(store: ActionStore, groups: tuple[str, ...]) -> dict[int, str]:
    return queries.served_group_ids(store, groups)


def _args_summary(action: Action) -> str:
    try:
        return argscodec.args_summary(mask_value(argscodec.decode_args(action.args_json)), 60)
    except ActionDataError as exc:
        return f"<invalid args: {first_line(str(exc), 40)}>"


# ---------------------------------------------------------------------------------------------- list
@jobs_group.command("list")
@db_options
@click.option("--status", "status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option("--hook", default=None, help="Only this hook.")
@click.option("--since", default=None, metavar="DURATION",
              help="Only actions scheduled or last attempted within DURATION (30m, 24h, 7d).")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True, help="Rows per page.")
@click.option("--page", type=click.IntRange(1), default=1, show_default=True, help="Page number (1 = newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (shape: docs/cli-json.md).")
@handle_errors
def list_cmd(dsn: str, prefix: str, groups: str, status: str | None, hook: str | None, since: str | None,
             limit: int, page: int, as_json: bool) -> None:
    """Actions of the served groups, newest first (by action id), one page at a time: id, hook, status,
    scheduled date (UTC), attempts, the first line of the last error, and the args (phone numbers masked)."""
    settings = make_settings(dsn=dsn, prefix=prefix, groups=groups)
    window = parse_duration(since, "--since")
    store = open_ops_store(settings)
    now = store.now()
    cutoff = now - window if window else None
    rows, has_more = queries.list_actions(
        store, _served(store, settings.groups), statuses=[status] if status else None, hook=hook, since=cutoff,
        limit=limit, offset=(page - 1) * limit,
    )
    errors = queries.last_errors(store, [a.action_id for a in rows])
    items = [
        {
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
        for a in rows
    ]
    if as_json:
        echo_json({
            "page": page, "limit": limit, "has_more": has_more, "next_page": page + 1 if has_more else None,
            "filters": {"status": status, "hook": hook, "since": since, "since_gmt": fmt_dt(cutoff),
                        "groups": list(settings.groups)},
            "actions": items,
        })
        return
    if not items:
        click.echo("no actions match" + (f" on page {page}" if page > 1 else ""))
        return
    body = [
        [i["id"], i["hook"], status_text(i["status"]), i["scheduled_gmt"] or "-", i["attempts"],
         first_line(i["last_error"], 60), i["args_summary"]]
        for i in items
    ]
    for line in table(["ID", "HOOK", "STATUS", "SCHEDULED (UTC)", "ATTEMPTS", "LAST ERROR", "ARGS"], body,
                      right=(0, 4)):
        click.echo(line)
    more = f"; more on --page {page + 1}" if has_more else ""
    click.echo(style(f"page {page}: {len(items)} action(s){more}", dim=True))


# ---------------------------------------------------------------------------------------------- show
def _schedule_json(raw: str | None) -> dict[str, Any]:
    try:
        s = phpser.parse_schedule(raw)
    except ActionDataError as exc:
        return {"type": "invalid", "error": str(exc)}
    if isinstance(s, schedules.NullSchedule):
        return {"type": "async"}
    out: dict[str, Any] = {
        "type": {schedules.SimpleSchedule: "simple", schedules.IntervalSchedule: "interval",
                 schedules.CronSchedule: "cron"}[type(s)],
        "scheduled_timestamp": s.scheduled_timestamp,
        "scheduled_gmt": fmt_dt(s.scheduled_at()),
    }
    if isinstance(s, schedules.IntervalSchedule):
        out.update(first_timestamp=s.first_timestamp, recurrence=s.recurrence, interval_seconds=s.interval_seconds)
    elif isinstance(s, schedules.CronSchedule):
        out.update(first_timestamp=s.first_timestamp, expression=s.expression)
    return out


def _links(messages: list[str]) -> tuple[int | None, list[int]]:
    retry_of, retried_as = None, []
    of_prefix = queries.RETRY_OF.format("")
    for m in messages:
        if m.startswith(of_prefix) and m[len(of_prefix):].isdigit():
            retry_of = int(m[len(of_prefix):])
        elif m.startswith(queries.RETRIED_AS_PREFIX):
            digits = m[len(queries.RETRIED_AS_PREFIX):].split(" ", 1)[0]
            if digits.isdigit():
                retried_as.append(int(digits))
    return retry_of, retried_as


@jobs_group.command("show")
@db_options
@click.argument("action_id", type=click.IntRange(1), metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (shape: docs/cli-json.md).")
@handle_errors
def show_cmd(dsn: str, prefix: str, groups: str, action_id: int, as_json: bool) -> None:
    """One action: the whole row, its decoded args (phone numbers masked) and schedule, and its log lines in
    order. Any group can be shown (read only)."""
    settings = make_settings(dsn=dsn, prefix=prefix, groups=groups)
    store = open_ops_store(settings)
    a = store.get_action(action_id)
    if a is None:
        fail(f"action #{action_id} not found under prefix {settings.prefix!r}", EXIT_USAGE)
        return
    logs = store.get_logs(action_id)
    try:
        decoded: Any = mask_value(argscodec.decode_args(a.args_json))
        args_error = None
    except ActionDataError as exc:
        decoded, args_error = None, str(exc)
    retry_of, retried_as = _links([lg.message for lg in logs])
    data = {
        "action": {
            "action_id": a.action_id, "hook": a.hook, "status": a.status, "group": a.group, "group_id": a.group_id,
            "priority": a.priority, "scheduled_date_gmt": fmt_dt(a.scheduled_date_gmt),
            "scheduled_date_local": fmt_dt(a.scheduled_date_local), "attempts": a.attempts,
            "last_attempt_gmt": fmt_dt(a.last_attempt_gmt), "last_attempt_local": fmt_dt(a.last_attempt_local),
            "claim_id": a.claim_id, "args": mask_json_text(a.args), "extended_args": mask_json_text(a.extended_args),
            "schedule": a.schedule,
        },
        "args": decoded,
        "args_error": args_error,
        "schedule": _schedule_json(a.schedule),
        "retry_of": retry_of,
        "retried_as": retried_as,
        "logs": [
            {"log_id": lg.log_id, "message": mask_phones_in_text(lg.message), "log_date_gmt": fmt_dt(lg.log_date_gmt),
             "log_date_local": fmt_dt(lg.log_date_local)}
            for lg in logs
        ],
    }
    if as_json:
        echo_json(data)
        return
    row = data["action"]
    click.echo(style(f"action #{a.action_id}", bold=True) + f"  {a.hook}  " + status_text(a.status))
    for key in ("group", "group_id", "priority", "scheduled_date_gmt", "scheduled_date_local", "attempts",
                "last_attempt_gmt", "last_attempt_local", "claim_id", "args", "extended_args"):
        value = row[key]
        click.echo(f"  {key:<21} {'-' if value is None else value}")
    raw_schedule = (a.schedule or "-").replace("\0", "\\0")
    click.echo(f"  {'schedule':<21} {raw_schedule}")
    sched = data["schedule"]
    click.echo(f"  {'schedule (decoded)':<21} " + ", ".join(f"{k}={v}" for k, v in sched.items()))
    if retry_of:
        click.echo(f"  {'retry of':<21} #{retry_of}")
    if retried_as:
        click.echo(f"  {'retried as':<21} " + ", ".join(f"#{i}" for i in retried_as))
    click.echo("args (decoded):")
    if args_error:
        click.echo("  " + style(f"invalid: {args_error}", fg="red"))
    else:
        for line in json.dumps(decoded, indent=2, ensure_ascii=False).splitlines():
            click.echo("  " + line)
    click.echo(f"logs ({len(logs)}):")
    for lg in data["logs"]:
        head = f"  #{lg['log_id']}  {lg['log_date_gmt'] or '-'}  "
        click.echo(head + lg["message"].replace("\n", "\n" + " " * len(head)))


# ---------------------------------------------------------------------------------------------- retry / cancel
def _check_ids(store: ActionStore, ids: tuple[int, ...], served: dict[int, str], allowed: tuple[str, ...],
               verb: str) -> list[Action]:
    """Every id must exist, be in a served group and have an allowed status; else one line and exit 1."""
    problems, actions = [], []
    for aid in dict.fromkeys(ids):
        a = store.get_action(aid)
        if a is None:
            problems.append(f"action #{aid} not found")
        elif a.group_id not in served:
            problems.append(f"action #{aid} is in group {a.group!r}, not served (--group {','.join(served.values()) or '-'})")
        elif a.status not in allowed:
            problems.append(f"action #{aid} is {a.status}: only {' or '.join(allowed)} actions can be {verb}")
        else:
            actions.append(a)
    if problems:
        fail("; ".join(problems) + " (nothing was changed)", EXIT_USAGE)
    return actions


def _retry_line(r: queries.RetryResult) -> str:
    if r.new_id:
        return f"retried #{r.source_id} as #{r.new_id}"
    if r.would:
        return f"would retry #{r.source_id}"
    extra = f" #{r.existing_id}" if r.existing_id else ""
    hint = " (--force to retry anyway)" if r.existing_id or r.skipped == "was retried before" else ""
    return f"skipped #{r.source_id}: {r.skipped}{extra}{hint}"


def _echo_limited(lines: list[str], total: int) -> None:
    for line in lines[:MAX_LINES]:
        click.echo(line)
    if total > MAX_LINES:
        click.echo(f"... and {total - MAX_LINES} more")


@jobs_group.command("retry")
@db_options
@click.argument("ids", nargs=-1, type=click.IntRange(1), metavar="[ID]...")
@click.option("--all-failed", is_flag=True, help="Retry every failed action of the served groups (bulk form).")
@click.option("--hook", default=None, help="With --all-failed: only this hook.")
@click.option("--since", default=None, metavar="DURATION",
              help="With --all-failed: only actions scheduled or last attempted within DURATION (30m, 24h, 7d).")
@click.option("--force", is_flag=True, help="Retry even when a pending retry exists (or, in bulk, an earlier retry).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show what would be retried; change nothing.")
@handle_errors
def retry_cmd(dsn: str, prefix: str, groups: str, ids: tuple[int, ...], all_failed: bool, hook: str | None,
              since: str | None, force: bool, yes: bool, dry_run: bool) -> None:
    """Run failed (or canceled) actions again: for each, a new pending action with the same hook, args, group
    and priority, due now. The new action logs `retry of action #M`, the old one `retried as action #N via
    WCH Bridge CLI`, in one transaction with the insert.

    An action that already has a pending (or running) retry is skipped unless --force. The bulk form
    --all-failed (failed only, not canceled) also skips actions that were retried before, so that only the
    newest action of a retry chain is retried again; it asks for confirmation (--yes skips) and shows a
    progress bar. Exit 0 when every action was retried or skipped, 1 on bad ids or options, 2 when some
    could not be recorded (listed; each one is either fully recorded or not at all)."""
    settings = make_settings(dsn=dsn, prefix=prefix, groups=groups)
    if ids and all_failed:
        fail("give action IDs or --all-failed, not both", EXIT_USAGE)
    if not ids and not all_failed:
        fail("give the action IDs to retry, or --all-failed", EXIT_USAGE)
    if ids and (hook or since):
        fail("--hook and --since select actions for --all-failed; they cannot be combined with IDs", EXIT_USAGE)
    window = parse_duration(since, "--since")
    store = open_ops_store(settings)
    served = _served(store, settings.groups)
    now = store.now()
    results: list[queries.RetryResult] = []
    failures: list[tuple[int, str]] = []

    def one(aid: int, bulk: bool) -> None:
        try:
            results.append(queries.retry_action(store, aid, force=force, skip_retried=bulk, dry_run=dry_run, now=now))
        except WchBridgeError as exc:
            failures.append((aid, first_line(str(exc), 200)))

    if ids:
        for a in _check_ids(store, ids, served, (Status.FAILED.value, Status.CANCELED.value), "retried"):
            one(a.action_id, bulk=False)
        for r in results:
            click.echo(_retry_line(r))
    else:
        cutoff = now - window if window else None
        sel: dict[str, Any] = {"statuses": [Status.FAILED.value], "hook": hook, "since": cutoff}
        total = queries.count_actions(store, served, **sel)
        what = f"failed action(s) in group(s) {', '.join(settings.groups)}" + (f" of hook {hook}" if hook else "") + (
            f" active since {fmt_dt(cutoff)} UTC" if cutoff else "")
        if not total:
            click.echo(f"no {what}")
            return
        if not dry_run and not confirm(f"Retry {total} {what}?", yes):
            refused()
        after = 0
        with progress(total, "dry run" if dry_run else "retrying") as bar:
            while True:
                page = queries.action_ids_page(store, served, after_id=after, **sel)
                if not page:
                    break
                for aid in page:
                    one(aid, bulk=True)
                    bar.update(1)
                after = page[-1]
        _echo_limited([_retry_line(r) for r in results], len(results))
    _retry_summary(results, failures, dry_run)


def _retry_summary(results: list[queries.RetryResult], failures: list[tuple[int, str]], dry_run: bool) -> None:
    done = [r for r in results if r.new_id]
    would = [r for r in results if r.would]
    skipped = Counter(r.skipped for r in results if r.skipped)
    parts = [f"would retry {len(would)}" if dry_run else f"retried {len(done)}"]
    if skipped:
        parts.append("skipped " + ", ".join(f"{n} ({why})" for why, n in skipped.items()))
    if failures:
        parts.append(style(f"could not retry {len(failures)}", fg="red"))
    click.echo(("dry run: " if dry_run else "") + "; ".join(parts) + ("; nothing was changed" if dry_run else ""))
    if failures:
        for aid, why in failures:
            click.echo(f"could not retry #{aid}: {why}", err=True)
        sys.exit(EXIT_ENV)


@jobs_group.command("cancel")
@db_options
@click.argument("ids", nargs=-1, type=click.IntRange(1), metavar="[ID]...")
@click.option("--hook", default=None, help="Cancel every pending action of this hook in the served groups (bulk form).")
@click.option("--status", "status", type=click.Choice(["pending"]), default="pending", show_default=True,
              help="Status to cancel: only pending actions can be canceled.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show what would be canceled; change nothing.")
@handle_errors
def cancel_cmd(dsn: str, prefix: str, groups: str, ids: tuple[int, ...], hook: str | None, status: str,
               yes: bool, dry_run: bool) -> None:
    """Cancel pending actions (status `canceled`, log `action canceled`, as Action Scheduler does). Running
    (in-progress) and finished actions are never touched; a canceled action stays in the table for `jobs retry`.

    The bulk form --hook asks for confirmation (--yes skips), works in batches of 500 and shows a progress
    bar. Exit 0 when done, 1 on bad ids or options (or when an action stopped being pending meanwhile)."""
    settings = make_settings(dsn=dsn, prefix=prefix, groups=groups)
    if ids and hook:
        fail("give action IDs or --hook, not both", EXIT_USAGE)
    if not ids and not hook:
        fail("give the action IDs to cancel, or --hook", EXIT_USAGE)
    store = open_ops_store(settings)
    served = _served(store, settings.groups)
    if ids:
        actions = _check_ids(store, ids, served, (status,), "canceled")
        wanted = [a.action_id for a in actions]
        if dry_run:
            for aid in wanted:
                click.echo(f"would cancel #{aid}")
            click.echo(f"dry run: would cancel {len(wanted)}; nothing was changed")
            return
        got = store.cancel(wanted)
        for aid in wanted:
            click.echo(f"canceled #{aid}" if aid in got else f"not canceled #{aid}: no longer pending")
        click.echo(f"canceled {len(got)}" + (f"; {len(wanted) - len(got)} no longer pending" if len(got) < len(wanted) else ""))
        if len(got) < len(wanted):
            sys.exit(EXIT_USAGE)
        return
    total = queries.count_actions(store, served, statuses=[status], hook=hook)
    what = f"pending {hook} action(s) in group(s) {', '.join(settings.groups)}"
    if not _go_ahead(total, what, f"would cancel {total} {what}", f"Cancel {total} {what}?", dry_run, yes):
        return
    canceled = vanished = 0
    after = 0
    with progress(total, "canceling") as bar:
        while True:
            page = queries.action_ids_page(store, served, statuses=[status], hook=hook, after_id=after)
            if not page:
                break
            got = store.cancel(page)
            canceled += len(got)
            vanished += len(page) - len(got)
            bar.update(len(page))
            after = page[-1]
    click.echo(f"canceled {canceled}" + (f"; {vanished} were no longer pending (left as they are)" if vanished else ""))


def _go_ahead(total: int, what: str, would: str, question: str, dry_run: bool, yes: bool) -> bool:
    """The preamble of a bulk change: nothing to do, a dry run (says what it would do), or the confirmation."""
    if not total:
        click.echo(f"no {what}")
        return False
    if dry_run:
        click.echo(f"dry run: {would}; nothing was changed")
        return False
    if not confirm(question, yes):
        refused()
    return True


# ---------------------------------------------------------------------------------------------- purge
@jobs_group.command("purge")
@db_options
@click.option("--status", "status", type=click.Choice(list(queries.PURGEABLE)), required=True,
              help="Which finished actions to delete.")
@click.option("--older-than", "older_than", required=True, metavar="DURATION",
              help="Age: 30m, 24h, 7d, 4w ... (see above for how it is measured).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@handle_errors
def purge_cmd(dsn: str, prefix: str, groups: str, status: str, older_than: str, dry_run: bool, yes: bool) -> None:
    """Delete old finished actions of the served groups and their log rows, in batches of 500 per
    transaction. Pending and in-progress actions are never deleted.

    \b
    Age is measured like Action Scheduler's cleaner, on last_attempt_gmt (when the action last ran);
    an action that never ran (for example canceled while pending) is measured on scheduled_date_gmt
    instead, so it is not purged the moment it is canceled. Asks for confirmation (--yes skips)."""
    settings = make_settings(dsn=dsn, prefix=prefix, groups=groups)
    age = parse_duration(older_than, "--older-than")
    assert age is not None
    store = open_ops_store(settings)
    served = list(_served(store, settings.groups))
    cutoff: datetime = store.now() - age
    total = queries.count_purgeable(store, served, status, cutoff)
    what = f"{status} action(s) in group(s) {', '.join(settings.groups)} older than {older_than} (before {fmt_dt(cutoff)} UTC)"
    if not _go_ahead(total, what, f"would delete {total} {what} and their logs",
                     f"Delete {total} {what} and their logs?", dry_run, yes):
        return
    actions = logs = 0
    after = 0
    with progress(total, "purging") as bar:
        while True:
            b = queries.purge_batch(store, served, status, cutoff, after_id=after)
            if not b.last_id:
                break
            actions += b.actions
            logs += b.logs
            after = b.last_id
            bar.update(b.actions)
    click.echo(f"deleted {actions} {status} action(s) and {logs} log row(s)")
