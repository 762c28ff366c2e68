"""Schedules as values and the next-run computation (AS reference section 3.6), checked against PHP's fixtures."""

from __future__ import annotations

import base64
from datetime import datetime

import pytest
from croniter import croniter
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wch_bridge.errors import ScheduleFormatError
from wch_bridge.phpser import parse_schedule, serialize_schedule
from wch_bridge.schedules import (
    CronSchedule,
    IntervalSchedule,
    NullSchedule,
    SimpleSchedule,
    cron_first,
    cron_next_run,
    interval_first,
    next_instance,
    normalize_cron,
    php_intval,
)

RAN_AT = 1795917483  # 2026-11-29 01:58:03 UTC: when the PHP runner ran actions 6 and 8 of the fixture


def fixture_schedules() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for line in (FIXTURES / "schedules.txt").read_text().splitlines():
        kind, _, value = line.partition("\t")
        if kind.endswith(".b64"):
            out[kind[:-4]] = base64.b64decode(value)
    return out


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text + "+00:00").timestamp())


# --- values ----------------------------------------------------------------------------------------------


def test_value_basics() -> None:
    simple = SimpleSchedule(1700000000)
    assert not simple.is_recurring
    assert simple.scheduled_timestamp == 1700000000
    assert simple.scheduled_at() == datetime(2023, 11, 14, 22, 13, 20)
    assert simple.scheduled_at().tzinfo is None
    null = NullSchedule()
    assert not null.is_recurring and null.scheduled_at() is None and null.scheduled_timestamp is None
    interval = IntervalSchedule(1700003600, 1700000000, 3600)
    assert interval.is_recurring and interval.scheduled_at() == datetime(2023, 11, 14, 23, 13, 20)
    cron = CronSchedule(1700006400, 1699999980, "0   0 * *\t*")
    assert cron.is_recurring and cron.expression == "0 0 * * *"
    assert cron.parts == ("0", "0", "*", "*", "*")
    assert cron.scheduled_at() == datetime(2023, 11, 15)


def test_values_are_frozen_and_hashable() -> None:
    s = IntervalSchedule(1, 1, 60)
    with pytest.raises(AttributeError):
        s.scheduled_timestamp = 2  # type: ignore[misc]
    assert len({s, IntervalSchedule(1, 1, 60), SimpleSchedule(1), NullSchedule(), NullSchedule()}) == 3


@pytest.mark.parametrize(
    ("alias", "expanded"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_aliases_expand_before_storing(alias: str, expanded: str) -> None:
    assert normalize_cron(alias) == expanded
    assert CronSchedule(0, 0, alias).expression == expanded
    assert cron_first(alias, 1700000000).expression == expanded


@pytest.mark.parametrize("bad", ["* * * *", "", "@every_minute", "0 0 * * * 2030 extra"])
def test_cron_needs_five_or_six_parts(bad: str) -> None:
    with pytest.raises(ScheduleFormatError, match="not a valid CRON expression"):
        CronSchedule(0, 0, bad)


def test_interval_recurrence_type_is_checked() -> None:
    with pytest.raises(TypeError):
        IntervalSchedule(0, 0, True)
    with pytest.raises(TypeError):
        IntervalSchedule(0, 0, 1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(3600, 3600), ("3600", 3600), (" 90", 90), ("1e3", 1000), ("12.9", 12), ("abc", 0), ("-5", -5), ("", 0)],
)
def test_php_intval(value: int | str, expected: int) -> None:
    assert php_intval(value) == expected


# --- creating --------------------------------------------------------------------------------------------


def test_interval_first_keeps_the_interval_as_given() -> None:
    assert interval_first(1700000000, 3600) == IntervalSchedule(1700000000, 1700000000, 3600)
    assert interval_first(1700000000, "3600") == IntervalSchedule(1700000000, 1700000000, "3600")
    with pytest.raises(ValueError):
        interval_first(1700000000, 0)
    with pytest.raises(ValueError):
        interval_first(1700000000, "soon")


def test_cron_first_matches_reference_example() -> None:
    # reference 3.2: '0 0 * * *' created with when=1700000000 -> first run 1700006400, first = when minus seconds
    assert cron_first("0 0 * * *", 1700000000) == CronSchedule(1700006400, 1699999980, "0 0 * * *")


@pytest.mark.parametrize("when", [1795917480, 1795917481, 1795917539])
def test_cron_first_matches_php_fixture(when: int) -> None:
    # fixture 'cron': as_schedule_cron_action(now, '0 * * * *') at 01:58:0x -> first 01:58:00, run 02:00:00
    expected = parse_schedule(fixture_schedules()["cron"])
    assert cron_first("0 * * * *", when) == expected
    assert serialize_schedule(cron_first("0 * * * *", when)).encode() == fixture_schedules()["cron"]


def test_cron_first_allows_the_current_minute() -> None:
    # seconds are dropped before matching, so a 'when' inside a matching minute runs at that minute
    assert cron_first("0 * * * *", ts("2026-11-29 02:00:00")).scheduled_timestamp == ts("2026-11-29 02:00:00")
    got = cron_first("0 * * * *", ts("2026-11-29 02:00:45"))
    assert got.scheduled_timestamp == ts("2026-11-29 02:00:00")
    assert got.first_timestamp == ts("2026-11-29 02:00:00")


# --- next instance ---------------------------------------------------------------------------------------


def test_interval_next_matches_php_fixture() -> None:
    fx = fixture_schedules()
    nxt = next_instance(parse_schedule(fx["interval"]), RAN_AT)
    assert nxt == parse_schedule(fx["interval_next"])
    assert serialize_schedule(nxt).encode() == fx["interval_next"]


def test_cron_next_matches_php_fixture() -> None:
    # action 8 (cron '0 * * * *', due 01:00:00, first 01:00:00) ran at 01:58:03 -> action 16 (cron_next)
    fx = fixture_schedules()
    due = CronSchedule(ts("2026-11-29 01:00:00"), ts("2026-11-29 01:00:00"), "0 * * * *")
    nxt = next_instance(due, RAN_AT)
    assert nxt == parse_schedule(fx["cron_next"])
    assert serialize_schedule(nxt).encode() == fx["cron_next"]


def test_interval_drifts_from_now() -> None:
    s = IntervalSchedule(1000, 500, 60)
    assert next_instance(s, 1001) == IntervalSchedule(1061, 500, 60)
    assert next_instance(s, 5000) == IntervalSchedule(5060, 500, 60)


def test_string_interval_is_kept() -> None:
    nxt = next_instance(IntervalSchedule(1000, 1000, "3600"), 2000)
    assert nxt == IntervalSchedule(5600, 1000, "3600")
    assert isinstance(nxt.recurrence, str)


@pytest.mark.parametrize("now", [998, 999])
def test_not_yet_due_keeps_the_scheduled_time(now: int) -> None:
    interval = IntervalSchedule(1000, 10, 60)
    cron = CronSchedule(1020, 960, "* * * * *")
    assert next_instance(interval, now) == interval
    assert next_instance(cron, min(now, 1019)) == cron


def test_finishing_within_the_scheduled_second_moves_on() -> None:
    """PHP's DateTime has microseconds: a run that ends in its scheduled second is already later than it."""
    assert next_instance(IntervalSchedule(1000, 10, 60), 1000).scheduled_timestamp == 1060
    assert next_instance(CronSchedule(1020, 960, "* * * * *"), 1020).scheduled_timestamp == 1080


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-29 02:00:00", "2026-11-29 03:00:00"),  # strictly after: a match at 'now' is skipped
        ("2026-11-29 02:00:30", "2026-11-29 03:00:00"),
        ("2026-11-29 01:59:59", "2026-11-29 02:00:00"),
        ("2026-12-31 23:30:00", "2027-01-01 00:00:00"),
    ],
)
def test_cron_next_strictly_after_now(now: str, expected: str) -> None:
    s = CronSchedule(ts("2026-11-29 01:00:00"), ts("2026-11-29 00:00:00"), "0 * * * *")
    nxt = next_instance(s, ts(now))
    assert isinstance(nxt, CronSchedule)
    assert nxt.scheduled_timestamp == ts(expected)
    assert nxt.first_timestamp == ts("2026-11-29 00:00:00")
    assert nxt.expression == "0 * * * *"


def test_cron_is_evaluated_in_utc() -> None:
    s = CronSchedule(ts("2026-01-01 09:00:00"), ts("2026-01-01 09:00:00"), "0 9 * * *")
    assert next_instance(s, ts("2026-01-01 09:00:05")).scheduled_at() == datetime(2026, 1, 2, 9, 0)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/15 * * * *", "2026-03-01 10:07:00", "2026-03-01 10:15:00"),
        ("0 0 13 * 5", "2026-01-01 00:00:00", "2026-02-13 00:00:00"),  # day of month AND day of week
        ("0 0 */5 * *", "2026-01-01 00:00:00", "2026-01-05 00:00:00"),  # */N: day % N == 0 (cron lib 1.x)
        ("0 0 1 */3 *", "2026-01-01 00:00:00", "2026-03-01 00:00:00"),  # month % 3 == 0
        ("0 0 * * 5L", "2026-01-01 00:00:00", "2026-01-30 00:00:00"),  # last Friday
        ("0 0 L * *", "2026-02-01 00:00:00", "2026-02-28 00:00:00"),
        ("0 0 ? * MON", "2026-01-01 00:00:00", "2026-01-05 00:00:00"),
        ("30 6 1 1 * 2030", "2026-01-01 00:00:00", "2030-01-01 06:30:00"),  # sixth part: year
        ("0 0 1 1 * 2028-2030", "2029-06-01 00:00:00", "2030-01-01 00:00:00"),
        ("0 0 1 1 * */4", "2026-01-01 00:00:00", "2028-01-01 00:00:00"),
    ],
)
def test_cron_next_run(expression: str, after: str, expected: str) -> None:
    assert cron_next_run(expression, ts(after)) == ts(expected)


def test_impossible_cron_is_a_schedule_error() -> None:
    with pytest.raises(ScheduleFormatError):
        cron_next_run("0 0 30 2 *", 1700000000)
    with pytest.raises(ScheduleFormatError):
        cron_next_run("0 0 1 1 * 2020", 1700000000)
    with pytest.raises(ScheduleFormatError):
        cron_next_run("0 0 1 1 * x", 1700000000)


def test_one_off_schedules_have_no_next_instance() -> None:
    with pytest.raises(ValueError):
        next_instance(SimpleSchedule(1), 2)
    with pytest.raises(ValueError):
        next_instance(NullSchedule(), 2)


@given(
    scheduled=st.integers(0, 2**33),
    first=st.integers(0, 2**33),
    interval=st.integers(1, 10**7),
    now=st.integers(0, 2**33),
)
def test_interval_next_property(scheduled: int, first: int, interval: int, now: int) -> None:
    s = IntervalSchedule(scheduled, first, interval)
    nxt = next_instance(s, now)
    assert nxt.first_timestamp == first and nxt.recurrence == interval
    assert nxt.scheduled_timestamp == (now + interval if now >= scheduled else scheduled)


@given(
    minute=st.sampled_from(["0", "*/5", "15,45", "7"]),
    hour=st.sampled_from(["*", "3", "0-6", "*/2"]),
    now=st.integers(1_600_000_000, 2_000_000_000),
)
def test_cron_next_property(minute: str, hour: str, now: int) -> None:
    expression = f"{minute} {hour} * * *"
    nxt = next_instance(CronSchedule(now - 1, 1, expression), now)
    assert isinstance(nxt, CronSchedule)
    assert nxt.scheduled_timestamp > now
    assert nxt.scheduled_timestamp % 60 == 0
    assert nxt.scheduled_timestamp - now <= 86400
    # nothing matches in between: the previous match before the result is not after now
    previous = croniter(expression, float(nxt.scheduled_timestamp)).get_prev(float)
    assert previous <= now
