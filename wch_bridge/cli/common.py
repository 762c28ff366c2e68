"""Shared CLI plumbing: the root group, common options (each with its WCH_BRIDGE_* env var), error handling
(one clear line on stderr, no traceback; exit 1 for usage errors, 2 for the environment), logging set-up."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from wch_bridge import __version__
from wch_bridge.errors import ConfigError, WchBridgeError
from wch_bridge.settings import DEFAULT_DSN, Settings

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 1
EXIT_ENV = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="wch-bridge")
def main() -> None:
    """wch-bridge: run WhatsApp Commerce Hub's Action Scheduler jobs (group `wch`) from a Python sidecar.

    Every command takes --dsn (WCH_BRIDGE_DSN) and --prefix (WCH_BRIDGE_PREFIX)."""


def db_options(fn: F) -> F:
    """--dsn, --prefix and --group, shared by every command that opens the database."""
    fn = click.option(
        "--group", "groups", envvar="WCH_BRIDGE_GROUPS", default="wch", show_default=True,
        help="Action Scheduler group(s) served, comma-separated. [env WCH_BRIDGE_GROUPS]",
    )(fn)
    fn = click.option(
        "--prefix", envvar="WCH_BRIDGE_PREFIX", default="wp_", show_default=True,
        help="WordPress table prefix. [env WCH_BRIDGE_PREFIX]",
    )(fn)
    fn = click.option(
        "--dsn", envvar="WCH_BRIDGE_DSN", default=DEFAULT_DSN, show_default=True,
        help="SQLAlchemy URL: mysql+pymysql://user:pass@host/db or sqlite:///path. [env WCH_BRIDGE_DSN]",
    )(fn)
    return fn


def split_csv(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def make_settings(**kw: Any) -> Settings:
    groups = kw.pop("groups", None)
    if isinstance(groups, str):
        kw["groups"] = split_csv(groups)
    return Settings(**{k: v for k, v in kw.items() if v is not None})


def fail(message: str, code: int = EXIT_ENV) -> None:
    click.echo(f"wch-bridge: error: {message}", err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn our errors into one line on stderr and an exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            fail(str(exc), EXIT_USAGE)
        except WchBridgeError as exc:
            fail(str(exc), EXIT_ENV)
        return None

    return wrapper  # type: ignore[return-value]


def setup_logging(level: str = "INFO", fmt: str = "text") -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus action_id/hook/outcome/duration if given."""

    FIELDS = ("action_id", "hook", "outcome", "duration", "worker_id")

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                data[name] = getattr(record, name)
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(data, ensure_ascii=False)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
