"""One row of the outbound message ledger as Python sees it (``LedgerEntry``), its statuses and groups of them,
and the idempotency key rule (``ledger_key``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from wch_bridge.models import LedgerStatus

PENDING, SENDING, SENT = LedgerStatus.PENDING, LedgerStatus.SENDING, LedgerStatus.SENT
RETRY, FAILED, UNKNOWN = LedgerStatus.RETRY, LedgerStatus.FAILED, LedgerStatus.UNKNOWN
SENDABLE = (PENDING, RETRY)
IN_DOUBT = (SENDING, UNKNOWN)
RESENDABLE = (UNKNOWN, FAILED)
STALE_TEXT = (
    "outcome unknown: the run sending this message stopped while its request was on the wire; "
    "not re-sent automatically to avoid a duplicate (wch-bridge messages resend)"
)
RESENT_TEXT = "resent by operator"
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

    def after_sent(self, wa_message_id: str, *, kind: str | None = None, payload: Any = None) -> LedgerEntry:
        """This ``sending`` row as ``mark_sent`` leaves it, for the caller that held it (no read-back)."""
        return replace(
            self,
            status=SENT,
            wa_message_id=wa_message_id[:128],
            kind=kind[:20] if kind else self.kind,
            payload=self.payload if payload is None else payload,
            error_code=None,
            error_text=None,
        )
