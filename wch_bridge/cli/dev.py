"""``wch-bridge dev up``: a development database with a small shop and a sandbox WhatsApp API next to it, in one
command (see ``wch_bridge.dev``); it prints the exact ``wch-bridge run`` line to use and serves until Ctrl-C."""

from __future__ import annotations

import shlex
import signal
import threading
from pathlib import Path
from typing import Any

import click

from wch_bridge import dev
from wch_bridge.cli.common import EXIT_ENV, fail, handle_errors, main, setup_logging
from wch_bridge.cli.demo import _exe
from wch_bridge.sandbox import Sandbox
from wch_bridge.settings import mask_dsn


@main.group("dev")
def dev_group() -> None:
    """A local development site: database, sample shop and sandbox WhatsApp API."""


@dev_group.command("up")
@click.option("--out", default="dev-site", show_default=True, metavar="DIR",
              help=f"Directory for the SQLite database ({dev.SQLITE_FILE}) and the settings file "
                   f"({dev.CONFIG_FILE}); both are replaced.")
@click.option("--dsn", default=None, metavar="DSN",
              help=f"Use MariaDB/MySQL instead (tables under the {dev.MYSQL_PREFIX} prefix, replaced each time; "
                   "a prefix holding a real site is refused).")
@click.option("--prefix", default=None, metavar="PREFIX",
              help=f"Table prefix (default {dev.SQLITE_PREFIX} in the SQLite file, {dev.MYSQL_PREFIX} with --dsn).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the sandbox listens on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              help="The sandbox's port (0 picks a free one).")
@click.option("--log-level", default="INFO", show_default=True,
              help="The sandbox's log level (INFO logs each request it receives).")
@handle_errors
def up_cmd(out: str, dsn: str | None, prefix: str | None, host: str, port: int, log_level: str) -> None:
    """Create a development database with a small shop (products, orders, carts, customer profiles, the plugin's
    wch_settings and the jobs it would queue: catalog sync, broadcasts, abandoned-cart reminders), start a
    sandbox WhatsApp API, write a settings file pointing at both, print the `wch-bridge run` line to use in
    another terminal, and serve the sandbox until Ctrl-C. Run it again for a fresh site."""
    setup_logging(log_level)
    token = dev.new_token()
    try:
        sandbox = Sandbox(host, port, token=token, log_requests=True).start()
    except OSError as exc:
        fail(f"dev up: the sandbox cannot listen on {host}:{port}: {exc.strerror or exc} (--port 0 picks a free "
             "one)", EXIT_ENV)
    try:
        site = dev.create(out, sandbox, token, dsn=dsn, prefix=prefix)
        _print(site, sandbox, shown_dsn=site.dsn if dsn is None else mask_dsn(site.dsn))
        _serve()
    finally:
        sandbox.stop()


def _print(site: dev.DevSite, sandbox: Sandbox, shown_dsn: str) -> None:
    shop = site.shop
    queued = ", ".join(f"{n} {hook}" for hook, n in sorted(site.queued.items()))
    click.echo(f"database: {shown_dsn} (prefix {site.prefix})")
    click.echo(f"shop: {shop.get('products')} products, {shop.get('orders')} orders, {shop.get('carts')} carts, "
               f"{shop.get('customers')} customers and {shop.get('admin_recipients')} customer profiles")
    click.echo(f"queued: {queued}")
    click.echo(f"sandbox WhatsApp API listening on {sandbox.url} (control: {sandbox.url}/_sandbox/requests, "
               "/_sandbox/faults: docs/sandbox.md)")
    config = str(Path(site.config).resolve())
    click.echo(f"settings: {config}")
    click.echo("run the bridge against it (in another terminal; this one serves the sandbox until Ctrl-C):")
    click.echo(f"  {_exe()} run --config {shlex.quote(config)}")
    click.echo(f"other commands: export WCH_BRIDGE_CONFIG={shlex.quote(config)}; {_exe()} status")


def _serve() -> None:
    """Until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
