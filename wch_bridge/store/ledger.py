"""The outbound message ledger, ``{prefix}wch_bridge_messages``: one row per logical WhatsApp message, keyed by a
unique idempotency key (``broadcast:{campaign}:{phone}``, ``cart:{cart_id}:{updated_at}``, ``order:{id}:{status}``).
Every send goes through it, so running an action again never sends a message twice.

Statuses and the only transitions (each a guarded UPDATE that must change exactly one row)::

    claim()                -> pending            (INSERT with the UNIQUE key; an existing row is returned as it is)
    pending | retry        -> sending            begin_send(): attempts+1; only one caller wins
    sending                -> sent               mark_sent(): wa_message_id, sent_at; never sent again
    sending                -> retry | failed     mark_failed(retryable=...): error_code, error_text
    sending                -> pending | retry    release(): the send never left (sends halted, shutdown)
    retry                  -> failed             give_up(): attempts used up
    sending (stale)        -> unknown            claim() of a row left 'sending' longer than ``stale_after``

Rule for a row left ``sending`` by a crashed run: WhatsApp may or may not have accepted that message, and a second
copy of a marketing message is worse than a missing one, so it is **never re-sent automatically**. Once it is older
than ``stale_after`` (default 300 s, longer than one send with its in-call retries) the next ``claim()`` turns it into
``unknown`` with an explanatory ``error_text``; until then it counts as in flight elsewhere. Either way callers skip
it. An operator can look such rows up (``status='unknown'``) and re-queue them deliberately.

Times in this bridge-owned table are UTC. ``payload`` is the Cloud API message body (JSON) as sent last."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock

__all__ = ["LedgerEntry", "MessageLedger", "PENDING", "SENDING", "SENT", "RETRY", "FAILED", "UNKNOWN"]

PENDING, SENDING, SENT, RETRY, FAILED, UNKNOWN = "pending", "sending", "sent", "retry", "failed", "unknown"
SENDABLE = (PENDING, RETRY)
KEY_MAX = 191
TEXT_MAX = 1000


def ledger_key(*parts: object) -> str:
    """``broadcast:c1:+1555...``; keys longer than the column keep a readable head and a SHA-1 tail (every
    ledger method applies the same rule to the key it is given)."""
    return _norm(":".join(str(p) for p in parts))


def _norm(key: str) -> str:
    if len(key) <= KEY_MAX:
        return key
    digest = hashlib.sha1(key.encode("utf-8"), usedforsecurity=False).hexdigest()
    return key[: KEY_MAX - 41] + "#" + digest


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    key: str
    status: str
    recipient: str
    kind: str
    payload: Any
    attempts: int
    action_id: int = 0
    hook: str = ""
    campaign_id: str | None = None
    wa_message_id: str | None = None
    error_code: int | None = None
    error_text: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    sent_at: datetime | None = None

    @property
    def sendable(self) -> bool:
        return self.status in SENDABLE


class MessageLedger:
    def __init__(self, engine: Engine, prefix: str, *, clock: Clock | None = None, stale_after: float = 300.0):
        self.engine = engine
        self.clock = clock or Clock()
        self.m = Tables(prefix).messages
        self.stale_after = stale_after

    # ------------------------------------------------------------------ reading
    def _entry(self, row: Row[Any]) -> LedgerEntry:
        payload: Any = row.payload
        if isinstance(payload, str) and payload:
            try:
                payload = json.loads(payload)
            except ValueError:
                pass
        return LedgerEntry(
            id=int(row.id), key=row.idempotency_key, status=row.status, recipient=row.recipient, kind=row.kind,
            payload=payload, attempts=int(row.attempts), action_id=int(row.action_id or 0), hook=row.hook or "",
            campaign_id=row.campaign_id, wa_message_id=row.wa_message_id,
            error_code=int(row.error_code) if row.error_code is not None else None, error_text=row.error_text,
            created_at=row.created_at, updated_at=row.updated_at, sent_at=row.sent_at,
        )

    @translate_errors
    def get(self, key: str) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(self.m).where(self.m.c.idempotency_key == _norm(key))).first()
        return self._entry(row) if row else None

    @translate_errors
    def get_by_id(self, message_id: int) -> LedgerEntry | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(self.m).where(self.m.c.id == int(message_id))).first()
        return self._entry(row) if row else None

    @translate_errors
    def list_campaign(self, campaign_id: str) -> list[LedgerEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(self.m).where(self.m.c.campaign_id == str(campaign_id)).order_by(self.m.c.id))
            return [self._entry(r) for r in rows]

    @translate_errors
    def campaign_counts(self, campaign_id: str, conn: Connection | None = None) -> dict[str, int]:
        """``{status: rows}`` for one campaign (``conn``: read inside a caller's open transaction)."""
        m = self.m
        q = select(m.c.status, func.count()).where(m.c.campaign_id == str(campaign_id)).group_by(m.c.status)
        if conn is not None:
            return {str(s): int(n) for s, n in conn.execute(q)}
        with self.engine.connect() as own:
            return {str(s): int(n) for s, n in own.execute(q)}

    # ------------------------------------------------------------------ claiming
    @retry_transient
    @translate_errors
    def claim(
        self,
        key: str,
        *,
        recipient: str,
        kind: str,
        payload: Any = None,
        action_id: int = 0,
        hook: str = "",
        campaign_id: str | None = None,
    ) -> LedgerEntry:
        """The row for ``key``: a new ``pending`` one, or the existing one as it is (a stale ``sending`` row is
        turned into ``unknown`` first, see the module docstring)."""
        now = self.clock.now()
        key = _norm(key)
        values = {
            "idempotency_key": key, "action_id": int(action_id or 0), "hook": hook[:191],
            "campaign_id": None if campaign_id is None else str(campaign_id)[:100], "recipient": recipient[:32],
            "kind": kind[:20], "payload": None if payload is None else json.dumps(payload, ensure_ascii=False),
            "status": PENDING, "attempts": 0, "created_at": now, "updated_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(self.m).values(**values))
        except IntegrityError:
            pass  # the key exists: fall through and read it
        entry = self.get(key)
        if entry is None:  # pragma: no cover - inserted or existing, it must be there
            raise RuntimeError(f"ledger row {key!r} vanished")
        if entry.status == SENDING and entry.updated_at is not None:
            if entry.updated_at <= now - timedelta(seconds=self.stale_after) and self._mark_unknown(entry):
                entry = self.get(key) or entry
        return entry

    def _guarded(self, key: str, from_status: tuple[str, ...], **values: Any) -> bool:
        m = self.m
        values.setdefault("updated_at", self.clock.now())
        with self.engine.begin() as conn:
            res = conn.execute(
                update(m).where(and_(m.c.idempotency_key == _norm(key), m.c.status.in_(from_status))).values(**values)
            )
        return res.rowcount == 1

    def _mark_unknown(self, entry: LedgerEntry) -> bool:
        m = self.m
        with self.engine.begin() as conn:
            res = conn.execute(
                update(m)
                .where(m.c.id == entry.id, m.c.status == SENDING, m.c.updated_at == entry.updated_at)
                .values(status=UNKNOWN, updated_at=self.clock.now(),
                        error_text="outcome unknown: the run sending this message stopped mid-send; "
                                   "not re-sent automatically to avoid a duplicate")
            )
        return res.rowcount == 1

    # ------------------------------------------------------------------ transitions
    @retry_transient
    @translate_errors
    def begin_send(self, key: str, *, action_id: int | None = None, payload: Any = None) -> LedgerEntry | None:
        """``pending``/``retry`` -> ``sending`` (attempts+1). None when another run has it or it is finished."""
        values: dict[str, Any] = {"status": SENDING, "attempts": self.m.c.attempts + 1}
        if action_id:
            values["action_id"] = int(action_id)
        if payload is not None:
            values["payload"] = json.dumps(payload, ensure_ascii=False)
        if not self._guarded(key, SENDABLE, **values):
            return None
        return self.get(key)

    @retry_transient
    @translate_errors
    def mark_sent(self, key: str, wa_message_id: str, *, kind: str | None = None, payload: Any = None) -> bool:
        now = self.clock.now()
        values: dict[str, Any] = {"status": SENT, "wa_message_id": wa_message_id[:128], "sent_at": now,
                                  "error_code": None, "error_text": None, "updated_at": now}
        if kind:
            values["kind"] = kind[:20]
        if payload is not None:
            values["payload"] = json.dumps(payload, ensure_ascii=False)
        return self._guarded(key, (SENDING,), **values)

    @retry_transient
    @translate_errors
    def mark_failed(self, key: str, code: int | None, text: str, retryable: bool) -> bool:
        """``sending`` -> ``retry`` (a retry action will re-send it) or ``failed`` (for good)."""
        return self._guarded(key, (SENDING,), status=RETRY if retryable else FAILED, error_code=code,
                             error_text=(text or "")[:TEXT_MAX])

    @retry_transient
    @translate_errors
    def mark_unknown(self, key: str, text: str) -> bool:
        """``sending`` -> ``unknown``: the request went out but no answer came back; never re-sent automatically."""
        return self._guarded(key, (SENDING,), status=UNKNOWN, error_text=(text or "")[:TEXT_MAX])

    @retry_transient
    @translate_errors
    def release(self, key: str, text: str = "", *, to_status: str = PENDING) -> bool:
        """``sending`` -> ``pending`` (or back to ``retry``): the message never left (sends halted, worker
        stopping); the attempt is not counted."""
        if to_status not in SENDABLE:
            raise ValueError(f"release: {to_status!r} is not a sendable status")
        return self._guarded(key, (SENDING,), status=to_status, attempts=self.m.c.attempts - 1,
                             error_text=(text or None) and text[:TEXT_MAX])

    @retry_transient
    @translate_errors
    def give_up(self, key: str, text: str) -> bool:
        """``retry`` -> ``failed`` (attempts used up)."""
        return self._guarded(key, (RETRY,), status=FAILED, error_text=(text or "")[:TEXT_MAX])
