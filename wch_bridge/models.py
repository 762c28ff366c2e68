"""Plain data shared by every layer: Action Scheduler statuses, result kinds, ledger statuses, action rows,
outcomes. No I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """Action Scheduler's own status strings (ActionScheduler_Store constants)."""

    PENDING = "pending"
    RUNNING = "in-progress"
    COMPLETE = "complete"
    FAILED = "failed"
    CANCELED = "canceled"


class ResultKind(StrEnum):
    """How the worker ended one action: ``complete`` / ``failed`` are written to Action Scheduler, ``release``
    puts the action back to ``pending`` untouched (worker stopping, database away)."""

    COMPLETE = "complete"
    FAILED = "failed"
    RELEASE = "release"


class LedgerStatus(StrEnum):
    """Statuses the bridge writes to its outbound message ledger (``{prefix}wch_bridge_messages.status``); the
    transitions between them are listed in ``store.ledger``."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    UNKNOWN = "unknown"


#: The runner context written into log lines: "action started via WCH Bridge".
CONTEXT = "WCH Bridge"
CLI_CONTEXT = "WCH Bridge CLI"


@dataclass(frozen=True)
class Action:
    """One row of ``{prefix}actionscheduler_actions`` (with its group slug), undecoded.

    Dates are naive UTC ``datetime`` (``*_gmt``) or naive site-local (``*_local``); ``None`` means NULL or the
    zero date ``0000-00-00 00:00:00`` ("never")."""

    action_id: int
    hook: str
    status: str
    scheduled_date_gmt: datetime | None
    scheduled_date_local: datetime | None = None
    priority: int = 10
    args: str | None = "[]"
    schedule: str | None = None
    group_id: int = 0
    group: str = ""
    attempts: int = 0
    last_attempt_gmt: datetime | None = None
    last_attempt_local: datetime | None = None
    claim_id: int = 0
    extended_args: str | None = None

    @property
    def args_json(self) -> str:
        """The JSON text AS decodes: ``extended_args`` when non-empty, else ``args`` (ActionScheduler_DBStore)."""
        return self.extended_args if self.extended_args else (self.args or "")


@dataclass(frozen=True)
class LogEntry:
    log_id: int
    action_id: int
    message: str
    log_date_gmt: datetime | None
    log_date_local: datetime | None


@dataclass(frozen=True)
class NewAction:
    """An action a handler asks the worker to schedule (for example the sync job's retry)."""

    hook: str
    args: Any
    delay_seconds: float = 0.0
    group: str | None = None  # None: the group of the action that asked
    priority: int | None = None  # None: the priority of the action that asked
    purpose: str = ""  # e.g. "retry": used in the log line on the asking action


@dataclass(frozen=True)
class Outcome:
    """What a handler reports back. ``complete`` unless it raised; extra log lines and follow-up actions."""

    message: str = ""
    follow_ups: tuple[NewAction, ...] = ()
    log_lines: tuple[str, ...] = ()
