"""The sandbox's Cloud API and Catalog API routes: request validation and answers (messages, items_batch / batch,
check_batch_request_status), as functions of the sandbox state."""

from __future__ import annotations

import copy
import json
import re
import secrets
import time
from typing import Any

from wch_bridge.sandbox.faults import (
    BATCH_MAX,
    ITEMS_BATCH_REQUIRED,
    LEGACY_BATCH_REQUIRED,
    MESSAGE_TYPES,
    TEXT_MAX,
    _digits,
    _Reply,
)
from wch_bridge.sandbox.state import _State


def message(state: _State, phone_number_id: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Reply(100, "The request body must be a JSON object")
    if body.get("messaging_product") != "whatsapp":
        raise _Reply(100, "messaging_product must be 'whatsapp'")
    if body.get("status") == "read":  # mark as read
        if not isinstance(body.get("message_id"), str):
            raise _Reply(131008, "Parameter 'message_id' is required")
        return {"success": True}
    to = body.get("to")
    if to is None or to == "":
        raise _Reply(131008, "Parameter 'to' is required")
    digits = _digits(to)
    if not isinstance(to, str | int) or not re.fullmatch(r"\+?\d{7,15}", str(to).strip()):
        raise _Reply(131009, "Parameter 'to' is not a valid phone number")
    kind = body.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise _Reply(131051, f"Unsupported message type {kind!r}")
    content = body.get(kind)
    if not isinstance(content, dict):
        raise _Reply(131008, f"Parameter '{kind}' is required for type '{kind}'")
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text:
            raise _Reply(131008, "Parameter 'text.body' is required")
        if len(text) > TEXT_MAX:
            raise _Reply(131009, f"text.body is longer than {TEXT_MAX} characters")
    elif kind == "template":
        _check_template(state, content)
    elif kind == "interactive":
        _check_interactive(content)
    if state.over_rate(phone_number_id):
        raise _Reply(130429)
    with state.lock:
        outside = digits in state.outside_window
    if outside and kind != "template":
        raise _Reply(131047)
    wamid = f"wamid.HBgL{state.next_id():010d}{secrets.token_hex(10).upper()}"
    message: dict[str, Any] = {"id": wamid}
    if kind == "template":
        message["message_status"] = "accepted"
    return {
        "messaging_product": "whatsapp",
        "contacts": [{"input": str(to), "wa_id": digits}],
        "messages": [message],
    }


def _check_template(state: _State, template: dict[str, Any]) -> None:
    name = template.get("name")
    if not isinstance(name, str) or not name:
        raise _Reply(131008, "Parameter 'template.name' is required")
    language = template.get("language")
    if not isinstance(language, dict) or not language.get("code"):
        raise _Reply(131008, "Parameter 'template.language.code' is required")
    with state.lock:
        known = state.templates
        expected = known.get(name) if known is not None else None
    if known is not None and name not in known:
        raise _Reply(132001, f"template name ({name}) does not exist in {language.get('code')}")
    if expected is not None:
        components = template.get("components") or []
        count = sum(
            len(c.get("parameters") or [])
            for c in components
            if isinstance(c, dict) and c.get("type") == "body"
        )
        if count != expected:
            raise _Reply(
                132000,
                f"body: number of localizable_params ({count}) does not match the "
                f"expected number of params ({expected})",
            )


def _check_interactive(interactive: dict[str, Any]) -> None:
    kind = interactive.get("type")
    if not isinstance(kind, str) or not kind:
        raise _Reply(131008, "Parameter 'interactive.type' is required")
    action = interactive.get("action")
    if not isinstance(action, dict):
        raise _Reply(131008, "Parameter 'interactive.action' is required")
    text = (
        (interactive.get("body") or {}).get("text", "") if isinstance(interactive.get("body"), dict) else ""
    )
    if kind == "button":
        if not 1 <= len(action.get("buttons") or []) <= 3:
            raise _Reply(131009, "interactive.action.buttons must have 1 to 3 buttons")
        if len(text) > 1024:
            raise _Reply(131009, "interactive.body.text is longer than 1024 characters")
    elif kind == "list":
        rows = sum(len(s.get("rows") or []) for s in action.get("sections") or [] if isinstance(s, dict))
        if not 1 <= rows <= 10:
            raise _Reply(131009, "interactive list must have 1 to 10 rows")
    if len(text) > TEXT_MAX:
        raise _Reply(131009, f"interactive.body.text is longer than {TEXT_MAX} characters")


def batch(state: _State, catalog_id: str, verb: str, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise _Reply(100, "The request body must be a JSON object")
    legacy = verb == "batch"
    if not legacy and not body.get("item_type"):
        raise _Reply(100, "Param item_type is required")
    reqs = body.get("requests")
    if isinstance(reqs, str):
        try:
            reqs = json.loads(reqs)
        except ValueError:
            reqs = None
    if not isinstance(reqs, list) or not reqs:
        raise _Reply(100, "Param requests must be a non-empty array")
    if len(reqs) > BATCH_MAX:
        raise _Reply(100, f"Param requests must have at most {BATCH_MAX} elements")
    upsert = body.get("allow_upsert", True) not in (False, "false", 0)
    statuses: list[dict[str, Any]] = []
    accepted = 0
    with state.lock:
        items = state.catalogs.setdefault(catalog_id, {})
        for req in reqs:
            errors, rid = _apply(req, items, legacy, upsert)
            if errors:
                statuses.append(
                    {"retailer_id": rid, "errors": [{"message": m} for m in errors], "warnings": []}
                )
            else:
                accepted += 1
        handle = f"sbx{secrets.token_hex(12)}" if accepted else None
        if handle is not None:
            state.batches[handle] = {
                "catalog_id": catalog_id,
                "created": time.monotonic(),
                "errors": [e for s in statuses for e in s["errors"]],
                "invalid": [s["retailer_id"] for s in statuses],
            }
    return {"handles": [handle] if handle else [], "validation_status": statuses}


def _apply(
    req: Any, items: dict[str, dict[str, Any]], legacy: bool, upsert: bool
) -> tuple[list[str], str | None]:
    if not isinstance(req, dict):
        return ["request must be an object"], None
    method = str(req.get("method", "")).upper()
    data = req.get("data") if isinstance(req.get("data"), dict) else {}
    rid = req.get("retailer_id") if legacy else data.get("id")
    rid = str(rid) if rid not in (None, "") else None
    if method not in ("CREATE", "UPDATE", "DELETE"):
        return [f"unsupported method {method!r}"], rid
    if rid is None:
        return ["retailer_id is required" if legacy else "data.id is required"], rid
    if method == "DELETE":
        items.pop(rid, None)
        return [], rid
    if method == "CREATE":
        required = LEGACY_BATCH_REQUIRED if legacy else ITEMS_BATCH_REQUIRED
        missing = [f for f in required if f != "id" and data.get(f) in (None, "")]
        if missing:
            return [f"required field(s) missing: {', '.join(missing)}"], rid
        items[rid] = dict(data)
        return [], rid
    if rid not in items and not upsert:
        return [f"item {rid} does not exist"], rid
    items.setdefault(rid, {}).update(data)
    return [], rid


def batch_status(state: _State, query: dict[str, str]) -> dict[str, Any]:
    handle = query.get("handle", "")
    with state.lock:
        batch = copy.deepcopy(state.batches.get(handle))
        delay = state.batch_delay_ms / 1000.0
    if not handle or batch is None:
        raise _Reply(100, "Invalid handle")
    done = time.monotonic() - batch["created"] >= delay
    return {
        "data": [
            {
                "handle": handle,
                "status": "finished" if done else "in progress",
                "errors_total_count": len(batch["errors"]),
                "errors": batch["errors"],
                "warnings": [],
                "ids_of_invalid_requests": batch["invalid"],
            }
        ]
    }
