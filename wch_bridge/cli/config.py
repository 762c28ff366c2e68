"""``wch-bridge config show``: every setting's effective value and where it came from.

Which layer a value came from is decided by ``wch_bridge.config`` (option > env > file > wch_settings > default);
the command line, ``os.environ`` and the ``--config`` file are gathered by ``wch_bridge.cli.context``, the plugin's
``wch_settings`` read from the database by ``wch_bridge.operations``."""

from __future__ import annotations

from typing import Any

import click

from wch_bridge import config, operations
from wch_bridge.cli.common import echo_json, handle_errors, main
from wch_bridge.cli.context import resolve_for_command
from wch_bridge.cli.run import run_cmd
from wch_bridge.errors import WchBridgeError
from wch_bridge.settings import DEFAULT_API_VERSION

#: Settings whose "unset" means a fixed value the client uses (``app.build_whatsapp_client``): shown as that value.
EFFECTIVE_DEFAULTS = {"whatsapp_api_version": DEFAULT_API_VERSION}

# ---------------------------------------------------------------------------------------------- config show


@main.group("config")
def config_group() -> None:
    """Inspect the effective configuration."""


def _show(json_out: bool, no_db: bool) -> None:
    ctx = click.get_current_context()
    resolved = resolve_for_command(ctx)
    note = ""
    if not no_db:
        try:
            resolved = resolve_for_command(ctx, lower=operations.wch_settings_layers(resolved.settings))
        except WchBridgeError as exc:
            note = f"wch_settings not read ({exc}); showing option/env/file/default only"
    rows = resolved.rows()
    for r in rows:
        if r["value"] is None and r["setting"] in EFFECTIVE_DEFAULTS:
            r["value"] = EFFECTIVE_DEFAULTS[r["setting"]]
    if json_out:
        echo_json({"settings": {r["setting"]: {"value": r["value"], "source": r["source"], "env": r["env"]}
                                for r in rows}, "precedence": list(config.PRECEDENCE), "note": note or None})
        return
    width = max(len(r["setting"]) for r in rows)
    vwidth = min(48, max(len(_fmt(r["value"])) for r in rows))
    for r in rows:
        click.echo(f"{r['setting']:<{width}}  {_fmt(r['value']):<{vwidth}}  {r['source']:<12}  {r['env']}")
    click.echo(f"\nprecedence: {' > '.join(config.PRECEDENCE)}")
    if note:
        click.echo(f"note: {note}", err=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    return str(value)


class _WithRunOptions(click.Command):
    """A command that also takes every option of ``run``."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        own = super().get_params(ctx)
        taken = {p.name for p in own}
        return own[:-1] + [p for p in run_cmd.params if p.name not in taken] + own[-1:]  # --help stays last


@config_group.command("show", cls=_WithRunOptions)
@click.option("--json", "json_out", is_flag=True, help="One JSON object: setting -> value, source, env var.")
@click.option("--no-db", is_flag=True, help="Do not open the database to read the plugin's wch_settings.")
@handle_errors
def show_cmd(json_out: bool, no_db: bool, **_settings: Any) -> None:
    """Print every setting's effective value and where it came from (option, env, file, wch_settings,
    wp_config, default). Secrets and the DSN password are shown as ***. Takes the same options as `run`."""
    _show(json_out, no_db)
