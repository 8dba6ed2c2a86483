"""Message bodies that the token tests, the compose tests and the builder's browser tests share.

The spellings staff may type for the link token; the table of Add link and Remove link cases
that messaging/tokens.py and the builder script are both tested against; and generated bodies
(with a cursor) made of tokens, near misses, template syntax and characters that change an
SMS's encoding.
"""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import strategies as st

LINK_TOKEN_CASES = json.loads((Path(__file__).parent / "link_token_cases.json").read_text())["cases"]

LINK_SPELLINGS = [
    "{{Appointment Link}}",
    "<<Appointment Link>>",
    "{{ Appointment Link }}",
    "{{appointment link}}",
    "<< APPOINTMENT LINK >>",
    "{{Appointment  Link}}",
    "{{AppointmentLink}}",
    "{{\tappointment link\u00a0}}",
]
# Shapes of text that bodies are built from, so generated bodies hold tokens, near misses,
# template syntax and the characters that change an SMS's encoding.
FRAGMENTS = [
    *LINK_SPELLINGS,
    "<<Patient First Name>>",
    "{{ patient first name }}",
    "{{Practice Name}}",
    "<<practice name>>",
    "{{Patient Surname}}",
    "<<NHS number>>",
    "{{ request }}",
    "{% debug %}",
    "{{",
    "}}",
    "<<",
    ">>",
    "{",
    "}",
    "<",
    ">",
    "Appointment Link",
    "\n",
    "\r\n",
    "\u00a0",
    "\u200b",
    "\u2026",
    "\u2019",
    "€",
    "😀",
    "ŵ",
]
bodies = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=30).map("".join)


@st.composite
def bodies_and_cursors(draw: st.DrawFn) -> tuple[str, int | None]:
    body = draw(bodies)
    return body, draw(st.one_of(st.none(), st.integers(min_value=-3, max_value=len(body) + 3)))
