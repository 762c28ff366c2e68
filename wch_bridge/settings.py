"""Validated, frozen settings. Never reads ``os.environ`` itself: the CLI (click) maps options and
``WCH_BRIDGE_*`` env vars onto these fields; ``app.py`` fills the rest from the plugin's ``wch_settings``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from wch_bridge.errors import ConfigError
from wch_bridge.hooks import PLUGIN_GROUPS

DEFAULT_DSN = "sqlite:///wch-bridge.sqlite"
DEFAULT_API_BASE = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

#: Settings that are secrets: masked in ``config show`` and never logged.
SECRET_FIELDS = frozenset({"whatsapp_token", "auth_key", "auth_salt"})


_DSN_PASSWORD = re.compile(r"^([A-Za-z0-9+._-]+://[^:/@]*):(.*)@(?=[^@]*$)")
_DSN_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+._-]*://")
#: Query-string members that carry a secret (``?password=…``, ``&ssl_key=…``): their values are masked too.
_DSN_QUERY_SECRET = re.compile(
    r"([?&;](?:[^=&;#]*(?:pass|pwd|secret|token|key|auth)[^=&;#]*)=)([^&;#]*)", re.IGNORECASE
)
#: Anything that looks like ``scheme://user:password@`` or ``password=…`` inside free text (error messages).
_TEXT_USERINFO = re.compile(r"(\b[A-Za-z][A-Za-z0-9+._-]*://[^:/@\s]*):([^@\s]*)@")
UNREADABLE_DSN = "<unreadable DSN, not shown>"


def mask_dsn(dsn: str) -> str:
    """The DSN for output: its password (``user:***@``) and query-string secrets (``?password=***``) hidden
    (``mysql+pymysql://u:***@host/db``). A value that is not a URL at all (a password pasted by mistake) is never
    echoed: ``<unreadable DSN, not shown>``."""
    if not _DSN_SCHEME.match(dsn or ""):
        return UNREADABLE_DSN
    masked = _DSN_PASSWORD.sub(lambda m: f"{m.group(1)}:***@", dsn, count=1)
    return _DSN_QUERY_SECRET.sub(lambda m: m.group(1) + ("***" if m.group(2) else ""), masked)


def dsn_secrets(dsn: str) -> tuple[str, ...]:
    """Every secret a DSN holds (the user-info password, query-string passwords/keys); the whole value when it is
    not a URL (it may be a password given by mistake)."""
    if not dsn:
        return ()
    if not _DSN_SCHEME.match(dsn):
        return (dsn,) if len(dsn) >= 4 else ()
    out = []
    m = _DSN_PASSWORD.match(dsn)
    if m and m.group(2):
        out.append(m.group(2))
    out += [q.group(2) for q in _DSN_QUERY_SECRET.finditer(dsn) if q.group(2)]
    return tuple(dict.fromkeys(out))


def mask_secrets_in_text(text: str, dsn: str = "") -> str:
    """Free text (an error message) with ``dsn``'s secrets, any ``scheme://user:pass@`` password and any
    ``password=`` value replaced by ``***``."""
    for secret in sorted(dsn_secrets(dsn), key=len, reverse=True):
        text = text.replace(secret, "***")
    text = _TEXT_USERINFO.sub(lambda m: f"{m.group(1)}:***@", text)
    return _DSN_QUERY_SECRET.sub(lambda m: m.group(1) + ("***" if m.group(2) else ""), text)


@dataclass(frozen=True)
class Settings:
    dsn: str = DEFAULT_DSN
    prefix: str = "wp_"
    groups: tuple[str, ...] = PLUGIN_GROUPS
    hooks: tuple[str, ...] | None = None  # narrow the hooks served (None: every hook with a handler)
    # worker
    poll_interval: float = 1.0
    batch_size: int = 50
    concurrency: int = 8
    max_actions: int | None = None
    once: bool = False
    grace_period: float = 30.0
    touch_interval: float = 60.0  # refresh last_attempt_gmt of long-running actions
    heartbeat_interval: float = 5.0
    orphan_timeout: float = 30.0
    clock_speed: float = 1.0  # testing only: run the clock faster (retry delays pass quickly)
    # WhatsApp
    whatsapp_api_base: str = DEFAULT_API_BASE
    whatsapp_api_version: str | None = None  # None: wch_settings api.api_version, else DEFAULT_API_VERSION
    whatsapp_phone_number_id: str | None = None
    whatsapp_catalog_id: str | None = None
    whatsapp_token: str | None = field(default=None, repr=False)
    whatsapp_timeout: float = 30.0
    messages_per_second: float = 80.0
    abandoned_cart_delay_hours: float | None = None
    abandoned_cart_template: str | None = None
    template_language: str | None = None  # None: the plugin's language (wch_settings), else en_US
    auth_key: str | None = field(default=None, repr=False)
    auth_salt: str | None = field(default=None, repr=False)
    wp_config: str | None = None  # path of wp-config.php: AUTH_KEY/AUTH_SALT to decrypt the plugin's token
    # outputs
    report_out: str | None = None
    report_every: float = 60.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"  # 0.0.0.0 in a container, so Prometheus can scrape it
    log_format: str = "text"
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not re.match(r"^[A-Za-z0-9_]+$", self.prefix or ""):
            raise ConfigError(f"prefix: invalid table prefix {self.prefix!r} (letters, digits, underscores)")
        if not self.groups or any(not g for g in self.groups):
            raise ConfigError("groups: at least one non-empty Action Scheduler group is required")
        positive = {
            "poll_interval": self.poll_interval,
            "batch_size": self.batch_size,
            "concurrency": self.concurrency,
            "messages_per_second": self.messages_per_second,
            "touch_interval": self.touch_interval,
            "heartbeat_interval": self.heartbeat_interval,
            "orphan_timeout": self.orphan_timeout,
            "clock_speed": self.clock_speed,
            "report_every": self.report_every,
            "whatsapp_timeout": self.whatsapp_timeout,
        }
        for name, value in positive.items():
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{name}: must be a positive number, got {value!r}")
        if self.grace_period < 0:
            raise ConfigError(f"grace_period: must be >= 0, got {self.grace_period!r}")
        if self.max_actions is not None and self.max_actions <= 0:
            raise ConfigError(f"max_actions: must be a positive integer, got {self.max_actions!r}")
        if self.log_format not in ("text", "json"):
            raise ConfigError(f"log_format: must be 'text' or 'json', got {self.log_format!r}")
        if self.metrics_port is not None and not (0 <= self.metrics_port <= 65535):
            raise ConfigError(f"metrics_port: must be 0-65535, got {self.metrics_port!r}")
        if not (self.metrics_host or "").strip():
            raise ConfigError("metrics_host: must be an address to listen on, like 127.0.0.1 or 0.0.0.0")
        if str(self.log_level).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"log_level: must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {self.log_level!r}")
        if self.whatsapp_api_version is not None and not re.match(r"^v\d+\.\d+$", self.whatsapp_api_version):
            raise ConfigError(f"whatsapp_api_version: expected like v21.0, got {self.whatsapp_api_version!r}")
        if not re.match(r"^https?://", self.whatsapp_api_base or ""):
            raise ConfigError(f"whatsapp_api_base: expected an http(s) URL, got {self.whatsapp_api_base!r}")

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def masked(self) -> dict[str, Any]:
        """Every setting, secrets shown as *** (and the DSN's password hidden)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value:
                value = "***"
            elif f.name == "dsn":
                value = mask_dsn(value)
            out[f.name] = value
        return out
