"""``wch-bridge sandbox``: the local fake WhatsApp Cloud + Catalog API (``wch_bridge.sandbox``) for tests and the
demo. Control routes: ``GET /_sandbox/requests``, ``POST /_sandbox/faults``, ``POST /_sandbox/reset``, ..."""

from __future__ import annotations

import click

from wch_bridge.cli.common import EXIT_ENV, fail, handle_errors, main, setup_logging
from wch_bridge.cli.context import DEFAULTS
from wch_bridge.sandbox import serve


@main.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="WCH_BRIDGE_SANDBOX_HOST",
              help="Address to listen on. [env WCH_BRIDGE_SANDBOX_HOST]")
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              envvar="WCH_BRIDGE_SANDBOX_PORT", help="Port (0 picks a free one). [env WCH_BRIDGE_SANDBOX_PORT]")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, show_default=True,
              envvar="WCH_BRIDGE_SANDBOX_LATENCY_MS", help="Delay added to every API answer. "
              "[env WCH_BRIDGE_SANDBOX_LATENCY_MS]")
@click.option("--token", default=None, envvar="WCH_BRIDGE_SANDBOX_TOKEN",
              help="Accept only this bearer token (else any non-empty one; a bad token gets error 190). "
                   "[env WCH_BRIDGE_SANDBOX_TOKEN]")
@click.option("--log-level", default=DEFAULTS.log_level, show_default=True, envvar="WCH_BRIDGE_LOG_LEVEL",
              help="[env WCH_BRIDGE_LOG_LEVEL]")
@handle_errors
def sandbox_cmd(host: str, port: int, latency_ms: float, token: str | None, log_level: str) -> None:
    """Run the sandbox WhatsApp API until Ctrl-C (prints its URL once listening)."""
    setup_logging(log_level)

    def ready(url: str) -> None:
        click.echo(f"sandbox WhatsApp API listening on {url} (token {'required' if token else 'any'}); "
                   f"control: {url}/_sandbox/requests, /_sandbox/faults, /_sandbox/reset", err=False)

    try:
        serve(host, port, latency_ms, token, ready=ready)
    except OSError as exc:
        fail(f"sandbox: cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_ENV)
