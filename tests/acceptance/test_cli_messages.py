"""``wch-bridge messages list|resend`` (the installed command as a subprocess) on MariaDB and SQLite: list the
ledger with masked phones; re-send a message in doubt deliberately, through the ledger and its own Action
Scheduler action; --dry-run changes nothing; sent rows are refused; a second resend sends nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from tests.helpers.cli_ops import Ops, make_ops
from wch_bridge.app import build_worker
from wch_bridge.sandbox import Sandbox
from wch_bridge.settings import Settings
from wch_bridge.store.ledger import MessageLedger

TOKEN = "EAAGmessagesTOKEN0123456789abcdefXYZ"
RETRY_HOOK = "wch_retry_failed_message"
ONE, TWO, THREE = "+15550000001", "+15550000002", "+15550000003"


@pytest.fixture
def ops(db_url: str, prefix: str) -> Iterator[Ops]:
    yield from make_ops(db_url, prefix)


def seed(ops: Ops) -> tuple[MessageLedger, dict[str, int]]:
    ledger = MessageLedger(ops.store.engine, ops.prefix, clock=ops.store.clock)
    ids = {}
    for phone, outcome in ((ONE, "unknown"), (TWO, "failed"), (THREE, "sent")):
        key = f"broadcast:spring:{phone}"
        body = {"to": phone, "type": "text", "text": {"preview_url": False, "body": "Spring sale"}}
        ids[outcome] = ledger.claim(key, recipient=phone, kind="text", payload=body, campaign_id="spring").id
        assert ledger.begin_send(key) is not None
        if outcome == "unknown":
            ledger.mark_unknown(key, f"WhatsApp API send message timed out after 30 s (to {phone})")
        elif outcome == "failed":
            ledger.mark_failed(key, 131026, "Message Undeliverable", retryable=False)
        else:
            ledger.mark_sent(key, "wamid.SENT1")
    return ledger, ids


def ledger_rows(ops: Ops) -> list[Any]:
    m = MessageLedger(ops.store.engine, ops.prefix).m
    with ops.store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(m).order_by(m.c.id))]


def retry_actions(ops: Ops) -> list[dict[str, Any]]:
    return [r for r in ops.rows() if r["hook"] == RETRY_HOOK]


def run_worker(ops: Ops, sandbox: Sandbox) -> None:
    settings = Settings(
        dsn="mysql+pymysql://unused", prefix=ops.prefix, once=True, poll_interval=0.05, concurrency=2,
        hooks=(RETRY_HOOK,), whatsapp_api_base=sandbox.url, whatsapp_phone_number_id="106540352242922",
        whatsapp_token=TOKEN, whatsapp_timeout=10,
    )
    assert build_worker(settings, ops.store).run() == 0


def test_list_resend_round_trip(ops: Ops) -> None:
    ledger, ids = seed(ops)
    listed = ops.json("messages", "list", "--status", "unknown")
    assert [m["id"] for m in listed["messages"]] == [ids["unknown"]]
    row = listed["messages"][0]
    assert row["recipient"] == "+1******0001" and row["campaign_id"] == "spring" and row["attempts"] == 1
    assert "timed out" in row["error_text"] and row["updated_at_gmt"]
    everything = ops.run("messages", "list", "--campaign", "spring")
    assert everything.returncode == 0, everything.stderr
    for phone in (ONE, TWO, THREE):
        assert phone not in everything.stdout and phone[1:] not in everything.stdout
    assert "+1******0002" in everything.stdout and "131026" in everything.stdout
    assert not re.search(r"\d{7,}", json.dumps(ops.json("messages", "list")))

    # status warns about the message in doubt (how many, since when)
    st = ops.run("status", "--json")
    rep = json.loads(st.stdout)
    assert rep["messages_in_doubt"]["count"] == 1 and rep["messages_in_doubt"]["unknown"] == 1
    assert any(r["level"] == "warning" and "1 message(s) in doubt since " in r["message"] for r in rep["reasons"])

    # --dry-run changes nothing
    before = (ops.snapshot(), ledger_rows(ops))
    dry = ops.run("messages", "resend", "--campaign", "spring", "--status", "unknown", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would re-send message #{ids['unknown']}" in dry.stdout and "nothing was changed" in dry.stdout
    assert (ops.snapshot(), ledger_rows(ops)) == before

    # a sent row is refused, and nothing else happens
    refused = ops.run("messages", "resend", str(ids["sent"]), "--yes")
    assert refused.returncode == 1 and "refused" in refused.stderr and "was sent" in refused.stderr
    assert (ops.snapshot(), ledger_rows(ops)) == before

    # the deliberate re-send: recorded on the row and on its own action with a log line
    done = ops.run("messages", "resend", "--campaign", "spring", "--status", "unknown", "--yes")
    assert done.returncode == 0, done.stderr
    entry = ledger.get_by_id(ids["unknown"])
    assert entry.status == "retry" and entry.attempts == 0 and entry.error_text.startswith("resent by operator")
    (action,) = retry_actions(ops)
    assert json.loads(action["args"]) == {"message_id": ids["unknown"]} and action["status"] == "pending"
    assert any("requested by an operator" in m for m in ops.messages(action["action_id"]))
    assert ledger.get_by_id(ids["failed"]).status == "failed"  # not selected: left alone

    with Sandbox(token=TOKEN) as sandbox:
        run_worker(ops, sandbox)
        assert len(sandbox.messages_to(ONE)) == 1
        assert ops.status_of(action["action_id"]) == "complete"
        assert ledger.get_by_id(ids["unknown"]).status == "sent"
        # a second resend of the same row sends nothing
        again = ops.run("messages", "resend", str(ids["unknown"]), "--yes")
        assert again.returncode == 1 and "was sent" in again.stderr
        bulk = ops.run("messages", "resend", "--campaign", "spring", "--status", "unknown", "--yes")
        assert bulk.returncode == 0 and "nothing to re-send" in bulk.stdout
        run_worker(ops, sandbox)
        assert len(sandbox.messages_to(ONE)) == 1 and len(sandbox.requests("/messages")) == 1
        assert len(retry_actions(ops)) == 1


def test_resend_names_a_row_once_and_needs_a_selection(ops: Ops) -> None:
    ledger, ids = seed(ops)
    r = ops.run("messages", "resend", str(ids["failed"]), str(ids["failed"]), "--yes")
    assert r.returncode == 0, r.stderr
    assert len(retry_actions(ops)) == 1 and ledger.get_by_id(ids["failed"]).status == "retry"
    assert ops.run("messages", "resend").returncode == 1
    assert ops.run("messages", "resend", "--campaign", "spring").returncode == 1
    missing = ops.run("messages", "resend", "999999", "--yes")
    assert missing.returncode == 1 and "not in the ledger" in missing.stderr
