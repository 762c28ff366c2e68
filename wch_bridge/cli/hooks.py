"""``wch-bridge hooks`` (= ``hooks list``): every hook seen in the served groups, who runs it (the bridge, PHP or
nobody), its counts by status and its handler's description."""

from __future__ import annotations

import sys
from typing import Any

import click

from wch_bridge import hooks as hook_table
from wch_bridge import operations
from wch_bridge.cli.common import UsageError, echo_json, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.cli.output import table
from wch_bridge.health import live_worker_seconds
from wch_bridge.owners import NOBODY

COLUMNS = ("pending", "in-progress", "complete", "failed")


def hook_rows(store: Any, groups: tuple[str, ...], live_seconds: float) -> list[dict[str, Any]]:
    """One row per (group, hook) seen in the served groups, plus the bridge's hooks not seen yet."""
    who = operations.owners(store, groups, live_seconds)
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for group, hook, status, n in operations.hook_counts(store, groups):
        counts.setdefault((group, hook), {})[status] = n
    for group in groups:
        for name in hook_table.NAMES:
            counts.setdefault((group, name), {})
    rows = []
    for (group, hook), by in sorted(counts.items()):
        if not by and who.owner(group, hook) == NOBODY:
            continue  # a bridge hook in a group no worker serves, never seen there
        rows.append({"group": group, "hook": hook, "owner": who.owner(group, hook),
                     **{s: by.get(s, 0) for s in COLUMNS}, "handler": hook_table.describe(hook)})
    return rows


@main.group("hooks", invoke_without_command=True)
@click.pass_context
def hooks_group(ctx: click.Context) -> None:
    """The hooks of the served groups and who runs them (bare `wch-bridge hooks` lists them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(hooks_list_cmd)


@hooks_group.command("list")
@pass_cli_context
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def hooks_list_cmd(cli: CliContext, as_json: bool = False) -> None:
    """Every hook seen in the served groups: owner (bridge: a live or last-published bridge worker serves it;
    php: the must-use plugin reported a PHP callback for it; nobody), counts by status, and the bridge handler's
    description. Exit 2 when pending actions belong to hooks no one runs, else 0."""
    settings = cli.settings
    store = cli.store()
    rows = hook_rows(store, settings.groups, live_worker_seconds(settings))
    stranded = any(r["owner"] == NOBODY and r["pending"] for r in rows)
    if as_json:
        echo_json({"groups": list(settings.groups), "hooks": rows})
    else:
        body = [[r["group"], r["hook"], r["owner"], *[r[s] for s in COLUMNS], r["handler"] or "-"] for r in rows]
        for line in table(["GROUP", "HOOK", "OWNER", "PENDING", "RUNNING", "COMPLETE", "FAILED", "HANDLER"], body,
                          right=(3, 4, 5, 6)):
            click.echo(line)
        if stranded:
            click.echo("pending actions of hooks no one runs: neither the bridge nor PHP will ever take them")
    sys.exit(2 if stranded else 0)


def _pause_or_resume(cli: CliContext, hook: str, pause: bool) -> None:
    if not hook.strip() or len(hook) > 191:
        raise UsageError("HOOK must be 1-191 characters")
    store = cli.store()
    changed = operations.set_paused(store, hook, pause)
    if not changed:
        click.echo(f"{hook} was already paused; nothing changed" if pause else f"{hook} was not paused; nothing changed")
    elif pause:
        click.echo(f"paused {hook}: every live worker stops taking it within one poll interval; actions already "
                   f"running finish (wch-bridge hooks resume {hook})")
    else:
        click.echo(f"resumed {hook}: workers take it again within one poll interval")


@hooks_group.command("pause")
@pass_cli_context
@click.argument("hook")
def hooks_pause_cmd(cli: CliContext, hook: str) -> None:
    """Stop every bridge worker from taking HOOK (any group), until `hooks resume HOOK`. Stored in the
    non-autoloaded option wch_bridge_paused_hooks of the site's options table; each live worker reads it once per
    poll interval. Running actions finish; pending ones stay pending (PHP stays off them too). Shown by `status`.
    Exit 0 (also when it was already paused), 1 on a bad HOOK, 2 on database errors."""
    _pause_or_resume(cli, hook, True)


@hooks_group.command("resume")
@pass_cli_context
@click.argument("hook")
def hooks_resume_cmd(cli: CliContext, hook: str) -> None:
    """Let the bridge workers take HOOK again (undoes `hooks pause HOOK`). Exit 0 (also when it was not paused),
    1 on a bad HOOK, 2 on database errors."""
    _pause_or_resume(cli, hook, False)
