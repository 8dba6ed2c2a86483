"""The tokens staff put in a message: {{Patient First Name}}, {{Practice Name}}, {{Appointment Link}}.

A reminder's text (messaging/reminders.py) knows three more, about the appointment it reminds
of: {{Appointment Date}}, {{Appointment Time}} and {{Location}} (REMINDER_TOKENS); a message
staff write has no appointment yet, so the builder refuses them there.

Staff type these by hand, so `<<Appointment Link>>` is the same token, and so is any
spelling that differs only in letter case or in spaces inside the brackets
(`{{ appointment link }}`, `{{AppointmentLink}}`). Nothing else is read: staff text is never
rendered as a Django template, so `{% ... %}` or `{{ request }}` in a message goes out
exactly as typed.

The builder's body actions (add the link token at the cursor, remove it, count it) are here
too, beside the rule they read by. static/js/message-builder.js does the same in the browser,
written to match line for line; tests/messaging/link_token_cases.json is the one table of
cases both are tested against.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from messaging.segments import SmsLength, sms_length, sms_normalise

PATIENT_FIRST_NAME = "{{Patient First Name}}"
PRACTICE_NAME = "{{Practice Name}}"
APPOINTMENT_LINK = "{{Appointment Link}}"
KNOWN_TOKENS = (PATIENT_FIRST_NAME, PRACTICE_NAME, APPOINTMENT_LINK)
APPOINTMENT_DATE = "{{Appointment Date}}"
APPOINTMENT_TIME = "{{Appointment Time}}"
LOCATION = "{{Location}}"
REMINDER_TOKENS = (*KNOWN_TOKENS, APPOINTMENT_DATE, APPOINTMENT_TIME, LOCATION)

# Where the link goes in a message as stored and as staff read it (messaging/texts.py puts the
# link back there only when the text goes to the provider): a working link is never at rest.
LINK_PLACEHOLDER = "[link to book: hidden]"

# secrets.token_urlsafe(16): 16 random bytes are always 22 URL-safe base64 characters.
LINK_TOKEN_LENGTH = 22

# Anything token-shaped: {{...}} or <<...>> around a short run on one line. The inside holds
# no brackets of either kind, so "<<see {{Appointment Link}}>>" is a known token inside
# ordinary text rather than one unknown token, and every function here reads a body the same
# way because they all scan with this one pattern.
_TOKEN_LIKE = re.compile(r"\{\{([^{}<>\r\n]{1,40})\}\}|<<([^{}<>\r\n]{1,40})>>")
# Horizontal spaces: tab and the Unicode space separators, so a pasted no-break space is
# forgiven too. Line breaks never reach here (the pattern above keeps them out).
_HORIZONTAL_SPACES = "\t\u0020\u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
_SPACES = re.compile(f"[{_HORIZONTAL_SPACES}]+")
# White space, where the builder puts or tidies spaces: the horizontal spaces and the line
# breaks, which is Unicode's White_Space. Listed because Python's \s (which adds \x1c-\x1f)
# and JavaScript's (which adds U+FEFF) each differ from it, and the builder script has to
# agree with this module character for character.
_WHITESPACE = _HORIZONTAL_SPACES + "\n\v\f\r\u0085\u2028\u2029"
# Keyed without spaces: "{{AppointmentLink}}" and "{{ Appointment  Link }}" differ from the
# token only in spaces, and staff who type either mean the link.
_CANONICAL = {_SPACES.sub("", token.strip("{}")).lower(): token for token in REMINDER_TOKENS}


def _canonical(match: re.Match[str], known: tuple[str, ...] = KNOWN_TOKENS) -> str | None:
    inside = match.group(1) if match.group(1) is not None else match.group(2)
    letters = _SPACES.sub("", inside)
    # ASCII only, so that look-alikes such as the Kelvin sign (which lower-cases to "k") are
    # not read as a token: forgiving about case and spaces, and nothing else.
    if not letters.isascii():
        return None
    token = _CANONICAL.get(letters.lower())
    return token if token in known else None


def tokens_normalise(body: str, *, known: tuple[str, ...] = KNOWN_TOKENS) -> str:
    """`body` with every recognised spelling of a token rewritten to its canonical {{...}} form."""
    return _TOKEN_LIKE.sub(lambda match: _canonical(match, known) or match.group(0), body)


def tokens_unknown(body: str, *, known: tuple[str, ...] = KNOWN_TOKENS) -> list[str]:
    """Token-shaped text in `body` that is none of `known`, as typed, in order, each once.

    So the form can say "{{Patient Surname}} is not a token we know" instead of sending it.
    """
    unknown: list[str] = []
    for match in _TOKEN_LIKE.finditer(body):
        if _canonical(match, known) is None and match.group(0) not in unknown:
            unknown.append(match.group(0))
    return unknown


def tokens_fill(body: str, *, values: dict[str, str]) -> str:
    """`body` with each token of `values` (canonical keys), in any spelling, replaced by its value.

    One pass, like tokens_render, so a value that looks like a token is not read again. Any
    other token-shaped text stays as typed (a reminder template is checked for those first).
    """
    known = tuple(values)

    def replace(match: re.Match[str]) -> str:
        token = _canonical(match, known)
        return match.group(0) if token is None else values[token]

    return _TOKEN_LIKE.sub(replace, body)


def _link_tokens(body: str) -> Iterator[re.Match[str]]:
    return (match for match in _TOKEN_LIKE.finditer(body) if _canonical(match) == APPOINTMENT_LINK)


def link_token_count(body: str) -> int:
    """How many appointment-link tokens `body` has, in any spelling."""
    return sum(1 for _ in _link_tokens(body))


def link_token_add(body: str, *, at: int | None = None) -> str:
    """`body` with {{Appointment Link}} put in at the cursor `at`, or at the end if `at` is None.

    `at` counts characters and is held inside the body. A space goes before the token unless
    the text before it ends in white space, and one after it unless the text after it starts
    with white space, so the token never runs into a word. A body that already has the link
    token, in any spelling, is returned as it is: a message carries one link, and a second
    token would only make the send refuse it.
    """
    if link_token_count(body):
        return body
    at = len(body) if at is None else min(max(at, 0), len(body))
    before, after = body[:at], body[at:]
    space_before = " " if before and before[-1] not in _WHITESPACE else ""
    space_after = " " if after and after[0] not in _WHITESPACE else ""
    return f"{before}{space_before}{APPOINTMENT_LINK}{space_after}{after}"


def link_token_remove(body: str) -> str:
    """`body` without any appointment-link token, in any spelling, and trimmed of white space.

    A token goes with the horizontal spaces around it, and one space is put back only where
    they stood between two pieces of text on the same line ("Book {{Appointment Link}} now"
    reads "Book now"); the rest of the text keeps its spacing as typed. One token at a time
    until none is left, because taking one away can join the text around it into another
    ("{{Appointment {{Appointment Link}} Link}}").
    """
    while (match := next(_link_tokens(body), None)) is not None:
        before, after = body[: match.start()], body[match.end() :]
        kept_before, kept_after = before.rstrip(_HORIZONTAL_SPACES), after.lstrip(_HORIZONTAL_SPACES)
        between_words = (
            (kept_before != before or kept_after != after)
            and kept_before != ""
            and kept_after != ""
            and kept_before[-1] not in _WHITESPACE
            and kept_after[0] not in _WHITESPACE
        )
        body = f"{kept_before}{' ' if between_words else ''}{kept_after}"
    return body.strip(_WHITESPACE)


def tokens_render(body: str, *, patient_first_name: str, practice_name: str, link_url: str | None) -> str:
    """`body` with each token, in any spelling, replaced by its value; everything else as typed.

    One pass, so a value that itself looks like a token (a practice called "{{Practice
    Name}}") is not read again. Raises ValueError if the body has a link token and
    `link_url` is None: a message must never go out with the token in it instead of a link.
    """
    if link_url is None and link_token_count(body):
        raise ValueError("The message has an appointment link token but no link to put there.")
    # link_url is None only for a body without the link token (checked above), so "" is never put in.
    values = {PATIENT_FIRST_NAME: patient_first_name, PRACTICE_NAME: practice_name, APPOINTMENT_LINK: link_url or ""}

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
