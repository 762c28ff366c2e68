"""What a Graph API error means for the caller: its category (reference C.5), and recipient numbers as E.164."""

from __future__ import annotations

from wch_bridge import phones
from wch_bridge.api_gate import HALT as GATE_HALT
from wch_bridge.errors import ApiError

THROTTLE = "throttle"
PAIR = "pair"
TEMPLATE = "template"
RECIPIENT = "recipient"
RETRY = "retry"
HALT = GATE_HALT  # the gate raises this category while sends are halted
FIX = "fix"
MALFORMED = "malformed"
#: The request reached WhatsApp but no answer came back (read timeout on a send): it may have been accepted.
#: Never retried (a retry could deliver the message twice); the ledger records the outcome as unknown.
UNKNOWN = "unknown"

_CODES: dict[str, frozenset[int]] = {
    THROTTLE: frozenset({130429, 4, 80007, 80014, 132015}),
    PAIR: frozenset({131056}),
    TEMPLATE: frozenset({131047}),
    RECIPIENT: frozenset({131026, 131049, 131050}),
    RETRY: frozenset({131000, 131016, 1, 2, 131057}),
    HALT: frozenset(
        {190, 0, 3, 10, 368, 131005, 131031, 131037, 131042, 133010, 131048} | set(range(200, 300))
    ),
    FIX: frozenset(
        {
            100,
            131008,
            131009,
            131051,
            131021,
            131052,
            131053,
            132000,
            132001,
            132005,
            132007,
            132012,
            132016,
            132018,
        }
    ),
}
#: Template disabled: fails that template's sends from then on (no HTTP call), never the others.
TEMPLATE_DISABLED_CODE = 132016
#: Template paused (low quality): holds only that template, so it never pauses the shared gate.
TEMPLATE_PAUSED_CODE = 132015
TEMPLATE_PAUSE_SECONDS = 3 * 3600.0
#: Minimum wait before the next message to the same recipient after 131056 (about 1 message per 6 s).
PAIR_RETRY_SECONDS = 6.0


def classify(code: int | None, http_status: int | None) -> str:
    """What to do about an API error: one of ``throttle pair template recipient retry halt fix``.

    The Graph ``error.code`` decides (Meta's guidance); the HTTP status only decides for unknown codes:
    no status at all (timeout / connection error) or 5xx -> ``retry``, 429 -> ``throttle``, other -> ``fix``."""
    if code is not None:
        for category, codes in _CODES.items():
            if code in codes:
                return category
    if http_status is None:
        return RETRY if code is None else FIX
    if http_status >= 500:
        return RETRY
    if http_status == 429:
        return THROTTLE
    return FIX


# ---------------------------------------------------------------------------------------------- phone numbers


def normalize_phone(value: object) -> str:
    """The recipient as E.164 (``wch_bridge.phones.normalize``: Unicode digits folded to ASCII, separators
    dropped, 8-15 digits). Raises ``ApiError(category="recipient")`` otherwise (the value is not echoed)."""
    try:
        return phones.normalize(value)
    except phones.InvalidPhone as exc:
        raise ApiError(str(exc), category=RECIPIENT) from None
