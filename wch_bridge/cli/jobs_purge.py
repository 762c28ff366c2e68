"""``wch-bridge jobs purge``: delete old finished actions of the served groups and their log rows, in batches."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from wch_bridge import operations
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs import jobs_group
from wch_bridge.cli.jobs_guards import go_ahead
from wch_bridge.cli.output import fmt_dt, parse_duration, progress


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
    if not go_ahead(
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
