"""``wch-bridge report``: the static HTML status report (and its figures as JSON)."""

from __future__ import annotations

import click

from wch_bridge.app import report_data
from wch_bridge.cli.common import EXIT_ENV, UsageError, fail, main
from wch_bridge.cli.context import CliContext, pass_cli_context
from wch_bridge.operations import REPORT_WINDOWS
from wch_bridge.report import check_writable, render_html, render_json, write_atomic


@main.command("report")
@pass_cli_context(lazy=True)
@click.option("--out", "out", envvar="WCH_BRIDGE_REPORT_OUT", default=None, metavar="PATH",
              help="Write the HTML report here (atomically: temp file + rename). [env WCH_BRIDGE_REPORT_OUT]")
@click.option("--json", "json_out", default=None, metavar="PATH",
              help="Also write the report's figures as JSON here ('-' for stdout).")
@click.option("--window", type=click.Choice(list(REPORT_WINDOWS)), default="24h", show_default=True,
              envvar="WCH_BRIDGE_REPORT_WINDOW", help="Throughput, failures and lag over this window. "
              "[env WCH_BRIDGE_REPORT_WINDOW]")
@click.option("--mkdir", is_flag=True, help="Create the folder of --out / --json when it does not exist.")
def report_cmd(cli: CliContext, out: str | None, json_out: str | None, window: str, mkdir: bool) -> None:
    """Write the status report: health banner, queue, failures, carts, campaigns, catalog sync, workers.

    Read-only: nothing in the database is changed. Exit code 0 whatever the health says (see the banner or
    `.health.status` in the JSON); 2 when the database cannot be read."""
    if not out and not json_out:
        raise UsageError("give --out PATH (HTML) and/or --json PATH")
    settings = cli.settings
    for path, option in ((out, "--out"), (json_out, "--json")):
        if path and path != "-":
            check_writable(path, option, mkdir=mkdir)
    store = cli.store(need_tables=False)
    data = report_data(settings, store, window)
    try:
        if out:
            write_atomic(out, render_html(data), mkdir=False)
        if json_out == "-":
            click.echo(render_json(data), nl=False)
        elif json_out:
            write_atomic(json_out, render_json(data), mkdir=False)
    except OSError as exc:
        fail(f"cannot write the report: {exc.strerror or exc}", EXIT_ENV)
    health = data["health"]
    if out or json_out != "-":
        written = " and ".join(p for p in (out, json_out) if p)
        click.echo(f"report written to {written}: {str(health['status']).upper()}"
                   + (f" ({len(health['reasons'])} problem(s))" if health["reasons"] else ""), err=json_out == "-")
