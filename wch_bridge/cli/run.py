"""``wch-bridge run`` (the worker) and ``wch-bridge enqueue`` (as_schedule_single_action)."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from wch_bridge import hooks as hook_table
from wch_bridge import operations
from wch_bridge.app import build_worker, once_exit_code, secrets_of, start_metrics
from wch_bridge.cli.common import EXIT_ENV, UsageError, fail, main, setup_logging, split_csv
from wch_bridge.cli.context import DEFAULTS, CliContext, pass_cli_context, settings_options
from wch_bridge.errors import ConfigError
from wch_bridge.health import live_worker_seconds
from wch_bridge.owners import NOBODY
from wch_bridge.report import check_writable


def whatsapp_options(fn: Any) -> Any:
    """WhatsApp options of ``run`` (each with its env var). Secrets are env-only: WCH_BRIDGE_WHATSAPP_TOKEN (or
    WCH_BRIDGE_WHATSAPP_TOKEN_FILE), WCH_BRIDGE_AUTH_KEY, WCH_BRIDGE_AUTH_SALT; never an option, never echoed."""
    options = [
        click.option("--whatsapp-api-base", envvar="WCH_BRIDGE_WHATSAPP_API_BASE", default=None, metavar="URL",
                     help=f"Graph API base URL (default {DEFAULTS.whatsapp_api_base}; the sandbox for tests). "
                          "[env WCH_BRIDGE_WHATSAPP_API_BASE]"),
        click.option("--whatsapp-phone-number-id", envvar="WCH_BRIDGE_WHATSAPP_PHONE_NUMBER_ID", default=None,
                     help="Business phone number id (default: the plugin's api.whatsapp_phone_number_id). "
                          "[env WCH_BRIDGE_WHATSAPP_PHONE_NUMBER_ID]"),
        click.option("--whatsapp-catalog-id", envvar="WCH_BRIDGE_WHATSAPP_CATALOG_ID", default=None,
                     help="Catalog id (default: the plugin's catalog.catalog_id). [env WCH_BRIDGE_WHATSAPP_CATALOG_ID]"),
        click.option("--whatsapp-api-version", envvar="WCH_BRIDGE_WHATSAPP_API_VERSION", default=None,
                     help="Graph API version like v21.0 (default: the plugin's api.api_version, else v21.0). "
                          "[env WCH_BRIDGE_WHATSAPP_API_VERSION]"),
        click.option("--messages-per-second", type=float, default=None, envvar="WCH_BRIDGE_MESSAGES_PER_SECOND",
                     help=f"Send rate limit shared by all threads (default {DEFAULTS.messages_per_second:g}). [env WCH_BRIDGE_MESSAGES_PER_SECOND]"),
        click.option("--abandoned-cart-template", envvar="WCH_BRIDGE_ABANDONED_CART_TEMPLATE", default=None,
                     help="Approved template sent when a cart reminder is outside the 24-hour window (default: the "
                          "plugin's setting). [env WCH_BRIDGE_ABANDONED_CART_TEMPLATE]"),
        click.option("--abandoned-cart-delay-hours", type=float, default=None,
                     envvar="WCH_BRIDGE_ABANDONED_CART_DELAY_HOURS",
                     help="Idle hours before a cart reminder (default: the plugin's setting, else 24). "
                          "[env WCH_BRIDGE_ABANDONED_CART_DELAY_HOURS]"),
        click.option("--wp-config", envvar="WCH_BRIDGE_WP_CONFIG", default=None, metavar="PATH",
                     help="wp-config.php to read AUTH_KEY/AUTH_SALT from, to decrypt the plugin's access token. "
                          "[env WCH_BRIDGE_WP_CONFIG]"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@main.command("run")
@pass_cli_context(lazy=True)
@click.option("--poll-interval", type=float, default=DEFAULTS.poll_interval, show_default=True,
              envvar="WCH_BRIDGE_POLL_INTERVAL",
              help="Seconds between polls when idle (sooner if an action is due sooner). [env WCH_BRIDGE_POLL_INTERVAL]")
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True, envvar="WCH_BRIDGE_BATCH_SIZE",
              help="Actions taken per poll at most. [env WCH_BRIDGE_BATCH_SIZE]")
@click.option("--concurrency", type=int, default=DEFAULTS.concurrency, show_default=True,
              envvar="WCH_BRIDGE_CONCURRENCY",
              help="Actions run at once (thread pool; handlers wait on HTTP). [env WCH_BRIDGE_CONCURRENCY]")
@click.option("--hooks", envvar="WCH_BRIDGE_HOOKS", default=None,
              help="Only these hooks, comma-separated (default: every hook with a handler). [env WCH_BRIDGE_HOOKS]")
@click.option("--once", is_flag=True, envvar="WCH_BRIDGE_ONCE", help="Drain what is due now, then exit. [env WCH_BRIDGE_ONCE]")
@click.option("--max-actions", type=int, default=None, envvar="WCH_BRIDGE_MAX_ACTIONS",
              help="Exit after running this many actions. [env WCH_BRIDGE_MAX_ACTIONS]")
@click.option("--grace-period", type=float, default=DEFAULTS.grace_period, show_default=True,
              envvar="WCH_BRIDGE_GRACE_PERIOD",
              help="On SIGTERM/SIGINT, seconds running actions get to finish. [env WCH_BRIDGE_GRACE_PERIOD]")
@click.option("--touch-interval", type=float, default=DEFAULTS.touch_interval, show_default=True,
              envvar="WCH_BRIDGE_TOUCH_INTERVAL",
              help="Refresh last_attempt_gmt of actions running longer than this, so PHP's cleaner leaves them. "
                   "[env WCH_BRIDGE_TOUCH_INTERVAL]")
@click.option("--log-level", default=DEFAULTS.log_level, show_default=True, envvar="WCH_BRIDGE_LOG_LEVEL",
              help="[env WCH_BRIDGE_LOG_LEVEL]")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=DEFAULTS.log_format, show_default=True,
              envvar="WCH_BRIDGE_LOG_FORMAT", help="text, or one JSON object per line. [env WCH_BRIDGE_LOG_FORMAT]")
@click.option("--report-out", default=None, envvar="WCH_BRIDGE_REPORT_OUT", metavar="PATH",
              help="Regenerate the HTML status report at PATH while running (atomic replace). [env WCH_BRIDGE_REPORT_OUT]")
@click.option("--report-every", type=float, default=DEFAULTS.report_every, show_default=True,
              envvar="WCH_BRIDGE_REPORT_EVERY",
              metavar="SECONDS", help="Regenerate --report-out at most this often. [env WCH_BRIDGE_REPORT_EVERY]")
@whatsapp_options
@settings_options
def run_cmd(cli: CliContext, poll_interval: float, batch_size: int, concurrency: int,
            hooks: str | None, once: bool, max_actions: int | None, grace_period: float, touch_interval: float,
            log_level: str, log_format: str, report_out: str | None = None,
            report_every: float = DEFAULTS.report_every, **whatsapp: Any) -> None:
    """Run the worker: take due actions of the served hooks and run them."""
    settings = cli.settings_with(
        poll_interval=poll_interval, batch_size=batch_size,
        concurrency=concurrency, hooks=split_csv(hooks) or None, once=once, max_actions=max_actions,
        grace_period=grace_period, touch_interval=touch_interval, log_level=log_level, log_format=log_format,
        report_out=report_out, report_every=report_every, **whatsapp,
    )  # + env vars (and *_FILE), --config file, defaults: wch_bridge.config; wch_settings in build_worker
    if settings.report_out:
        check_writable(settings.report_out, "report_out (--report-out)", mkdir=True)
    redact = setup_logging(settings.log_level, settings.log_format, secrets_of(settings))
    worker = build_worker(settings)
    redact.add(*worker.secrets)  # e.g. the token decrypted from wch_settings
    try:
        start_metrics(worker)
    except OSError as exc:
        fail(f"metrics_port (--metrics-port): cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
             f"{exc.strerror or exc}", EXIT_ENV)
    worker.install_signal_handlers()
    code = worker.run()
    if settings.once:
        code, why = once_exit_code(worker, code)
        if why:
            logging.getLogger("wch_bridge.worker").warning("run --once: exit %d: %s", code, why)
    sys.stdout.flush()
    sys.stderr.flush()
    if worker.abandoned_threads:
        os._exit(code)  # handler threads still running were released back to pending; do not wait for them
    sys.exit(code)


_REL = re.compile(r"^\+?(\d+)\s*([smhd]?)$")
_EARLIEST = datetime(1970, 1, 1)
_LATEST = datetime(9999, 12, 31, 23, 59, 59)
AT_FORMS = ("Unix seconds (1767225600), +90s / +5m / +2h / +1d from now, or an ISO date-time "
            "(2026-01-31T09:00:00, UTC unless it has an offset like +02:00)")


def parse_when(value: str | None, now: datetime) -> datetime:
    """``--at``: Unix seconds, ``+90s``/``+5m``/``+2h``/``+1d``, or an ISO date-time (UTC unless it has an offset).
    ConfigError (one line listing the accepted forms) for anything else or outside 1970-9999."""
    if not value:
        return now
    v = value.strip()
    try:
        m = _REL.match(v)
        if m and (v.startswith("+") or m.group(2)):
            mult = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
            when = now + timedelta(seconds=int(m.group(1)) * mult)
        elif v.isdigit():
            when = datetime.fromtimestamp(int(v), UTC).replace(tzinfo=None)
        else:
            dt = datetime.fromisoformat(v)
            if dt.tzinfo is not None:
                dt = dt.astimezone(UTC).replace(tzinfo=None)
            when = dt.replace(microsecond=0)
    except (ValueError, OverflowError, OSError):
        raise ConfigError(f"--at: cannot read {value!r} as a time: use {AT_FORMS}") from None
    if not _EARLIEST <= when <= _LATEST:
        raise ConfigError(f"--at: {value!r} is outside 1970-01-01 .. 9999-12-31 (UTC)")
    return when


@main.command("enqueue")
@pass_cli_context
@click.argument("hook")
@click.option("--args", "args_json", default="[]", show_default=True, help="The action's args as JSON (object or list).")
@click.option("--at", "at", default=None, help="When: Unix seconds, +90s/+5m/+2h/+1d, or ISO date-time (default: now).")
@click.option("--priority", type=click.IntRange(0, 255), default=10, show_default=True, help="0-255, lower runs first.")
@click.option("--unique", is_flag=True, help="Skip if a pending/in-progress action of HOOK exists in the group (AS 3.6-3.9 rule).")
@click.option("--force", is_flag=True, help="Schedule HOOK even when neither the bridge nor PHP runs it.")
def enqueue_cmd(cli: CliContext, hook: str, args_json: str, at: str | None, priority: int,
                unique: bool, force: bool = False) -> None:
    """Schedule HOOK exactly as as_schedule_single_action() would (group: the first --group)."""
    settings = cli.settings
    if not hook or len(hook) > 191:
        raise UsageError("HOOK must be 1-191 characters")
    try:
        value = json.loads(args_json)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(value, list | dict):
        raise UsageError("--args must be a JSON array or object (Action Scheduler stores an array)")
    args = operations.encode_args(value)
    store = cli.store(need_tables=False, must_exist=False)
    group = settings.groups[0]
    who = operations.owners(store, settings.groups, live_worker_seconds(settings))
    if not force and who.owner(group, hook) == NOBODY:
        raise UsageError(f"not scheduled: no one runs {hook} in group {group!r} (the bridge runs "
                         f"{', '.join(hook_table.NAMES)}; PHP has not reported a callback for it); check the name, "
                         "or use --force")
    when = parse_when(at, store.now())
    new_id = operations.schedule_single(store, hook, args, when, group, priority, unique=unique)
    if not new_id:
        raise UsageError(f"not scheduled: a pending or running {hook} action already exists in group {group!r} "
                         "(--unique)")
    click.echo(f"scheduled action #{new_id}: {hook} at {when:%Y-%m-%d %H:%M:%S} UTC (group {group!r}, priority {priority})")
