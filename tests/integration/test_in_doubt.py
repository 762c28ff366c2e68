"""No message lost in silence (issue 13), on SQLite and MariaDB with the sandbox API and the real worker:

* a ledger row is ``sending`` only while its request is on the wire: a recipient waiting for a send slot is still
  ``pending``, and a worker stopped while it waits leaves it sendable;
* a connection reset after the request was received leaves the row ``unknown``, never re-sent;
* stale ``sending`` rows are swept to ``unknown`` by any live worker; a batch meeting rows in doubt counts them as
  "in doubt", not failed, in its log line, the batch result, the campaign summary (``total_unknown``) and status;
* ledger keys and campaign totals are exact: ``Promo``/``promo``, ``Café``/``Cafe``, ``a``/``a `` are different;
* full-width and Arabic-Indic digits reach the API as ASCII E.164 and share the key of the ASCII number;
* orphan recovery clears the dead worker's "in hand"; malformed cart ``items`` fail the action, no reminder."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from hooks_support import Site, make_site
from sqlalchemy import text, update

from wch_bridge.app import build_services, build_worker, ensure_bridge_tables
from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore
from wch_bridge.store import operator_queries as queries
from wch_bridge.store.workers import WorkerRegistry

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox

HOOK = "wch_send_broadcast_batch"
A, B, C, D = "+15550000001", "+15550000002", "+15550000003", "+15550000004"


@pytest.fixture
def site(store: ActionStore, sandbox: Sandbox) -> Site:  # SQLite and MariaDB
    return make_site(store, sandbox)


def batch_args(batch: list[str], cid: str = "camp1", n: int = 0) -> dict:
    return {"batch": batch, "batch_num": n, "campaign_id": cid, "message": "Spring sale: 20% off"}


def accepted(site: Site, phone: str) -> list[dict]:
    digits = phone.lstrip("+")
    return [r for r in site.sandbox.requests("/messages")
            if isinstance(r["body"], dict) and str(r["body"].get("to", "")).lstrip("+") == digits]


def test_a_recipient_waiting_for_its_send_slot_is_not_in_doubt_and_a_stop_leaves_it_sendable(site: Site) -> None:
    aid = site.enqueue(HOOK, batch_args([A, B, C], cid="slow"))
    settings = site.settings.with_(messages_per_second=0.5, once=False, grace_period=1)  # slots 2 s apart
    worker = build_worker(settings, site.store, services=build_services(settings, site.store))
    codes: list[int] = []
    t = threading.Thread(target=lambda: codes.append(worker.run()))
    t.start()
    try:
        deadline = time.monotonic() + 30
        second = None
        while time.monotonic() < deadline:  # the first message left; the second recipient is claimed, waiting
            second = site.ledger.get(f"broadcast:slow:{B}")
            if accepted(site, A) and second is not None:
                break
            time.sleep(0.02)
        assert second is not None and len(accepted(site, A)) == 1
        time.sleep(0.5)  # well inside the 2 s until its slot: claimed, waiting at the gate
        second = site.ledger.get(f"broadcast:slow:{B}")
        assert not accepted(site, B)
        assert second is not None and second.status == "pending", second  # not 'sending': it has not left
    finally:
        worker.request_stop()
        t.join(30)
    assert codes == [0]
    assert site.status(aid) == "pending"
    row = site.ledger.get(f"broadcast:slow:{B}")
    assert row is not None and row.status == "pending" and row.attempts == 0
    site.run()  # the re-run sends the rest, each once
    assert site.status(aid) == "complete"
    assert [len(accepted(site, p)) for p in (A, B, C)] == [1, 1, 1]


def test_connection_reset_after_the_request_was_received_leaves_the_row_unknown_never_resent(site: Site) -> None:
    site.sandbox.add_fault(reset=True, recipients=[A], times=1)
    first = site.enqueue(HOOK, batch_args([A, B], cid="reset"))
    site.run()
    assert len(accepted(site, A)) == 1 and accepted(site, A)[0].get("reset")  # it left, no answer came
    row = site.ledger.get(f"broadcast:reset:{A}")
    assert row is not None and row.status == "unknown" and "may have been delivered" in (row.error_text or "")
    assert site.ledger.get(f"broadcast:reset:{B}").status == "sent"
    assert site.status(first) == "complete"
    assert any("1 sent (0 already sent earlier), 0 failed, 1 in doubt" in m for m in site.logs(first)), site.logs(first)
    summary = site.wp.get_transient("wch_broadcast_summary_reset")
    assert summary["total_sent"] == 1 and summary["total_failed"] == 0 and summary["total_unknown"] == 1
    result = site.wp.get_transient("wch_broadcast_result_reset_0")["results"]
    assert result["sent"] == 1 and result["failed"] == 0 and result["unknown"] == 1
    again = site.enqueue(HOOK, batch_args([A, B], cid="reset"))
    site.run()
    assert site.status(again) == "complete"
    assert len(accepted(site, A)) == 1 and len(accepted(site, B)) == 1


def test_stale_sending_rows_are_swept_to_unknown_and_in_doubt_is_not_failed(site: Site) -> None:
    ledger = site.ledger
    for phone in (A, B, D):  # rows a killed run left on the wire: A and D long ago, B just now
        key = f"broadcast:doubt:{phone}"
        ledger.claim(key, recipient=phone, kind="text", campaign_id="doubt")
        assert ledger.begin_send(key) is not None
    old = site.store.now() - timedelta(seconds=ledger.stale_after + 60)
    m = ledger.m
    with site.store.engine.begin() as conn:
        conn.execute(update(m).where(m.c.recipient.in_([A, D])).values(updated_at=old))
    aid = site.enqueue(HOOK, batch_args([A, B, C], cid="doubt"))
    site.run()
    assert site.status(aid) == "complete"
    assert not accepted(site, A) and not accepted(site, B) and len(accepted(site, C)) == 1
    swept = ledger.get(f"broadcast:doubt:{D}")  # not in the batch: turned unknown by the worker's sweep
    assert swept.status == "unknown" and "outcome unknown" in swept.error_text
    assert ledger.get(f"broadcast:doubt:{A}").status == "unknown"
    assert ledger.get(f"broadcast:doubt:{B}").status == "sending"
    line = next(m for m in site.logs(aid) if m.startswith("broadcast doubt batch 0"))
    assert "1 sent (0 already sent earlier), 0 failed, 2 in doubt" in line, line
    summary = site.wp.get_transient("wch_broadcast_summary_doubt")
    assert summary["total_sent"] == 1 and summary["total_failed"] == 0 and summary["total_unknown"] == 3
    snap = queries.status_snapshot(site.store, ("wch",), site.store.now())
    assert snap.in_doubt is not None and snap.in_doubt["count"] == 3
    assert snap.in_doubt["sending"] == 1 and snap.in_doubt["unknown"] == 2


@pytest.mark.parametrize(("one", "two"), [("Promo", "promo"), ("Café", "Cafe"), ("a", "a ")])
def test_campaign_ids_and_keys_compare_exactly(site: Site, one: str, two: str) -> None:
    first = site.enqueue(HOOK, batch_args([A], cid=one))
    second = site.enqueue(HOOK, batch_args([A], cid=two))
    site.run(concurrency=1)
    assert site.status(first) == "complete" and site.status(second) == "complete"
    assert len(accepted(site, A)) == 2, "the second campaign was taken for the first one"
    assert site.ledger.get(f"broadcast:{one}:{A}").campaign_id == one
    assert site.ledger.get(f"broadcast:{two}:{A}").campaign_id == two
    assert site.ledger.campaign_counts(one) == {"sent": 1}
    assert site.ledger.campaign_counts(two) == {"sent": 1}
    assert site.wp.get_transient(f"wch_broadcast_summary_{one}")["total_sent"] == 1


def test_unicode_digits_reach_the_api_as_ascii_and_share_the_ascii_key(site: Site) -> None:
    full_width = "+1555000123\uff16"  # +15550001236 with a full-width 6
    arabic_indic = "+" + "".join(chr(0x660 + int(d)) for d in "15550001237")
    first = site.enqueue(HOOK, batch_args([full_width, arabic_indic], cid="digits"))
    second = site.enqueue(HOOK, batch_args(["+15550001236", "+1 (555) 000-1237"], cid="digits", n=1))
    site.run(concurrency=1)
    assert site.status(first) == "complete" and site.status(second) == "complete"
    tos = sorted(str(r["body"]["to"]) for r in site.sandbox.requests("/messages"))
    assert tos == ["+15550001236", "+15550001237"]
    for phone in ("+15550001236", "+15550001237"):
        row = site.ledger.get(f"broadcast:digits:{phone}")
        assert row is not None and row.status == "sent" and row.recipient == phone
    assert any("2 sent (2 already sent earlier)" in m for m in site.logs(second)), site.logs(second)


def test_orphan_recovery_clears_the_dead_workers_in_hand(site: Site) -> None:
    aid = site.enqueue(HOOK, batch_args([A], cid="orph"))
    now = site.store.now()
    long_ago = now - timedelta(minutes=10)
    a = site.store.t.actions
    with site.store.engine.begin() as conn:
        conn.execute(update(a).where(a.c.action_id == aid).values(status="in-progress", last_attempt_gmt=long_ago))
    reg = WorkerRegistry(site.store.engine, site.store.t)
    reg.beat("dead-1", host="h", pid=1, version="v", started_at=long_ago, now=long_ago, in_hand_ids=[aid, 99999])
    settings = site.settings.with_(orphan_timeout=60)
    worker = build_worker(settings, site.store, services=build_services(settings, site.store))
    gid = site.store.group_ids(["wch"], create=True)["wch"]
    assert worker.recover_orphans([HOOK], [gid]) == 1
    assert site.status(aid) == "pending"
    (dead,) = [w for w in reg.list() if w.worker_id == "dead-1"]
    assert dead.in_hand == 1  # 99999 was not recovered here; the recovered action is no longer "in hand"


def test_malformed_cart_items_fail_the_action_and_send_no_reminder(site: Site) -> None:
    cid = site.seed.add_cart("+16505551234", [{"product_id": 1, "quantity": 1, "name": "Shoe"}], idle_hours=30)
    c = site.wp.t.carts
    # MariaDB's JSON column refuses text that is not JSON (CHECK json_valid): there, JSON that is not a list
    bad = '[{"product_id": 1, "name": "Shoe"' if site.store.engine.dialect.name == "sqlite" else "42"
    with site.store.engine.begin() as conn:
        conn.execute(update(c).where(c.c.id == cid).values(items=bad))
    aid = site.enqueue("wch_process_abandoned_cart", {"cart_id": cid})
    site.run()
    assert site.status(aid) == "failed"
    assert any(("items is not valid JSON" in m or "items is JSON int, not a list" in m) and "no reminder sent" in m
               for m in site.logs(aid)), site.logs(aid)
    assert site.sandbox.requests("/messages") == []


def test_existing_ledger_tables_get_exact_key_columns_on_start(site: Site) -> None:
    engine = site.store.engine
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite compares bytes already")
    table = site.ledger.m.name
    with engine.begin() as conn:  # as an earlier version created it
        conn.execute(text(f"ALTER TABLE {table} MODIFY idempotency_key varchar(191) CHARACTER SET utf8mb4 "
                          "COLLATE utf8mb4_unicode_520_ci NOT NULL, MODIFY campaign_id varchar(100) CHARACTER SET "
                          "utf8mb4 COLLATE utf8mb4_unicode_520_ci NULL"))
    site.ledger.claim("broadcast:Promo:+15550000001", recipient=A, kind="text", campaign_id="Promo")
    ensure_bridge_tables(site.store)
    with engine.connect() as conn:
        got = dict(conn.execute(text(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = :t AND COLUMN_NAME IN ('idempotency_key', 'campaign_id')"), {"t": table}).all())
    assert got == {"idempotency_key": "utf8mb4_nopad_bin", "campaign_id": "utf8mb4_nopad_bin"}
    assert site.ledger.claim("broadcast:promo:+15550000001", recipient=A, kind="text").status == "pending"
    assert site.ledger.get("broadcast:Promo:+15550000001").campaign_id == "Promo"
