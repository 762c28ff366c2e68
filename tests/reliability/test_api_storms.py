"""API storms against the sandbox, through the real worker wiring (``app.build_worker``, real handlers and client):

* 130429 / 80007 / HTTP 429 slow the *whole* worker: one throttled answer pauses every sending thread (the shared
  ApiGate), nobody reaches the API during the pause, and everything is still sent exactly once afterwards;
* 5xx and catalog timeouts are retried inside the call; a message send that timed out waiting for the answer is
  not re-sent (it may have been delivered: at most once), and the action completes;
* an auth error (190) halts all sends: after it no message request reaches the API, the actions in hand when it came
  fail with a clear reason (the ledger keeps the unsent recipients queued), every other WhatsApp action stays
  **pending** (the worker stops taking WhatsApp hooks instead of burning through the queue); after the token is fixed,
  a restart plus ``wch-bridge jobs retry`` of the failed ones sends each remaining recipient exactly once;
* malformed API JSON (not JSON, or 200 without ``messages[0].id``) is a clear error on that recipient of that action
  only; the other recipients and actions are unaffected."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.reliability import (
    BROADCAST,
    SYNC,
    TOKEN,
    Site,
    accepted_to,
    phone,
    run_once,
)
from wch_bridge.sandbox import Sandbox

pytestmark = pytest.mark.mysql

WCH_BRIDGE = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "wch-bridge")


@pytest.fixture
def site(mysql_url: str, prefix: str) -> Iterator[Site]:
    s = Site.create(mysql_url, prefix)
    yield s
    s.dispose()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN) as box:
        yield box


def batches(site: Site, n: int, size: int, start: int = 0, cid: str = "storm") -> list[int]:
    rows = []
    for b in range(n):
        batch = [phone(start + b * size + i) for i in range(size)]
        site.recipients.setdefault(cid, []).extend(batch)
        rows.append((BROADCAST, {"batch": batch, "batch_num": b, "campaign_id": cid, "message": "Storm sale"}))
    return site.bulk_enqueue(rows)


@pytest.mark.parametrize("fault", [
    {"code": 130429, "retry_after": "3"},
    {"code": 80007, "retry_after": "3"},
    {"http_status": 429, "body": "Too Many Requests", "retry_after": "3"},
], ids=["130429", "80007", "http429"])
def test_throttling_pauses_every_thread_then_sends_everything_once(site: Site, sandbox: Sandbox, fault: dict) -> None:
    ids = batches(site, 8, 4)
    victim = phone(5)
    sandbox.add_fault(recipients=[victim], times=1, **fault)
    worker = run_once(site, sandbox, concurrency=4)
    gate = worker.services.whatsapp.gate
    assert any(abs(seconds - 3.0) < 1e-6 for seconds, _ in gate.pauses), gate.pauses
    reqs = sandbox.requests("/messages")
    throttled = [r for r in reqs if r["status"] not in (200,)]
    assert len(throttled) == 1
    t0 = throttled[0]["time"]
    # requests already past the gate may land right after t0; nobody else may come before the pause is over
    early = [r for r in reqs if t0 + 1.0 < r["time"] < t0 + 2.8]
    assert not early, f"{len(early)} requests reached the API during the shared pause"
    assert any(r["time"] >= t0 + 2.8 for r in reqs), "the other threads waited for the pause and then went on"
    assert site.counts() == {"complete": len(ids)}
    for cid_phones in site.recipients.values():
        for number in cid_phones:
            assert accepted_to(sandbox, number) == 1, number


def test_5xx_and_timeouts_are_retried_inside_the_call(site: Site, sandbox: Sandbox) -> None:
    """5xx: retried with back-off, sent once. A catalog call that times out is retried (an upsert). A message send
    that times out *waiting for the answer* may have been accepted: it is not re-sent (ledger ``unknown``, at most
    once) and the batch records it as failed with that reason; the rest of the batch goes out."""
    site.add_products(1)
    ids = batches(site, 2, 2)
    ids += site.bulk_enqueue([(SYNC, {"job_id": "t1", "sync_type": "product", "entity_id": site.products[0]})])
    a, b = phone(0), phone(2)
    sandbox.add_fault(code=131000, recipients=[a], times=2)  # HTTP 500 twice, then fine
    sandbox.add_fault(latency_ms=1500, recipients=[b], times=1)  # longer than the client's timeout
    sandbox.add_fault(latency_ms=1500, paths=["items_batch"], times=1)
    worker = run_once(site, sandbox, whatsapp_timeout=1.0)
    assert site.counts() == {"complete": len(ids)}
    to_a = [r for r in sandbox.requests("/messages") if r["body"].get("to") == a]
    assert [r["status"] for r in to_a] == [500, 500, 200]
    assert len([r for r in sandbox.requests("/messages") if r["body"].get("to") == b]) == 1, "a timed-out send is not repeated"
    row_b = site.ledger.get(f"broadcast:storm:{b}")
    assert row_b.status in ("unknown", "failed") and "may have been delivered" in (row_b.error_text or ""), row_b
    for number in (a, phone(1), phone(3)):
        row = site.ledger.get(f"broadcast:storm:{number}")
        assert row is not None and row.status == "sent" and row.attempts == 1, (number, row)
    assert len(sandbox.requests("items_batch")) == 2, "the catalog upsert that timed out was retried"
    assert worker.services.whatsapp.gate.backoff_sleep_seconds > 0


def test_auth_error_halts_all_sends_without_burning_the_queue(site: Site, sandbox: Sandbox, mysql_url: str) -> None:
    site.add_products(2)
    ids = batches(site, 12, 3)
    sync_ids = site.bulk_enqueue([(SYNC, {"job_id": f"s{i}", "sync_type": "product", "entity_id": pid})
                                  for i, pid in enumerate(site.products)])
    sandbox.add_fault(code=190)  # every call: the token was revoked
    worker = run_once(site, sandbox, concurrency=2)
    gate = worker.services.whatsapp.gate
    assert gate.halted and gate.halt_code == 190
    calls = sandbox.requests()
    assert all(r["status"] == 401 for r in calls)
    # only what was already in flight when the first 190 came back reached the API
    assert len(calls) <= 2 * 3, f"{len(calls)} calls reached the API after the token was rejected"
    counts = site.counts()
    failed = site.sql("SELECT action_id FROM {p}actionscheduler_actions WHERE status = 'failed'")
    assert counts.get("failed", 0) <= 2, f"burned through the queue: {counts}"
    assert counts.get("pending", 0) >= len(ids) + len(sync_ids) - 2 and "in-progress" not in counts
    for (aid,) in failed:
        (msg,) = [m for (m,) in site.sql("SELECT message FROM {p}actionscheduler_logs WHERE action_id = :a AND "
                                          "message LIKE 'action failed via WCH Bridge:%'", a=aid)]
        assert "190" in msg or "halted" in msg, msg
        assert TOKEN not in msg
    # nothing was marked failed in the ledger for recipients that were never attempted
    bad = site.sql("SELECT status, COUNT(*) FROM {p}wch_bridge_messages WHERE status NOT IN ('pending') GROUP BY status")
    assert not bad, bad
    # the operator sees it: `status` is critical and says why (the halt is on the ledger rows, not only in memory)
    st = subprocess.run([WCH_BRIDGE, "status", "--dsn", mysql_url, "--prefix", site.prefix],
                        capture_output=True, text=True, timeout=60)
    assert st.returncode == 2, st.stdout + st.stderr
    assert "paused by an authentication error (code 190)" in st.stdout
    # the operator fixes the token: restart, retry the failed ones; each recipient gets exactly one message
    sandbox.reset()
    if failed:
        res = subprocess.run([WCH_BRIDGE, "jobs", "retry", "--dsn", mysql_url, "--prefix", site.prefix,
                              *[str(a) for (a,) in failed]], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stdout + res.stderr
    run_once(site, sandbox, concurrency=4)
    left = site.counts()
    assert left.get("pending", 0) == 0 and "in-progress" not in left
    for number in site.recipients["storm"]:
        assert accepted_to(sandbox, number) == 1, number


def test_malformed_api_json_is_a_clear_error_on_that_recipient_only(site: Site, sandbox: Sandbox) -> None:
    ids = batches(site, 3, 3)
    not_json, no_id = phone(1), phone(4)
    sandbox.add_fault(recipients=[not_json], body="<html>upstream proxy error</html>", http_status=200)
    sandbox.add_fault(recipients=[no_id], body='{"messaging_product": "whatsapp", "messages": []}', http_status=200)
    run_once(site, sandbox)
    assert site.counts() == {"complete": len(ids)}
    r1 = site.ledger.get(f"broadcast:storm:{not_json}")
    r2 = site.ledger.get(f"broadcast:storm:{no_id}")
    assert r1.status == "failed" and "not a JSON object" in (r1.error_text or ""), r1
    assert r2.status == "failed" and "without messages[0].id" in (r2.error_text or ""), r2
    result0 = site.wp.get_transient("wch_broadcast_result_storm_0")["results"]
    result1 = site.wp.get_transient("wch_broadcast_result_storm_1")["results"]
    assert result0["sent"] == 2 and result0["failed"] == 1 and "not a JSON object" in result0["errors"][0]["error"]
    assert result1["sent"] == 2 and result1["failed"] == 1 and "messages[0].id" in result1["errors"][0]["error"]
    assert site.wp.get_transient("wch_broadcast_result_storm_2")["results"] == {"sent": 3, "failed": 0, "errors": []}
    for number in site.recipients["storm"]:
        if number not in (not_json, no_id):
            assert site.ledger.get(f"broadcast:storm:{number}").status == "sent"
