"""The message ledger on SQLite and MariaDB: claim, guarded transitions, the crashed-'sending' rule."""

from __future__ import annotations

import threading

from sqlalchemy import select

from wch_bridge.store import ActionStore
from wch_bridge.store.ledger import FAILED, PENDING, RETRY, SENDING, SENT, UNKNOWN, MessageLedger, ledger_key

PHONE = "+16505551234"


def make(store: ActionStore) -> MessageLedger:
    return MessageLedger(store.engine, store.prefix, clock=store.clock)


def test_claim_creates_once_and_returns_the_existing_row(store: ActionStore) -> None:
    ledger = make(store)
    key = ledger_key("broadcast", "c1", PHONE)
    first = ledger.claim(key, recipient=PHONE, kind="text", payload={"type": "text"}, action_id=7,
                         hook="wch_send_broadcast_batch", campaign_id="c1")
    again = ledger.claim(key, recipient=PHONE, kind="text", payload={"type": "other"}, action_id=8)
    assert first.status == PENDING and first.attempts == 0
    assert again.id == first.id and again.payload == {"type": "text"} and again.action_id == 7
    assert ledger.get(key) == again
    assert ledger.get_by_id(first.id) == again


def test_one_send_path_end_to_end(store: ActionStore) -> None:
    ledger = make(store)
    key = ledger_key("order", 42, "completed")
    ledger.claim(key, recipient=PHONE, kind="text")
    started = ledger.begin_send(key, action_id=99)
    assert started is not None and started.status == SENDING and started.attempts == 1 and started.action_id == 99
    assert ledger.begin_send(key) is None  # nobody else gets it while it is in flight
    assert ledger.mark_sent(key, "wamid.ABC")
    done = ledger.get(key)
    assert done is not None and done.status == SENT and done.wa_message_id == "wamid.ABC" and done.sent_at
    assert ledger.begin_send(key) is None  # a sent message is never sent again
    assert not ledger.mark_failed(key, 131000, "late failure", retryable=True)
    assert ledger.get(key).status == SENT  # type: ignore[union-attr]


def test_retryable_then_permanent_failure(store: ActionStore) -> None:
    ledger = make(store)
    key = "k-retry"
    ledger.claim(key, recipient=PHONE, kind="text")
    ledger.begin_send(key)
    assert ledger.mark_failed(key, 131000, "Something went wrong", retryable=True)
    row = ledger.get(key)
    assert row is not None and row.status == RETRY and row.error_code == 131000 and row.sendable
    again = ledger.begin_send(key)
    assert again is not None and again.attempts == 2
    assert ledger.mark_failed(key, 131026, "Message Undeliverable", retryable=False)
    final = ledger.get(key)
    assert final is not None and final.status == FAILED and final.error_code == 131026 and not final.sendable


def test_give_up_and_release(store: ActionStore) -> None:
    ledger = make(store)
    ledger.claim("a", recipient=PHONE, kind="text")
    ledger.begin_send("a")
    assert ledger.release("a", "sends halted")
    row = ledger.get("a")
    assert row is not None and row.status == PENDING and row.attempts == 0
    ledger.begin_send("a")
    ledger.mark_failed("a", 131000, "x", retryable=True)
    assert ledger.give_up("a", "gave up after 5 attempts")
    assert ledger.get("a").status == FAILED  # type: ignore[union-attr]


def test_stale_sending_row_becomes_unknown_and_is_not_resent(store: ActionStore) -> None:
    ledger = make(store)
    ledger.claim("crash", recipient=PHONE, kind="text")
    ledger.begin_send("crash")  # ... and the process dies here
    fresh = ledger.claim("crash", recipient=PHONE, kind="text")
    assert fresh.status == SENDING  # still possibly in flight elsewhere
    store.clock.advance(301)
    stale = ledger.claim("crash", recipient=PHONE, kind="text")
    assert stale.status == UNKNOWN and "not re-sent" in (stale.error_text or "")
    assert ledger.begin_send("crash") is None


def test_concurrent_claims_and_begin_send_have_one_winner(store: ActionStore) -> None:
    ledger = make(store)
    wins: list[bool] = []
    ids: list[int] = []
    lock = threading.Lock()

    def go() -> None:
        entry = ledger.claim("race", recipient=PHONE, kind="text")
        won = ledger.begin_send("race") is not None
        with lock:
            ids.append(entry.id)
            wins.append(won)

    threads = [threading.Thread(target=go) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert wins.count(True) == 1


def test_campaign_listing_and_counts(store: ActionStore) -> None:
    ledger = make(store)
    for n, phone in enumerate(["+15550000001", "+15550000002", "+15550000003"]):
        key = ledger_key("broadcast", "camp", phone)
        ledger.claim(key, recipient=phone, kind="template", campaign_id="camp")
        if n < 2:
            ledger.begin_send(key)
            ledger.mark_sent(key, f"wamid.{n}")
    ledger.claim("other", recipient=PHONE, kind="text", campaign_id="other")
    rows = ledger.list_campaign("camp")
    assert [r.recipient for r in rows] == ["+15550000001", "+15550000002", "+15550000003"]
    assert ledger.campaign_counts("camp") == {SENT: 2, PENDING: 1}


def test_long_keys_are_shortened_but_stay_unique() -> None:
    a = ledger_key("broadcast", "x" * 300, "+1")
    b = ledger_key("broadcast", "x" * 300, "+2")
    assert len(a) <= 191 and len(b) <= 191 and a != b
    assert ledger_key("cart", 1, "20250101120000") == "cart:1:20250101120000"


def test_a_send_costs_three_commits_and_what_it_returns_is_what_is_stored(store: ActionStore) -> None:
    """claim (INSERT), begin_send (guarded UPDATE + the row, one transaction), mark_sent (guarded UPDATE): three
    COMMITs and no separate read-backs per message; the entries handed back equal the rows as stored."""
    from wch_bridge.devtools.instrument import StatementCounter

    ledger = make(store)
    key = ledger_key("broadcast", "c9", PHONE)
    with StatementCounter(store.engine) as claim_count:
        claimed = ledger.claim(key, recipient=PHONE, kind="text", payload={"type": "text", "text": {"body": "hi"}},
                               action_id=5, hook="wch_send_broadcast_batch", campaign_id="c9")
    assert claimed == ledger.get(key)
    with StatementCounter(store.engine) as send_count:
        started = ledger.begin_send(key, action_id=5)
        assert ledger.mark_sent(key, "wamid.XYZ")
    assert started is not None and started.status == SENDING and started.attempts == 1 and started.id == claimed.id
    for counts, commits, statements in ((claim_count.counts(), 1, 1), (send_count.counts(), 2, 3)):
        assert counts.commits == commits, counts.as_dict()
        assert counts.statements - counts.by_verb.get("BEGIN", 0) == statements, counts.as_dict()
    stored = ledger.get(key)
    assert stored is not None and stored.status == SENT and stored.wa_message_id == "wamid.XYZ"


def test_statuses_are_stored_as_plain_text(store: ActionStore) -> None:
    """The ledger's statuses are ``LedgerStatus`` members; the column holds exactly the old strings."""
    ledger = make(store)
    key = ledger_key("order", 43, "completed")
    ledger.claim(key, recipient=PHONE, kind="text")
    seen = []
    m = ledger.m
    with store.engine.connect() as conn:
        seen.append(conn.execute(select(m.c.status).where(m.c.idempotency_key == key)).scalar_one())
    assert ledger.begin_send(key) is not None and ledger.mark_sent(key, "wamid.X")
    with store.engine.connect() as conn:
        seen.append(conn.execute(select(m.c.status).where(m.c.idempotency_key == key)).scalar_one())
        n = conn.execute(select(m.c.id).where(m.c.status == "sent", m.c.idempotency_key == key)).all()
    assert seen == ["pending", "sent"] and [type(s) for s in seen] == [str, str] and len(n) == 1
