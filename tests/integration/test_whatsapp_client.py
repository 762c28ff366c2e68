"""WhatsAppClient against a real local Sandbox over HTTP (no mocking of requests; time injected in the gate)."""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Iterator

import pytest

from wch_bridge.errors import ApiError
from wch_bridge.sandbox import Sandbox
from wch_bridge.whatsapp import ApiGate, WhatsAppClient

TOKEN = "EAAG-SECRET-TOKEN-123"
PHONE = "+16505551234"
OTHER = "+447911123456"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float, event: threading.Event) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@pytest.fixture
def sbx() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN) as box:
        yield box


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def gate(clock: FakeClock) -> ApiGate:
    return ApiGate(80, clock=clock.time, sleep=clock.sleep)


def make_client(sbx: Sandbox, gate: ApiGate, **kwargs: object) -> WhatsAppClient:
    options: dict[str, object] = {
        "base_url": sbx.url,
        "phone_number_id": "106540352242922",
        "catalog_id": "146265584024623",
        "token": TOKEN,
        "timeout": 5,
        "gate": gate,
        "rng": random.Random(3),
    }
    options.update(kwargs)
    return WhatsAppClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(sbx: Sandbox, gate: ApiGate) -> Iterator[WhatsAppClient]:
    c = make_client(sbx, gate)
    yield c
    c.close()


# ---------------------------------------------------------------------------------------------- success


def test_send_text_is_recorded_as_sent(client: WhatsAppClient, sbx: Sandbox) -> None:
    result = client.send_text("+1 (650) 555-1234", "Your order #1042 has shipped", preview_url=True)
    assert result.message_id.startswith("wamid.")
    assert result.wa_id == "16505551234"
    [req] = sbx.requests()
    assert req["method"] == "POST"
    assert req["path"] == "/v21.0/106540352242922/messages"
    assert req["body"] == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": PHONE,
        "type": "text",
        "text": {"preview_url": True, "body": "Your order #1042 has shipped"},
    }
    assert req["wamid"] == result.message_id
    assert sbx.messages_to(PHONE) == [req["body"]]


def test_send_template_with_components(client: WhatsAppClient, sbx: Sandbox) -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}]
    result = client.send_template(PHONE, "abandoned_cart_reminder", "en_GB", components)
    assert result.message_id.startswith("wamid.")
    [body] = sbx.messages_to(PHONE)
    assert body["type"] == "template"
    assert body["template"] == {
        "name": "abandoned_cart_reminder",
        "language": {"code": "en_GB"},
        "components": components,
    }


def test_message_ids_are_unique(client: WhatsAppClient) -> None:
    ids = {client.send_text(PHONE, f"hello {i}").message_id for i in range(20)}
    assert len(ids) == 20


def test_catalog_batch_and_status(client: WhatsAppClient, sbx: Sandbox) -> None:
    result = client.catalog_items_batch(
        [
            {"method": "UPDATE", "data": {"id": "SKU-456", "availability": "out of stock"}},
            {"method": "CREATE", "data": {"id": "SKU-BAD", "title": "No price"}},
        ]
    )
    assert len(result.handles) == 1
    assert [s["retailer_id"] for s in result.validation_status] == ["SKU-BAD"]
    [req] = sbx.requests("items_batch")
    assert req["path"] == "/v21.0/146265584024623/items_batch"
    assert req["body"]["item_type"] == "PRODUCT_ITEM" and req["body"]["allow_upsert"] is True
    status = client.check_batch_status(result.handles[0])
    assert status.finished and status.errors_total_count == 1
    assert sbx.catalog("146265584024623") == {"SKU-456": {"id": "SKU-456", "availability": "out of stock"}}


def test_oversized_catalog_batch_fails_before_http(client: WhatsAppClient, sbx: Sandbox) -> None:
    with pytest.raises(ApiError) as info:
        client.catalog_items_batch([{"method": "DELETE", "data": {"id": str(i)}} for i in range(5001)])
    assert info.value.category == "fix"
    assert sbx.requests() == []


def test_bad_phone_fails_before_http(client: WhatsAppClient, sbx: Sandbox) -> None:
    with pytest.raises(ApiError) as info:
        client.send_text("not a phone", "hi")
    assert info.value.category == "recipient"
    assert sbx.requests() == []


# ---------------------------------------------------------------------------------------------- categories


def test_window_closed_raises_template_without_retry(client: WhatsAppClient, sbx: Sandbox) -> None:
    sbx.add_fault(code=131047)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "free-form")
    err = info.value
    assert str(err) == "WhatsApp API error 131047 (template): Re-engagement message"
    assert (err.code, err.http_status, err.category) == (131047, 400, "template")
    assert err.details and "24 hours" in err.details
    assert len(sbx.requests()) == 1


def test_outside_window_recipient_only_gets_templates(client: WhatsAppClient, sbx: Sandbox) -> None:
    sbx.configure(outside_window=[PHONE])
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "free-form")
    assert info.value.category == "template"
    client.send_template(PHONE, "order_update")
    client.send_text(OTHER, "inside the window")
    assert [b["type"] for b in sbx.messages_to(PHONE)] == ["template"]


def test_throttle_pauses_the_gate_for_retry_after_then_succeeds(
    client: WhatsAppClient, sbx: Sandbox, gate: ApiGate, clock: FakeClock
) -> None:
    sbx.add_fault(code=130429, retry_after=7, times=1)
    result = client.send_text(PHONE, "hi")
    assert result.message_id.startswith("wamid.")
    assert [seconds for seconds, _ in gate.pauses] == [7.0]
    assert "130429" in gate.pauses[0][1]
    assert gate.throttle_events == 1
    assert clock.sleeps == [7.0]  # the retry waited out the shared pause, nothing else
    assert gate.pause_wait_seconds == pytest.approx(7.0)
    assert [r["status"] for r in sbx.requests()] == [400, 200]


def test_throttle_without_retry_after_uses_jittered_backoff(
    client: WhatsAppClient, sbx: Sandbox, gate: ApiGate
) -> None:
    sbx.add_fault(code=80007, times=2)
    client.send_text(PHONE, "hi")
    pauses = [seconds for seconds, _ in gate.pauses]
    assert len(pauses) == 2
    assert 0 <= pauses[0] <= 1 and 0 <= pauses[1] <= 2  # full jitter under 1 s, then 2 s


def test_long_retry_after_is_not_waited_inside_the_call(
    client: WhatsAppClient, sbx: Sandbox, gate: ApiGate
) -> None:
    sbx.add_fault(code=130429, retry_after=3600)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "throttle"
    assert info.value.retry_after == 3600
    assert gate.paused_for() == pytest.approx(3600)  # other threads hold back too
    assert len(sbx.requests()) == 1


def test_throttle_exhausts_attempts_then_raises(client: WhatsAppClient, sbx: Sandbox, gate: ApiGate) -> None:
    sbx.add_fault(code=130429, retry_after=1)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "throttle"
    assert len(sbx.requests()) == 3
    assert gate.throttle_events == 3


def test_template_paused_does_not_pause_everything(
    client: WhatsAppClient, sbx: Sandbox, gate: ApiGate
) -> None:
    sbx.add_fault(code=132015)
    with pytest.raises(ApiError) as info:
        client.send_template(PHONE, "promo")
    assert info.value.category == "throttle"
    assert info.value.retry_after == 3 * 3600
    assert gate.pauses == [] and len(sbx.requests()) == 1


def test_pair_limit_raises_at_once_with_a_hint(client: WhatsAppClient, sbx: Sandbox, gate: ApiGate) -> None:
    sbx.add_fault(code=131056, recipients=[PHONE])
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "pair"
    assert info.value.retry_after == 6.0
    assert gate.pauses == []
    client.send_text(OTHER, "others still get theirs")


def test_token_expired_halts_all_later_sends(client: WhatsAppClient, sbx: Sandbox, gate: ApiGate) -> None:
    sbx.add_fault(code=190, times=1)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert (info.value.category, info.value.code, info.value.http_status) == ("halt", 190, 401)
    assert gate.halted and gate.halt_code == 190
    with pytest.raises(ApiError) as later:
        client.send_text(OTHER, "x")
    assert later.value.category == "halt"
    assert len(sbx.requests()) == 1  # nothing else reached the server
    gate.resume()
    client.send_text(OTHER, "after the token was fixed")


def test_a_catalog_permission_error_holds_catalog_calls_only(client: WhatsAppClient, sbx: Sandbox,
                                                              gate: ApiGate) -> None:
    """200 (permissions) or 368 on items_batch is about the catalog: messages keep going."""
    sbx.add_fault(code=200, paths=["items_batch"], times=1)
    item = [{"method": "UPDATE", "data": {"id": "501", "availability": "in stock"}}]
    with pytest.raises(ApiError) as info:
        client.catalog_items_batch(item)
    assert info.value.category == "halt" and info.value.code == 200
    assert not gate.halted and client.catalog_gate.halted
    client.send_text(PHONE, "messages still go out")
    with pytest.raises(ApiError) as later:
        client.catalog_items_batch(item)  # held: no second call reaches the catalog
    assert later.value.category == "halt"
    assert len(sbx.requests("items_batch")) == 1


def test_a_message_account_halt_leaves_catalog_calls_alone(client: WhatsAppClient, sbx: Sandbox,
                                                            gate: ApiGate) -> None:
    sbx.add_fault(code=131031, paths=["messages"], times=1)  # business account locked
    with pytest.raises(ApiError):
        client.send_text(PHONE, "hi")
    assert gate.halted and not client.catalog_gate.halted
    client.catalog_items_batch([{"method": "UPDATE", "data": {"id": "501", "availability": "in stock"}}])


def test_catalog_rate_limit_pauses_catalog_calls_not_messages(client: WhatsAppClient, sbx: Sandbox,
                                                               gate: ApiGate) -> None:
    sbx.add_fault(code=80014, paths=["items_batch"], retry_after="30", times=1)
    client.catalog_items_batch([{"method": "UPDATE", "data": {"id": "501", "availability": "in stock"}}])
    assert gate.pauses == [] and [s for s, _ in client.catalog_gate.pauses] == [30.0]
    client.send_text(PHONE, "not paused")


def test_a_disabled_template_fails_that_template_only(client: WhatsAppClient, sbx: Sandbox, gate: ApiGate) -> None:
    sbx.add_fault(code=132016, recipients=[PHONE], times=1)
    with pytest.raises(ApiError) as info:
        client.send_template(PHONE, "spring_sale")
    assert (info.value.category, info.value.code) == ("fix", 132016)
    assert not gate.halted
    with pytest.raises(ApiError) as again:
        client.send_template(OTHER, "spring_sale")  # not sent: the template is disabled
    assert again.value.code == 132016
    client.send_template(OTHER, "order_update")  # other templates and texts go out
    client.send_text(OTHER, "hello")
    assert len(sbx.requests("/messages")) == 3


def test_wrong_token_is_a_halt(sbx: Sandbox, gate: ApiGate) -> None:
    client = make_client(sbx, gate, token="EAAG-WRONG")
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.code == 190 and gate.halted


def test_server_error_is_retried_up_to_max_attempts(
    client: WhatsAppClient, sbx: Sandbox, gate: ApiGate, clock: FakeClock
) -> None:
    sbx.add_fault(code=131000)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert (info.value.category, info.value.code, info.value.http_status) == ("retry", 131000, 500)
    assert len(sbx.requests()) == 3
    assert len(clock.sleeps) == 2  # back-off between attempts, none after the last
    assert 0 <= clock.sleeps[0] <= 1 and 0 <= clock.sleeps[1] <= 2
    assert gate.backoff_sleep_seconds == pytest.approx(sum(clock.sleeps))


def test_server_error_then_success(client: WhatsAppClient, sbx: Sandbox, clock: FakeClock) -> None:
    sbx.add_fault(code=131016, times=2)
    assert client.send_text(PHONE, "hi").message_id.startswith("wamid.")
    assert [r["status"] for r in sbx.requests()] == [503, 503, 200]


def test_retry_after_on_a_retry_error_is_honoured(
    client: WhatsAppClient, sbx: Sandbox, clock: FakeClock
) -> None:
    sbx.add_fault(code=131057, retry_after="4", times=1)
    client.send_text(PHONE, "hi")
    assert clock.sleeps == [4.0]


def test_fix_errors_are_not_retried(client: WhatsAppClient, sbx: Sandbox) -> None:
    sbx.add_fault(code=100, details="Unexpected key 'txt'")
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "fix" and info.value.details == "Unexpected key 'txt'"
    assert len(sbx.requests()) == 1


@pytest.mark.parametrize(
    ("rule", "status"),
    [
        ({"body": "<html>not json</html>"}, 200),
        ({"body": '{"messaging_product": "whatsapp"}'}, 200),  # 200 without messages[0].id
        ({"body": '{"messages": [{}]}'}, 200),
        ({"body": "[1, 2]"}, 200),
        ({"body": "oops", "http_status": 400}, 400),
    ],
)
def test_malformed_responses(
    client: WhatsAppClient, sbx: Sandbox, rule: dict[str, object], status: int
) -> None:
    sbx.add_fault(**rule)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "malformed"
    assert info.value.http_status == status
    assert len(sbx.requests()) == 1


def test_non_json_gateway_error_is_retried(client: WhatsAppClient, sbx: Sandbox) -> None:
    sbx.add_fault(body="<html>502 Bad Gateway</html>", http_status=502, times=1)
    assert client.send_text(PHONE, "hi").message_id.startswith("wamid.")


def test_send_timeout_is_unknown_and_never_resent(sbx: Sandbox, gate: ApiGate) -> None:
    """A message request that got no answer may have been delivered: retrying could send it twice."""
    client = make_client(sbx, gate, timeout=0.3, max_attempts=3)
    sbx.add_fault(latency_ms=1500)
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "unknown"
    assert "timed out" in str(info.value) and "not re-sent" in str(info.value)
    assert len(sbx.requests()) == 1


def test_catalog_timeout_is_retried(sbx: Sandbox, gate: ApiGate) -> None:
    """Catalog batches are upserts: a timed-out one is safe to send again."""
    client = make_client(sbx, gate, timeout=0.3, max_attempts=2)
    sbx.add_fault(latency_ms=1500, paths=["items_batch"])
    with pytest.raises(ApiError) as info:
        client.catalog_items_batch([{"method": "UPDATE", "data": {"id": "SKU-1", "availability": "in stock"}}])
    assert info.value.category == "retry"
    assert len(sbx.requests(path_contains="items_batch")) == 2


def test_connection_refused_is_a_retry_error(gate: ApiGate, clock: FakeClock) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = WhatsAppClient(
        base_url=f"http://127.0.0.1:{port}", phone_number_id="1", token=TOKEN, timeout=2, gate=gate
    )
    with pytest.raises(ApiError) as info:
        client.send_text(PHONE, "hi")
    assert info.value.category == "retry"
    assert "connection error" in str(info.value)
    assert len(clock.sleeps) == 2


# ---------------------------------------------------------------------------------------------- secrets


def test_token_never_leaks(sbx: Sandbox, gate: ApiGate, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client(sbx, gate, max_attempts=2)
    rules: list[dict[str, object]] = [
        {"code": 131000, "message": f"echo {TOKEN}", "details": f"Bearer {TOKEN}", "times": 2},
        {"body": f"<html>token={TOKEN}</html>", "times": 1},
        {"code": 131047, "details": f"your token {TOKEN} is fine", "times": 1},
        {"code": 190, "message": f"Invalid OAuth access token {TOKEN}", "times": 1},
    ]
    errors: list[ApiError] = []
    for rule in rules:
        sbx.add_fault(**rule)
        with pytest.raises(ApiError) as info:
            client.send_text(PHONE, "hi")
        errors.append(info.value)
    with pytest.raises(ApiError) as halted:
        client.send_text(PHONE, "hi")
    errors.append(halted.value)
    timeout_client = make_client(sbx, gate=ApiGate(80), timeout=0.2, max_attempts=1)
    sbx.add_fault(latency_ms=1000, times=1)
    with pytest.raises(ApiError) as timed_out:
        timeout_client.send_text(PHONE, "hi")
    errors.append(timed_out.value)

    assert [e.category for e in errors] == ["retry", "malformed", "template", "halt", "halt", "unknown"]
    for err in errors:
        for text in (str(err), repr(err), err.details or "", str(err.args)):
            assert TOKEN not in text
    assert "***" in (errors[0].details or "")
    assert TOKEN not in repr(client) and TOKEN not in repr(gate.stats())
    assert TOKEN not in str(gate.halt_reason)
    assert caplog.records, "expected retry/halt log records"
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
    assert TOKEN not in caplog.text
    for req in sbx.requests():  # the sandbox never records the Authorization header
        assert TOKEN not in repr(req)
