"""``wch-bridge health``: the container's HEALTHCHECK probe."""

from __future__ import annotations

import socket

import click

from wch_bridge import operations
from wch_bridge.cli.common import EXIT_ENV, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.health import live_worker_seconds


@main.command("health")
@pass_cli_context
@click.option("--max-age", type=float, default=None,
              help="A worker heartbeat older than this many seconds counts as dead. [default: the orphan timeout, "
              "30 s, as everywhere a worker counts as live]")
@click.option("--any-host", is_flag=True, help="Accept a live worker on any host (default: this host's).")
def health_cmd(cli: CliContext, max_age: float | None, any_host: bool) -> None:
    """Exit 0 when the database answers, the Action Scheduler tables exist and a worker on this host beats."""
    max_age = live_worker_seconds(cli.settings) if max_age is None else max_age
    store = cli.store()
    status = store.count_by_status()  # raises (exit 2) when the database or the actions table is missing
    reg = operations.worker_registry(store)
    if not reg.available():
        click.echo("unhealthy: no worker has started yet (heartbeat table missing)", err=True)
        raise SystemExit(EXIT_ENV)
    now = store.now()
    host = socket.gethostname()
    live = [w for w in reg.list() if w.live(now, max_age) and (any_host or w.host == host)]
    if not live:
        click.echo(f"unhealthy: no live worker heartbeat{'' if any_host else ' on ' + host} within {max_age:.0f} s",
                   err=True)
        raise SystemExit(EXIT_ENV)
    click.echo(f"healthy: {len(live)} live worker(s); {sum(status.values())} actions in the table")
