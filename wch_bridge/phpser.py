"""PHP ``serialize()`` / ``unserialize()``: Action Scheduler schedules and WordPress option values.

Schedules are read with a small strict reader of our own, because the ``phpserialize`` library has no support for
the ``r:N;`` back-reference every 3.x cron schedule contains. Option values go through ``phpserialize`` first and
fall back to the same reader. Writing is our own code so that the bytes equal PHP's (floats, numeric keys).
Strings in PHP are bytes: every ``s:N:`` length here is a UTF-8 byte count, and results are returned as ``str``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

import phpserialize

from wch_bridge.errors import ActionDataError, ScheduleFormatError
from wch_bridge.schedules import CronSchedule, IntervalSchedule, NullSchedule, Schedule, SimpleSchedule

__all__ = [
    "PhpSerializeError",
    "is_serialized",
    "maybe_serialize",
    "maybe_unserialize",
    "parse_schedule",
    "php_float_repr",
    "php_serialize",
    "php_unserialize",
    "serialize_schedule",
]


class PhpSerializeError(ActionDataError):
    """A PHP-serialized value could not be decoded (or a Python value cannot be serialized)."""


def _excerpt(data: bytes, limit: int = 60) -> str:
    text = repr(data[:limit])
    return text + ("..." if len(data) > limit else "")


# --- reading ---------------------------------------------------------------------------------------------


class _PhpObject:
    """An unserialized PHP object: class name and properties keyed by their mangled names."""

    def __init__(self, class_name: str) -> None:
        self.class_name = class_name
        self.props: dict[bytes | int, Any] = {}


_NUM = re.compile(rb"[+-]?\d+")
_FLOAT = re.compile(rb"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|NAN|-?INF")


class _Reader:
    """Strict reader for PHP's serialize format, with ``r:``/``R:`` references (slot numbers start at 1)."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.slots: list[Any] = []

    def fail(self, message: str) -> PhpSerializeError:
        return PhpSerializeError(f"{message} at offset {self.pos}")

    def expect(self, token: bytes) -> None:
        if self.data[self.pos : self.pos + len(token)] != token:
            raise self.fail(f"expected {token!r}")
        self.pos += len(token)

    def until(self, delim: bytes, pattern: re.Pattern[bytes]) -> bytes:
        end = self.data.find(delim, self.pos)
        if end < 0 or not pattern.fullmatch(self.data, self.pos, end):
            raise self.fail("malformed number")
        chunk = self.data[self.pos : end]
        self.pos = end + len(delim)
        return chunk

    def count(self, delim: bytes) -> int:
        value = int(self.until(delim, _NUM))
        if value < 0:
            raise self.fail("negative length")
        return value

    def raw_string(self) -> bytes:
        length = self.count(b':"')
        chunk = self.data[self.pos : self.pos + length]
        if len(chunk) != length:
            raise self.fail("string runs past the end")
        self.pos += length
        return chunk

    def key(self) -> int | bytes:
        tag = self.data[self.pos : self.pos + 2]
        self.pos += 2
        if tag == b"i:":
            return int(self.until(b";", _NUM))
        if tag == b"s:":
            value = self.raw_string()
            self.expect(b'";')
            return value
        self.pos -= 2
        raise self.fail("array key must be an int or a string")

    def value(self) -> Any:
        tag = self.data[self.pos : self.pos + 2]
        if tag == b"R:":  # PHP reference: no slot of its own
            self.pos += 2
            return self.reference()
        slot = len(self.slots)
        self.slots.append(None)
        value = self._value(tag, slot)
        self.slots[slot] = value
        return value

    def reference(self) -> Any:
        index = int(self.until(b";", _NUM))
        if not 1 <= index <= len(self.slots):
            raise self.fail(f"reference to unknown value {index}")
        return self.slots[index - 1]

    def _value(self, tag: bytes, slot: int) -> Any:
        self.pos += 2
        if tag == b"N;":
            return None
        if tag == b"i:":
            return int(self.until(b";", _NUM))
        if tag == b"b:":
            flag = self.until(b";", _NUM)
            if flag not in (b"0", b"1"):
                raise self.fail("boolean must be 0 or 1")
            return flag == b"1"
        if tag == b"d:":
            text = self.until(b";", _FLOAT).decode("ascii")
            return float(text.replace("INF", "inf").replace("NAN", "nan"))
        if tag == b"s:":
            value = self.raw_string()
            self.expect(b'";')
            return value
        if tag == b"r:":
            return self.reference()
        if tag == b"a:":
            items: dict[int | bytes, Any] = {}
            self.slots[slot] = items
            for _ in range(self.count(b":{")):
                k = self.key()
                items[k] = self.value()
            self.expect(b"}")
            return items
        if tag == b"O:":
            name = self.raw_string()
            self.expect(b'":')
            obj = _PhpObject(name.decode("utf-8", "replace"))
            self.slots[slot] = obj
            for _ in range(self.count(b":{")):
                k = self.key()
                obj.props[k] = self.value()
            self.expect(b"}")
            return obj
        self.pos -= 2
        raise self.fail(f"unsupported or broken value {tag!r}")


def _read(data: bytes) -> Any:
    if not data:
        raise PhpSerializeError("empty string")
    try:
        return _Reader(data).value()
    except RecursionError as exc:
        raise PhpSerializeError("nested too deeply") from exc


def _prop_name(key: bytes | int) -> str:
    """``\\0*\\0name`` (protected) and ``\\0Class\\0name`` (private) -> ``name``."""
    if isinstance(key, int):
        return str(key)
    if key.startswith(b"\0"):
        key = key[key.find(b"\0", 1) + 1 :]
    return key.decode("utf-8", "replace")


# --- schedules -------------------------------------------------------------------------------------------

_SIMPLE = "ActionScheduler_SimpleSchedule"
_INTERVAL = "ActionScheduler_IntervalSchedule"
_CRON = "ActionScheduler_CronSchedule"
_NULL = "ActionScheduler_NullSchedule"
_CANCELED = "ActionScheduler_CanceledSchedule"
_CRON_FIELDS = (
    "CronExpression_MinutesField",
    "CronExpression_HoursField",
    "CronExpression_DayOfMonthField",
    "CronExpression_MonthField",
    "CronExpression_DayOfWeekField",
    "CronExpression_YearField",
)


def _first_set(props: dict[str, Any], *names: str) -> Any:
    """The first of ``names`` that is present and not null (how the classes' ``__wakeup`` picks)."""
    for name in names:
        if props.get(name) is not None:
            return props[name]
    return None


def _timestamp(value: Any, cls: str, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, bytes) and _NUM.fullmatch(value):
        return int(value)
    raise ScheduleFormatError(f"{cls}: {what} is missing or not an integer timestamp")


def _cron_expression(value: Any, cls: str) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, _PhpObject) and value.class_name == "CronExpression":
        parts = {_prop_name(k): v for k, v in value.props.items()}.get("cronParts")
        if isinstance(parts, dict) and parts and all(isinstance(p, bytes) for p in parts.values()):
            return " ".join(p.decode("utf-8", "replace") for p in parts.values())
    raise ScheduleFormatError(f"{cls}: recurrence is not a CronExpression with cronParts")


def _to_schedule(obj: _PhpObject) -> Schedule:
    cls = obj.class_name
    props = {_prop_name(k): v for k, v in obj.props.items()}
    if cls == _NULL:
        return NullSchedule()
    if cls in (_SIMPLE, _CANCELED):
        return SimpleSchedule(
            _timestamp(_first_set(props, "scheduled_timestamp", "timestamp"), cls, "timestamp")
        )
    if cls not in (_INTERVAL, _CRON):
        raise ScheduleFormatError(f"unknown schedule class {cls[:80]!r}")
    scheduled = _timestamp(
        _first_set(props, "scheduled_timestamp", "start_timestamp"), cls, "scheduled_timestamp"
    )
    first_raw = props.get("first_timestamp")
    first = scheduled
    if first_raw is not None and _timestamp(first_raw, cls, "first_timestamp") > 0:
        first = _timestamp(first_raw, cls, "first_timestamp")
    if cls == _CRON:
        expression = _cron_expression(_first_set(props, "recurrence", "cron"), cls)
        return CronSchedule(scheduled, first, expression)
    recurrence = _first_set(props, "recurrence", "interval_in_seconds")
    if isinstance(recurrence, bytes):
        return IntervalSchedule(scheduled, first, recurrence.decode("utf-8", "replace"))
    if isinstance(recurrence, float) and math.isfinite(recurrence):
        recurrence = int(recurrence)
    if isinstance(recurrence, bool) or not isinstance(recurrence, int):
        raise ScheduleFormatError(f"{cls}: recurrence is missing or not a number of seconds")
    return IntervalSchedule(scheduled, first, recurrence)


def parse_schedule(raw: str | bytes | None) -> Schedule:
    """The ``schedule`` column -> a schedule value; accepts the 3.x and the 2.x property names."""
    if raw is None:
        raise ScheduleFormatError("schedule is NULL")
    try:
        data = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
    except UnicodeEncodeError as exc:
        raise ScheduleFormatError(f"schedule is not encodable as UTF-8: {exc}") from exc
    if not data.strip():
        raise ScheduleFormatError("schedule is empty")
    try:
        value = _read(data)
    except PhpSerializeError as exc:
        raise ScheduleFormatError(
            f"schedule is not valid PHP serialization ({exc}): {_excerpt(data)}"
        ) from exc
    if not isinstance(value, _PhpObject):
        raise ScheduleFormatError(f"schedule is not a serialized object: {_excerpt(data)}")
    return _to_schedule(value)


# --- writing ---------------------------------------------------------------------------------------------


def _s(data: bytes) -> bytes:
    return b's:%d:"%s";' % (len(data), data)


def _prot(name: str) -> bytes:
    return _s(b"\0*\0" + name.encode())


def _priv(cls: str, name: str) -> bytes:
    return _s(b"\0" + cls.encode() + b"\0" + name.encode())


def _i(value: int) -> bytes:
    return b"i:%d;" % value


def _obj(cls: str, count: int, body: bytes) -> bytes:
    return b'O:%d:"%s":%d:{%s}' % (len(cls), cls.encode(), count, body)


def _cron_object(parts: tuple[str, ...]) -> bytes:
    listed = b"".join(_i(k) + _s(p.encode()) for k, p in enumerate(parts))
    fields = b"".join(_i(k) + _obj(_CRON_FIELDS[k], 0, b"") for k in range(len(parts)))
    factory = _obj(
        "CronExpression_FieldFactory",
        1,
        _priv("CronExpression_FieldFactory", "fields") + b"a:%d:{%s}" % (len(parts), fields),
    )
    body = (
        _priv("CronExpression", "cronParts")
        + b"a:%d:{%s}" % (len(parts), listed)
        + _priv("CronExpression", "fieldFactory")
        + factory
    )
    return _obj("CronExpression", 2, body)


def serialize_schedule(schedule: Schedule) -> str:
    """PHP 8 ``serialize()`` of the AS 3.x schedule object, byte for byte (NUL bytes included)."""
    if isinstance(schedule, NullSchedule):
        out = _obj(_NULL, 0, b"")
    elif isinstance(schedule, SimpleSchedule):
        ts = _i(schedule.timestamp)
        out = _obj(_SIMPLE, 2, _prot("scheduled_timestamp") + ts + _priv(_SIMPLE, "timestamp") + ts)
    elif isinstance(schedule, IntervalSchedule):
        ts = _i(schedule.scheduled_timestamp)
        rec = schedule.recurrence
        rec_bytes = _s(rec.encode()) if isinstance(rec, str) else _i(rec)
        body = (
            _prot("scheduled_timestamp") + ts
            + _prot("first_timestamp") + _i(schedule.first_timestamp)
            + _prot("recurrence") + rec_bytes
            + _priv(_INTERVAL, "start_timestamp") + ts
            + _priv(_INTERVAL, "interval_in_seconds") + rec_bytes
        )  # fmt: skip
        out = _obj(_INTERVAL, 5, body)
    elif isinstance(schedule, CronSchedule):
        ts = _i(schedule.scheduled_timestamp)
        body = (
            _prot("scheduled_timestamp") + ts
            + _prot("first_timestamp") + _i(schedule.first_timestamp)
            + _prot("recurrence") + _cron_object(schedule.parts)
            + _priv(_CRON, "start_timestamp") + ts
            + _priv(_CRON, "cron") + b"r:4;"
        )  # fmt: skip
        out = _obj(_CRON, 5, body)
    else:
        raise TypeError(f"not a schedule: {type(schedule).__name__}")
    return out.decode("utf-8")


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
