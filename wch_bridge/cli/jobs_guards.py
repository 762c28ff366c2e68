"""The checks before a ``wch-bridge jobs`` change: the given ids exist, are in a served group and have an allowed
status; the preamble of a bulk change (nothing to do, a dry run, or the confirmation)."""

from __future__ import annotations

import click

from wch_bridge import operations
from wch_bridge.cli.common import UsageError
from wch_bridge.cli.output import confirm, refused
from wch_bridge.models import Action


def check_ids(
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



def go_ahead(total: int, what: str, would: str, question: str, dry_run: bool, yes: bool) -> bool:
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
