"""Shared CLI plumbing: the root group, error handling
(one clear line on stderr, no traceback; exit 1 for usage errors, 2 for the environment), logging set-up.
The options and context of database commands: ``wch_bridge.cli.context``."""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from wch_bridge import __version__
from wch_bridge.errors import ConfigError, WchBridgeError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.settings import mask_secrets_in_text

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 1
EXIT_ENV = 2


class UsageError(WchBridgeError):
    """The one usage error of a command (arguments that do not go together, an id that does not exist): one line
    on stderr, exit 1. click's own usage errors (unknown option, bad value) also exit 1 (:class:`BridgeGroup`)."""


class BridgeGroup(click.Group):
    """A bad option or env var value (click's BadParameter) becomes one line naming the setting, exit 1.
    Any other usage error (unknown option, missing argument) also exits 1: exit 2 means "environment"."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as exc:
            fail(usage_line(exc), EXIT_USAGE)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(EXIT_USAGE)
        except Exception as exc:  # noqa: BLE001 - the last net: one line on stderr, never a traceback
            lines = str(exc).strip().splitlines()
            text = mask_phones_in_text(mask_secrets_in_text(lines[0] if lines else "", _dsn_in(kwargs, args)))
            click.echo(f"wch-bridge: error: unexpected {type(exc).__name__}: {text[:300]}".rstrip(": "), err=True)
            sys.exit(EXIT_ENV)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
        return rv

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            param = exc.param
            name = (param.name or "value") if param is not None else "value"
            where = []
            if isinstance(param, click.Option) and param.opts:
                where.append(param.opts[0])
            if param is not None and param.envvar:
                where.append(param.envvar if isinstance(param.envvar, str) else param.envvar[0])
            hint = f" ({' / '.join(where)})" if where else ""
            message = exc.message if exc.message and exc.message.strip() else exc.format_message()
            fail(f"{name}{hint}: {' '.join(message.split()) or 'a value is required'}", EXIT_USAGE)
        return None


def usage_line(exc: click.UsageError) -> str:
    """A usage error as one line: the message and where to find help (never click's three-line block)."""
    message = " ".join(exc.format_message().split())
    if re.match(r"^No such option:? '?-\d+'?\.?$", message):
        message = f"{message.rstrip('.')}: IDs are positive numbers"
    path = exc.ctx.command_path if exc.ctx is not None else "wch-bridge"
    return f"{message} (see: {path} --help)"


def _dsn_in(kwargs: dict[str, Any], args: tuple[Any, ...]) -> str:
    """The DSN this run was given (option or env var), so an unexpected error never shows its secrets."""
    argv = list(kwargs.get("args") or (args[0] if args else None) or sys.argv[1:])
    for i, a in enumerate(argv):
        if a == "--dsn" and i + 1 < len(argv):
            return str(argv[i + 1])
        if str(a).startswith("--dsn="):
            return str(a)[len("--dsn="):]
    return os.environ.get("WCH_BRIDGE_DSN", "")


@click.group(cls=BridgeGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(__version__, prog_name="wch-bridge")
def main() -> None:
    """wch-bridge: run WhatsApp Commerce Hub's Action Scheduler jobs (group `wch`) from a Python sidecar.

    Every command takes --dsn (WCH_BRIDGE_DSN) and --prefix (WCH_BRIDGE_PREFIX)."""


def split_csv(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def fail(message: str, code: int = EXIT_ENV) -> None:
    click.echo(f"wch-bridge: error: {one_line(message)}", err=True)
    sys.exit(code)


def one_line(text: str) -> str:
    """``text`` with its control characters escaped (a path or value holding ``\\r`` or ``\\n`` stays on the error's
    one line: ``cannot read /proc/\\r``)."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def handle_errors(fn: F) -> F:
    """The shared error-to-exit-code mapping: our errors become one line on stderr and an exit code (1 for usage
    and settings, 2 for the environment); never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UsageError, ConfigError) as exc:
            fail(str(exc), EXIT_USAGE)
        except WchBridgeError as exc:
            fail(str(exc), EXIT_ENV)
        return None

    return wrapper  # type: ignore[return-value]


class RedactFilter(logging.Filter):
    """Every record leaving the handler: phone numbers masked (``+1******7890``) and known secrets replaced by
    ``***`` in the message, string extras and the exception text. ``add()`` registers secrets learnt later
    (e.g. the token decrypted from wch_settings)."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for s in secrets:
            if s and s not in self.secrets:
                self.secrets.append(s)
        self.secrets.sort(key=len, reverse=True)  # a secret containing another is replaced whole

    def redact(self, text: str) -> str:
        for s in self.secrets:
            text = text.replace(s, "***")
        return mask_phones_in_text(text)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        for name in JsonFormatter.FIELDS:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


def setup_logging(level: str = "INFO", fmt: str = "text", secrets: tuple[str, ...] = ()) -> RedactFilter:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redact = RedactFilter(secrets)
    handler.addFilter(redact)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return redact


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
        if record.exc_info or record.exc_text:
            text = record.exc_text or self.formatException(record.exc_info)  # exc_text: redacted by RedactFilter
            data["error"] = (text.splitlines() or [""])[-1]
        return json.dumps(data, ensure_ascii=False)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
