"""``wch-bridge jobs retry``: run failed (or canceled) actions of the served groups again, by id or in bulk."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

import click

from wch_bridge import operations
from wch_bridge.cli.common import EXIT_ENV, UsageError
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs import jobs_group
from wch_bridge.cli.jobs_guards import check_ids
from wch_bridge.cli.output import confirm, first_line, fmt_dt, parse_duration, progress, refused, style
from wch_bridge.errors import WchBridgeError
from wch_bridge.models import Status

MAX_LINES = 20  # per-action lines printed by the bulk forms before "... and N more"


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
        for a in check_ids(self.store, ids, self.served, allowed, "retried"):
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
