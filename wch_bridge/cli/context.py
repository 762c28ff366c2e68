"""One command context for every command that opens the database (in the spirit of rq's ``pass_cli_config``).

``@pass_cli_context`` adds the shared ``--dsn`` / ``--prefix`` / ``--group`` options (click defaults taken from
:class:`Settings`), hands the command a :class:`CliContext` instead of them, and maps the bridge's errors to one
line on stderr and an exit code (:func:`wch_bridge.cli.common.handle_errors`). The context resolves the command's
:class:`Settings` once (option > env > file > default: ``wch_bridge.config``) and opens the store once, through
``wch_bridge.operations``.

This module also gathers the configuration layers of a command (the command line, ``os.environ``, the ``--config``
file) and holds the options ``run`` and ``config show`` share (:func:`settings_options`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from wch_bridge import config, operations
from wch_bridge.cli.common import handle_errors, split_csv
from wch_bridge.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

#: The defaults of every option that sets a Settings field (one place: the dataclass).
DEFAULTS = Settings()
#: ``--x-file PATH`` options: the secret is read from the file (never passed on the command line itself).
FILE_OPTIONS = {
    "whatsapp_token_file": "whatsapp_token",
    "auth_key_file": "auth_key",
    "auth_salt_file": "auth_salt",
    "dsn_file": "dsn",
}
CONFIG_ENV = "WCH_BRIDGE_CONFIG"


def db_options(fn: F) -> F:
    """--dsn, --prefix and --group, shared by every command that opens the database."""
    fn = click.option(
        "--group",
        "groups",
        envvar="WCH_BRIDGE_GROUPS",
        default=",".join(DEFAULTS.groups),
        show_default=True,
        help="Action Scheduler group(s) served, comma-separated. [env WCH_BRIDGE_GROUPS]",
    )(fn)
    fn = click.option(
        "--prefix",
        envvar="WCH_BRIDGE_PREFIX",
        default=DEFAULTS.prefix,
        show_default=True,
        help="WordPress table prefix. [env WCH_BRIDGE_PREFIX]",
    )(fn)
    fn = click.option(
        "--dsn",
        envvar="WCH_BRIDGE_DSN",
        default=DEFAULTS.dsn,
        show_default=True,
        help="SQLAlchemy URL: mysql+pymysql://user:pass@host/db or sqlite:///path. [env WCH_BRIDGE_DSN]",
    )(fn)
    return fn


# ---------------------------------------------------------------------------------------------- settings layers
def _opt(name: str, help_text: str, **kw: Any) -> Any:
    env = config.env_name(name.replace("-", "_"))
    return click.option(f"--{name}", default=None, show_envvar=False, help=f"{help_text} [env {env}]", **kw)


#: The settings ``run`` had no option for yet, and ``--config``. Env vars are read by ``wch_bridge.config`` (one
#: conversion and one error message for every source), so these options declare no ``envvar``.
SETTINGS_OPTIONS = [
    click.option(
        "--config",
        "config_path",
        envvar=CONFIG_ENV,
        default=None,
        metavar="PATH",
        help="TOML file of settings (keys = setting names, e.g. concurrency = 4); below options and env "
        f"vars, above wch_settings. [env {CONFIG_ENV}]",
    ),
    _opt(
        "heartbeat-interval",
        f"Seconds between worker heartbeats (default {DEFAULTS.heartbeat_interval:g}).",
        type=float,
    ),
    _opt(
        "orphan-timeout",
        f"Seconds without heartbeat before a worker's actions are recovered (default {DEFAULTS.orphan_timeout:g}).",
        type=float,
    ),
    _opt(
        "clock-speed",
        f"Run the clock this many times faster (demo/testing only; default {DEFAULTS.clock_speed:g}).",
        type=float,
    ),
    _opt(
        "whatsapp-timeout",
        f"Seconds per WhatsApp API call (default {DEFAULTS.whatsapp_timeout:g}).",
        type=float,
    ),
    _opt("template-language", "Template language code like en_US (default: the plugin's, else en_US)."),
    _opt(
        "metrics-port",
        "Serve Prometheus /metrics, /healthz and /readyz on this port (0: any free port).",
        type=int,
    ),
    _opt(
        "metrics-host",
        f"Address the metrics server listens on (default {DEFAULTS.metrics_host}; 0.0.0.0 in a container).",
        metavar="HOST",
    ),
    click.option(
        "--whatsapp-token-file",
        default=None,
        metavar="PATH",
        help="Read the WhatsApp access token from this file. [env WCH_BRIDGE_WHATSAPP_TOKEN(_FILE)]",
    ),
    click.option(
        "--auth-key-file",
        default=None,
        metavar="PATH",
        help="Read WordPress's AUTH_KEY from this file. [env WCH_BRIDGE_AUTH_KEY(_FILE)]",
    ),
    click.option(
        "--auth-salt-file",
        default=None,
        metavar="PATH",
        help="Read WordPress's AUTH_SALT from this file. [env WCH_BRIDGE_AUTH_SALT(_FILE)]",
    ),
    click.option(
        "--dsn-file",
        default=None,
        metavar="PATH",
        help="Read the DSN (with its password) from this file. [env WCH_BRIDGE_DSN_FILE]",
    ),
]


def settings_options(fn: Any) -> Any:
    """Add :data:`SETTINGS_OPTIONS` (``run`` and ``config show``)."""
    for option in reversed(SETTINGS_OPTIONS):
        fn = option(fn)
    return fn


def _from_command_line(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) in (ParameterSource.COMMANDLINE, ParameterSource.PROMPT)


def command_layers(
    ctx: click.Context, explicit: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, dict[str, Any]]:
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
    return {
        "option": option,
        "env": config.env_layer(environ),
        "file": config.load_file(cfg_path) if cfg_path else {},
    }


def resolve_for_command(
    ctx: click.Context,
    explicit: Mapping[str, Any] | None = None,
    lower: Mapping[str, Mapping[str, Any]] | None = None,
) -> config.Resolved:
    layers = command_layers(ctx, explicit)
    return config.resolve(**layers, **(lower or {}))


def make_settings(**kw: Any) -> Settings:
    """Settings for a command. Inside a click command the precedence of ``wch_bridge.config`` applies: values the
    command passes that came from its command line (or that it computed) > WCH_BRIDGE_* env vars (and *_FILE) >
    the --config / WCH_BRIDGE_CONFIG file > defaults."""
    groups = kw.pop("groups", None)
    if isinstance(groups, str):
        kw["groups"] = split_csv(groups)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        return resolve_for_command(ctx, kw).settings
    return Settings(**{k: v for k, v in kw.items() if v is not None})


# ---------------------------------------------------------------------------------------------- the context
class CliContext:
    """What a database command needs, built once: its Settings and its store."""

    def __init__(self, dsn: str | None, prefix: str | None, groups: str | None) -> None:
        self._given: dict[str, Any] = {"dsn": dsn, "prefix": prefix, "groups": groups}
        self._settings: Settings | None = None
        self._store: operations.ActionStore | None = None

    @property
    def groups_option(self) -> str | None:
        """--group as given (comma-separated), before resolution."""
        return self._given["groups"]

    def resolve(self) -> Settings:
        """The Settings from --dsn/--prefix/--group, env vars, the config file and defaults (once)."""
        if self._settings is None:
            self._settings = make_settings(**self._given)
        return self._settings

    @property
    def settings(self) -> Settings:
        return self.resolve()

    def settings_with(self, **values: Any) -> Settings:
        """The Settings of a command that has more options than the shared ones (``run``)."""
        self._settings = make_settings(**self._given, **values)
        return self._settings

    def store(self, *, need_tables: bool = True, must_exist: bool = True) -> operations.ActionStore:
        """The store, opened once; see :func:`wch_bridge.operations.open_operator_store`."""
        if self._store is None:
            self._store = operations.open_operator_store(
                self.settings, need_tables=need_tables, must_exist=must_exist
            )
        return self._store

    def engine(self) -> operations.Engine:
        """A bare engine (``schema``: the tables may not exist yet)."""
        return operations.open_engine(self.settings)


def pass_cli_context(fn: Callable[..., Any] | None = None, *, lazy: bool = False) -> Any:
    """Decorate a click command right under ``@group.command(...)``: it takes ``--dsn/--prefix/--group`` and gets a
    :class:`CliContext` as its first argument, its Settings already resolved (a bad setting is reported before
    anything else) unless ``lazy`` (the command checks its own arguments first, or resolves its Settings with more
    values: :meth:`CliContext.settings_with`). The bridge's errors become one line and an exit code."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def command(
            *args: Any,
            dsn: str | None = None,
            prefix: str | None = None,
            groups: str | None = None,
            **kwargs: Any,
        ) -> Any:
            cli = CliContext(dsn, prefix, groups)
            if not lazy:
                cli.resolve()
            return fn(cli, *args, **kwargs)

        return db_options(handle_errors(command))

    return decorate if fn is None else decorate(fn)
