"""The strict reader of PHP ``serialize()`` bytes (with ``r:N;`` back-references) and the byte-level writer
pieces (``s:``, ``i:``, ``O:``) the schedule and value writers share."""

from __future__ import annotations

import re
from typing import Any

from wch_bridge.errors import ActionDataError


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
