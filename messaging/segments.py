"""SMS length and cost: GSM 03.38 (7-bit) or UCS-2, and how many segments a text takes.

A single SMS holds 160 GSM-7 septets or 70 UCS-2 units; a multipart one loses room to its
concatenation header, leaving 153 or 67 per segment. An extension-table character (like €)
is an escape pair that carriers never split across segments, and neither is a UTF-16
surrogate pair (an emoji), so segments are packed greedily rather than by division.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_SMS_SEGMENTS = 10

# GSM 03.38 basic character set (3GPP TS 23.038, 6.2.1), including LF and CR.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
# The extension table: each is sent as ESC + character, two septets.
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

SINGLE = {"GSM-7": 160, "UCS-2": 70}
MULTIPART = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    characters: int  # what a person counts: code points
    segments: int
    per_segment: int
    remaining_in_segment: int


def is_gsm7(text: str) -> bool:
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _unit_costs(text: str, encoding: str) -> list[int]:
    if encoding == "GSM-7":
        return [2 if char in GSM7_EXTENSION else 1 for char in text]
    return [2 if ord(char) > 0xFFFF else 1 for char in text]


def sms_length(text: str) -> SmsLength:
    encoding = "GSM-7" if is_gsm7(text) else "UCS-2"
    costs = _unit_costs(text, encoding)
    units = sum(costs)
    if units == 0:
        return SmsLength(encoding, 0, 0, 0, SINGLE[encoding], SINGLE[encoding])
    if units <= SINGLE[encoding]:
        return SmsLength(encoding, units, len(text), 1, SINGLE[encoding], SINGLE[encoding] - units)
    per_segment = MULTIPART[encoding]
    segments, used = 1, 0
    for cost in costs:
        # A character that doesn't fit whole starts the next segment.
        if used + cost > per_segment:
            segments += 1
            used = 0
        used += cost
    return SmsLength(encoding, units, len(text), segments, per_segment, per_segment - used)


_REPLACEMENTS = {
    **dict.fromkeys("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000", " "),
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033", '"'),
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    "\u2026": "...",
    "\u2022": "-",
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff", ""),
}
_REPLACE_PATTERN = re.compile("|".join(map(re.escape, _REPLACEMENTS)))


def sms_normalise(text: str) -> str:
    """Swap look-alike characters that would force UCS-2 (halving the room) for GSM-7 ones.

    A stray non-breaking space or curly quote pasted from a document would otherwise double
    the cost of the whole text. Real non-GSM letters (Welsh ŵ, emoji) are left alone.
    """
    text = text.replace("\r\n", "\n")
    return _REPLACE_PATTERN.sub(lambda match: _REPLACEMENTS[match.group(0)], text)
