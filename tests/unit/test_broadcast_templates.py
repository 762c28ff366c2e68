"""handlers/templates.py: the admin campaign's template definition + variables -> send components, as the plugin's
head BroadcastTemplateBuilder builds them (fixture: tests/fixtures/plugin/admin_broadcast_batch.json)."""

from __future__ import annotations

import json
from pathlib import Path

from wch_bridge.handlers import templates

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "plugin" / "admin_broadcast_batch.json"


def test_fixture_definition_gives_the_expected_components() -> None:
    fx = json.loads(FIXTURE.read_text(encoding="utf-8"))
    message = fx["args"]["message"]
    names = {p["phone"]: p["name"] for p in fx["profiles"]}
    for phone, expected in fx["expected"]["components_by_phone"].items():
        got = templates.template_request(message["template_name"], message["template_data"], message["variables"],
                                         names.get(phone))
        assert got == {"name": "spring_sale", "language": {"code": "en_US"}, "components": expected}


def test_resolution_rules_of_the_head_builder() -> None:
    assert templates.resolve({"type": "customer_name", "value": "ignored"}, "Asha") == "Asha"
    assert templates.resolve({"type": "customer_name", "value": ""}, None) == "there"
    assert templates.resolve({"type": "static", "value": ""}, "Asha") == ""  # typed values are used as typed
    assert templates.resolve({"type": "coupon_code", "value": "SAVE20"}, "Asha") == "SAVE20"
    assert templates.resolve({"type": "other", "value": ""}, "Asha") == "Asha"  # unknown type, empty: the name
    assert templates.resolve("plain", "Asha") == "plain"
    assert templates.resolve(None, "Asha") == "Asha"  # unmapped placeholder


def test_language_and_components_without_placeholders() -> None:
    assert templates.language_code({"language": {"code": "pt_BR"}}) == "pt_BR"
    assert templates.language_code({}, "en") == "en"
    data = {"language": "en_GB", "components": [{"type": "BODY", "text": "No variables here"},
                                                {"type": "FOOTER", "text": "bye"}]}
    assert templates.template_request("hello", data, {}, "Asha") == {"name": "hello", "language": {"code": "en_GB"}}
    assert not templates.needs_names(data, {})
    assert templates.needs_names({"components": [{"type": "BODY", "text": "Hi {{1}}"}]},
                                 {"1": {"type": "customer_name"}})
