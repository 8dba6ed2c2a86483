"""The tokens staff put in a message: {{Patient First Name}}, {{Practice Name}}, {{Appointment Link}}.

`<<Appointment Link>>` typed by hand is the same token, and so are spellings with other
letter case or spaces inside the brackets. Nothing else in staff text is interpreted: it is
never rendered as a Django template.
"""

from __future__ import annotations

import re

from messaging.segments import SmsLength, sms_length, sms_normalise

APPOINTMENT_LINK = "{{Appointment Link}}"
PATIENT_FIRST_NAME = "{{Patient First Name}}"
PRACTICE_NAME = "{{Practice Name}}"
KNOWN_TOKENS = (PATIENT_FIRST_NAME, PRACTICE_NAME, APPOINTMENT_LINK)

TOKEN_LENGTH = 22  # secrets.token_urlsafe(16)

_CANONICAL = {re.sub(r"\W", "", token).lower(): token for token in KNOWN_TOKENS}
# {{...}} or <<...>> around up to 40 characters on one line.
_ANY_TOKEN = re.compile(r"\{\{([^{}\n]{1,40}?)\}\}|<<([^<>\n]{1,40}?)>>")


def _canonical(inner: str) -> str | None:
    return _CANONICAL.get(re.sub(r"\s+", "", inner).lower())


def tokens_normalise(body: str) -> str:
    """Every recognised spelling of a token, rewritten to its canonical {{...}} form."""

    def replace(match: re.Match) -> str:
        return _canonical(match.group(1) or match.group(2)) or match.group(0)

    return _ANY_TOKEN.sub(replace, body)


def tokens_unknown(body: str) -> list[str]:
    """Token-like text that isn't one of ours, as typed, in order, once each."""
    unknown: list[str] = []
    for match in _ANY_TOKEN.finditer(body):
        if _canonical(match.group(1) or match.group(2)) is None and match.group(0) not in unknown:
            unknown.append(match.group(0))
    return unknown


def link_token_count(body: str) -> int:
    return sum(
        1 for match in _ANY_TOKEN.finditer(body) if _canonical(match.group(1) or match.group(2)) == APPOINTMENT_LINK
    )


def tokens_render(body: str, *, patient_first_name: str, practice_name: str, link_url: str | None) -> str:
    values = {PATIENT_FIRST_NAME: patient_first_name, PRACTICE_NAME: practice_name, APPOINTMENT_LINK: link_url}
    if link_url is None and link_token_count(body):
        raise ValueError("The body has an appointment link token but no link was given.")

    def replace(match: re.Match) -> str:
        token = _canonical(match.group(1) or match.group(2))
        return values[token] if token is not None else match.group(0)

    return _ANY_TOKEN.sub(replace, body)


def link_url_length(*, public_base_url: str) -> int:
    return len(public_base_url.rstrip("/")) + len("/b/") + TOKEN_LENGTH


def sms_length_of_body(
    body: str, *, link_length: int, patient_first_name: str = "", practice_name: str = ""
) -> SmsLength:
    """The SMS length of the body as it will be sent, the link counted at its real length."""
    # "a" stands in for each character of the link: URLs and URL-safe tokens are GSM-7 basic.
    rendered = tokens_render(
        sms_normalise(body),
        patient_first_name=patient_first_name,
        practice_name=practice_name,
        link_url="a" * link_length,
    )
    return sms_length(rendered)
