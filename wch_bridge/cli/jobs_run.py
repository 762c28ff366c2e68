"""``wch-bridge jobs run``: run one pending action of the served groups now, through the worker's own path."""

from __future__ import annotations

import sys
from dataclasses import replace

import click

from wch_bridge import operations
from wch_bridge.cli.common import UsageError, setup_logging
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.jobs import jobs_group
from wch_bridge.cli.jobs_guards import check_ids
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.models import Status

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
    (action,) = check_ids(store, (action_id,), served, (Status.PENDING.value,), "run")
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
