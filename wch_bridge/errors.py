"""One root error and its branches. Every error the bridge raises on purpose derives from WchBridgeError."""

from __future__ import annotations


class WchBridgeError(Exception):
    """Root of every deliberate wch-bridge error."""


class ConfigError(WchBridgeError):
    """A setting is missing or invalid; the message names the setting."""


class StoreError(WchBridgeError):
    """The database could not do what was asked."""


class TransientStoreError(StoreError):
    """Lost connection, deadlock (1213), lock wait timeout (1205): try again later."""


class LockBusyError(TransientStoreError):
    """A row lock was held by another session and the bridge does not wait for locks (1205 at once): try again."""


class SchemaError(StoreError):
    """Tables are missing or do not have the expected shape."""


class ActionDataError(WchBridgeError):
    """An action row cannot be decoded (args JSON, schedule). Fails that action only."""


class ScheduleFormatError(ActionDataError):
    """The PHP-serialized schedule column could not be parsed."""


class HandlerError(WchBridgeError):
    """Raised by a handler: the action failed."""


class PermanentError(HandlerError):
    """Retrying cannot fix it (unknown sync type, entity not found, invalid parameter...)."""


class ShutdownRequested(HandlerError):  # noqa: N818 - it is a signal, not a failure
    """A handler stopped between units of work because the worker is shutting down.

    The worker puts the action back to ``pending`` so it is re-run cleanly (the message ledger makes the
    re-run skip what was already sent)."""


class ApiError(WchBridgeError):
    """The WhatsApp Cloud / Catalog API answered with an error (or not at all)."""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        category: str = "retry",
        retry_after: float | None = None,
        details: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status
        self.category = category
        self.retry_after = retry_after
        self.details = details
