"""What WhatsApp Cloud / Graph API error codes mean, in Meta's own short titles (reference
whatsapp-and-woocommerce.md, section C): the one table the report (a code's meaning beside its number) and the
sandbox (the titles of the errors it answers) read. What the bridge *does* about a code is
``wch_bridge.whatsapp.classify``."""

from __future__ import annotations

#: Code -> title, as Meta's error reference words it.
MEANINGS: dict[int, str] = {
    0: "AuthException",
    1: "API Unknown",
    2: "API Service",
    3: "API Method",
    4: "Application request limit reached",
    10: "Permission denied",
    100: "Invalid parameter",
    190: "Access token has expired",
    200: "Permission error",
    368: "Temporarily blocked for policies violations",
    80007: "Rate limit issues",
    80014: "Too many calls to this catalog",
    130429: "Rate limit hit",
    131000: "Something went wrong",
    131008: "Required parameter is missing",
    131009: "Parameter value is not valid",
    131016: "Service unavailable",
    131021: "Recipient cannot be sender",
    131026: "Message Undeliverable",
    131031: "Business Account locked",
    131042: "Business eligibility payment issue",
    131047: "Re-engagement message",
    131048: "Spam rate limit hit",
    131049: "Meta chose not to deliver",
    131050: "User has stopped marketing messages",
    131051: "Unsupported message type",
    131052: "Media download error",
    131053: "Media upload error",
    131056: "(Business Account, Consumer Account) pair rate limit hit",
    131057: "Account in maintenance mode",
    132000: "Number of parameters does not match the expected number of params",
    132001: "Template name does not exist in the translation",
    132005: "Translated text too long",
    132007: "Template format character policy violated",
    132012: "Parameter format does not match format in the created template",
    132015: "Template is paused",
    132016: "Template is disabled",
    132018: "Template parameter problem",
    133010: "Phone number not registered",
}


def meaning(code: object) -> str:
    """The title of a Graph error code (int or digit string), or '' when the code is unknown or not a number."""
    try:
        return MEANINGS.get(int(str(code).strip()), "")
    except ValueError:
        return ""
