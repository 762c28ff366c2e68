"""WhatsApp Cloud API + Catalog API client: the only package that imports ``requests``.

* :func:`classify` maps Graph ``error.code`` (then HTTP status) to what the caller should do (reference C.5).
* :class:`~wch_bridge.api_gate.ApiGate` (re-exported here) is state shared by every thread of one worker: the
  messages/second limit, a shared back-off pause (throttling codes slow *all* threads), and a halt flag
  (auth/config errors stop all sends). Halts and pauses are scoped to what the error is about: an error of a
  catalog call (200/368 permissions, 80014 catalog rate...) holds catalog calls only (``catalog_gate``, a child
  gate), an error of a message send holds message sends only, and a disabled template (132016) fails that
  template's sends only.
* :class:`WhatsAppClient` sends messages and catalog batches, retrying ``retry``/``throttle`` errors inside one
  call and raising :class:`~wch_bridge.errors.ApiError` for everything else.

The access token never appears in an exception, a log record or a repr: it is kept in a :class:`_Secret` and
scrubbed (replaced by ``***``) from any text that comes back from the server.

Parts: ``classify`` (error categories, phone numbers), ``results`` (what a call returns, ``SendGuard``), ``wire``
(token holder, ``Retry-After``, "did the request leave?"), ``client`` (``WhatsAppClient``). Import from here.
"""

from wch_bridge.api_gate import ApiGate, Sleeper
from wch_bridge.whatsapp.classify import (
    FIX,
    HALT,
    MALFORMED,
    PAIR,
    PAIR_RETRY_SECONDS,
    RECIPIENT,
    RETRY,
    TEMPLATE,
    TEMPLATE_DISABLED_CODE,
    TEMPLATE_PAUSE_SECONDS,
    TEMPLATE_PAUSED_CODE,
    THROTTLE,
    UNKNOWN,
    classify,
    normalize_phone,
)
from wch_bridge.whatsapp.client import WhatsAppClient
from wch_bridge.whatsapp.results import BatchResult, BatchStatus, SendGuard, SendResult
from wch_bridge.whatsapp.wire import BATCH_MAX, TEXT_MAX

__all__ = [
    "ApiGate",
    "BATCH_MAX",
    "BatchResult",
    "BatchStatus",
    "FIX",
    "HALT",
    "MALFORMED",
    "PAIR",
    "PAIR_RETRY_SECONDS",
    "RECIPIENT",
    "RETRY",
    "SendGuard",
    "SendResult",
    "Sleeper",
    "TEMPLATE",
    "TEMPLATE_DISABLED_CODE",
    "TEMPLATE_PAUSED_CODE",
    "TEMPLATE_PAUSE_SECONDS",
    "TEXT_MAX",
    "THROTTLE",
    "UNKNOWN",
    "WhatsAppClient",
    "classify",
    "normalize_phone",
]
