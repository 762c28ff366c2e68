"""``wch-bridge demo``: the README's first command (see ``wch_bridge.demo``)."""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from wch_bridge.cli.common import handle_errors, main, setup_logging
from wch_bridge.settings import mask_dsn


@main.command("demo")
@click.option("--out", "out", default="demo-out", show_default=True, metavar="DIR",
              help="Directory for the demo database (demo.sqlite) and report.html; the demo database is replaced.")
@click.option("--actions", type=click.IntRange(20, 2000), default=60, show_default=True, metavar="N",
              help="Size of the shop's queue: about N actions are seeded (sync jobs, broadcast batches, carts); "
                   "retries come on top.")
@click.option("--dsn", default=None, metavar="DSN",
              help="Run the demo on MariaDB/MySQL instead (tables under the demo_ prefix, replaced each run).")
@click.option("--prefix", default=None, metavar="PREFIX",
              help="Table prefix for the demo's tables (default demo_ with --dsn, wp_ in the SQLite file).")
@click.option("--verbose", is_flag=True, help="Show the worker's log lines instead of a progress bar.")
@handle_errors
def demo_cmd(out: str, actions: int, dsn: str | None, prefix: str | None, verbose: bool) -> None:
    """See the bridge work in one command, with no database server and no WhatsApp account.

    Seeds a small WooCommerce shop and the jobs the WhatsApp Commerce Hub plugin would queue, starts the sandbox
    WhatsApp API on a free local port, runs the worker until everything due has run (retry delays pass quickly
    on the demo's fast clock; the rules are unchanged) and writes the HTML status report."""
    from wch_bridge.demo import Demo

    setup_logging("INFO" if verbose else "ERROR")
    if not verbose:
        logging.getLogger("wch_bridge").setLevel(logging.ERROR)
    bar: Any = None

    def progress(done: int, total: int) -> None:
        if bar is None:
            return
        bar.length = max(total, 1)
        bar.update(max(0, min(done, bar.length) - bar.pos))

    demo = Demo(out, actions=actions, dsn=dsn, progress=None if verbose else progress, prefix=prefix)
    click.echo(f"wch-bridge demo: seeding a shop in {demo.dsn if dsn is None else mask_dsn(demo.dsn)} "
               f"(prefix {demo.prefix}) and starting the sandbox WhatsApp API...")
    if verbose:
        result = demo.run()
    else:
        with click.progressbar(length=max(actions, 1), label="running the queue", show_pos=True,
                               width=30) as b:
            bar = b
            result = demo.run()
    click.echo("")
    for line in result.lines:
        click.echo(line)
    report = Path(result.report)
    click.echo(f"\nreport: {report.resolve()}")
    target = ["--dsn", result.dsn] if dsn is None else []
    if result.prefix != "wp_":
        target += ["--prefix", result.prefix]
    opts = " ".join(shlex.quote(x) for x in target)
    exe = _exe()
    failed = result.counts.get("first_failed_id")
    click.echo("\ntry next" + (" (with WCH_BRIDGE_DSN set to the DSN you gave):" if dsn is not None else ":"))
    for cmd in (f"{exe} status {opts}",
                f"{exe} jobs list --status failed {opts}",
                *([f"{exe} jobs show {int(failed)} {opts}"] if failed else []),
                f"{exe} report --out report.html {opts}",
                f"{exe} config show {opts}"):
        click.echo(f"  {cmd}")


def _exe() -> str:
    """How to call this wch-bridge: its bare name when that is what PATH finds, else its full path (a venv that
    is not activated), so the printed commands work as printed."""
    me = os.path.realpath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    found = shutil.which("wch-bridge")
    if found and me and os.path.realpath(found) == me:
        return "wch-bridge"
    return shlex.quote(os.path.abspath(sys.argv[0])) if me and os.path.basename(me) == "wch-bridge" else "wch-bridge"

