"""Where each setting comes from, decided once. Pure: no ``os.environ``, no database; the callers (CLI, app) hand
in the layers as plain dicts and get back :class:`Settings` plus the source of every value.

Precedence, highest first (:data:`PRECEDENCE`)::

    option        a command-line option (click says the value came from the command line)
    env           WCH_BRIDGE_<FIELD> environment variables; secrets also WCH_BRIDGE_<FIELD>_FILE (container secrets)
    file          the TOML config file (--config PATH / WCH_BRIDGE_CONFIG), keys = Settings field names
    wch_settings  the plugin's option (phone number id, API version, catalog id, cart delay/template, language,
                  the decrypted access token)
    wp_config     AUTH_KEY / AUTH_SALT read from wp-config.php (--wp-config)
    default       the Settings dataclass default

Values of the ``env`` and ``file`` layers may be text (env vars always are); they are converted by the field's
kind. Every error is a :class:`ConfigError` whose message starts with the field name, says where the bad value came
from and never repeats a secret."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from wch_bridge.errors import ConfigError
from wch_bridge.settings import SECRET_FIELDS, Settings

__all__ = [
    "ENV_PREFIX",
    "FIELDS",
    "FILE_FIELDS",
    "PRECEDENCE",
    "Resolved",
    "coerce",
    "defaults",
    "env_layer",
    "env_name",
    "fill_unset",
    "load_file",
    "plugin_layer",
    "resolve",
]

ENV_PREFIX = "WCH_BRIDGE_"
PRECEDENCE: tuple[str, ...] = ("option", "env", "file", "wch_settings", "wp_config", "default")

#: Kind of every Settings field: how text from env vars / files is converted.
#: str, int, float, bool, csv (tuple of strings); a leading "?" means None is allowed ("" clears it).
FIELDS: dict[str, str] = {
    "dsn": "str", "prefix": "str", "groups": "csv", "hooks": "?csv",
    "poll_interval": "float", "batch_size": "int", "concurrency": "int", "max_actions": "?int", "once": "bool",
    "grace_period": "float", "touch_interval": "float", "heartbeat_interval": "float", "orphan_timeout": "float",
    "clock_speed": "float",
    "whatsapp_api_base": "str", "whatsapp_api_version": "?str", "whatsapp_phone_number_id": "?str",
    "whatsapp_catalog_id": "?str", "whatsapp_token": "?str", "whatsapp_timeout": "float",
    "messages_per_second": "float", "abandoned_cart_delay_hours": "?float", "abandoned_cart_template": "?str",
    "template_language": "?str", "auth_key": "?str", "auth_salt": "?str", "wp_config": "?str",
    "report_out": "?str", "report_every": "float", "metrics_port": "?int", "metrics_host": "str",
    "log_format": "str", "log_level": "str",
}
#: Fields that may also come from a file named by WCH_BRIDGE_<FIELD>_FILE (secrets, and the DSN with its password).
FILE_FIELDS = frozenset(SECRET_FIELDS | {"dsn"})
_TRUE = {"1", "true", "yes", "on", "y", "t"}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(Settings):
        if f.default is not MISSING:
            out[f.name] = f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def _where(source: str, name: str) -> str:
    return {"env": env_name(name), "option": "--" + name.replace("_", "-"), "file": "config file"}.get(source, source)


def coerce(name: str, value: Any, source: str = "value") -> Any:
    """Convert ``value`` to field ``name``'s type. Text is parsed; typed values (TOML, click) are checked."""
    if name not in FIELDS:
        raise ConfigError(f"{name}: unknown setting (from {source})")
    kind = FIELDS[name]
    optional = kind.startswith("?")
    kind = kind.lstrip("?")
    shown = "***" if name in SECRET_FIELDS else repr(value)

    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{name}: expected {expected}, got {shown} (from {_where(source, name)})")

    if value is None:
        if optional:
            return None
        raise bad("a value")
    if isinstance(value, str):
        text = value.strip()
        if optional and text == "" and kind != "bool":
            return None
        if kind == "str":
            return text
        if kind == "csv":
            parts = tuple(p.strip() for p in text.split(",") if p.strip())
            return parts if parts or not optional else None
        if kind == "bool":
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise bad("true or false")
        try:
            return int(text) if kind == "int" else float(text)
        except ValueError:
            raise bad("an integer" if kind == "int" else "a number") from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if kind == "csv":
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            parts = tuple(v.strip() for v in value if v.strip())
            return parts if parts or not optional else None
        raise bad("a list of names")
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad("an integer")
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad("a number")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # numbers written without quotes in TOML (phone number id 1065...)
    raise bad("text")


# ---------------------------------------------------------------------------------------------- layers


def _read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def env_layer(environ: Mapping[str, str], read_file: Callable[[str], str] = _read_text) -> dict[str, Any]:
    """Settings from ``WCH_BRIDGE_<FIELD>`` (raw text) and, for :data:`FILE_FIELDS`, ``WCH_BRIDGE_<FIELD>_FILE``
    (the file's content, stripped). A direct variable wins over its ``_FILE`` twin. Empty variables are ignored."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = environ.get(env_name(name))
        if value is not None and value.strip() != "":
            out[name] = value
            continue
        if name in FILE_FIELDS:
            path = (environ.get(env_name(name) + "_FILE") or "").strip()
            if path:
                out[name] = read_secret_file(name, path, env_name(name) + "_FILE", read_file)
    return out


def read_secret_file(name: str, path: str, where: str, read_file: Callable[[str], str] = _read_text) -> str:
    try:
        text = read_file(path).strip()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {path} (from {where}): {exc.strerror or type(exc).__name__}") from None
    if not text:
        raise ConfigError(f"{name}: {path} is empty (from {where})")
    return text


def load_file(path: str, read_file: Callable[[str], str] = _read_text) -> dict[str, Any]:
    """The TOML config file: top-level keys are Settings field names (a ``[wch_bridge]`` table also works).
    ``<secret>_file = "/run/secrets/x"`` reads that secret from a file."""
    try:
        data = tomllib.loads(read_file(path))
    except OSError as exc:
        raise ConfigError(f"config: cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config: {path} is not valid TOML: {exc}") from None
    if isinstance(data.get("wch_bridge"), dict):
        data = data["wch_bridge"]
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name.endswith("_file") and name[:-5] in FILE_FIELDS:
            out[name[:-5]] = read_secret_file(name[:-5], str(value), f"{key} in {path}", read_file)
        elif name in FIELDS:
            out[name] = value
        else:
            raise ConfigError(f"{key}: unknown setting in config file {path}")
    return out


def plugin_layer(plugin: Any, token: str | None = None) -> dict[str, Any]:
    """The ``wch_settings`` layer from a decoded ``wpsettings.PluginSettings`` (None where the plugin has no value);
    ``token`` is the access token the caller decrypted, if any."""
    if plugin is None:
        return {}
    values = {
        "whatsapp_phone_number_id": getattr(plugin, "phone_number_id", None),
        "whatsapp_api_version": getattr(plugin, "api_version", None),
        "whatsapp_catalog_id": getattr(plugin, "catalog_id", None),
        "abandoned_cart_template": getattr(plugin, "abandoned_cart_template", None),
        "whatsapp_token": token,
    }
    return {k: v for k, v in values.items() if v is not None}


# ---------------------------------------------------------------------------------------------- resolving


@dataclass(frozen=True)
class Resolved:
    settings: Settings
    sources: dict[str, str]  # field -> one of PRECEDENCE

    def rows(self) -> list[dict[str, Any]]:
        """``config show``: every setting with its masked value, source and env var."""
        masked = self.settings.masked()
        return [{"setting": name, "value": masked[name], "source": self.sources.get(name, "default"),
                 "env": env_name(name)} for name in FIELDS if name in masked]


def _merge(layers: Mapping[str, Mapping[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    unknown = [s for s in layers if s not in PRECEDENCE]
    if unknown:
        raise ValueError(f"unknown configuration layer(s): {unknown}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source in PRECEDENCE:
        for name, raw in (layers.get(source) or {}).items():
            if name in values or name not in FIELDS:
                continue
            if source in ("wch_settings", "wp_config") and raw is None:
                continue  # the plugin has no value: fall through to the default
            values[name] = coerce(name, raw, source)
            sources[name] = source
    return values, sources


def resolve(
    option: Mapping[str, Any] | None = None,
    env: Mapping[str, Any] | None = None,
    file: Mapping[str, Any] | None = None,
    wch_settings: Mapping[str, Any] | None = None,
    wp_config: Mapping[str, Any] | None = None,
) -> Resolved:
    """Settings from the layers (field-name keyed dicts), highest precedence first; the rest are defaults.
    Raises ConfigError naming the field for a value of the wrong type or one Settings rejects."""
    layers = {"option": option or {}, "env": env or {}, "file": file or {}, "wch_settings": wch_settings or {},
              "wp_config": wp_config or {}}
    values, sources = _merge(layers)
    settings = Settings(**values)  # __post_init__ validates: ConfigError "field: ..."
    for name in FIELDS:
        sources.setdefault(name, "default")
    return Resolved(settings, sources)


def fill_unset(settings: Settings, layers: Mapping[str, Mapping[str, Any]],
               only: Iterable[str] | None = None) -> Settings:
    """For a Settings built without sources (tests, the app's own wiring): lower layers fill the fields that are
    still ``None`` (not set by option, env or file), with the same precedence and conversion as :func:`resolve`."""
    values, _ = _merge(layers)
    wanted = set(only) if only is not None else set(values)
    changes = {k: v for k, v in values.items() if k in wanted and getattr(settings, k) is None}
    return settings.with_(**changes) if changes else settings
