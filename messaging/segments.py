"""SMS length and cost: GSM-7 or UCS-2, and how many segments (billed messages) a text takes.

A text goes as GSM-7 (the GSM 03.38 default alphabet, 7 bits a character) when every
character is in that alphabet or its extension table, and otherwise the whole text goes as
UCS-2 (UTF-16, 16 bits a unit). One SMS holds 160 septets or 70 UTF-16 units; once a text
needs more than one, each part carries a concatenation header and holds 153 or 67.

Parts are packed greedily rather than by dividing by 153 or 67: an extension character is an
escape pair (ESC + character) and a character outside the Basic Multilingual Plane (an emoji)
is a surrogate pair, and neither pair is split across two parts, so a part can end one unit
short. Twilio's own segment calculator packs the same way, and Twilio is what bills us.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

MAX_SMS_SEGMENTS = 10

GSM7: Literal["GSM-7"] = "GSM-7"
UCS2: Literal["UCS-2"] = "UCS-2"

# The GSM 03.38 default alphabet in code order, 0x00 to 0x7F, one row of 16 a line (3GPP TS
# 23.038 section 6.2.1). Written as the table so that each position can be checked against
# the standard: 0x02 is "$" and 0x24 is "¤"; 0x09 is capital "Ç" (small "ç" is not in the
# alphabet, and Twilio's calculator agrees); 0x1B is the escape to the extension table, not a
# character anyone types.
_GSM7_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_BASIC = frozenset(_GSM7_TABLE) - {"\x1b"}
# The extension table (3GPP TS 23.038 section 6.2.1.1): each is sent as ESC + a septet, so costs 2.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")
_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION

_SINGLE = {GSM7: 160, UCS2: 70}
_MULTIPART = {GSM7: 153, UCS2: 67}


@dataclass(frozen=True)
class SmsLength:
    """How long a text is as an SMS, in the units that decide its cost."""

    encoding: Literal["GSM-7", "UCS-2"]
    units: int  # GSM-7 septets (extension characters 2) or UTF-16 code units (emoji 2)
    characters: int  # code points: what a person would count
    segments: int  # billed messages; 0 for no text
    per_segment: int  # 160/153 (GSM-7) or 70/67 (UCS-2), single or multipart
    remaining_in_segment: int  # units left before another segment starts


def is_gsm7(text: str) -> bool:
    """Whether every character of `text` is in the GSM-7 alphabet or its extension table."""
    return all(char in _GSM7_ALL for char in text)


def sms_length(text: str) -> SmsLength:
    """Encoding, units and segments of `text` as it would be sent, packing parts exactly."""
    encoding: Literal["GSM-7", "UCS-2"]
    if is_gsm7(text):
        encoding = GSM7
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
    else:
        encoding = UCS2
        costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    units = sum(costs)
    single = _SINGLE[encoding]
    if units <= single:
        return SmsLength(
            encoding=encoding,
            units=units,
            characters=len(text),
            segments=1 if units else 0,
            per_segment=single,
            remaining_in_segment=single - units,
        )
    per_segment = _MULTIPART[encoding]
    segments, used = 1, 0
    for cost in costs:
        # A pair that doesn't fit whole in this part starts the next one: carriers never
        # split an escape sequence or a surrogate pair, so the last unit is left empty.
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return SmsLength(
        encoding=encoding,
        units=units,
        characters=len(text),
        segments=segments,
        per_segment=per_segment,
        remaining_in_segment=per_segment - used,
    )


# Swaps that never cost more in either encoding: one character for one GSM-7 character, or for none.
_LOOK_ALIKES = str.maketrans(
    {
        # Unicode spaces (no-break, en, em, thin, hair, narrow no-break, ...) and a pasted tab.
        **dict.fromkeys(
            "\t\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "
        ),
        **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),  # ‘ ’ ‚ ‛ and the prime ′
        **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),  # “ ” „ ‟ and the double prime ″
        **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),  # hyphens, dashes, minus
        "\u2022": "-",  # • bullet
        # Invisible characters with no meaning in a text: zero-width space, word joiner,
        # byte-order mark, soft hyphen.
        **dict.fromkeys("\u200b\u2060\ufeff\u00ad", ""),
    }
)
# Zero-width joiner and non-joiner hold emoji sequences (a family, a skin tone) and Arabic or
# Indic words together; such text goes as UCS-2 anyway, so they are only dropped when that
# makes the text GSM-7.
_JOINERS = str.maketrans(dict.fromkeys("\u200c\u200d", ""))
# "\r\r\n" (a Windows line end converted twice) is one line end too; taking the run keeps
# the function idempotent.
_CRLF = re.compile(r"\r+\n")


def sms_normalise(text: str) -> str:
    """`text` with the look-alikes that would force UCS-2 swapped for GSM-7 characters.

    A non-breaking space or a curly quote pasted from a document would otherwise send the
    whole text as UCS-2, at 70 characters a message instead of 160. Genuine non-GSM text
    (Welsh ŵ, Polish ł, emoji, Chinese) is left alone and goes as UCS-2.

    The ellipsis (one character, three as "...") and the joiners are swapped only when that
    makes the text GSM-7 without taking more messages; so this never makes a text cost more,
    and normalising twice gives the same text.
    """
    base = _CRLF.sub("\n", text.translate(_LOOK_ALIKES))
    candidate = _CRLF.sub("\n", base.translate(_JOINERS).replace("\u2026", "..."))
    if candidate != base and is_gsm7(candidate) and sms_length(candidate).segments <= sms_length(base).segments:
        return candidate
    return base
