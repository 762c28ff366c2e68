"""Configuration plumbing of the CLI and ``wch-bridge config show``.

Which layer a value came from is decided by ``wch_bridge.config`` (option > env > file > wch_settings > default);
this module only gathers the layers: the command line (click's ``get_parameter_source``), ``os.environ`` (every
``WCH_BRIDGE_<FIELD>``, secrets also ``WCH_BRIDGE_<FIELD>_FILE``), the ``--config`` / ``WCH_BRIDGE_CONFIG`` TOML
file, and for ``config show`` the plugin's ``wch_settings`` read from the database."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import click
from click.core import ParameterSource

from wch_bridge import config
from wch_bridge.cli.common import echo_json, handle_errors, main, split_csv
from wch_bridge.errors import WchBridgeError

#: ``--x-file PATH`` options: the secret is read from the file (never passed on the command line itself).
FILE_OPTIONS = {"whatsapp_token_file": "whatsapp_token", "auth_key_file": "auth_key", "auth_salt_file": "auth_salt",
                "dsn_file": "dsn"}
CONFIG_ENV = "WCH_BRIDGE_CONFIG"


def _opt(name: str, help_text: str, **kw: Any) -> Any:
    env = config.env_name(name.replace("-", "_"))
    return click.option(f"--{name}", default=None, show_envvar=False, help=f"{help_text} [env {env}]", **kw)


def settings_options(fn: Any) -> Any:
    """The settings ``run`` had no option for yet, and ``--config``. Env vars are read by ``wch_bridge.config``
    (one conversion and one error message for every source), so these options declare no ``envvar``."""
    options = [
        click.option("--config", "config_path", envvar=CONFIG_ENV, default=None, metavar="PATH",
                     help="TOML file of settings (keys = setting names, e.g. concurrency = 4); below options and env "
                          f"vars, above wch_settings. [env {CONFIG_ENV}]"),
        _opt("heartbeat-interval", "Seconds between worker heartbeats (default 5).", type=float),
        _opt("orphan-timeout", "Seconds without heartbeat before a worker's actions are recovered (default 30).",
             type=float),
        _opt("clock-speed", "Run the clock this many times faster (demo/testing only; default 1).", type=float),
        _opt("whatsapp-timeout", "Seconds per WhatsApp API call (default 30).", type=float),
        _opt("template-language", "Template language code like en_US (default: the plugin's, else en_US)."),
        _opt("metrics-port", "Serve Prometheus /metrics, /healthz and /readyz on this port (0: any free port).",
             type=int),
        _opt("metrics-host", "Address the metrics server listens on (default 127.0.0.1; 0.0.0.0 in a container).",
             metavar="HOST"),
        click.option("--whatsapp-token-file", default=None, metavar="PATH",
                     help="Read the WhatsApp access token from this file. [env WCH_BRIDGE_WHATSAPP_TOKEN(_FILE)]"),
        click.option("--auth-key-file", default=None, metavar="PATH",
                     help="Read WordPress's AUTH_KEY from this file. [env WCH_BRIDGE_AUTH_KEY(_FILE)]"),
        click.option("--auth-salt-file", default=None, metavar="PATH",
                     help="Read WordPress's AUTH_SALT from this file. [env WCH_BRIDGE_AUTH_SALT(_FILE)]"),
        click.option("--dsn-file", default=None, metavar="PATH",
                     help="Read the DSN (with its password) from this file. [env WCH_BRIDGE_DSN_FILE]"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT)


def command_layers(ctx: click.Context, explicit: Mapping[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """option / env / file layers for the running command.

    ``explicit``: values the command passes (``make_settings(dsn=..., ...)``); each one counts as an option when
    its parameter came from the command line or is not a parameter at all (computed by the command). Without it
    every parameter named like a setting is considered."""
    environ = os.environ if environ is None else environ
    params = ctx.params
    values = dict(params) if explicit is None else dict(explicit)
    if explicit is None and "groups" in values and isinstance(values["groups"], str):
        values["groups"] = split_csv(values["groups"])
    option: dict[str, Any] = {}
    for name, value in values.items():
        if name not in config.FIELDS or value is None:
            continue
        if name not in params or _from_command_line(ctx, name):
            option[name] = value
    for param, target in FILE_OPTIONS.items():
        path = params.get(param)
        if path and _from_command_line(ctx, param):
            option[target] = config.read_secret_file(target, path, "--" + param.replace("_", "-"))
    cfg_path = params.get("config_path") or (environ.get(CONFIG_ENV) or "").strip() or None
    return {"option": option, "env": config.env_layer(environ),
            "file": config.load_file(cfg_path) if cfg_path else {}}


def resolve_for_command(ctx: click.Context, explicit: Mapping[str, Any] | None = None,
                        lower: Mapping[str, Mapping[str, Any]] | None = None) -> config.Resolved:
    layers = command_layers(ctx, explicit)
    return config.resolve(**layers, **(lower or {}))


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
            from wch_bridge.app import open_store, plugin_layers
            from wch_bridge.store.wp import WordPressData

            store = open_store(resolved.settings)
            wp = WordPressData(store.engine, store.prefix, clock=store.clock)
            resolved = resolve_for_command(ctx, lower=plugin_layers(resolved.settings, wp))
        except WchBridgeError as exc:
            note = f"wch_settings not read ({exc}); showing option/env/file/default only"
    rows = resolved.rows()
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
    """A command that also takes every option of ``run`` (looked up when parsing, so import order is free)."""

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        from wch_bridge.cli.run import run_cmd

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
