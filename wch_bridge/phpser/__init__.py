"""PHP ``serialize()`` / ``unserialize()``: Action Scheduler schedules and WordPress option values.

Schedules are read with a small strict reader of our own, because the ``phpserialize`` library has no support for
the ``r:N;`` back-reference every 3.x cron schedule contains. Option values go through ``phpserialize`` first and
fall back to the same reader. Writing is our own code so that the bytes equal PHP's (floats, numeric keys).
Strings in PHP are bytes: every ``s:N:`` length here is a UTF-8 byte count, and results are returned as ``str``.

Parts: ``core`` (the reader, the writer pieces), ``schedule`` (``parse_schedule``/``serialize_schedule``),
``values`` (options and transients, PHP float text). Import from here.
"""

from wch_bridge.phpser.core import PhpSerializeError
from wch_bridge.phpser.schedule import parse_schedule, serialize_schedule
from wch_bridge.phpser.values import (
    is_serialized,
    maybe_serialize,
    maybe_unserialize,
    php_float_repr,
    php_serialize,
    php_unserialize,
)

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
