"""Action args as Action Scheduler stores them (reference section 2.5) and WCH's v2 payload (wch-plugin 7.1).

``args`` holds ``wp_json_encode($args)`` when it is at most 191 bytes; longer JSON goes to ``extended_args`` and
``args`` holds its MD5. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any

from wch_bridge.errors import ActionDataError
from wch_bridge.masking import mask_phones_in_text
from wch_bridge.phpser import php_float_repr

__all__ = [
    "ARGS_INDEX_LENGTH",
    "MAX_ARGS_LENGTH",
    "ArgsTooLongError",
    "args_summary",
    "decode_args",
    "encode_args",
    "php_json_encode",
    "unwrap_payload",
]

ARGS_INDEX_LENGTH = 191  # ActionScheduler_DBStore: longer JSON is stored as its md5 + extended_args
MAX_ARGS_LENGTH = 8000  # ActionScheduler_DBStore::$max_args_length


_DEL = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")  # Python escapes DEL (0x7f); PHP writes it as is


class ArgsTooLongError(ActionDataError):
    """The JSON of the args is longer than Action Scheduler accepts."""


def _json_string(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("Malformed UTF-8 characters, possibly incorrectly encoded") from exc
    encoded = json.dumps(text, ensure_ascii=True).replace("/", "\\/")
    return _DEL.sub(lambda m: m.group(1) + "\x7f", encoded) if "\x7f" in text else encoded


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("Inf and NaN cannot be JSON encoded")
        out.append(php_float_repr(value, "e"))
    elif isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, list | tuple):
        out.append("[")
        for n, item in enumerate(value):
            if n:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        for n, (key, item) in enumerate(value.items()):
            if n:
                out.append(",")
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise TypeError(f"JSON object keys must be str or int, got {type(key).__name__}")
            out.append(_json_string(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    else:
        raise TypeError(f"{type(value).__name__} is not JSON serializable")


def php_json_encode(value: Any) -> str:
    """PHP ``json_encode`` with default flags (``wp_json_encode``).

    ``\\/`` for slashes, ``\\uXXXX`` for non-ASCII (surrogate pairs above U+FFFF), no spaces, floats as PHP
    prints them (``1.0`` -> ``1``). Python lists are JSON arrays and dicts JSON objects (``{}`` when empty)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


def encode_args(value: list[Any] | tuple[Any, ...] | dict[str, Any]) -> tuple[str, str | None]:
    """``(args, extended_args)`` as ``ActionScheduler_DBStore`` writes them."""
    if not isinstance(value, list | tuple | dict):
        raise TypeError(f"action args must be a list or a dict, got {type(value).__name__}")
    text = php_json_encode(value)
    length = len(text.encode("utf-8"))
    if length > MAX_ARGS_LENGTH:
        raise ArgsTooLongError(
            "ActionScheduler_Action::$args too long. To ensure the args column can be indexed, action args "
            f"should not be more than {MAX_ARGS_LENGTH} characters when encoded as JSON."
        )
    if length > ARGS_INDEX_LENGTH:
        return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest(), text
    return text, None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _php_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


def decode_args(text: str | None) -> list[Any] | dict[str, Any]:
    """``json_decode(extended_args ?: args, true)``; like PHP, anything but an array/object is invalid."""
    if text is None:
        raise ActionDataError("args must be a JSON array or object, got NULL")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ActionDataError(f"args are not valid JSON: {exc.msg} at position {exc.pos}") from exc
    except (ValueError, RecursionError) as exc:
        raise ActionDataError(f"args are not valid JSON: {exc}") from exc
    if not isinstance(value, list | dict):
        raise ActionDataError(f"args must be a JSON array or object, got {_php_type(value)}")
    return value


def unwrap_payload(
    decoded: list[Any] | dict[str, Any],
) -> tuple[list[Any] | dict[str, Any], dict[str, Any] | None]:
    """Decoded args -> (what the handler receives, v2 ``_wch_meta`` or None).

    ``[{"_wch_version":2,"_wch_meta":{...},"args":{...}}]`` -> (inner args, meta), an empty PHP array (``[]``)
    becoming ``{}``; ``[{...}]`` -> the dict (PHP passes it as the single positional arg); a dict -> itself;
    any other list -> unchanged."""
    if isinstance(decoded, list) and len(decoded) == 1 and isinstance(decoded[0], dict):
        element = decoded[0]
        version = element.get("_wch_version")
        if not isinstance(version, bool) and version in (2, "2"):
            inner = element.get("args")
            meta = element.get("_wch_meta")
            inner = {} if inner is None or inner == [] else inner
            meta = meta if isinstance(meta, dict) else {}
            return inner, meta
        return element, None
    return decoded, None


def _short(value: Any, limit: int = 24) -> str:
    if isinstance(value, dict):
        text = f"{{{len(value)} keys}}"
    elif isinstance(value, list | tuple):
        text = f"[{len(value)} items]"
    elif value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = mask_phones_in_text(" ".join(str(value).split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def args_summary(decoded: Any, max_len: int = 80) -> str:
    """One short line describing decoded args (v2 payloads unwrapped), phone numbers masked."""
    inner = unwrap_payload(decoded)[0] if isinstance(decoded, list | dict) else decoded
    if isinstance(inner, dict):
        text = ", ".join(f"{_short(k, 32)}={_short(v)}" for k, v in inner.items()) or "{}"
    elif isinstance(inner, list):
        text = ", ".join(_short(v) for v in inner) or "[]"
    else:
        text = _short(inner, max_len)
    text = mask_phones_in_text(text)
    return text if len(text) <= max_len else text[: max(max_len - 1, 0)] + "…"
