"""Provider errors in words staff can act on, and which of them are worth another try."""

from __future__ import annotations

# Twilio's error codes (https://www.twilio.com/docs/api/errors). The 21xxx ones come back when
# a message is created; the 30xxx ones arrive later, in status callbacks.
TWILIO_REASONS = {
    21211: "The mobile number isn't a valid phone number. Check it on the patient's record.",
    21214: "The mobile number can't be reached. Check it on the patient's record.",
    21408: "Our Twilio account can't send texts to that country.",
    21606: "The practice's sending number can't send texts. Ask an administrator to check the SMS sender.",
    21610: "The patient has opted out of texts from us (they replied STOP).",
    21612: "Twilio can't send texts to this number from our sender.",
    21614: "The number isn't a mobile, so it can't receive texts. Check it on the patient's record.",
    21617: "The text is too long for Twilio.",
    20003: "Twilio refused our credentials. Ask an administrator to check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
    30003: "The phone is switched off or out of signal, and the network gave up.",
    30004: "The patient's network blocked the text (the number may have blocked us).",
    30005: "The number doesn't exist any more, or the network doesn't know it.",
    30006: "The number is a landline or can't receive texts.",
    30007: "The patient's network filtered the text as spam.",
    30008: "The patient's network couldn't deliver the text (no reason given).",
}

# Opted out at the provider: the patient's record should say so too.
TWILIO_OPTED_OUT = 21610


def twilio_reason(code: int | None, fallback: str = "") -> str:
    if code in TWILIO_REASONS:
        return TWILIO_REASONS[code]
    if code:
        return f"Twilio refused the text (error {code}){': ' + fallback if fallback else ''}."
    return fallback or "Twilio refused the text."


def http_status_is_transient(status: int | None) -> bool:
    """Worth another try: no answer at all, too many requests, or the provider's own fault."""
    return status is None or status == 429 or status >= 500
