"""The typed seams of ``Services`` (``handlers.ports``) match what ``app`` plugs in: every verb a Protocol lists
exists on the store / client class with the same parameters (names, kinds, defaults), and every data member is
there on a built object."""

from __future__ import annotations

import inspect
import typing
from typing import Any

import pytest

from wch_bridge.api_gate import ApiGate
from wch_bridge.handlers import base, ports
from wch_bridge.store.ledger import LedgerEntry, MessageLedger
from wch_bridge.store.wordpress import WordPressData
from wch_bridge.whatsapp import WhatsAppClient

PAIRS = [
    (ports.WordPressPort, WordPressData),
    (ports.LedgerPort, MessageLedger),
    (ports.WhatsAppPort, WhatsAppClient),
    (ports.LedgerRow, LedgerEntry),
]


def members(proto: type) -> dict[str, Any]:
    skip = set(dir(typing.Protocol)) | {"__annotations__", "__dict__", "__weakref__", "__parameters__"}
    out = {
        name: value for name, value in vars(proto).items() if name not in skip and not name.startswith("_")
    }
    for name in getattr(proto, "__annotations__", {}):
        out.setdefault(name, None)
    return out


def params(fn: Any) -> list[tuple[str, Any, bool]]:
    sig = inspect.signature(inspect.unwrap(fn))
    return [(p.name, p.kind, p.default is not inspect.Parameter.empty) for p in sig.parameters.values()]


@pytest.mark.parametrize(("proto", "impl"), PAIRS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_every_verb_of_a_seam_exists_with_the_same_parameters(proto: type, impl: type) -> None:
    for name, value in members(proto).items():
        if callable(value):
            assert hasattr(impl, name), f"{impl.__name__} has no {name} ({proto.__name__} lists it)"
            assert params(getattr(impl, name)) == params(value), f"{impl.__name__}.{name} != {proto.__name__}"


def test_data_members_exist_on_built_objects() -> None:
    client = WhatsAppClient(base_url="http://127.0.0.1:9", phone_number_id="1", token="t", gate=ApiGate(80))
    entry = LedgerEntry(
        id=1, key="k", status="pending", recipient="+1", kind="text", payload=None, attempts=0
    )
    for proto, obj in (
        (ports.LedgerRow, entry),
        (ports.WhatsAppPort, client),
        (ports.WordPressPort, WordPressData),
    ):
        props = [name for name, value in members(proto).items() if isinstance(value, property)]
        assert props, proto
        for name in props:
            assert hasattr(obj, name), f"{proto.__name__}.{name}"
    assert isinstance(client.gate, ApiGate)


def test_services_fields_are_typed_by_the_seams() -> None:
    hints = typing.get_type_hints(base.Services, vars(ports) | vars(base))
    assert hints["wp"] == ports.WordPressPort | None
    assert hints["ledger"] == ports.LedgerPort | None
    assert hints["whatsapp"] == ports.WhatsAppPort | None
