"""The sandbox Cloud/Catalog API over plain HTTP (requests), as any client would see it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from wch_bridge.sandbox import Sandbox, http_status_for, serve

TOKEN = "EAAG-SANDBOX-TOKEN-9"
PHONE = "+16505551234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MSG = "/v21.0/106540352242922/messages"
CATALOG = "146265584024623"


@pytest.fixture
def sbx() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box


def post(box: Sandbox, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(box.url + path, json=body, headers=AUTH if headers is None else headers, timeout=10)


def text(to: str = PHONE, body: str = "hello") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def template(name: str = "order_update", params: int = 0) -> dict[str, Any]:
    comps = [{"type": "body", "parameters": [{"type": "text", "text": str(i)} for i in range(params)]}]
    return {
        "messaging_product": "whatsapp",
        "to": PHONE,
        "type": "template",
        "template": {"name": name, "language": {"code": "en_US"}, "components": comps},
    }


def assert_error(resp: requests.Response, code: int, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert error["code"] == code
    assert error["message"].startswith(f"(#{code}) ")
    assert error["type"] == "OAuthException"
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["error_data"]["details"], str)
    assert error["fbtrace_id"]
    assert "error_subcode" not in error
    return error


# ---------------------------------------------------------------------------------------------- messages


def test_text_success_shape(sbx: Sandbox) -> None:
    resp = post(sbx, MSG, text())
    assert resp.status_code == 200
    data = resp.json()
    assert data["messaging_product"] == "whatsapp"
    assert data["contacts"] == [{"input": PHONE, "wa_id": "16505551234"}]
    [message] = data["messages"]
    assert message["id"].startswith("wamid.") and len(message["id"]) <= 128
    assert "message_status" not in message


def test_template_success_carries_message_status(sbx: Sandbox) -> None:
    data = post(sbx, MSG, template()).json()
    assert data["messages"][0]["message_status"] == "accepted"


@pytest.mark.parametrize("version", ["v18.0", "v21.0", "v25.0", "v100.12"])
def test_any_version_prefix(sbx: Sandbox, version: str) -> None:
    assert post(sbx, f"/{version}/1/messages", text()).status_code == 200


@pytest.mark.parametrize(
    "path", ["/21.0/1/messages", "/v21/1/messages", "/v21.0/messages", "/v21.0/1/unknown"]
)
def test_unknown_routes_are_graph_errors(sbx: Sandbox, path: str) -> None:
    assert_error(post(sbx, path, text()), 100, 400)


def test_missing_bearer_is_190(sbx: Sandbox) -> None:
    assert_error(post(sbx, MSG, text(), headers={}), 190, 401)
    assert_error(post(sbx, MSG, text(), headers={"Authorization": "Bearer "}), 190, 401)
    assert_error(post(sbx, MSG, text(), headers={"Authorization": "Basic abc"}), 190, 401)
    assert post(sbx, MSG, text(), headers={"Authorization": "Bearer anything"}).status_code == 200


def test_expected_token_is_checked() -> None:
    with Sandbox(token=TOKEN) as box:
        assert_error(post(box, MSG, text(), headers={"Authorization": "Bearer EAAG-OTHER"}), 190, 401)
        assert post(box, MSG, text()).status_code == 200
        assert TOKEN not in repr(box)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("not json", 100),
        ({**text(), "messaging_product": "sms"}, 100),
        ({k: v for k, v in text().items() if k != "to"}, 131008),
        (text(to="12ab"), 131009),
        ({**text(), "type": "template"}, 131008),  # type does not match the payload key
        ({**text(), "type": "carrier_pigeon"}, 131051),
        (text(body=""), 131008),
        (text(body="x" * 4097), 131009),
        ({**template(), "template": {"language": {"code": "en_US"}}}, 131008),
        ({**template(), "template": {"name": "x"}}, 131008),
        (
            {
                **text(),
                "type": "interactive",
                "interactive": {"type": "button", "action": {"buttons": [{}] * 4}},
            },
            131009,
        ),
        ({**text(), "type": "interactive", "interactive": {"action": {}}}, 131008),
    ],
)
def test_message_validation(sbx: Sandbox, body: Any, code: int) -> None:
    if isinstance(body, str):
        resp = requests.post(sbx.url + MSG, data=body, headers=AUTH, timeout=10)
    else:
        resp = post(sbx, MSG, body)
    assert_error(resp, code, 400)
    assert sbx.messages_to(PHONE) == []


def test_text_at_the_limit_is_accepted(sbx: Sandbox) -> None:
    assert post(sbx, MSG, text(body="x" * 4096)).status_code == 200


def test_known_templates_and_parameter_counts(sbx: Sandbox) -> None:
    sbx.configure(templates={"abandoned_cart_reminder": 2, "any_params": None})
    assert_error(post(sbx, MSG, template("nope")), 132001, 400)
    assert_error(post(sbx, MSG, template("abandoned_cart_reminder", 1)), 132000, 400)
    assert post(sbx, MSG, template("abandoned_cart_reminder", 2)).status_code == 200
    assert post(sbx, MSG, template("any_params", 5)).status_code == 200


def test_outside_window_only_templates(sbx: Sandbox) -> None:
    resp = requests.post(sbx.url + "/_sandbox/config", json={"outside_window": ["16505551234"]}, timeout=10)
    assert resp.json()["outside_window"] == ["16505551234"]
    error = assert_error(post(sbx, MSG, text()), 131047, 400)
    assert error["message"] == "(#131047) Re-engagement message"
    assert post(sbx, MSG, template()).status_code == 200
    assert post(sbx, MSG, text(to="+447911123456")).status_code == 200
    assert [b["type"] for b in sbx.messages_to("16505551234")] == ["template"]


def test_mark_as_read(sbx: Sandbox) -> None:
    resp = post(sbx, MSG, {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"})
    assert resp.json() == {"success": True}


def test_phone_number_rate_limit(sbx: Sandbox) -> None:
    sbx.configure(mps_limit=0.01)  # burst of 1, then one message per 100 s
    assert post(sbx, MSG, text()).status_code == 200
    assert_error(post(sbx, MSG, text()), 130429, 400)
    assert post(sbx, "/v21.0/other-number/messages", text()).status_code == 200  # per phone number


def test_concurrent_sends_are_all_recorded_with_unique_ids(sbx: Sandbox) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        with requests.Session() as session:
            for i in range(10):
                resp = session.post(sbx.url + MSG, json=text(body=f"{n}-{i}"), headers=AUTH, timeout=10)
                with lock:
                    ids.append(resp.json()["messages"][0]["id"])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == len(set(ids)) == 80
    assert len(sbx.requests()) == 80
    assert sorted(r["wamid"] for r in sbx.requests()) == sorted(ids)


# ---------------------------------------------------------------------------------------------- control API


def test_requests_are_recorded_without_authorization(sbx: Sandbox) -> None:
    post(sbx, MSG, text())
    requests.post(sbx.url + MSG, data="raw text body", headers=AUTH, timeout=10)
    rows = requests.get(sbx.url + "/_sandbox/requests", timeout=10).json()
    assert [r["method"] for r in rows] == ["POST", "POST"]
    assert rows[0]["path"] == MSG and rows[0]["body"] == text()
    assert rows[1]["body"] == "raw text body"
    assert all(isinstance(r["time"], float) for r in rows)
    assert TOKEN not in json.dumps(rows) and "Authorization" not in json.dumps(rows)


def test_requests_filter_by_path(sbx: Sandbox) -> None:
    post(sbx, MSG, text())
    post(
        sbx,
        f"/v21.0/{CATALOG}/items_batch",
        {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": "A"}}]},
    )
    rows = requests.get(
        sbx.url + "/_sandbox/requests", params={"path_contains": "items_batch"}, timeout=10
    ).json()
    assert [r["path"] for r in rows] == [f"/v21.0/{CATALOG}/items_batch"]
    assert len(sbx.requests("messages")) == 1


def test_faults_limited_by_times(sbx: Sandbox) -> None:
    resp = requests.post(
        sbx.url + "/_sandbox/faults",
        json={"rules": [{"code": 131000, "times": 2, "retry_after": 3}]},
        timeout=10,
    )
    assert resp.json() == {"ok": True, "rules": 1}
    first, second, third = (post(sbx, MSG, text()) for _ in range(3))
    assert_error(first, 131000, 500)
    assert first.headers["Retry-After"] == "3"
    assert_error(second, 131000, 500)
    assert third.status_code == 200 and "Retry-After" not in third.headers
    rules = requests.get(sbx.url + "/_sandbox/faults", timeout=10).json()["rules"]
    assert rules[0]["hits"] == 2


def test_fault_matching_by_recipient_and_path(sbx: Sandbox) -> None:
    sbx.add_fault(code=131026, recipients=["+447911123456"])
    sbx.add_fault(code=80014, paths=["items_batch"])
    assert post(sbx, MSG, text()).status_code == 200
    assert_error(post(sbx, MSG, text(to="447911123456")), 131026, 400)
    batch = {"item_type": "PRODUCT_ITEM", "requests": [{"method": "DELETE", "data": {"id": "A"}}]}
    assert_error(post(sbx, f"/v21.0/{CATALOG}/items_batch", batch), 80014, 400)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (0, 401),
        (190, 401),
        (10, 403),
        (200, 403),
        (299, 403),
        (368, 403),
        (131000, 500),
        (131016, 503),
        (100, 400),
        (130429, 400),
        (131047, 400),
        (131056, 400),
    ],
)
def test_fault_default_http_status(sbx: Sandbox, code: int, status: int) -> None:
    assert http_status_for(code) == status
    sbx.add_fault(code=code)
    assert_error(post(sbx, MSG, text()), code, status)


def test_fault_explicit_status_message_and_raw_body(sbx: Sandbox) -> None:
    sbx.add_fault(code=4, http_status=429, message="Application request limit reached", times=1)
    sbx.add_fault(body="{not json", times=1)
    error = assert_error(post(sbx, MSG, text()), 4, 429)
    assert error["message"] == "(#4) Application request limit reached"
    raw = post(sbx, MSG, text())
    assert raw.status_code == 200 and raw.text == "{not json"
    assert [r["status"] for r in sbx.requests()] == [429, 200]


def test_bad_fault_rules_are_rejected(sbx: Sandbox) -> None:
    for rules in (
        {"rules": [{"colour": "red"}]},
        {"rules": [{"times": 1}]},
        {"rules": [{"code": "x"}]},
        {"x": 1},
    ):
        assert requests.post(sbx.url + "/_sandbox/faults", json=rules, timeout=10).status_code == 400
    with pytest.raises(ValueError):
        sbx.add_fault(code=131000, times=0)
    assert requests.get(sbx.url + "/_sandbox/faults", timeout=10).json() == {"rules": []}


def test_reset_clears_requests_and_rules(sbx: Sandbox) -> None:
    sbx.add_fault(code=131000)
    post(sbx, MSG, text())
    assert requests.post(sbx.url + "/_sandbox/reset", timeout=10).json() == {"ok": True}
    assert sbx.requests() == []
    assert post(sbx, MSG, text()).status_code == 200


def test_config_roundtrip_and_validation(sbx: Sandbox) -> None:
    got = requests.post(sbx.url + "/_sandbox/config", json={"latency_ms": 5, "batch_delay_ms": 0}, timeout=10)
    assert got.json()["latency_ms"] == 5
    assert requests.get(sbx.url + "/_sandbox/config", timeout=10).json()["latency_ms"] == 5
    assert requests.post(sbx.url + "/_sandbox/config", json={"latency_ms": -1}, timeout=10).status_code == 400
    assert requests.post(sbx.url + "/_sandbox/config", json={"nope": 1}, timeout=10).status_code == 400
    assert requests.get(sbx.url + "/_sandbox/nothing", timeout=10).status_code == 404
    assert requests.get(sbx.url + "/_sandbox/health", timeout=10).json() == {"ok": True}


def test_latency_fault_delays_then_answers_normally(sbx: Sandbox) -> None:
    sbx.add_fault(latency_ms=300, times=1)
    with pytest.raises(requests.Timeout):
        requests.post(sbx.url + MSG, json=text(), headers=AUTH, timeout=0.1)
    assert post(sbx, MSG, text()).status_code == 200


# ---------------------------------------------------------------------------------------------- catalog


def items(n: int) -> list[dict[str, Any]]:
    return [{"method": "UPDATE", "data": {"id": f"SKU-{i}", "availability": "in stock"}} for i in range(n)]


def test_items_batch_and_status(sbx: Sandbox) -> None:
    good = {
        "id": "SKU-1",
        "title": "Shoe",
        "description": "d",
        "availability": "in stock",
        "condition": "new",
        "price": "59.99 USD",
        "link": "https://x/p",
        "image_link": "https://x/i.jpg",
        "brand": "Acme",
    }
    body = {
        "item_type": "PRODUCT_ITEM",
        "allow_upsert": True,
        "requests": [
            {"method": "CREATE", "data": good},
            {"method": "CREATE", "data": {"id": "SKU-2"}},
            {"method": "FROB", "data": {"id": "SKU-3"}},
            {"method": "DELETE", "data": {"id": "SKU-4"}},
        ],
    }
    data = post(sbx, f"/v21.0/{CATALOG}/items_batch", body).json()
    [handle] = data["handles"]
    assert [v["retailer_id"] for v in data["validation_status"]] == ["SKU-2", "SKU-3"]
    assert all(v["errors"][0]["message"] for v in data["validation_status"])
    status = requests.get(
        sbx.url + f"/v21.0/{CATALOG}/check_batch_request_status",
        params={"handle": handle},
        headers=AUTH,
        timeout=10,
    ).json()
    row = status["data"][0]
    assert (row["handle"], row["status"], row["errors_total_count"]) == (handle, "finished", 2)
    assert row["ids_of_invalid_requests"] == ["SKU-2", "SKU-3"]
    assert sbx.catalog(CATALOG) == {"SKU-1": good}
    assert requests.get(sbx.url + "/_sandbox/catalog", params={"catalog_id": CATALOG}, timeout=10).json() == {
        "SKU-1": good
    }


def test_batch_status_pending_until_delay(sbx: Sandbox) -> None:
    sbx.configure(batch_delay_ms=60_000)
    handle = post(
        sbx, f"/v21.0/{CATALOG}/items_batch", {"item_type": "PRODUCT_ITEM", "requests": items(1)}
    ).json()["handles"][0]
    resp = requests.get(
        sbx.url + f"/v21.0/{CATALOG}/check_batch_request_status?handle={handle}", headers=AUTH, timeout=10
    )
    assert resp.json()["data"][0]["status"] == "in progress"
    unknown = requests.get(
        sbx.url + f"/v21.0/{CATALOG}/check_batch_request_status?handle=nope", headers=AUTH, timeout=10
    )
    assert_error(unknown, 100, 400)


def test_batch_limits(sbx: Sandbox) -> None:
    path = f"/v21.0/{CATALOG}/items_batch"
    assert post(sbx, path, {"item_type": "PRODUCT_ITEM", "requests": items(5000)}).json()["handles"]
    assert_error(post(sbx, path, {"item_type": "PRODUCT_ITEM", "requests": items(5001)}), 100, 400)
    assert_error(post(sbx, path, {"item_type": "PRODUCT_ITEM", "requests": []}), 100, 400)
    assert_error(post(sbx, path, {"requests": items(1)}), 100, 400)  # item_type required


def test_nothing_accepted_means_no_handle(sbx: Sandbox) -> None:
    body = {
        "item_type": "PRODUCT_ITEM",
        "allow_upsert": False,
        "requests": [{"method": "UPDATE", "data": {"id": "GHOST"}}],
    }
    data = post(sbx, f"/v21.0/{CATALOG}/items_batch", body).json()
    assert data["handles"] == [] and data["validation_status"][0]["retailer_id"] == "GHOST"


def test_legacy_batch_endpoint(sbx: Sandbox) -> None:
    body = {
        "requests": [
            {
                "method": "CREATE",
                "retailer_id": "SKU-9",
                "data": {
                    "name": "Shoe",
                    "description": "d",
                    "price": 5999,
                    "currency": "USD",
                    "url": "https://x/p",
                    "image_url": "https://x/i.jpg",
                },
            }
        ]
    }
    data = post(sbx, f"/v21.0/{CATALOG}/batch", body).json()
    assert len(data["handles"]) == 1 and data["validation_status"] == []
    assert sbx.catalog(CATALOG)["SKU-9"]["price"] == 5999


def test_form_encoded_items_batch(sbx: Sandbox) -> None:
    form = {"item_type": "PRODUCT_ITEM", "requests": json.dumps(items(2))}
    resp = requests.post(sbx.url + f"/v21.0/{CATALOG}/items_batch", data=form, headers=AUTH, timeout=10)
    assert len(resp.json()["handles"]) == 1
    assert set(sbx.catalog(CATALOG)) == {"SKU-0", "SKU-1"}


# ---------------------------------------------------------------------------------------------- serve()


def test_serve_blocks_until_stopped() -> None:
    stop = threading.Event()
    urls: list[str] = []
    ready = threading.Event()

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    thread = threading.Thread(
        target=serve, args=("127.0.0.1", 0, 0), kwargs={"stop_event": stop, "ready": on_ready}
    )
    thread.start()
    try:
        assert ready.wait(10)
        assert requests.get(urls[0] + "/_sandbox/health", timeout=10).json() == {"ok": True}
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
