"""``wch-bridge jobs cancel``: cancel pending actions of the served groups, by id or every one of a hook."""

from __future__ import annotations

import sys

import click

from wch_bridge import operations
from wch_bridge.cli.common import EXIT_USAGE, UsageError
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs import jobs_group
from wch_bridge.cli.jobs_guards import check_ids, go_ahead
from wch_bridge.cli.output import progress


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
        actions = check_ids(store, ids, served, (status,), "canceled")
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
    if not go_ahead(total, what, f"would cancel {total} {what}", f"Cancel {total} {what}?", dry_run, yes):
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
