"""What a handler receives and returns. Handlers are pure business logic: collaborators arrive in ``Services``."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wch_bridge.errors import ShutdownRequested
from wch_bridge.models import Action, Outcome
from wch_bridge.timeutil import Clock, SiteTime

if TYPE_CHECKING:
    from wch_bridge.handlers.ports import LedgerPort, WhatsAppPort, WordPressPort


@dataclass
class Services:
    """Collaborators built by ``app.py`` (tests pass real alternatives: SQLite store, sandbox API)."""

    clock: Clock = field(default_factory=Clock)
    site: SiteTime = field(default_factory=SiteTime.utc)
    settings: Any = None  # wch_bridge.settings.Settings
    whatsapp: WhatsAppPort | None = None  # wch_bridge.whatsapp.WhatsAppClient
    wp: WordPressPort | None = None  # WordPress / WooCommerce / plugin data access (store.wordpress.WordPressData)
    ledger: LedgerPort | None = None  # outbound message ledger (store.ledger.MessageLedger)
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("wch_bridge.handlers"))


@dataclass(frozen=True)
class Job:
    """One action being run: the row, its decoded (and v2-unwrapped) args, and the services."""

    action: Action
    args: Any
    services: Services
    stop: threading.Event = field(default_factory=threading.Event)

    def check_stop(self) -> None:
        """Call between units of work (e.g. recipients): raises ShutdownRequested once the worker is stopping."""
        if self.stop.is_set():
            raise ShutdownRequested("worker is stopping; the action will be run again")


Handler = Callable[[Job], Outcome | None]
