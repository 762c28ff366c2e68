"""Action Scheduler schedules (the ``schedule`` column) read from and written as PHP serialization, byte for byte
what PHP writes."""

from __future__ import annotations

import math
from typing import Any

from wch_bridge.errors import ScheduleFormatError
from wch_bridge.phpser.core import (
    _NUM,
    PhpSerializeError,
    _excerpt,
    _i,
    _obj,
    _PhpObject,
    _priv,
    _prop_name,
    _prot,
    _read,
    _s,
)
from wch_bridge.schedules import CronSchedule, IntervalSchedule, NullSchedule, Schedule, SimpleSchedule

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
