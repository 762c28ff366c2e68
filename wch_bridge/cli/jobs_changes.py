"""``wch-bridge jobs retry|cancel|purge``: fix the served groups' queue without WordPress (``jobs list|show``:
``wch_bridge.cli.jobs``)."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import click

from wch_bridge import operations
from wch_bridge.cli.common import EXIT_ENV, EXIT_USAGE, UsageError, setup_logging
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs import jobs_group
from wch_bridge.cli.output import confirm, first_line, fmt_dt, parse_duration, progress, refused, style
from wch_bridge.errors import WchBridgeError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.models import Action, Status

MAX_LINES = 20  # per-action lines printed by the bulk forms before "... and N more"


# ---------------------------------------------------------------------------------------------- retry / cancel
def _check_ids(
    store: operations.ActionStore,
    ids: tuple[int, ...],
    served: dict[int, str],
    allowed: tuple[str, ...],
    verb: str,
) -> list[Action]:
    """Every id must exist, be in a served group and have an allowed status; else one line and exit 1."""
    problems, actions = [], []
    for aid in dict.fromkeys(ids):
        a = store.get_action(aid)
        if a is None:
            problems.append(f"action #{aid} not found")
        elif a.group_id not in served:
            problems.append(
                f"action #{aid} is in group {a.group!r}, not served (--group {','.join(served.values()) or '-'})"
            )
        elif a.status not in allowed:
            problems.append(f"action #{aid} is {a.status}: only {' or '.join(allowed)} actions can be {verb}")
        else:
            actions.append(a)
    if problems:
        raise UsageError("; ".join(problems) + " (nothing was changed)")
    return actions


def _retry_line(r: operations.RetryResult) -> str:
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
@pass_cli_context
@click.argument("ids", nargs=-1, type=click.IntRange(1), metavar="[ID]...")
@click.option(
    "--all-failed", is_flag=True, help="Retry every failed action of the served groups (bulk form)."
)
@click.option("--hook", default=None, help="With --all-failed: only this hook.")
@click.option(
    "--since",
    default=None,
    metavar="DURATION",
    help="With --all-failed: only actions scheduled or last attempted within DURATION (30m, 24h, 7d).",
)
@click.option(
    "--force", is_flag=True, help="Retry even when a pending retry exists (or, in bulk, an earlier retry)."
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show what would be retried; change nothing.")
def retry_cmd(
    cli: CliContext,
    ids: tuple[int, ...],
    all_failed: bool,
    hook: str | None,
    since: str | None,
    force: bool,
    yes: bool,
    dry_run: bool,
) -> None:
    """Run failed (or canceled) actions again: for each, a new pending action with the same hook, args, group
    and priority, due now. The new action logs `retry of action #M`, the old one `retried as action #N via
    WCH Bridge CLI`, in one transaction with the insert.

    An action that already has a pending (or running) retry is skipped unless --force. The bulk form
    --all-failed (failed only, not canceled) also skips actions that were retried before, so that only the
    newest action of a retry chain is retried again; it asks for confirmation (--yes skips) and shows a
    progress bar. Exit 0 when every action was retried or skipped, 1 on bad ids or options, 2 when some
    could not be recorded (listed; each one is either fully recorded or not at all)."""
    if ids and all_failed:
        raise UsageError("give action IDs or --all-failed, not both")
    if not ids and not all_failed:
        raise UsageError("give the action IDs to retry, or --all-failed")
    if ids and (hook or since):
        raise UsageError(
            "--hook and --since select actions for --all-failed; they cannot be combined with IDs"
        )
    window = parse_duration(since, "--since")
    retrier = _Retrier(cli, force=force, dry_run=dry_run)
    if ids:
        retrier.by_ids(ids)
    elif not retrier.all_failed(hook, window, yes):
        return
    _retry_summary(retrier.results, retrier.failures, dry_run)


class _Retrier:
    """One ``jobs retry`` run: the results and the failures of each action retried."""

    def __init__(self, cli: CliContext, *, force: bool, dry_run: bool) -> None:
        self.settings = cli.settings
        self.store = cli.store()
        self.served = operations.served_group_ids(self.store, self.settings.groups)
        self.now = self.store.now()
        self.force, self.dry_run = force, dry_run
        self.results: list[operations.RetryResult] = []
        self.failures: list[tuple[int, str]] = []

    def one(self, aid: int, bulk: bool, dry_run: bool | None = None) -> operations.RetryResult | None:
        dry = self.dry_run if dry_run is None else dry_run
        try:
            result = operations.retry_action(
                self.store, aid, force=self.force, skip_retried=bulk, dry_run=dry, now=self.now
            )
        except WchBridgeError as exc:
            self.failures.append((aid, first_line(str(exc), 200)))
            return None
        self.results.append(result)
        return result

    def by_ids(self, ids: tuple[int, ...]) -> None:
        allowed = (Status.FAILED.value, Status.CANCELED.value)
        for a in _check_ids(self.store, ids, self.served, allowed, "retried"):
            self.one(a.action_id, bulk=False)
        for r in self.results:
            click.echo(_retry_line(r))

    def _selected(self, sel: dict[str, Any]) -> Iterator[int]:
        after = 0
        while True:
            page = operations.action_ids_page(self.store, self.served, after_id=after, **sel)
            if not page:
                return
            yield from page
            after = page[-1]

    def _plan(self, sel: dict[str, Any], total: int) -> list[int]:
        """Before asking: a dry run over the selection, so the question counts what will really be retried (the
        actions skipped, retried before or with a pending retry, are kept as results and not asked about)."""
        ids = []
        with progress(total, "checking") as bar:
            for aid in self._selected(sel):
                r = self.one(aid, bulk=True, dry_run=True)
                if r is not None and r.would:
                    ids.append(aid)
                    self.results.pop()
                bar.update(1)
        return ids

    def all_failed(self, hook: str | None, window: timedelta | None, yes: bool) -> bool:
        """The bulk form; False when there was nothing to retry."""
        cutoff = self.now - window if window else None
        sel: dict[str, Any] = {"statuses": [Status.FAILED.value], "hook": hook, "since": cutoff}
        total = operations.count_actions(self.store, self.served, **sel)
        what = (
            f"failed action(s) in group(s) {', '.join(self.settings.groups)}"
            + (f" of hook {hook}" if hook else "")
            + (f" active since {fmt_dt(cutoff)} UTC" if cutoff else "")
        )
        if not total:
            click.echo(f"no {what}")
            return False
        todo: Iterable[int] = self._selected(sel)
        if not self.dry_run and not yes:
            planned = self._plan(sel, total)
            if planned:
                others = len(self.results) + len(self.failures)
                note = f" ({others} other(s) will be skipped)" if others else ""
                if not confirm(f"Retry {len(planned)} {what}{note}?", yes):
                    refused()
            todo, total = planned, len(planned)
        with progress(total, "dry run" if self.dry_run else "retrying") as bar:
            for aid in todo:
                self.one(aid, bulk=True)
                bar.update(1)
        self.results.sort(key=lambda r: r.source_id)
        _echo_limited([_retry_line(r) for r in self.results], len(self.results))
        return True


def _retry_summary(
    results: list[operations.RetryResult], failures: list[tuple[int, str]], dry_run: bool
) -> None:
    done = [r for r in results if r.new_id]
    would = [r for r in results if r.would]
    skipped = Counter(r.skipped for r in results if r.skipped)
    parts = [f"would retry {len(would)}" if dry_run else f"retried {len(done)}"]
    if skipped:
        parts.append("skipped " + ", ".join(f"{n} ({why})" for why, n in skipped.items()))
    if failures:
        parts.append(style(f"could not retry {len(failures)}", fg="red"))
    click.echo(
        ("dry run: " if dry_run else "") + "; ".join(parts) + ("; nothing was changed" if dry_run else "")
    )
    if failures:
        for aid, why in failures:
            click.echo(f"could not retry #{aid}: {why}", err=True)
        sys.exit(EXIT_ENV)


@jobs_group.command("cancel")
@pass_cli_context
@click.argument("ids", nargs=-1, type=click.IntRange(1), metavar="[ID]...")
@click.option(
    "--hook", default=None, help="Cancel every pending action of this hook in the served groups (bulk form)."
)
@click.option(
    "--status",
    "status",
    type=click.Choice(["pending"]),
    default="pending",
    show_default=True,
    help="Status to cancel: only pending actions can be canceled.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--dry-run", is_flag=True, help="Show what would be canceled; change nothing.")
def cancel_cmd(
    cli: CliContext, ids: tuple[int, ...], hook: str | None, status: str, yes: bool, dry_run: bool
) -> None:
    """Cancel pending actions (status `canceled`, log `action canceled`, as Action Scheduler does). Running
    (in-progress) and finished actions are never touched; a canceled action stays in the table for `jobs retry`.

    The bulk form --hook asks for confirmation (--yes skips), works in batches of 500 and shows a progress
    bar. Exit 0 when done, 1 on bad ids or options (or when an action stopped being pending meanwhile)."""
    settings = cli.settings
    if ids and hook:
        raise UsageError("give action IDs or --hook, not both")
    if not ids and not hook:
        raise UsageError("give the action IDs to cancel, or --hook")
    store = cli.store()
    served = operations.served_group_ids(store, settings.groups)
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
        click.echo(
            f"canceled {len(got)}"
            + (f"; {len(wanted) - len(got)} no longer pending" if len(got) < len(wanted) else "")
        )
        if len(got) < len(wanted):
            sys.exit(EXIT_USAGE)
        return
    total = operations.count_actions(store, served, statuses=[status], hook=hook)
    what = f"pending {hook} action(s) in group(s) {', '.join(settings.groups)}"
    if not _go_ahead(total, what, f"would cancel {total} {what}", f"Cancel {total} {what}?", dry_run, yes):
        return
    canceled = vanished = 0
    after = 0
    with progress(total, "canceling") as bar:
        while True:
            page = operations.action_ids_page(store, served, statuses=[status], hook=hook, after_id=after)
            if not page:
                break
            got = store.cancel(page)
            canceled += len(got)
            vanished += len(page) - len(got)
            bar.update(len(page))
            after = page[-1]
    click.echo(
        f"canceled {canceled}"
        + (f"; {vanished} were no longer pending (left as they are)" if vanished else "")
    )


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
@pass_cli_context
@click.option(
    "--status",
    "statuses",
    type=click.Choice(list(operations.PURGEABLE)),
    required=True,
    multiple=True,
    help="Which finished actions to delete; repeat for several (--status complete --status failed).",
)
@click.option(
    "--older-than",
    "older_than",
    required=True,
    metavar="DURATION",
    help="Age: 30m, 24h, 7d, 4w ... (see above for how it is measured).",
)
@click.option("--hook", default=None, help="Only actions of this hook.")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge_cmd(
    cli: CliContext, statuses: tuple[str, ...], older_than: str, hook: str | None, dry_run: bool, yes: bool
) -> None:
    """Delete old finished actions of the served groups (optionally of one --hook) and their log rows, in
    batches of 500 per transaction, each batch all or nothing (the DELETE names the rows by primary key and
    checks their status again). Pending and in-progress actions are never deleted.

    \b
    Age is measured like Action Scheduler's cleaner, on last_attempt_gmt (when the action last ran);
    an action that never ran (for example canceled while pending) is measured on scheduled_date_gmt
    instead, so it is not purged the moment it is canceled. Asks for confirmation (--yes skips)."""
    settings = cli.settings
    age = parse_duration(older_than, "--older-than")
    assert age is not None
    statuses = tuple(dict.fromkeys(statuses))
    store = cli.store()
    served = list(operations.served_group_ids(store, settings.groups))
    cutoff: datetime = store.now() - age
    counts = {s: operations.count_purgeable(store, served, s, cutoff, hook) for s in statuses}
    total = sum(counts.values())
    what = (
        f"{' or '.join(statuses)} action(s) in group(s) {', '.join(settings.groups)}"
        + (f" of hook {hook}" if hook else "")
        + f" older than {older_than} (before {fmt_dt(cutoff)} UTC)"
    )
    if not _go_ahead(
        total,
        what,
        f"would delete {total} {what} and their logs",
        f"Delete {total} {what} and their logs?",
        dry_run,
        yes,
    ):
        return
    done: dict[str, tuple[int, int]] = {}
    with progress(total, "purging") as bar:
        for status in statuses:
            done[status] = _purge_status(store, served, status, cutoff, hook, bar)
    for status, (actions, logs) in done.items():
        click.echo(f"deleted {actions} {status} action(s) and {logs} log row(s)")


def _purge_status(
    store: operations.ActionStore, served: list[int], status: str, cutoff: datetime, hook: str | None, bar: Any
) -> tuple[int, int]:
    actions = logs = 0
    after = 0
    while True:
        b = operations.purge_batch(store, served, status, cutoff, after_id=after, hook=hook)
        if not b.last_id:
            break
        actions += b.actions
        logs += b.logs
        after = b.last_id
        bar.update(b.actions)
    return actions, logs


# ---------------------------------------------------------------------------------------------- run
#: ``jobs run`` exit codes beyond 0 (it ran and completed), 1 (refused: nothing changed) and 2 (database errors).
EXIT_RUN_FAILED = 3
EXIT_RUN_NOT_RECORDED = 4


@jobs_group.command("run")
@pass_cli_context
@click.argument("action_id", type=click.IntRange(1), metavar="ID")
def run_cmd(cli: CliContext, action_id: int) -> None:
    """Run one pending action of the served groups now, through the worker's own path: the guarded start (only
    while it is pending and unclaimed; log `action started via WCH Bridge`), its handler with the services `run`
    uses (WhatsApp settings, the message ledger), then the guarded finish (`action complete via WCH Bridge` or
    `action failed via WCH Bridge: ...`), its follow-ups and, for a recurring action, its next instance. While it
    runs, a heartbeat row holds it, so no live worker takes it over. Its due date and a pause (`hooks pause`) are
    not waited for.

    \b
    Exit codes:
      0  it ran and completed
      1  refused, nothing changed: not found, not pending (or claimed by PHP), not in the served groups, no
         handler for its hook (or a WhatsApp hook without WhatsApp settings), started by someone else meanwhile
      2  database errors
      3  it ran and failed (recorded as failed, as the worker would)
      4  it ran but the outcome was not recorded as complete/failed: released back to pending (database lost
         while it ran), or its row was changed meanwhile by someone else"""
    settings = cli.settings
    setup_logging("CRITICAL", settings.log_format)  # the outcome is the one line printed below
    store = cli.store()
    served = operations.served_group_ids(store, settings.groups)
    (action,) = _check_ids(store, (action_id,), served, (Status.PENDING.value,), "run")
    if action.claim_id:
        raise UsageError(f"action #{action_id} is claimed by PHP's runner (claim {action.claim_id}): it is about "
                         "to run there (nothing was changed)")
    res = operations.run_action_now(settings, store, action)
    head = f"action #{action_id} ({action.hook})"
    if not res.taken:
        raise UsageError(f"{head} was started by someone else meanwhile (nothing was changed)")
    took = f"in {res.seconds:.1f} s"
    res = replace(res, message=mask_phones_in_text(res.message))
    if res.kind == "release":
        click.echo(f"{head} released back to pending {took}: {res.message}")
        sys.exit(EXIT_RUN_NOT_RECORDED)
    if not res.recorded:
        click.echo(f"{head} finished {res.kind} {took} but was not recorded: its row was changed meanwhile "
                   "(wch-bridge jobs show " + str(action_id) + ")")
        sys.exit(EXIT_RUN_NOT_RECORDED)
    if res.kind == "complete":
        click.echo(f"{head} complete {took}" + (f": {res.message}" if res.message else ""))
        return
    click.echo(f"{head} failed {took}: {res.message}")
    sys.exit(EXIT_RUN_FAILED)
