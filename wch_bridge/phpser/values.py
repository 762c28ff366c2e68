"""PHP numbers as PHP prints them, and generic values (WordPress options, transients): ``php_serialize``,
``php_unserialize``, ``maybe_serialize``/``maybe_unserialize``, ``is_serialized``."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import phpserialize

from wch_bridge.phpser.core import PhpSerializeError, _excerpt, _i, _PhpObject, _prop_name, _read, _s

# --- PHP numbers -----------------------------------------------------------------------------------------


def php_float_repr(value: float, exp_char: str = "E", precision: int | None = None) -> str:
    """PHP's ``php_gcvt``: how ``serialize`` ("E"), ``json_encode`` ("e") and string casts print a float.

    ``precision=None`` is ``serialize_precision=-1`` (shortest round-trip digits, exponent past 17 digits);
    ``precision=14`` is a ``(string)`` cast. ``1.0`` -> ``1``, ``1e20`` -> ``1.0E+20``, ``1e-5`` -> ``1.0E-5``."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    magnitude = abs(value)
    if precision is None:
        ndigit = 17
        tup = Decimal(repr(magnitude)).as_tuple()
        digits = "".join(map(str, tup.digits))
        decpt = len(digits) + int(tup.exponent)
    else:
        ndigit = precision
        mantissa, _, exponent = f"{magnitude:.{precision - 1}e}".partition("e")
        digits = mantissa.replace(".", "")
        decpt = int(exponent) + 1
    digits = digits.rstrip("0")
    if not digits:
        return sign + "0"
    if (decpt < -3) if decpt < 0 else (decpt > ndigit):
        exp = decpt - 1
        tail = digits[1:] or "0"
        return f"{sign}{digits[0]}.{tail}{exp_char}{'-' if exp < 0 else '+'}{abs(exp)}"
    if decpt <= 0:
        return f"{sign}0.{'0' * -decpt}{digits}"
    whole = digits[:decpt].ljust(decpt, "0")
    frac = digits[decpt:]
    return f"{sign}{whole}.{frac}" if frac else sign + whole


# --- generic values (WordPress options, transients) ------------------------------------------------------

_INT_KEY = re.compile(r"0|-?[1-9]\d*")


def _array_key(key: Any) -> int | str:
    """PHP array key rules: bools -> int, canonical decimal strings (in int64 range) -> int."""
    if isinstance(key, bool):
        return int(key)
    if isinstance(key, int):
        return key
    if isinstance(key, str):
        if _INT_KEY.fullmatch(key) and -(2**63) <= int(key) < 2**63:
            return int(key)
        return key
    raise PhpSerializeError(f"cannot use {type(key).__name__} as a PHP array key")


def _ser(value: Any) -> bytes:
    if value is None:
        return b"N;"
    if isinstance(value, bool):
        return b"b:1;" if value else b"b:0;"
    if isinstance(value, int):
        return _i(value)
    if isinstance(value, float):
        return b"d:%s;" % php_float_repr(value).encode()
    if isinstance(value, str):
        return _s(value.encode("utf-8"))
    if isinstance(value, list | tuple | dict):
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        items: dict[int | str, Any] = {}
        for k, v in pairs:
            items[_array_key(k)] = v
        body = b"".join(
            (_i(k) if isinstance(k, int) else _s(k.encode("utf-8"))) + _ser(v) for k, v in items.items()
        )
        return b"a:%d:{%s}" % (len(items), body)
    raise PhpSerializeError(f"cannot serialize {type(value).__name__} for PHP")


def php_serialize(value: Any) -> str:
    """PHP ``serialize()`` of None/bool/int/float/str/list/tuple/dict (lists and dicts become PHP arrays)."""
    try:
        return _ser(value).decode("utf-8")
    except RecursionError as exc:
        raise PhpSerializeError("value nested too deeply to serialize") from exc
    except UnicodeEncodeError as exc:
        raise PhpSerializeError(f"string is not valid Unicode: {exc.reason}") from exc


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value  # not UTF-8: hand back the raw PHP string
    return value


def _array(pairs: list[tuple[Any, Any]]) -> list[Any] | dict[Any, Any]:
    keys = [_text(k) for k, _ in pairs]
    values = [_text(v) for _, v in pairs]
    if keys == list(range(len(keys))):
        return values
    return dict(zip(keys, values, strict=True))


def _object(_name: Any, props: dict[Any, Any]) -> dict[str, Any]:
    return {_prop_name(k): _text(v) for k, v in props.items()}


def _plain(value: Any) -> Any:
    """Our reader's output -> the same shapes ``phpserialize`` + hooks give."""
    if isinstance(value, dict):
        return _array([(k, _plain(v)) for k, v in value.items()])
    if isinstance(value, _PhpObject):
        return _object(value.class_name, {k: _plain(v) for k, v in value.props.items()})
    return _text(value)


def php_unserialize(data: str | bytes) -> Any:
    """PHP ``unserialize()``: arrays keyed 0..n-1 -> list, other arrays -> dict, objects -> dict of properties."""
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    try:
        value = phpserialize.loads(raw, object_hook=_object, array_hook=_array)
        return _text(value)
    except (ValueError, TypeError, IndexError, RecursionError, UnicodeDecodeError):
        pass  # e.g. r:/R: references, which phpserialize does not know; our reader reports the real error
    try:
        return _plain(_read(raw))
    except PhpSerializeError as exc:
        raise PhpSerializeError(f"not valid PHP serialization ({exc}): {_excerpt(raw)}") from exc


def is_serialized(data: Any, strict: bool = True) -> bool:
    """WordPress ``is_serialized()``."""
    if not isinstance(data, str):
        return False
    data = data.strip(" \t\n\r\0\x0b")
    if data == "N;":
        return True
    if len(data) < 4 or data[1] != ":":
        return False
    if strict:
        if data[-1] not in ";}":
            return False
    else:
        semicolon, brace = data.find(";"), data.find("}")
        if semicolon == -1 and brace == -1:
            return False
        if 0 <= semicolon < 3 or 0 <= brace < 4:
            return False
    token = data[0]
    if token == "s":
        if strict and data[-2] != '"':
            return False
        if not strict and '"' not in data:
            return False
    if token in "saOE":
        return re.match(rf"{token}:[0-9]+:", data) is not None
    if token in "bid":
        return re.match(rf"{token}:[0-9.E+-]+;" + ("$" if strict else ""), data) is not None
    return False


def maybe_unserialize(value: str | bytes | None, *, strict: bool = False) -> Any:
    """WordPress ``maybe_unserialize()``: unserialize only what looks serialized, else return it unchanged.

    Broken serialized data gives ``False`` as in WordPress, or raises ``PhpSerializeError`` when ``strict``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "surrogateescape")
    if not is_serialized(value):
        return value
    assert isinstance(value, str)
    try:
        return php_unserialize(value.strip(" \t\n\r\0\x0b").encode("utf-8", "surrogateescape"))
    except PhpSerializeError:
        if strict:
            raise
        return False


def maybe_serialize(value: Any) -> str:
    """WordPress ``maybe_serialize()`` as the stored ``option_value`` text (scalars cast like PHP strings)."""
    if isinstance(value, list | tuple | dict) or (
        isinstance(value, str) and is_serialized(value, strict=False)
    ):
        return php_serialize(value)
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, float):
        return php_float_repr(value, "E", precision=14)
    if isinstance(value, int | str):
        return str(value)
    raise PhpSerializeError(f"cannot store {type(value).__name__} as a WordPress option")
