"""The tokens staff put in a message: {{Patient First Name}}, {{Practice Name}}, {{Appointment Link}}.

Staff type these by hand, so `<<Appointment Link>>` is the same token, and so is any
spelling that differs only in letter case or in spaces inside the brackets
(`{{ appointment link }}`, `{{AppointmentLink}}`). Nothing else is read: staff text is never
rendered as a Django template, so `{% ... %}` or `{{ request }}` in a message goes out
exactly as typed.
"""

from __future__ import annotations

import re

from messaging.segments import SmsLength, sms_length, sms_normalise

PATIENT_FIRST_NAME = "{{Patient First Name}}"
PRACTICE_NAME = "{{Practice Name}}"
APPOINTMENT_LINK = "{{Appointment Link}}"
KNOWN_TOKENS = (PATIENT_FIRST_NAME, PRACTICE_NAME, APPOINTMENT_LINK)

# secrets.token_urlsafe(16): 16 random bytes are always 22 URL-safe base64 characters.
LINK_TOKEN_LENGTH = 22

# Anything token-shaped: {{...}} or <<...>> around a short run on one line. The inside holds
# no brackets of either kind, so "<<see {{Appointment Link}}>>" is a known token inside
# ordinary text rather than one unknown token, and every function here reads a body the same
# way because they all scan with this one pattern.
_TOKEN_LIKE = re.compile(r"\{\{([^{}<>\r\n]{1,40})\}\}|<<([^{}<>\r\n]{1,40})>>")
# Horizontal spaces: tab and the Unicode space separators, so a pasted no-break space is
# forgiven too. Line breaks never reach here (the pattern above keeps them out).
_SPACES = re.compile("[\t\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")
# Keyed without spaces: "{{AppointmentLink}}" and "{{ Appointment  Link }}" differ from the
# token only in spaces, and staff who type either mean the link.
_CANONICAL = {_SPACES.sub("", token.strip("{}")).lower(): token for token in KNOWN_TOKENS}


def _canonical(match: re.Match[str]) -> str | None:
    inside = match.group(1) if match.group(1) is not None else match.group(2)
    letters = _SPACES.sub("", inside)
    # ASCII only, so that look-alikes such as the Kelvin sign (which lower-cases to "k") are
    # not read as a token: forgiving about case and spaces, and nothing else.
    if not letters.isascii():
        return None
    return _CANONICAL.get(letters.lower())


def tokens_normalise(body: str) -> str:
    """`body` with every recognised spelling of a token rewritten to its canonical {{...}} form."""
    return _TOKEN_LIKE.sub(lambda match: _canonical(match) or match.group(0), body)


def tokens_unknown(body: str) -> list[str]:
    """Token-shaped text in `body` that is none of ours, as typed, in order, each once.

    So the form can say "{{Patient Surname}} is not a token we know" instead of sending it.
    """
    unknown: list[str] = []
    for match in _TOKEN_LIKE.finditer(body):
        if _canonical(match) is None and match.group(0) not in unknown:
            unknown.append(match.group(0))
    return unknown


def link_token_count(body: str) -> int:
    """How many appointment-link tokens `body` has, in any spelling."""
    return sum(1 for match in _TOKEN_LIKE.finditer(body) if _canonical(match) == APPOINTMENT_LINK)


def tokens_render(body: str, *, patient_first_name: str, practice_name: str, link_url: str | None) -> str:
    """`body` with each token, in any spelling, replaced by its value; everything else as typed.

    One pass, so a value that itself looks like a token (a practice called "{{Practice
    Name}}") is not read again. Raises ValueError if the body has a link token and
    `link_url` is None: a message must never go out with the token in it instead of a link.
    """
    if link_url is None and link_token_count(body):
        raise ValueError("The message has an appointment link token but no link to put there.")
    values = {PATIENT_FIRST_NAME: patient_first_name, PRACTICE_NAME: practice_name, APPOINTMENT_LINK: link_url}

    def replace(match: re.Match[str]) -> str:
        token = _canonical(match)
        return match.group(0) if token is None else values[token]

    return _TOKEN_LIKE.sub(replace, body)


def link_url_length(*, public_base_url: str) -> int:
    """The length of a booking link: `public_base_url` + "/b/" + its 22-character token."""
    return len(public_base_url) + len("/b/") + LINK_TOKEN_LENGTH


def sms_length_of_body(
    body: str, *, link_length: int, patient_first_name: str = "", practice_name: str = ""
) -> SmsLength:
    """The SMS length of `body` as it will be sent: normalised, tokens filled in.

    The link doesn't exist until the message is sent, so each link token counts as
    `link_length` characters of the GSM-7 basic set: an https URL and a URL-safe base64 token
    use only letters, digits and "-_:/.", never the extension table. The names count as
    given; pass the real ones when they are known, since a name such as "Siân" (â is not
    GSM-7) turns the whole text into UCS-2.
    """
    return sms_length(
        tokens_render(
            sms_normalise(body),
            patient_first_name=patient_first_name,
            practice_name=practice_name,
            link_url="a" * link_length,
        )
    )
