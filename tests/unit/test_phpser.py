"""PHP serialization: schedules byte-exact against PHP's own output, and WordPress option helpers."""

from __future__ import annotations

import base64
import codecs
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wch_bridge.errors import ActionDataError, ScheduleFormatError
from wch_bridge.phpser import (
    PhpSerializeError,
    is_serialized,
    maybe_serialize,
    maybe_unserialize,
    parse_schedule,
    php_float_repr,
    php_serialize,
    php_unserialize,
    serialize_schedule,
)
from wch_bridge.schedules import CronSchedule, IntervalSchedule, NullSchedule, Schedule, SimpleSchedule


def ref(text: str) -> str:
    """Reference strings are written with ``\\0`` for a NUL byte."""
    return text.replace("\\0", "\0")


# Reference section 3.2 (PHP 8.2 + AS 3.8.2), all at 1700000000.
SIMPLE = ref(
    r'O:30:"ActionScheduler_SimpleSchedule":2:{s:22:"\0*\0scheduled_timestamp";i:1700000000;'
    r's:41:"\0ActionScheduler_SimpleSchedule\0timestamp";i:1700000000;}'
)
NULL = 'O:28:"ActionScheduler_NullSchedule":0:{}'
INTERVAL = ref(
    r'O:32:"ActionScheduler_IntervalSchedule":5:{s:22:"\0*\0scheduled_timestamp";i:1700000000;'
    r's:18:"\0*\0first_timestamp";i:1700000000;s:13:"\0*\0recurrence";i:3600;'
    r's:49:"\0ActionScheduler_IntervalSchedule\0start_timestamp";i:1700000000;'
    r's:53:"\0ActionScheduler_IntervalSchedule\0interval_in_seconds";i:3600;}'
)
INTERVAL_REPEAT = ref(
    r'O:32:"ActionScheduler_IntervalSchedule":5:{s:22:"\0*\0scheduled_timestamp";i:1700003600;'
    r's:18:"\0*\0first_timestamp";i:1700000000;s:13:"\0*\0recurrence";i:3600;'
    r's:49:"\0ActionScheduler_IntervalSchedule\0start_timestamp";i:1700003600;'
    r's:53:"\0ActionScheduler_IntervalSchedule\0interval_in_seconds";i:3600;}'
)
CRON_EXPR = ref(
    r'O:14:"CronExpression":2:{s:25:"\0CronExpression\0cronParts";a:5:{i:0;s:1:"0";i:1;s:1:"0";i:2;s:1:"*";'
    r'i:3;s:1:"*";i:4;s:1:"*";}s:28:"\0CronExpression\0fieldFactory";O:27:"CronExpression_FieldFactory":1:{'
    r's:35:"\0CronExpression_FieldFactory\0fields";a:5:{i:0;O:27:"CronExpression_MinutesField":0:{}'
    r'i:1;O:25:"CronExpression_HoursField":0:{}i:2;O:30:"CronExpression_DayOfMonthField":0:{}'
    r'i:3;O:25:"CronExpression_MonthField":0:{}i:4;O:29:"CronExpression_DayOfWeekField":0:{}}}}'
)
CRON = ref(
    r'O:28:"ActionScheduler_CronSchedule":5:{s:22:"\0*\0scheduled_timestamp";i:1700006400;'
    r's:18:"\0*\0first_timestamp";i:1699999980;s:13:"\0*\0recurrence";'
    + CRON_EXPR
    + r's:45:"\0ActionScheduler_CronSchedule\0start_timestamp";i:1700006400;'
    r's:34:"\0ActionScheduler_CronSchedule\0cron";r:4;}'
)
# Section 3.3: AS 2.x forms.
SIMPLE_2X = ref(
    r'O:30:"ActionScheduler_SimpleSchedule":1:{s:41:"\0ActionScheduler_SimpleSchedule\0timestamp";i:1700000000;}'
)
INTERVAL_2X = ref(
    r'O:32:"ActionScheduler_IntervalSchedule":2:{s:49:"\0ActionScheduler_IntervalSchedule\0start_timestamp";'
    r'i:1700000000;s:53:"\0ActionScheduler_IntervalSchedule\0interval_in_seconds";i:3600;}'
)
CRON_2X = ref(
    r'O:28:"ActionScheduler_CronSchedule":2:{s:45:"\0ActionScheduler_CronSchedule\0start_timestamp";'
    r'i:1700006400;s:34:"\0ActionScheduler_CronSchedule\0cron";' + CRON_EXPR + "}"
)


def fixture_schedules() -> dict[str, bytes]:
    """Both encodings of every kind in schedules.txt, checked against each other."""
    escaped: dict[str, bytes] = {}
    b64: dict[str, bytes] = {}
    for line in (FIXTURES / "schedules.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        kind, _, value = line.partition("\t")
        if kind.endswith(".b64"):
            b64[kind[:-4]] = base64.b64decode(value)
        else:
            escaped[kind] = codecs.decode(value, "unicode_escape").encode("latin-1")
    assert escaped == b64
    return b64


FIXTURE_EXPECTED: dict[str, Schedule] = {
    "simple": SimpleSchedule(1795917481),
    "null": NullSchedule(),
    "interval": IntervalSchedule(1795917481, 1795917481, 3600),
    "interval_next": IntervalSchedule(1795921083, 1795917481, 3600),
    "cron": CronSchedule(1795917600, 1795917480, "0 * * * *"),
    "cron_next": CronSchedule(1795917600, 1795914000, "0 * * * *"),
}


# --- schedules: PHP's bytes ------------------------------------------------------------------------------


def test_fixture_has_every_kind() -> None:
    assert set(fixture_schedules()) == set(FIXTURE_EXPECTED)


@pytest.mark.parametrize("kind", sorted(FIXTURE_EXPECTED))
def test_fixture_parses_and_reserializes_byte_identical(kind: str) -> None:
    raw = fixture_schedules()[kind]
    parsed = parse_schedule(raw)
    assert parsed == FIXTURE_EXPECTED[kind]
    assert parse_schedule(raw.decode("utf-8")) == parsed  # the column as a driver returns it (str)
    out = serialize_schedule(parsed)
    assert isinstance(out, str)
    assert out.encode("utf-8") == raw


def test_fixture_dates_match_the_rows() -> None:
    fx = {k: parse_schedule(v) for k, v in fixture_schedules().items()}
    assert str(fx["simple"].scheduled_at()) == "2026-11-29 01:58:01"
    assert fx["null"].scheduled_at() is None
    assert str(fx["interval_next"].scheduled_at()) == "2026-11-29 02:58:03"
    assert str(fx["cron"].scheduled_at()) == "2026-11-29 02:00:00"


@pytest.mark.parametrize(
    ("text", "schedule", "length"),
    [
        (SIMPLE, SimpleSchedule(1700000000), 147),
        (NULL, NullSchedule(), 40),
        (INTERVAL, IntervalSchedule(1700000000, 1700000000, 3600), 292),
        (INTERVAL_REPEAT, IntervalSchedule(1700003600, 1700000000, 3600), 292),
        (CRON, CronSchedule(1700006400, 1699999980, "0 0 * * *"), 720),
    ],
)
def test_reference_strings(text: str, schedule: Schedule, length: int) -> None:
    assert len(text.encode()) == length
    assert parse_schedule(text) == schedule
    assert serialize_schedule(schedule) == text


def test_string_interval_round_trip() -> None:
    s = IntervalSchedule(1700000000, 1700000000, "3600")
    out = serialize_schedule(s)
    assert out.count('s:4:"3600";') == 2
    assert out == INTERVAL.replace("i:3600;", 's:4:"3600";')
    assert parse_schedule(out) == s
    assert isinstance(parse_schedule(out).recurrence, str)  # type: ignore[union-attr]


def test_six_part_cron_writes_year_field() -> None:
    out = serialize_schedule(CronSchedule(1, 1, "0 0 1 1 * 2030"))
    assert 'a:6:{i:0;s:1:"0";' in out and 'i:5;s:4:"2030";}' in out
    assert 'i:5;O:24:"CronExpression_YearField":0:{}}' in out
    assert parse_schedule(out) == CronSchedule(1, 1, "0 0 1 1 * 2030")


def test_two_x_forms() -> None:
    assert parse_schedule(SIMPLE_2X) == SimpleSchedule(1700000000)
    assert parse_schedule(INTERVAL_2X) == IntervalSchedule(1700000000, 1700000000, 3600)
    assert parse_schedule(CRON_2X) == CronSchedule(1700006400, 1700006400, "0 0 * * *")


def test_minimal_current_forms() -> None:
    simple = ref(r'O:30:"ActionScheduler_SimpleSchedule":1:{s:22:"\0*\0scheduled_timestamp";i:1700000000;}')
    interval = ref(
        r'O:32:"ActionScheduler_IntervalSchedule":3:{s:22:"\0*\0scheduled_timestamp";i:1700003600;'
        r's:18:"\0*\0first_timestamp";i:1700000000;s:13:"\0*\0recurrence";i:3600;}'
    )
    no_first = ref(
        r'O:32:"ActionScheduler_IntervalSchedule":3:{s:22:"\0*\0scheduled_timestamp";i:1700003600;'
        r's:18:"\0*\0first_timestamp";i:0;s:13:"\0*\0recurrence";i:60;}'
    )
    cron = ref(
        r'O:28:"ActionScheduler_CronSchedule":3:{s:22:"\0*\0scheduled_timestamp";i:1700006400;'
        r's:18:"\0*\0first_timestamp";i:1699999980;s:13:"\0*\0recurrence";O:14:"CronExpression":2:{'
        r's:25:"\0CronExpression\0cronParts";a:5:{i:0;s:2:"30";i:1;s:1:"6";i:2;s:1:"*";i:3;s:1:"*";i:4;s:3:"1-5";}'
        r's:28:"\0CronExpression\0fieldFactory";O:27:"CronExpression_FieldFactory":1:{'
        r's:35:"\0CronExpression_FieldFactory\0fields";a:0:{}}}}'
    )
    assert parse_schedule(simple) == SimpleSchedule(1700000000)
    assert parse_schedule(interval) == IntervalSchedule(1700003600, 1700000000, 3600)
    assert parse_schedule(no_first) == IntervalSchedule(1700003600, 1700003600, 60)  # first 0 -> scheduled
    assert parse_schedule(cron) == CronSchedule(1700006400, 1699999980, "30 6 * * 1-5")


def test_full_cron_with_empty_fields_array() -> None:
    start = CRON.index('fields";a:5:{') + len('fields";')
    end = CRON.index("}}}", CRON.index("DayOfWeekField")) + 2
    text = CRON[:start] + "a:0:{}" + CRON[end:]
    assert 'fields";a:0:{}}}s:45:' in text
    assert parse_schedule(text) == CronSchedule(1700006400, 1699999980, "0 0 * * *")


def test_current_names_win_over_legacy_copies() -> None:
    text = SIMPLE.replace("i:1700000000;}", "i:5;}")  # legacy private copy differs
    assert parse_schedule(text) == SimpleSchedule(1700000000)


def test_lenient_property_visibility_and_bytes_input() -> None:
    public = 'O:30:"ActionScheduler_SimpleSchedule":1:{s:19:"scheduled_timestamp";i:42;}'
    assert parse_schedule(public) == SimpleSchedule(42)
    assert parse_schedule(public.encode()) == SimpleSchedule(42)
    canceled = ref(
        r'O:32:"ActionScheduler_CanceledSchedule":2:{s:22:"\0*\0scheduled_timestamp";i:7;'
        r's:43:"\0ActionScheduler_CanceledSchedule\0timestamp";N;}'
    )
    assert parse_schedule(canceled) == SimpleSchedule(7)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (None, "NULL"),
        ("", "empty"),
        ("   ", "empty"),
        (SIMPLE[:-10], "not valid PHP serialization"),
        (SIMPLE.replace("s:22:", "s:99:"), "not valid PHP serialization"),
        ("b:0;", "not a serialized object"),
        ("a:0:{}", "not a serialized object"),
        (SIMPLE.replace("O:30:", "O:31:"), "not valid PHP serialization"),
        ('O:8:"stdClass":0:{}', "unknown schedule class 'stdClass'"),
        (
            SIMPLE.replace('O:30:"ActionScheduler_SimpleSchedule"', 'O:30:"ActionScheduler_SimpelSchedule"'),
            "unknown schedule class 'ActionScheduler_SimpelSchedule'",
        ),
        ('O:30:"ActionScheduler_SimpleSchedule":0:{}', "timestamp is missing"),
        (INTERVAL.replace("i:3600;", "N;"), "recurrence is missing"),
        (CRON.replace("r:4;", "r:99;").replace("s:13:", "s:14:"), "not valid PHP serialization"),
        (CRON.replace(CRON_EXPR, "a:0:{}").replace("r:4;", "N;"), "not a CronExpression"),
        ('C:30:"ActionScheduler_SimpleSchedule":0:{}', "not valid PHP serialization"),
        ("not serialized at all", "not valid PHP serialization"),
    ],
)
def test_bad_schedules(raw: str | None, message: str) -> None:
    with pytest.raises(ScheduleFormatError, match=re.escape(message)) as info:
        parse_schedule(raw)
    assert isinstance(info.value, ActionDataError)
    assert "\n" not in str(info.value)


def test_three_part_cron_is_rejected() -> None:
    text = CRON.replace(
        'a:5:{i:0;s:1:"0";i:1;s:1:"0";i:2;s:1:"*";i:3;s:1:"*";i:4;s:1:"*";}', 'a:1:{i:0;s:1:"0";}'
    )
    with pytest.raises(ScheduleFormatError, match="not a valid CRON expression"):
        parse_schedule(text)


def test_error_message_is_short_for_huge_blobs() -> None:
    blob = "x" * 1_000_000
    with pytest.raises(ScheduleFormatError) as info:
        parse_schedule(blob)
    assert len(str(info.value)) < 300
    name = "Bogus" * 10_000
    with pytest.raises(ScheduleFormatError, match="unknown schedule class") as info:
        parse_schedule(f'O:{len(name)}:"{name}":0:{{}}')
    assert len(str(info.value)) < 300


# --- hypothesis round trip -------------------------------------------------------------------------------

timestamps = st.integers(-(2**40), 2**40)
cron_part = st.sampled_from(["*", "0", "5", "*/5", "1-5", "1,15,30", "MON", "JAN", "L", "2030"])
schedules_st = st.one_of(
    st.builds(SimpleSchedule, timestamps),
    st.just(NullSchedule()),
    st.builds(
        IntervalSchedule,
        timestamps,
        st.integers(1, 2**40),  # PHP reads first_timestamp <= 0 as "same as scheduled"
        st.one_of(st.integers(1, 10**9), st.integers(1, 10**9).map(str), st.text(max_size=8)),
    ),
    st.builds(
        CronSchedule,
        timestamps,
        st.integers(1, 2**40),
        st.lists(cron_part, min_size=5, max_size=6).map(" ".join),
    ),
)


@given(schedules_st)
def test_serialize_parse_identity(schedule: Schedule) -> None:
    text = serialize_schedule(schedule)
    assert parse_schedule(text) == schedule
    assert parse_schedule(text.encode("utf-8")) == schedule


# --- PHP numbers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "serialized", "cast"),
    [
        (1.0, "1", "1"),
        (0.1, "0.1", "0.1"),
        (0.1 + 0.2, "0.30000000000000004", "0.3"),
        (-1.5, "-1.5", "-1.5"),
        (0.0, "0", "0"),
        (-0.0, "-0", "-0"),
        (100.0, "100", "100"),
        (1e15, "1000000000000000", "1.0E+15"),
        (1e16, "10000000000000000", "1.0E+16"),
        (1e17, "1.0E+17", "1.0E+17"),
        (1e25, "1.0E+25", "1.0E+25"),
        (1.5e300, "1.5E+300", "1.5E+300"),
        (0.0001, "0.0001", "0.0001"),
        (0.00001, "1.0E-5", "1.0E-5"),
        (1.25e-7, "1.25E-7", "1.25E-7"),
        (123456789.125, "123456789.125", "123456789.125"),
        (1234567.123456789, "1234567.123456789", "1234567.1234568"),
        (math.inf, "INF", "INF"),
        (-math.inf, "-INF", "-INF"),
        (math.nan, "NAN", "NAN"),
    ],
)
def test_php_float_repr(value: float, serialized: str, cast: str) -> None:
    assert php_float_repr(value) == serialized
    assert php_float_repr(value, "e") == serialized.replace("E", "e")
    assert php_float_repr(value, precision=14) == cast


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_php_float_repr_round_trips(value: float) -> None:
    assert float(php_float_repr(value)) == value


# --- generic serialize / unserialize ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "N;"),
        (True, "b:1;"),
        (False, "b:0;"),
        (-7, "i:-7;"),
        (1.0, "d:1;"),
        (0.5, "d:0.5;"),
        ("héllo", 's:6:"héllo";'),
        ("a\0b", 's:3:"a\0b";'),
        ([], "a:0:{}"),
        (["a", 1], 'a:2:{i:0;s:1:"a";i:1;i:1;}'),
        (
            {"enabled": True, "5": "x", "05": "y", True: 1},
            'a:4:{s:7:"enabled";b:1;i:5;s:1:"x";s:2:"05";s:1:"y";i:1;i:1;}',
        ),
        ({"k": {"n": None}}, 'a:1:{s:1:"k";a:1:{s:1:"n";N;}}'),
        ({1: "a", "1": "b"}, 'a:1:{i:1;s:1:"b";}'),  # PHP: "1" is the same key as 1
    ],
)
def test_php_serialize(value: object, expected: str) -> None:
    assert php_serialize(value) == expected


def test_php_serialize_rejects_unknown_types() -> None:
    with pytest.raises(PhpSerializeError):
        php_serialize({1, 2})
    with pytest.raises(PhpSerializeError):
        php_serialize({(1, 2): "tuple key"})
    with pytest.raises(PhpSerializeError):
        php_serialize("\ud800")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("N;", None),
        ("b:1;", True),
        ("i:42;", 42),
        ("d:0.5;", 0.5),
        ('s:6:"héllo";', "héllo"),
        ("a:0:{}", []),
        ('a:2:{i:0;s:1:"a";i:1;s:1:"b";}', ["a", "b"]),
        ('a:2:{i:1;s:1:"a";i:0;s:1:"b";}', {1: "a", 0: "b"}),
        ('a:2:{s:3:"key";i:1;i:7;a:1:{i:0;b:0;}}', {"key": 1, 7: [False]}),
        ('O:8:"stdClass":2:{s:1:"a";i:1;s:4:"\0*\0b";s:1:"x";}', {"a": 1, "b": "x"}),
        ('a:2:{i:0;a:1:{s:1:"k";s:1:"v";}i:1;r:2;}', [{"k": "v"}, {"k": "v"}]),  # reference: our reader
    ],
)
def test_php_unserialize(data: str, expected: object) -> None:
    assert php_unserialize(data) == expected
    assert php_unserialize(data.encode("utf-8")) == expected


def test_php_unserialize_fixture_cron_uses_reference() -> None:
    value = php_unserialize(fixture_schedules()["cron"])
    assert value["recurrence"] == value["cron"]
    assert value["recurrence"]["cronParts"] == ["0", "*", "*", "*", "*"]


def test_php_unserialize_keeps_non_utf8_bytes() -> None:
    assert php_unserialize(b's:2:"\xff\xfe";') == b"\xff\xfe"


@pytest.mark.parametrize("data", ["", "x", 's:5:"abc";', "a:2:{i:0;i:1;}", "i:abc;", "r:9;", b"\xff"])
def test_php_unserialize_errors(data: str | bytes) -> None:
    with pytest.raises(PhpSerializeError):
        php_unserialize(data)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


def _normal(value: object) -> object:
    """What a PHP round trip gives: numeric string keys become ints, 0..n-1 keyed arrays become lists."""
    if isinstance(value, dict):
        keys = [
            int(k) if re.fullmatch(r"0|-?[1-9]\d*", k) and -(2**63) <= int(k) < 2**63 else k for k in value
        ]
        items = dict(zip(keys, (_normal(v) for v in value.values()), strict=True))
        return list(items.values()) if list(items) == list(range(len(items))) else items
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


@given(json_like)
def test_serialize_unserialize_round_trip(value: object) -> None:
    assert php_unserialize(php_serialize(value)) == _normal(value)


# --- WordPress helpers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "strict", "expected"),
    [
        ("N;", True, True),
        ("  b:1; ", True, True),
        ("i:5;", True, True),
        ("d:0.5;", True, True),
        ('s:1:"a";', True, True),
        ('s:1:"a"', True, False),
        ("a:0:{}", True, True),
        ('O:8:"stdClass":0:{}', True, True),
        ("hello", True, False),
        ("i:5", True, False),
        ("i:5;x", True, False),
        ("i:5;x", False, True),
        ("5", True, False),
        (5, True, False),
    ],
)
def test_is_serialized(data: object, strict: bool, expected: bool) -> None:
    assert is_serialized(data, strict) is expected


def test_maybe_unserialize() -> None:
    assert maybe_unserialize(None) is None
    assert maybe_unserialize("plain text") == "plain text"
    assert maybe_unserialize("123") == "123"
    assert maybe_unserialize('a:1:{s:5:"token";s:3:"abc";}') == {"token": "abc"}
    assert maybe_unserialize(" i:5;\n") == 5
    assert maybe_unserialize('a:1:{s:5:"token";s:9:"abc";}') is False  # WordPress: false on broken data
    with pytest.raises(PhpSerializeError):
        maybe_unserialize('a:1:{s:5:"token";s:9:"abc";}', strict=True)


def test_maybe_serialize() -> None:
    assert maybe_serialize({"a": 1}) == 'a:1:{s:1:"a";i:1;}'
    assert maybe_serialize([1]) == "a:1:{i:0;i:1;}"
    assert maybe_serialize("text") == "text"
    assert maybe_serialize('s:1:"a";') == 's:8:"s:1:"a";";'  # already serialized -> serialized again
    assert maybe_serialize(5) == "5"
    assert maybe_serialize(1.5) == "1.5"
    assert maybe_serialize(True) == "1"
    assert maybe_serialize(False) == ""
    assert maybe_serialize(None) == ""
    assert maybe_unserialize(maybe_serialize({"x": [1, 2]})) == {"x": [1, 2]}
