"""Args encoding as wp_json_encode + ActionScheduler_DBStore write them, checked against a real MariaDB dump."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import FIXTURES
from wch_bridge.argscodec import (
    ArgsTooLongError,
    args_summary,
    decode_args,
    encode_args,
    php_json_encode,
    unwrap_payload,
)
from wch_bridge.errors import ActionDataError
from wch_bridge.phpser import parse_schedule, serialize_schedule
from wch_bridge.schedules import NullSchedule

_INSERT = re.compile(r"^INSERT INTO `wp_actionscheduler_actions` \(([^)]*)\) VALUES \((.*)\);$", re.M)
_TOKEN = re.compile(r"'((?:[^'\\]|\\.)*)'|(NULL)|(-?\d+)", re.S)
_ESCAPES = {"0": "\0", "n": "\n", "r": "\r", "t": "\t", "b": "\b", "Z": "\x1a"}


def _unescape(text: str) -> str:
    """MySQL string-literal escapes as mysqldump writes them (``\\%`` and ``\\_`` keep their backslash)."""
    return re.sub(
        r"\\(.)",
        lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1) if m.group(1) in "%_" else m.group(1)),
        text,
        flags=re.S,
    )


def fixture_rows() -> list[dict[str, Any]]:
    rows = []
    for m in _INSERT.finditer((FIXTURES / "action-scheduler-real.sql").read_text(encoding="utf-8")):
        columns = [c.strip(" `") for c in m.group(1).split(",")]
        values: list[Any] = []
        for tok in _TOKEN.finditer(m.group(2)):
            if tok.group(2):
                values.append(None)
            elif tok.group(3):
                values.append(int(tok.group(3)))
            else:
                values.append(_unescape(tok.group(1)))
        assert len(values) == len(columns)
        rows.append(dict(zip(columns, values, strict=True)))
    return rows


ROWS = fixture_rows()


# --- php_json_encode -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], "[]"),
        ({}, "{}"),
        ([123], "[123]"),
        ({"order_id": 123, "note": "a/b"}, '{"order_id":123,"note":"a\\/b"}'),
        ({"n": None, "t": True, "f": False}, '{"n":null,"t":true,"f":false}'),
        (["é", "😀"], '["\\u00e9","\\ud83d\\ude00"]'),
        (['"q"', "back\\slash"], '["\\"q\\"","back\\\\slash"]'),
        (
            ["\0", "\x1f", "\n\r\t\b\f", "\x7f", "\\u007f", "<>&'"],
            '["\\u0000","\\u001f","\\n\\r\\t\\b\\f","\x7f","\\\\u007f","<>&\'"]',
        ),
        (["100%", "snake_case"], '["100%","snake_case"]'),
        ([1.0, 0.5, -0.0, 1e20, 0.00001, 2.5e-7], "[1,0.5,-0,1.0e+20,1.0e-5,2.5e-7]"),
        ((1, (2,)), "[1,[2]]"),
        ({1: "a", "b": {"c": []}}, '{"1":"a","b":{"c":[]}}'),
        ("http://x/y", '"http:\\/\\/x\\/y"'),
    ],
)
def test_php_json_encode(value: object, expected: str) -> None:
    assert php_json_encode(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ([float("nan")], ValueError),
        ({"x": float("inf")}, ValueError),
        (["\ud800"], ValueError),
        ({1, 2}, TypeError),
        ({(1, 2): 1}, TypeError),
        ({True: 1}, TypeError),
        ([object()], TypeError),
    ],
)
def test_php_json_encode_rejects(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        php_json_encode(value)


plain_text = st.text(
    alphabet=st.one_of(
        st.characters(blacklist_categories=("Cs",)),
        st.sampled_from(['"', "\\", "/", "%", "_", "\0", "😀", "é", "\n"]),
    ),
    max_size=20,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | plain_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(plain_text, children, max_size=4),
    max_leaves=15,
)


def _same(decoded: Any, original: Any) -> bool:
    """Equality after a PHP round trip: an integral float such as 1e16 comes back as an int, as in PHP."""
    if isinstance(original, float):
        return isinstance(decoded, int | float) and float(decoded) == original
    if isinstance(original, list | tuple):
        return (
            isinstance(decoded, list) and len(decoded) == len(original) and all(map(_same, decoded, original))
        )
    if isinstance(original, dict):
        return (
            isinstance(decoded, dict)
            and list(decoded) == list(original)
            and all(_same(decoded[k], v) for k, v in original.items())
        )
    return decoded == original and type(decoded) is type(original)


def _has_float(value: Any) -> bool:
    if isinstance(value, dict):
        return any(map(_has_float, value.values()))
    if isinstance(value, list):
        return any(map(_has_float, value))
    return isinstance(value, float)


@given(json_values)
def test_php_json_encode_agrees_with_json_loads(value: object) -> None:
    text = php_json_encode(value)
    assert text.isascii()
    assert _same(json.loads(text), value)
    python = json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    if not _has_float(value) and "u007f" not in python:
        assert text == python  # identical whenever no float formatting is involved


# --- encode_args / decode_args ---------------------------------------------------------------------------


def test_reference_md5_example() -> None:
    value = {"k": "x" * 200}
    text = php_json_encode(value)
    assert text == '{"k":"' + "x" * 200 + '"}' and len(text) == 208
    assert encode_args(value) == ("494631ff312a694ca9e2eb5a329754e7", text)


def test_short_args_are_inline() -> None:
    assert encode_args([]) == ("[]", None)
    assert encode_args({"order_id": 123, "note": "a/b"}) == ('{"order_id":123,"note":"a\\/b"}', None)


def test_191_byte_boundary() -> None:
    at = {"k": "x" * 183}  # 8 + 183 = 191 bytes
    assert len(php_json_encode(at)) == 191
    assert encode_args(at) == (php_json_encode(at), None)
    over = {"k": "x" * 184}
    args, extended = encode_args(over)
    assert extended == php_json_encode(over) and args == hashlib.md5(extended.encode()).hexdigest()


def test_8000_byte_boundary() -> None:
    at = {"k": "x" * 7992}
    args, extended = encode_args(at)
    assert extended is not None and len(extended) == 8000 and len(args) == 32
    with pytest.raises(ArgsTooLongError) as info:
        encode_args({"k": "x" * 7993})
    assert str(info.value) == (
        "ActionScheduler_Action::$args too long. To ensure the args column can be indexed, action args should "
        "not be more than 8000 characters when encoded as JSON."
    )
    assert isinstance(info.value, ActionDataError)
    with pytest.raises(ArgsTooLongError):
        encode_args({"k": "é" * 1400})  # 6 bytes each as \u00e9: the limit counts JSON bytes


def test_encode_args_needs_an_array() -> None:
    with pytest.raises(TypeError):
        encode_args("job")  # type: ignore[arg-type]


args_values = st.one_of(
    st.lists(json_values, max_size=5),
    st.dictionaries(plain_text, json_values, max_size=5),
    st.dictionaries(st.sampled_from(["k", "note"]), st.text(min_size=150, max_size=2000), min_size=1),
)


@given(args_values)
def test_encode_decode_round_trip(value: Any) -> None:
    text = php_json_encode(value)
    if len(text) > 8000:
        with pytest.raises(ArgsTooLongError):
            encode_args(value)
        return
    args, extended = encode_args(value)
    assert len(args) <= 191
    assert (extended is None) == (len(text) <= 191)
    assert _same(decode_args(extended or args), value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "args must be a JSON array or object, got NULL"),
        ("", "args are not valid JSON: Expecting value at position 0"),
        ("{", "args are not valid JSON: "),
        ("[1,]", "args are not valid JSON: "),
        ("NaN", "args are not valid JSON: "),
        ("[Infinity]", "args are not valid JSON: "),
        ('"job"', "args must be a JSON array or object, got string"),
        ("5", "args must be a JSON array or object, got number"),
        ("1.5", "args must be a JSON array or object, got number"),
        ("null", "args must be a JSON array or object, got null"),
        ("true", "args must be a JSON array or object, got boolean"),
        ("494631ff312a694ca9e2eb5a329754e7", "args are not valid JSON: "),  # an md5 without extended_args
    ],
)
def test_decode_args_errors(text: str | None, message: str) -> None:
    with pytest.raises(ActionDataError) as info:
        decode_args(text)
    assert str(info.value).startswith(message)


def test_decode_args_accepts_arrays_and_objects() -> None:
    assert decode_args("[]") == []
    assert decode_args(' {"a":"x\\/y"} ') == {"a": "x/y"}
    assert decode_args('["\\ud83d\\ude00"]') == ["😀"]


# --- the real dump ---------------------------------------------------------------------------------------


def test_fixture_has_rows() -> None:
    assert len(ROWS) == 18
    assert sum(1 for r in ROWS if r["extended_args"] is not None) == 1


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"action{r['action_id']}")
def test_fixture_args_decode_and_reencode(row: dict[str, Any]) -> None:
    decoded = decode_args(row["extended_args"] or row["args"])
    assert isinstance(decoded, list | dict)
    if row["extended_args"] is not None:
        assert row["args"] == hashlib.md5(row["extended_args"].encode()).hexdigest()
    assert encode_args(decoded) == (row["args"], row["extended_args"])


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"action{r['action_id']}")
def test_fixture_schedules_parse_and_reserialize(row: dict[str, Any]) -> None:
    schedule = parse_schedule(row["schedule"])
    assert serialize_schedule(schedule) == row["schedule"]
    if not isinstance(schedule, NullSchedule):
        assert str(schedule.scheduled_at()) == row["scheduled_date_gmt"]


# --- v2 payloads and summaries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        (
            [{"_wch_version": 2, "_wch_meta": {"priority": 3, "attempt": 1}, "args": {"order_id": 5}}],
            ({"order_id": 5}, {"priority": 3, "attempt": 1}),
        ),
        ([{"_wch_version": 2, "_wch_meta": {"priority": 5}, "args": []}], ({}, {"priority": 5})),
        ([{"_wch_version": "2", "args": {"a": 1}}], ({"a": 1}, {})),
        ([{"_wch_version": 1, "args": {"a": 1}}], ({"_wch_version": 1, "args": {"a": 1}}, None)),
        ([{"job_id": "j3"}], ({"job_id": "j3"}, None)),
        ({"job_id": "j1"}, ({"job_id": "j1"}, None)),
        (["order_created", 5], (["order_created", 5], None)),
        ([], ([], None)),
        ([[1]], ([[1]], None)),
        ([{"a": 1}, {"b": 2}], ([{"a": 1}, {"b": 2}], None)),
    ],
)
def test_unwrap_payload(decoded: Any, expected: tuple[Any, Any]) -> None:
    assert unwrap_payload(decoded) == expected


def test_args_summary() -> None:
    row = {"job_id": "j1", "sync_type": "product", "entity_id": 1, "retry_count": 0}
    assert args_summary(row) == "job_id=j1, sync_type=product, entity_id=1, retry_count=0"
    assert args_summary({"phone": "+15551237890", "items": [1, 2, 3], "ctx": {"a": 1}}) == (
        "phone=+1******7890, items=[3 items], ctx={1 keys}"
    )
    wrapped = [{"_wch_version": 2, "_wch_meta": {"priority": 1}, "args": {"to": "+44 7911 123456"}}]
    assert args_summary(wrapped) == "to=+4*******3456"
    assert args_summary([]) == "[]"
    assert args_summary({}) == "{}"
    assert args_summary(["order_created", None, True]) == "order_created, null, true"
    assert args_summary({"note": "line one\nline two"}) == "note=line one line two"


def test_args_summary_is_bounded() -> None:
    summary = args_summary({f"key{i}": "value" * 10 for i in range(20)}, max_len=60)
    assert len(summary) == 60 and summary.endswith("…") and "\n" not in summary


@given(
    prefix=st.text(alphabet="ab =", max_size=40),
    digits=st.text(alphabet="0123456789", min_size=10, max_size=14),
    max_len=st.integers(10, 120),
)
def test_args_summary_never_leaks_a_phone(prefix: str, digits: str, max_len: int) -> None:
    phone = "+" + digits
    summary = args_summary({"note": prefix, "phone": phone, "other": f"call {phone} today"}, max_len=max_len)
    assert re.search(r"\d{5,}", summary) is None  # at most "+1" ... "7890" of a number is visible
    assert len(summary) <= max_len
