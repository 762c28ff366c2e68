"""``wch-bridge messages list|resend``: the message ledger (``{prefix}wch_bridge_messages``) seen and acted on.

``list`` shows rows by status / campaign / kind / age (phone numbers masked). ``resend`` is an operator's
deliberate re-send of messages in doubt (``unknown``) or failed: each row goes ``unknown|failed -> retry``
(``resent by operator``, attempts start again) and gets its own ``hooks.RETRY_MESSAGE`` action, whose log
says who asked; the worker then sends it through the ledger like any retry. A row moves once per command (its
status and last change are checked in the same UPDATE), ``sent``/``sending``/``pending``/``retry`` rows are
refused, so a second resend of the same rows sends nothing."""

from __future__ import annotations

from typing import Any

import click

from wch_bridge import hooks, operations
from wch_bridge.cli.common import EXIT_USAGE, UsageError, echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.output import confirm, first_line, fmt_dt, parse_duration, refused, style, table
from wch_bridge.masking import mask_phone, mask_phones_in_text
from wch_bridge.operations import RESENDABLE, LedgerEntry

LEDGER_STATUSES = ("pending", "sending", "unknown", "retry", "failed", "sent")


@main.group("messages")
def messages_group() -> None:
    """List the message ledger and re-send messages in doubt or failed."""


def _row(e: LedgerEntry) -> dict[str, Any]:
    return {
        "id": e.id, "status": e.status, "kind": e.kind, "campaign_id": e.campaign_id,
        "recipient": mask_phone(e.recipient) if e.recipient else None, "key": mask_phones_in_text(e.key),
        "attempts": e.attempts, "error_code": e.error_code,
        "error_text": mask_phones_in_text(e.error_text) if e.error_text else None,
        "wa_message_id": e.wa_message_id, "action_id": e.action_id or None, "hook": e.hook or None,
        "created_at_gmt": fmt_dt(e.created_at), "updated_at_gmt": fmt_dt(e.updated_at),
        "sent_at_gmt": fmt_dt(e.sent_at),
    }


# ---------------------------------------------------------------------------------------------- list
@messages_group.command("list")
@pass_cli_context
@click.option("--status", "status", type=click.Choice(LEDGER_STATUSES), default=None, help="Only this status.")
@click.option("--campaign", default=None, help="Only this broadcast campaign id (exact).")
@click.option("--kind", default=None, help="Only this message kind (text, template, ...).")
@click.option("--since", default=None, metavar="DURATION", help="Only rows changed within DURATION (30m, 24h, 7d).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True, help="At most this many rows.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (shape: docs/cli-json.md).")
def list_cmd(cli: CliContext, status: str | None, campaign: str | None, kind: str | None, since: str | None,
             limit: int, as_json: bool) -> None:
    """Ledger rows, most recently changed first: id, status, kind, campaign, masked phone, attempts, error code
    and text, last change (UTC). `--status unknown` lists the messages in doubt (the request left, no answer was
    recorded: they may or may not have been delivered)."""
    window = parse_duration(since, "--since")
    store = cli.store()
    cutoff = store.now() - window if window else None
    rows = operations.ledger(store).list_messages(statuses=(status,) if status else (), campaign_id=campaign, kind=kind,
                                        since=cutoff, limit=limit)
    items = [_row(e) for e in rows]
    if as_json:
        echo_json({"filters": {"status": status, "campaign": campaign, "kind": kind, "since": since,
                               "since_gmt": fmt_dt(cutoff), "limit": limit}, "messages": items})
        return
    if not items:
        click.echo("no messages match")
        return
    body = [[i["id"], i["status"], i["kind"], i["campaign_id"] or "-", i["recipient"] or "-", i["attempts"],
             i["error_code"] if i["error_code"] is not None else "-", first_line(i["error_text"] or "", 70),
             i["updated_at_gmt"] or "-"] for i in items]
    for line in table(["ID", "STATUS", "KIND", "CAMPAIGN", "TO", "ATTEMPTS", "CODE", "ERROR", "CHANGED (UTC)"],
                      body, right=(0, 5)):
        click.echo(line)
    click.echo(style(f"{len(items)} message(s)" + (" (--limit reached)" if len(items) >= limit else ""), dim=True))


# ---------------------------------------------------------------------------------------------- resend
def _named_rows(ledger: operations.MessageLedger, ids: tuple[int, ...], refusals: list[str]) -> list[LedgerEntry]:
    """The rows named by id that can be re-sent; a line in ``refusals`` for each one that cannot."""
    wanted = list(dict.fromkeys(ids))
    found = {e.id: e for e in ledger.list_messages(ids=tuple(wanted), limit=len(wanted))}
    chosen: list[LedgerEntry] = []
    for i in wanted:
        e = found.get(i)
        if e is None:
            refusals.append(f"message #{i}: not in the ledger")
        elif e.status not in RESENDABLE:
            why = {"sent": "was sent" + (f" ({e.wa_message_id})" if e.wa_message_id else ""),
                   "sending": "is being sent (or in doubt until the sweep marks it unknown)",
                   "retry": "is already waiting for a retry", "pending": "is waiting to be sent"}
            refusals.append(f"message #{i}: refused: it {why.get(e.status, 'is ' + e.status)}")
        else:
            chosen.append(e)
    return chosen


#: ``messages resend --help`` (built here so the retry hook's name comes from the table of hooks).
RESEND_HELP = f"""Re-send messages in doubt (`unknown`) or `failed`, deliberately: each row becomes
    `retry` (`resent by operator`, attempts start again) with its own {hooks.RETRY_MESSAGE} action due now,
    which the worker runs through the ledger. A message in doubt may already have been delivered: re-sending it can deliver it
    twice, which is why this is never automatic.

    \b
    Rows `sent`, `sending`, `pending` or `retry` are refused (listed). Each row moves at most once, even when
    named twice or by two commands at once; a second resend of the same rows sends nothing. Exit 0 when every
    named row was queued (or, with --dry-run, would be), 1 on bad options or when a row was refused."""


@messages_group.command("resend", help=RESEND_HELP)
@pass_cli_context
@click.argument("ids", nargs=-1, type=click.IntRange(1), metavar="[ID]...")
@click.option("--campaign", default=None, help="Bulk form: every row of this campaign in --status.")
@click.option("--status", "status", type=click.Choice([str(s) for s in RESENDABLE]), default=None,
              help="Bulk form (with --campaign): unknown or failed.")
@click.option("--dry-run", is_flag=True, help="Show what would be re-sent; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def resend_cmd(cli: CliContext, ids: tuple[int, ...], campaign: str | None, status: str | None,
               dry_run: bool, yes: bool) -> None:
    if ids and (campaign or status):
        raise UsageError("give message IDs or --campaign with --status, not both")
    if not ids and not (campaign and status):
        raise UsageError("give the message IDs to re-send, or --campaign C --status unknown|failed")
    store = cli.store()
    ledger = operations.ledger(store)
    refusals: list[str] = []
    if ids:
        chosen = _named_rows(ledger, ids, refusals)
    else:
        chosen = ledger.list_messages(statuses=(str(status),), campaign_id=campaign, limit=100000)
    for line in refusals:
        click.echo(line, err=True)
    if not chosen:
        click.echo("nothing to re-send")
        raise SystemExit(EXIT_USAGE if refusals else 0)
    what = f"{len(chosen)} message(s)" + (f" of campaign {campaign!r} in status {status}" if campaign else "")
    if dry_run:
        for e in chosen:
            click.echo(f"would re-send message #{e.id} to {mask_phone(e.recipient)} ({e.status})")
        click.echo(f"dry run: {what} would be re-sent; nothing was changed")
        raise SystemExit(EXIT_USAGE if refusals else 0)
    if not confirm(f"Re-send {what}? A message in doubt may already have been delivered.", yes):
        refused()
    now = store.now()
    queued = skipped = 0
    for e in chosen:
        if not ledger.resend(e):
            skipped += 1
            click.echo(f"message #{e.id}: changed meanwhile (another command or a worker); left alone")
            continue
        try:
            aid = operations.schedule_resend(store, e, now)
        except Exception as exc:  # noqa: BLE001 - reported, the command goes on with the others
            refusals.append(f"message #{e.id}: marked for retry but its action could not be written: "
                            f"{first_line(str(exc), 200)}")
            continue
        queued += 1
        click.echo(f"message #{e.id} to {mask_phone(e.recipient)}: queued for re-send as action #{aid}")
    click.echo(f"queued {queued} re-send(s)" + (f"; {skipped} changed meanwhile" if skipped else ""))
    if refusals:
        raise SystemExit(EXIT_USAGE)
