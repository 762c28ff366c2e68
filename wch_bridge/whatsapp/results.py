"""What the client hands back: a send, a catalog batch, a batch status; and the ledger's hold on a send (``SendGuard``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from wch_bridge.errors import ApiError


class SendGuard(Protocol):
    """The ledger's hold on one message while its request is on the wire (``handlers.common.send_once``).

    ``on_wire()`` is called after the send slot, shared pauses and back-off, right before the request is written
    (the row becomes ``sending``; it may raise to abort the send); ``off_wire(err)`` when a definite "not sent"
    answer (5xx, throttling, a connection never made) will be retried after a wait (the row becomes sendable
    again, so a worker killed during the wait leaves nothing in doubt)."""

    def on_wire(self) -> None: ...

    def off_wire(self, err: ApiError) -> None: ...


@dataclass(frozen=True)
class SendResult:
    message_id: str
    wa_id: str | None = None


@dataclass(frozen=True)
class BatchResult:
    handles: list[str] = field(default_factory=list)
    validation_status: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class BatchStatus:
    handle: str
    status: str
    errors_total_count: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """``finished`` is the only documented terminal value; anything else counts as pending."""
        return self.status == "finished"
