"""wch_send_broadcast_batch and wch_retry_failed_message end to end through the worker (MariaDB + sandbox)."""

from __future__ import annotations

import json
from datetime import timedelta

from hooks_support import Site, make_site, plugin_fixture
from sqlalchemy import insert, select

from wch_bridge.sandbox import Sandbox
from wch_bridge.store import ActionStore, make_engine
from wch_bridge.store import schema as schema_mod

pytest_plugins = ("hooks_fixtures",)  # fixtures: sandbox, site

HOOK = "wch_send_broadcast_batch"
RETRY = "wch_retry_failed_message"
A, B, C, D = "+15550000001", "+15550000002", "+15550000003", "+15550000004"


def batch_args(batch: list[str], n: int = 0, cid: str = "camp1", message: object = "Spring sale: 20% off") -> dict:
    return {"batch": batch, "batch_num": n, "campaign_id": cid, "message": message}


def sends_to(site: Site, phone: str) -> list[dict]:
    digits = phone.lstrip("+")
    return [r for r in site.sandbox.requests("/messages") if str(r["body"].get("to", "")).lstrip("+") == digits]


def test_text_batch_sends_each_recipient_and_writes_the_transients(site: Site) -> None:
    aid = site.enqueue(HOOK, batch_args([A, "1 (555) 000-0002", C]))
    site.run()
    assert site.status(aid) == "complete"
    for phone in (A, B, C):
        (body,) = site.sandbox.messages_to(phone)
        assert body["type"] == "text" and body["text"]["body"] == "Spring sale: 20% off"
        row = site.ledger.get(f"broadcast:camp1:{phone}")
        assert row.status == "sent" and row.wa_message_id.startswith("wamid.") and row.campaign_id == "camp1"
    result = site.wp.get_transient("wch_broadcast_result_camp1_0")
    assert result["campaign_id"] == "camp1" and result["batch_num"] == 0
    assert result["results"] == {"sent": 3, "failed": 0, "errors": []}
    summary = site.wp.get_transient("wch_broadcast_summary_camp1")
    assert summary["total_sent"] == 3 and summary["total_failed"] == 0 and summary["batches"] == 1
    assert summary["started_at"] and summary["last_updated"]
    assert any("broadcast camp1 batch 0: 3 sent" in line for line in site.logs(aid))


def test_admin_campaign_sends_the_template_as_the_plugin_builds_it(site: Site) -> None:
    """The admin screen's real message (f46ecdf, fixture) becomes per-recipient lower-case components with the
    profile's name, the typed values and the URL button parameter (head BroadcastTemplateBuilder)."""
    fx = plugin_fixture("admin_broadcast_batch.json")
    for profile in fx["profiles"]:
        site.seed.add_customer(profile["phone"], profile["name"], opt_in_marketing=bool(profile["opt_in_marketing"]))
    site.sandbox.configure(templates={"spring_sale": 4})
    aid = site.enqueue(HOOK, fx["args"])
    site.run()
    assert site.status(aid) == "complete"
    cid = str(fx["args"]["campaign_id"])
    for phone, components in fx["expected"]["components_by_phone"].items():
        (body,) = site.sandbox.messages_to(phone)
        assert body["type"] == "template"
        assert body["template"] == {"name": "spring_sale", "language": {"code": fx["expected"]["language"]},
                                    "components": components}
        assert site.ledger.get(f"broadcast:{cid}:{phone}").status == "sent"
    # no profile at all: the name falls back to "there" as the plugin's head does
    (body,) = site.sandbox.messages_to("+15550000103")
    assert body["template"]["components"][1]["parameters"][0] == {"type": "text", "text": "there"}


def test_customer_who_opted_out_after_queueing_gets_nothing(site: Site) -> None:
    fx = plugin_fixture("consent.json")["profile_opted_out_of_marketing"]
    site.seed.add_customer(A, "Asha", opt_in_marketing=True)
    site.seed.add_customer(fx["phone"], fx["name"], opt_in_marketing=False)  # B: opted out since
    aid = site.enqueue(HOOK, batch_args([A, B, C], cid="optout"))
    site.run()
    assert site.status(aid) == "complete"
    assert len(site.sandbox.messages_to(A)) == 1 and len(site.sandbox.messages_to(C)) == 1  # C: no profile
    assert site.sandbox.messages_to(B) == []
    row = site.ledger.get(f"broadcast:optout:{B}")
    assert row.status == "failed" and "opt_in_marketing = 0" in row.error_text
    result = site.wp.get_transient("wch_broadcast_result_optout_0")["results"]
    assert result["sent"] == 2 and result["failed"] == 1


def test_sends_are_recorded_in_the_plugins_inbox(site: Site) -> None:
    """Each sent message becomes an outbound wch_messages row with its wa_message_id (status webhooks find it),
    in the customer's active conversation, or a new one (fixture plugin/inbox.json)."""
    fx = plugin_fixture("inbox.json")
    conv = site.wp._inbox("conversations")
    msgs = site.wp._inbox("messages")
    now = site.wp.site.local(site.clock.now())
    with site.wp.engine.begin() as conn:
        existing = conn.execute(insert(conv).values(**fx["existing_conversation"], last_message_at=now,
                                                    created_at=now, updated_at=now)).inserted_primary_key[0]
    first = fx["existing_conversation"]["customer_phone"]
    aid = site.enqueue(HOOK, batch_args(["+" + first, B], cid="inbox"))
    site.run()
    assert site.status(aid) == "complete"
    with site.wp.engine.connect() as conn:
        rows = conn.execute(select(msgs)).mappings().all()
        convs = {r["id"]: r for r in conn.execute(select(conv)).mappings().all()}
    assert len(rows) == 2
    by_phone = {convs[r["conversation_id"]]["customer_phone"]: r for r in rows}
    assert by_phone[first]["conversation_id"] == existing  # the existing conversation, matched across forms
    assert set(by_phone) == {first, B.lstrip("+")}  # a new one under the webhook's bare-digits form
    for phone, row in by_phone.items():
        assert row["direction"] == "outbound" and row["status"] == "sent" and row["type"] == "text"
        assert json.loads(row["content"]) == {"text": "Spring sale: 20% off"}
        assert row["wa_message_id"] == site.ledger.get(f"broadcast:inbox:+{phone}").wa_message_id
    assert convs[existing]["message_count"] == 1


def test_plain_text_broadcast_message_still_sends_text(site: Site) -> None:
    aid = site.enqueue(HOOK, batch_args([A], cid="txt", message="Spring sale: 20% off"))
    site.run()
    assert site.status(aid) == "complete"
    (body,) = site.sandbox.messages_to(A)
    assert body["type"] == "text" and body["text"]["body"] == "Spring sale: 20% off"


def test_rerun_of_the_same_batch_sends_nothing_twice(site: Site) -> None:
    site.sandbox.add_fault(code=131026, recipients=[C])  # permanent: undeliverable
    site.sandbox.add_fault(code=131000, recipients=[D], retry_after="0")  # retryable, every time
    args = batch_args([A, B, C, D], n=3, cid="rerun")
    first = site.enqueue(HOOK, args)
    site.run()
    second = site.enqueue(HOOK, args)
    site.run()
    assert site.status(first) == "complete" and site.status(second) == "complete"
    assert len(sends_to(site, A)) == 1 and len(sends_to(site, B)) == 1
    assert len(sends_to(site, C)) == 1  # a permanent failure is recorded, never retried
    assert site.ledger.get(f"broadcast:rerun:{C}").status == "failed"
    assert site.ledger.get(f"broadcast:rerun:{C}").error_code == 131026
    result = site.wp.get_transient("wch_broadcast_result_rerun_3")["results"]
    assert result["sent"] == 2 and result["failed"] == 2
    assert {e["recipient"]: e["code"] for e in result["errors"]} == {C: 131026, D: 131000}
    summary = site.wp.get_transient("wch_broadcast_summary_rerun")
    assert summary["batches"] == 1 and summary["total_sent"] == 2
    assert any("(2 already sent earlier)" in line for line in site.logs(second))


def test_retryable_recipient_gets_a_retry_action_that_succeeds(site: Site) -> None:
    site.sandbox.add_fault(code=131016, recipients=[B], retry_after="0", times=3)  # one whole send fails
    aid = site.enqueue(HOOK, batch_args([A, B], cid="retry"))
    site.run()
    assert site.status(aid) == "complete"
    row = site.ledger.get(f"broadcast:retry:{B}")
    assert row.status == "retry" and row.error_code == 131016 and row.attempts == 1
    (retry,) = site.actions(RETRY)
    assert site.args_of(retry) == {"message_id": row.id}
    assert retry.scheduled_date_gmt - site.action(aid).last_attempt_gmt == timedelta(seconds=60)
    assert any(f"scheduled as action #{retry.action_id} ({RETRY}, due in 60 s)" in m for m in site.logs(aid))
    assert site.wp.get_transient("wch_broadcast_summary_retry")["total_retrying"] == 1
    site.clock.advance(60)
    site.run()
    assert site.status(retry.action_id) == "complete"
    assert site.ledger.get(f"broadcast:retry:{B}").status == "sent"
    assert len(site.sandbox.messages_to(B)) == 1
    summary = site.wp.get_transient("wch_broadcast_summary_retry")
    assert summary["total_sent"] == 2 and summary["total_retrying"] == 0


def test_retry_gives_up_after_the_maximum_attempts(site: Site) -> None:
    site.sandbox.add_fault(code=131000, recipients=[A], retry_after="0")
    site.enqueue(HOOK, batch_args([A], cid="dead"))
    site.run()
    for delay in (60, 300, 900, 3600):
        (pending,) = [a for a in site.actions(RETRY) if a.status == "pending"]
        site.clock.advance(delay)
        site.run()
        assert site.status(pending.action_id) in ("complete", "failed")
    last = site.actions(RETRY)[-1]
    assert last.status == "failed" and len(site.actions(RETRY)) == 4
    assert any("failed for good after 5 attempt(s)" in m for m in site.logs(last.action_id))
    row = site.ledger.get(f"broadcast:dead:{A}")
    assert row.status == "failed" and row.attempts == 5 and row.error_code == 131000
    assert site.wp.get_transient("wch_broadcast_summary_dead")["total_failed"] == 1


def test_rate_limit_130429_backs_off_through_the_shared_gate(site: Site) -> None:
    site.sandbox.add_fault(code=130429, recipients=[B], retry_after="0.05", times=1)
    aid = site.enqueue(HOOK, batch_args([A, B, C], cid="rl"))
    site.run()
    assert site.status(aid) == "complete"
    assert [r["status"] for r in sends_to(site, B)] == [400, 200]
    gate = site.last_services.whatsapp.gate
    assert gate.throttle_events == 1 and "130429" in gate.pauses[0][1]
    row = site.ledger.get(f"broadcast:rl:{B}")
    assert row.status == "sent" and row.attempts == 1
    assert site.wp.get_transient("wch_broadcast_result_rl_0")["results"]["sent"] == 3


def test_two_batches_at_once_lose_no_summary_update(site: Site) -> None:
    site.sandbox.configure(latency_ms=20)
    phones = [f"+1555100{n:04d}" for n in range(12)]
    ids = [site.enqueue(HOOK, batch_args(phones[i::3], n=i, cid="par")) for i in range(3)]
    site.run(concurrency=3)
    assert all(site.status(i) == "complete" for i in ids)
    summary = site.wp.get_transient("wch_broadcast_summary_par")
    assert summary["batches"] == 3 and summary["total_sent"] == 12
    # a PHP array keyed 0..2 reads back as a list, as PHP's unserialize() gives it
    assert summary["batch_results"] == [{"sent": 4, "failed": 0}] * 3


def test_invalid_batch_args_fail_clearly(site: Site) -> None:
    cases = {
        site.enqueue(HOOK, {"batch": [], "batch_num": 0, "campaign_id": "c", "message": "x"}): "batch must be",
        site.enqueue(HOOK, {"batch": [A], "batch_num": 0, "message": "x"}): "campaign_id is missing",
        site.enqueue(HOOK, [A, B]): "args must be a JSON object",
    }
    site.run()
    for aid, reason in cases.items():
        assert site.status(aid) == "failed"
        assert any(reason in m for m in site.logs(aid))
    assert site.sandbox.requests("/messages") == []


def test_wrapped_v2_broadcast_batch(site: Site) -> None:
    wrapped = [{"_wch_version": 2, "_wch_meta": {"attempt": 1}, "args": batch_args([A], cid="v2")}]
    aid = site.enqueue(HOOK, wrapped)
    site.run()
    assert site.status(aid) == "complete"
    assert len(site.sandbox.messages_to(A)) == 1


def test_broadcast_and_retry_on_sqlite(sqlite_url: str, prefix: str, sandbox: Sandbox) -> None:
    engine = make_engine(sqlite_url)
    schema_mod.install(engine, prefix, with_wordpress=True)
    site = make_site(ActionStore(engine, prefix), sandbox)
    sandbox.add_fault(code=131000, recipients=[C], retry_after="0", times=3)
    aid = site.enqueue(HOOK, batch_args([A, B, C, D], cid="lite"))
    site.run()
    assert site.status(aid) == "complete"
    site.clock.advance(60)
    site.run()
    assert [a.status for a in site.actions(RETRY)] == ["complete"]
    summary = site.wp.get_transient("wch_broadcast_summary_lite")
    assert summary["total_sent"] == 4 and summary["total_retrying"] == 0
    assert all(len(site.sandbox.messages_to(p)) == 1 for p in (A, B, C, D))
    engine.dispose()


def test_a_send_with_no_answer_is_recorded_unknown_and_never_sent_again(mysql_store: ActionStore,
                                                                         sandbox: Sandbox) -> None:
    """WhatsApp may have delivered a message whose answer timed out: the ledger says unknown; reruns skip it."""
    site = make_site(mysql_store, sandbox, whatsapp_timeout=0.5)
    site.sandbox.add_fault(latency_ms=2000, recipients=[B], times=1)
    args = batch_args([A, B], cid="slow")
    first = site.enqueue(HOOK, args)
    site.run()
    assert site.status(first) == "complete"
    assert site.ledger.get(f"broadcast:slow:{B}").status == "unknown"
    site.enqueue(HOOK, args)
    site.run()
    assert len(sends_to(site, A)) == 1
    assert len(sends_to(site, B)) == 1  # the one request that timed out; never re-sent


def test_one_batch_sends_to_its_recipients_concurrently_within_the_limit(site: Site) -> None:
    """With the API answering in 200 ms and a limit of 20 msg/s (a send every 50 ms), one batch of 20 recipients
    keeps several sends in flight at once (the sandbox counts them): sent one after another, there would be one."""
    phones = [f"+1555000{i:04d}" for i in range(20)]
    site.sandbox.configure(latency_ms=200)
    site.sandbox.reset()
    aid = site.enqueue(HOOK, batch_args(phones, cid="fast"))
    site.run(concurrency=1, messages_per_second=20.0)
    assert site.status(aid) == "complete"
    assert all(len(site.sandbox.messages_to(p)) == 1 for p in phones)
    assert site.sandbox.max_in_flight() >= 2, site.sandbox.max_in_flight()
