"""The send request of an admin broadcast, built as the plugin builds it (docs/plugin-contracts.md, "Broadcasts").

The plugin's admin screen queues ``message = {template_name, template_data, variables}``: ``template_data`` is the
template *definition* from Meta's template list (upper-case ``HEADER``/``BODY``/``FOOTER``/``BUTTONS`` with ``text``
holding ``{{n}}`` placeholders), ``variables`` maps each placeholder number to ``{type, value}``. The plugin's head
(``BroadcastTemplateBuilder``) turns that into send components: one lower-case component per definition component
whose text has placeholders, its parameters in placeholder order, each resolved from ``variables[n]``:

* ``customer_name``: the recipient's ``wch_customer_profiles.name`` (``there`` when there is none);
* ``product_name``, ``coupon_code``, ``static``: the value as typed in the admin screen;
* anything else: the value, or the recipient's name when the value is empty.

Two places where the head is wrong and the intended behaviour is kept: an empty profile name gives ``there`` (the
head sends an empty parameter, which Meta rejects), and a URL button whose link has ``{{n}}`` gets its ``button``
component (the head sends none, which Meta rejects with 132000). Placeholders are numbered as the head numbers
them: ``{{1}}`` in any component takes ``variables["1"]``."""

from __future__ import annotations

import re
from typing import Any

PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")
FALLBACK_NAME = "there"
#: Mapping types whose value is used as typed (the admin screen's options besides ``customer_name``).
VALUE_TYPES = frozenset({"product_name", "coupon_code", "static"})


def language_code(template_data: dict[str, Any], default: str = "en") -> str:
    """``template_data.language`` as Meta lists it (a string like ``en_US``, or ``{code}``), else ``default``."""
    language = template_data.get("language")
    if isinstance(language, dict) and language.get("code"):
        return str(language["code"])
    if isinstance(language, str) and language.strip():
        return language.strip()
    return default


def resolve(mapping: Any, recipient_name: str | None) -> str:
    """One placeholder's text for one recipient (see the module docstring)."""
    name = (recipient_name or "").strip() or FALLBACK_NAME
    kind, value = "", ""
    if isinstance(mapping, dict):
        kind = str(mapping.get("type") or "")
        raw = mapping.get("value")
        value = "" if raw is None or isinstance(raw, dict | list) else str(raw)
    elif isinstance(mapping, str | int | float) and not isinstance(mapping, bool):
        value = str(mapping)
    if kind == "customer_name":
        return name
    if kind in VALUE_TYPES:
        return value
    return value if value != "" else name


def _parameters(text: str, variables: dict[str, Any], recipient_name: str | None) -> list[dict[str, str]]:
    return [{"type": "text", "text": resolve(variables.get(num), recipient_name)}
            for num in PLACEHOLDER.findall(text)]


def build_components(template_data: dict[str, Any], variables: Any,
                     recipient_name: str | None) -> list[dict[str, Any]]:
    """The send components for one recipient from the template definition and the campaign's variables."""
    mapping = {str(k): v for k, v in variables.items()} if isinstance(variables, dict) else (
        {str(i + 1): v for i, v in enumerate(variables)} if isinstance(variables, list) else {})
    out: list[dict[str, Any]] = []
    for component in template_data.get("components") or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type") or "").lower()
        if kind == "buttons":
            out.extend(_button_components(component, mapping, recipient_name))
            continue
        text = component.get("text")
        if not kind or not isinstance(text, str):
            continue
        params = _parameters(text, mapping, recipient_name)
        if params:
            out.append({"type": kind, "parameters": params})
    return out


def _button_components(component: dict[str, Any], mapping: dict[str, Any],
                       recipient_name: str | None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    buttons = component.get("buttons")
    for index, button in enumerate(buttons if isinstance(buttons, list) else []):
        if not isinstance(button, dict) or str(button.get("type") or "").upper() != "URL":
            continue
        url = button.get("url")
        params = _parameters(url, mapping, recipient_name) if isinstance(url, str) else []
        if params:
            out.append({"type": "button", "sub_type": "url", "index": str(index), "parameters": params})
    return out


def template_request(name: str, template_data: dict[str, Any], variables: Any, recipient_name: str | None,
                     default_language: str = "en") -> dict[str, Any]:
    """The Cloud API ``template`` object for one recipient."""
    template: dict[str, Any] = {"name": name, "language": {"code": language_code(template_data, default_language)}}
    components = build_components(template_data, variables, recipient_name)
    if components:
        template["components"] = components
    return template


def needs_names(template_data: dict[str, Any], variables: Any) -> bool:
    """Whether any placeholder may resolve to the recipient's name (then the batch reads the profiles)."""
    probe = build_components(template_data, variables, "\x00")
    return any(p["text"] == "\x00" for c in probe for p in c.get("parameters", []))
