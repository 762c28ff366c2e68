"""The outbound message ledger, ``{prefix}wch_bridge_messages``: one row per logical WhatsApp message, keyed by a
unique idempotency key (``broadcast:{campaign}:{phone}``, ``cart:{cart_id}:{updated_at}``, ``order:{id}:{status}``).
Every send goes through it, so running an action again never sends a message twice.

Statuses and the only transitions (each a guarded UPDATE that must change exactly one row)::

    claim()                -> pending            (INSERT with the UNIQUE key; an existing row is returned as it is)
    pending | retry        -> sending            begin_send(): attempts+1; only one caller wins
    sending | unknown      -> sent               mark_sent(): wa_message_id, sent_at; never sent again
    sending                -> retry | failed     mark_failed(retryable=...): error_code, error_text
    pending | retry        -> failed             mark_failed(..., before_send=True): refused before any request
    sending                -> pending | retry    release(): the send never left (sends halted, shutdown, back-off)
    sending                -> unknown            mark_unknown(): the request left, no answer came back
    retry                  -> failed             give_up(): attempts used up
    sending (stale)        -> unknown            sweep_stale() by any live worker, or claim() of that key
    unknown | failed       -> retry              resend(): an operator's deliberate re-send (attempts start again)

A row is ``sending`` only while its request is on the wire: ``send_once`` moves it there right before the HTTP
request is written (after the send slot, shared pauses and back-off waits) and back to ``pending``/``retry``
before any back-off wait. Rule for a row left ``sending`` by a crashed run: WhatsApp may or may not have accepted
that message, and a second copy of a marketing message is worse than a missing one, so it is **never re-sent
automatically**. Once it is older than ``stale_after`` (default 300 s, longer than one send with its in-call
retries) a sweep by any live worker (or the next ``claim()`` of its key) turns it into ``unknown`` with an
explanatory ``error_text``; until then it counts as in flight elsewhere. Either way callers skip it and count it
"in doubt". An operator looks such rows up (``wch-bridge messages list --status unknown``) and re-sends them
deliberately (``wch-bridge messages resend``).

Database outages around a send: ``begin_send`` writes a per-attempt marker into ``error_text``; if the connection
drops while it commits, the ledger waits for the database and reads the row back, and the attempt goes on only if
the row carries its own marker. After the HTTP call, ``mark_sent`` / ``mark_failed`` / ``mark_unknown`` keep trying
(with back-off, up to ``durable_wait`` seconds) until the outcome is written, so a message that left is recorded.

Times in this bridge-owned table are UTC. ``payload`` is the Cloud API message body (JSON) as sent last.

The row type, statuses and key rule live in ``ledger_entry``, the status/report facts in ``ledger_facts``; both
are re-exported here."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from wch_bridge.errors import TransientStoreError
from wch_bridge.store.engine import retry_transient, translate_errors
from wch_bridge.store.ledger.entry import (
    FAILED,
    IN_DOUBT,
    KEY_MAX,
    PENDING,
    RESENDABLE,
    RESENT_TEXT,
    RETRY,
    SENDABLE,
    SENDING,
    SENT,
    STALE_TEXT,
    TEXT_MAX,
    UNKNOWN,
    LedgerEntry,
    _norm,
    ledger_key,
)
from wch_bridge.store.ledger.facts import (
    AUTH_ERROR_CODES,
    HALT_STATUSES,
    SENT_STATUSES,
    auth_pause,
    in_doubt_counts,
)
from wch_bridge.store.tables import Tables
from wch_bridge.timeutil import Clock

__all__ = [
    "AUTH_ERROR_CODES", "FAILED", "HALT_STATUSES", "IN_DOUBT", "KEY_MAX", "LedgerEntry", "MessageLedger", "PENDING",
    "RESENDABLE", "RESENT_TEXT", "RETRY", "SENDABLE", "SENDING", "SENT", "SENT_STATUSES", "STALE_TEXT", "TEXT_MAX",
    "UNKNOWN", "auth_pause", "in_doubt_counts", "ledger_key",
]

class MessageLedger:
    def __init__(self, engine: Engine, prefix: str, *, clock: Clock | None = None, stale_after: float = 300.0,
                 durable_wait: float = 300.0):
        self.engine = engine
        self.clock = clock or Clock()
        self.m = Tables(prefix).messages
        self.stale_after = stale_after
        self.durable_wait = durable_wait

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
            row = self._row(conn, key)
        return self._entry(row) if row else None

    def _row(self, conn: Connection, key: str) -> Row[Any] | None:
        return conn.execute(select(self.m).where(self.m.c.idempotency_key == _norm(key))).first()

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
                new_id = conn.execute(insert(self.m).values(**values)).inserted_primary_key[0]
        except IntegrityError:
            new_id = None  # the key exists: fall through and read it
        if new_id is not None:  # the row is exactly what was written: no read-back
            return LedgerEntry(
                id=int(new_id), key=key, status=PENDING, recipient=values["recipient"], kind=values["kind"],
                payload=payload, attempts=0, action_id=values["action_id"], hook=values["hook"],
                campaign_id=values["campaign_id"], created_at=now.replace(microsecond=0),
                updated_at=now.replace(microsecond=0),
            )
        entry = self.get(key)
        if entry is None:  # pragma: no cover - inserted or existing, it must be there
            raise RuntimeError(f"ledger row {key!r} vanished")
        if entry.status == SENDING and entry.updated_at is not None:
            if entry.updated_at <= now - timedelta(seconds=self.stale_after) and self._mark_unknown(entry):
                entry = self.get(key) or entry
        return entry

    def _durably(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` until the database answers (back-off 0.5 s .. 10 s, up to ``durable_wait`` seconds)."""
        deadline = time.monotonic() + self.durable_wait
        delay = 0.5
        while True:
            try:
                return fn()
            except TransientStoreError:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(10.0, delay * 2)

    def _guarded(self, key: str, from_status: tuple[str, ...], **values: Any) -> bool:
        with self.engine.begin() as conn:
            return self._guarded_in(conn, key, from_status, values) == 1

    def _guarded_in(self, conn: Connection, key: str, from_status: tuple[str, ...], values: dict[str, Any]) -> int:
        """The guarded UPDATE of one transition (``updated_at`` set unless given); returns the rows it matched."""
        m = self.m
        values = {"updated_at": self.clock.now(), **values}
        res = conn.execute(
            update(m).where(and_(m.c.idempotency_key == _norm(key), m.c.status.in_(from_status))).values(**values)
        )
        return int(res.rowcount)

    def _mark_unknown(self, entry: LedgerEntry) -> bool:
        m = self.m
        with self.engine.begin() as conn:
            res = conn.execute(
                update(m)
                .where(m.c.id == entry.id, m.c.status == SENDING, m.c.updated_at == entry.updated_at)
                .values(status=UNKNOWN, updated_at=self.clock.now(), error_text=STALE_TEXT)
            )
        return res.rowcount == 1

    @retry_transient
    @translate_errors
    def sweep_stale(self, limit: int = 500) -> int:
        """``sending`` rows older than ``stale_after`` -> ``unknown`` (with the reason); returns how many. Run by
        every live worker now and then, so a row a killed run left on the wire is resolved without waiting for
        its key to be claimed again. Reads ``status_updated_at`` only."""
        m = self.m
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.stale_after)
        with self.engine.connect() as conn:
            ids = [int(i) for (i,) in conn.execute(
                select(m.c.id).where(m.c.status == SENDING, m.c.updated_at <= cutoff).order_by(m.c.updated_at)
                .limit(limit))]
        if not ids:
            return 0
        with self.engine.begin() as conn:
            res = conn.execute(update(m).where(m.c.id.in_(ids), m.c.status == SENDING, m.c.updated_at <= cutoff)
                               .values(status=UNKNOWN, updated_at=now, error_text=STALE_TEXT))
        return int(res.rowcount)

    @translate_errors
    def in_doubt(self, campaign_id: str | None = None) -> tuple[int, datetime | None]:
        """Messages in doubt (``sending`` or ``unknown``) and the oldest one's ``updated_at``."""
        m = self.m
        q = select(func.count(), func.min(m.c.updated_at)).where(m.c.status.in_(IN_DOUBT))
        if campaign_id is not None:
            q = q.where(m.c.campaign_id == str(campaign_id))
        with self.engine.connect() as conn:
            n, oldest = conn.execute(q).one()
        return int(n), oldest

    @translate_errors
    def list_messages(self, *, statuses: tuple[str, ...] = (), campaign_id: str | None = None,
                      kind: str | None = None, since: datetime | None = None, ids: tuple[int, ...] = (),
                      limit: int = 100) -> list[LedgerEntry]:
        """Rows by status / campaign / kind / last change, newest change first."""
        m = self.m
        q = select(m)
        if statuses:
            q = q.where(m.c.status.in_(list(statuses)))
        if campaign_id is not None:
            q = q.where(m.c.campaign_id == str(campaign_id))
        if kind:
            q = q.where(m.c.kind == kind)
        if since is not None:
            q = q.where(m.c.updated_at >= since)
        if ids:
            q = q.where(m.c.id.in_([int(i) for i in ids]))
        q = q.order_by(m.c.updated_at.desc(), m.c.id.desc()).limit(max(1, int(limit)))
        with self.engine.connect() as conn:
            return [self._entry(r) for r in conn.execute(q)]

    @retry_transient
    @translate_errors
    def resend(self, entry: LedgerEntry, action_id: int = 0) -> bool:
        """``unknown``/``failed`` -> ``retry`` for an operator's deliberate re-send (attempts start again, the
        row says ``resent by operator``). Guarded on the row's status and ``updated_at`` as read, so two commands
        (or one command naming a row twice) move it once."""
        if entry.status not in RESENDABLE:
            return False
        m = self.m
        was = f" (was {entry.status}: {entry.error_text})" if entry.error_text else f" (was {entry.status})"
        values: dict[str, Any] = {"status": RETRY, "attempts": 0, "updated_at": self.clock.now(),
                                  "error_text": (RESENT_TEXT + was)[:TEXT_MAX]}
        if action_id:
            values["action_id"] = int(action_id)
        with self.engine.begin() as conn:
            res = conn.execute(update(m).where(m.c.id == entry.id, m.c.status == entry.status,
                                               m.c.updated_at == entry.updated_at).values(**values))
        return res.rowcount == 1

    @retry_transient
    @translate_errors
    def note_held(self, key: str, text: str, code: int | None = None) -> bool:
        """A ``pending``/``retry`` row held back before any request (sends halted): the reason and code stay on
        it (``status`` and the report read sends as paused from them); it stays sendable."""
        return self._guarded(key, SENDABLE, error_text=(text or "")[:TEXT_MAX], error_code=code)

    # ------------------------------------------------------------------ transitions
    def begin_send(self, key: str, *, action_id: int | None = None, payload: Any = None) -> LedgerEntry | None:
        """``pending``/``retry`` -> ``sending`` (attempts+1). None when another run has it or it is finished.

        A per-attempt marker in ``error_text`` tells, after a connection lost at commit, whether this attempt's
        write went in (then the send goes on) or not (then it is tried again)."""
        marker = f"sending:{uuid.uuid4().hex}"
        values: dict[str, Any] = {"status": SENDING, "attempts": self.m.c.attempts + 1, "error_text": marker}
        if action_id:
            values["action_id"] = int(action_id)
        if payload is not None:
            values["payload"] = json.dumps(payload, ensure_ascii=False)

        def attempt() -> LedgerEntry | None:
            try:
                won = self._begin(key, values)
            except TransientStoreError:
                row = self._durably(lambda: self.get(key))
                if row is not None and row.status == SENDING and row.error_text == marker:
                    return row  # our write went in before the connection dropped
                if row is not None and row.status in SENDABLE:
                    raise  # it did not: _durably tries the whole attempt again
                return None
            return won

        return self._durably(attempt)

    @retry_transient
    @translate_errors
    def _begin(self, key: str, values: dict[str, Any]) -> LedgerEntry | None:
        """The guarded ``-> sending`` UPDATE and, when it won, the row as it now is, in one transaction."""
        with self.engine.begin() as conn:
            won = self._guarded_in(conn, key, SENDABLE, values) == 1
            row = self._row(conn, key)
        if row is None:
            return None
        if not won:
            # lost to another run, unless an earlier try of this same attempt went in before its connection
            # dropped at COMMIT (retry_transient ran it again): then the row carries this attempt's marker
            mine = row.status == SENDING and row.error_text == values["error_text"]
            return self._entry(row) if mine else None
        return self._entry(row)

    def mark_sent(self, key: str, wa_message_id: str, *, kind: str | None = None, payload: Any = None) -> bool:
        """``sending`` -> ``sent``; waits for the database if it is away (the message has left)."""
        return bool(self._durably(lambda: self._mark_sent(key, wa_message_id, kind=kind, payload=payload)))

    @retry_transient
    @translate_errors
    def _mark_sent(self, key: str, wa_message_id: str, *, kind: str | None = None, payload: Any = None) -> bool:
        now = self.clock.now()
        values: dict[str, Any] = {"status": SENT, "wa_message_id": wa_message_id[:128], "sent_at": now,
                                  "error_code": None, "error_text": None, "updated_at": now}
        if kind:
            values["kind"] = kind[:20]
        if payload is not None:
            values["payload"] = json.dumps(payload, ensure_ascii=False)
        # from unknown too: a sweep may have given up on a send whose answer came late (it did leave)
        return self._guarded(key, (SENDING, UNKNOWN), **values)

    def mark_failed(self, key: str, code: int | None, text: str, retryable: bool, *,
                    before_send: bool = False) -> bool:
        """``sending`` -> ``retry`` (a retry action will re-send it) or ``failed`` (for good); with
        ``before_send`` from ``pending``/``retry`` (refused before any request: a bad number, an invalid body)."""
        return bool(self._durably(lambda: self._guarded_t(
            key, SENDABLE if before_send else (SENDING,), status=RETRY if retryable else FAILED, error_code=code,
            error_text=(text or "")[:TEXT_MAX])))

    @retry_transient
    @translate_errors
    def _guarded_t(self, key: str, from_status: tuple[str, ...], **values: Any) -> bool:
        return self._guarded(key, from_status, **values)

    def mark_unknown(self, key: str, text: str) -> bool:
        """``sending`` -> ``unknown``: the request went out but no answer came back; never re-sent automatically."""
        return bool(self._durably(lambda: self._guarded_t(
            key, (SENDING,), status=UNKNOWN, error_text=(text or "")[:TEXT_MAX])))

    @retry_transient
    @translate_errors
    def release(self, key: str, text: str = "", *, to_status: str = PENDING, error_code: int | None = None) -> bool:
        """``sending`` -> ``pending`` (or back to ``retry``): the message never left (sends halted, worker
        stopping); the attempt is not counted."""
        if to_status not in SENDABLE:
            raise ValueError(f"release: {str(to_status)!r} is not a sendable status")
        return self._guarded(key, (SENDING,), status=to_status, attempts=self.m.c.attempts - 1,
                             error_text=(text or None) and text[:TEXT_MAX], error_code=error_code)

    @retry_transient
    @translate_errors
    def give_up(self, key: str, text: str) -> bool:
        """``retry`` -> ``failed`` (attempts used up)."""
        return self._guarded(key, (RETRY,), status=FAILED, error_text=(text or "")[:TEXT_MAX])
