"""Tokens in staff text: spellings, unknown tokens, rendering, the builder's Add link and Remove link, and
the link counted at its real length."""

from __future__ import annotations

import re
import secrets

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.segments import sms_length, sms_normalise
from messaging.tokens import (
    APPOINTMENT_LINK,
    KNOWN_TOKENS,
    PATIENT_FIRST_NAME,
    PRACTICE_NAME,
    link_token_add,
    link_token_count,
    link_token_remove,
    link_url_length,
    sms_length_of_body,
    tokens_normalise,
    tokens_render,
    tokens_unknown,
)
from tests.messaging.message_bodies import LINK_SPELLINGS, LINK_TOKEN_CASES, bodies, bodies_and_cursors

URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
LINK = "https://book.example.nhs.uk/b/" + "x" * 22


def render(body: str, *, link_url: str | None = LINK) -> str:
    return tokens_render(body, patient_first_name="Oliver", practice_name="Riverside Surgery", link_url=link_url)


TOKEN_WORDS = re.compile(r"appointment|patient|practice", re.IGNORECASE)
# Any text, brackets and template syntax included, that names none of our tokens.
texts_without_tokens = st.lists(
    st.one_of(st.sampled_from(["{{", "}}", "<<", ">>", "{% if x %}", "{{ request.user }}", "<<NHS>>"]), st.text()),
    max_size=10,
).map("".join)


class TestSpellings:
    def test_the_known_tokens_are_these_three_in_order(self):
        assert KNOWN_TOKENS == ("{{Patient First Name}}", "{{Practice Name}}", "{{Appointment Link}}")
        assert (PATIENT_FIRST_NAME, PRACTICE_NAME, APPOINTMENT_LINK) == KNOWN_TOKENS

    @pytest.mark.parametrize("spelling", LINK_SPELLINGS)
    def test_every_spelling_of_the_link_is_the_same_token(self, spelling):
        assert link_token_count(spelling) == 1
        assert tokens_normalise(f"Book: {spelling}") == f"Book: {APPOINTMENT_LINK}"
        assert render(spelling) == LINK
        assert tokens_unknown(spelling) == []

    @pytest.mark.parametrize(
        ("spelling", "value"),
        [
            ("{{Patient First Name}}", "Oliver"),
            ("<<Patient First Name>>", "Oliver"),
            ("{{ patient first name }}", "Oliver"),
            ("{{Practice Name}}", "Riverside Surgery"),
            ("<<PRACTICE NAME>>", "Riverside Surgery"),
        ],
    )
    def test_every_spelling_of_a_name_renders(self, spelling, value):
        assert render(f"Hi {spelling}.") == f"Hi {value}."

    @pytest.mark.parametrize(
        "near_miss",
        [
            "{{Appointment Links}}",
            "{{Appt Link}}",
            "{{Appointment-Link}}",
            "{{Appointment Lin\u212a}}",  # Kelvin sign, which lower-cases to "k"
            "{{Appointment Link>>",
            "{Appointment Link}",
            "{{Appointment Link}",
            "{{Appointment\nLink}}",
        ],
    )
    def test_other_spellings_are_not_the_link(self, near_miss):
        assert link_token_count(near_miss) == 0
        assert render(near_miss, link_url=None) == near_miss
        assert tokens_normalise(near_miss) == near_miss


class TestUnknownTokens:
    def test_unknown_tokens_are_reported_once_each_as_typed_in_order(self):
        body = "Hi {{Patient Surname}}, {{Patient Surname}} <<NHS number>> {{Patient First Name}} {{ DOB }}"
        assert tokens_unknown(body) == ["{{Patient Surname}}", "<<NHS number>>", "{{ DOB }}"]

    def test_a_known_token_inside_other_brackets_is_still_known(self):
        assert tokens_unknown("<<see {{Appointment Link}}>>") == []
        assert link_token_count("<<see {{Appointment Link}}>>") == 1

    def test_long_or_multi_line_brackets_are_not_tokens(self):
        assert tokens_unknown("{{" + "x" * 41 + "}}") == []
        assert tokens_unknown("<<a\nb>>") == []
        assert tokens_unknown("{{" + "x" * 40 + "}}") == ["{{" + "x" * 40 + "}}"]

    @given(bodies)
    def test_an_unknown_token_is_never_one_of_ours(self, body):
        for unknown in tokens_unknown(body):
            assert link_token_count(unknown) == 0
            assert tokens_normalise(unknown) == unknown
            assert unknown in body


class TestRendering:
    def test_names_and_link_render(self):
        body = "Hi <<Patient First Name>>, {{Practice Name}} here: {{ appointment link }}"
        assert render(body) == f"Hi Oliver, Riverside Surgery here: {LINK}"

    def test_other_template_syntax_is_never_interpreted(self):
        body = "{% if x %}{{ request.user }}{% endif %} {{ settings.SECRET_KEY }} {# c #} {{Practice Name}}"
        assert (
            render(body)
            == "{% if x %}{{ request.user }}{% endif %} {{ settings.SECRET_KEY }} {# c #} Riverside Surgery"
        )

    def test_a_value_that_looks_like_a_token_is_not_read_again(self):
        rendered = tokens_render(
            "{{Practice Name}}", patient_first_name="x", practice_name="{{Appointment Link}}", link_url=None
        )
        assert rendered == "{{Appointment Link}}"

    def test_a_link_token_without_a_link_is_an_error(self):
        with pytest.raises(ValueError, match="link"):
            render("Book: <<Appointment Link>>", link_url=None)

    def test_a_body_without_a_link_token_needs_no_link(self):
        assert render("Hi {{Patient First Name}}", link_url=None) == "Hi Oliver"

    def test_both_spellings_of_the_link_token_are_counted(self):
        assert link_token_count("{{Appointment Link}} and <<appointment link>>") == 2
        assert link_token_count("no link") == 0

    @given(texts_without_tokens)
    def test_text_without_tokens_renders_unchanged(self, text):
        if TOKEN_WORDS.search(text.replace(" ", "")) is None:
            assert render(text) == text
            assert tokens_normalise(text) == text
            assert link_token_count(text) == 0

    @given(bodies)
    def test_normalising_keeps_the_link_count(self, body):
        assert link_token_count(tokens_normalise(body)) == link_token_count(body)

    @given(bodies)
    def test_normalising_twice_changes_nothing_more(self, body):
        once = tokens_normalise(body)
        assert tokens_normalise(once) == once

    @given(bodies)
    def test_normalising_keeps_what_renders(self, body):
        assert render(tokens_normalise(body)) == render(body)
        assert tokens_unknown(tokens_normalise(body)) == tokens_unknown(body)


# Unicode's White_Space: what the builder trims, and never puts a second space beside.
WHITESPACE = "\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B)))


class TestBuilderActions:
    """Add link, Remove link and the count, as the builder does them with and without its script."""

    @pytest.mark.parametrize("case", LINK_TOKEN_CASES, ids=[case["name"] for case in LINK_TOKEN_CASES])
    def test_the_shared_table(self, case):
        assert link_token_add(case["body"], at=case["cursor"]) == case["added"]
        assert link_token_remove(case["body"]) == case["removed"]
        assert link_token_count(case["body"]) == case["count"]

    def test_the_table_has_every_spelling_the_sender_accepts(self):
        bodies_in_table = [case["body"] for case in LINK_TOKEN_CASES]
        for spelling in LINK_SPELLINGS:
            assert any(spelling in body for body in bodies_in_table), spelling

    @given(bodies_and_cursors())
    def test_adding_gives_exactly_one_link_unless_there_was_one(self, body_and_cursor):
        body, at = body_and_cursor
        added = link_token_add(body, at=at)
        if link_token_count(body):
            assert added == body
        else:
            assert link_token_count(added) == 1

    @given(bodies_and_cursors())
    def test_adding_keeps_the_text_on_both_sides_of_the_cursor(self, body_and_cursor):
        body, at = body_and_cursor
        cursor = len(body) if at is None else min(max(at, 0), len(body))
        added = link_token_add(body, at=at)
        assert added.startswith(body[:cursor])
        assert added.endswith(body[cursor:])
        assert len(added) - len(body) in (0, *(len(APPOINTMENT_LINK) + spaces for spaces in (0, 1, 2)))

    @given(bodies_and_cursors())
    def test_adding_twice_adds_once(self, body_and_cursor):
        body, at = body_and_cursor
        once = link_token_add(body, at=at)
        assert link_token_add(once, at=at) == once
        assert link_token_add(once) == once

    @given(bodies)
    def test_removing_leaves_no_link_in_any_spelling(self, body):
        removed = link_token_remove(body)
        assert link_token_count(removed) == 0
        assert link_token_count(tokens_normalise(removed)) == 0
        assert removed == removed.strip(WHITESPACE)

    @given(bodies)
    def test_removing_from_text_without_a_link_only_trims_it(self, body):
        if link_token_count(body) == 0:
            assert link_token_remove(body) == body.strip(WHITESPACE)

    @given(bodies)
    def test_removing_twice_removes_nothing_more(self, body):
        once = link_token_remove(body)
        assert link_token_remove(once) == once

    @given(bodies_and_cursors())
    def test_remove_then_add_gives_one_link_the_sender_accepts(self, body_and_cursor):
        body, at = body_and_cursor
        rebuilt = link_token_add(link_token_remove(body), at=at)
        assert link_token_count(rebuilt) == 1
        assert render(rebuilt).count(LINK) == 1


class TestLengthOfBody:
    def test_the_link_length_is_the_base_url_plus_b_plus_22(self):
        base = "https://book.example.nhs.uk"
        assert link_url_length(public_base_url=base) == len(base) + len("/b/") + 22
        assert link_url_length(public_base_url=base) == len(f"{base}/b/{secrets.token_urlsafe(16)}")

    def test_the_link_counts_at_its_real_length(self):
        length = sms_length_of_body("a" * 100 + " {{Appointment Link}}", link_length=50)
        assert (length.encoding, length.units, length.segments) == ("GSM-7", 151, 1)
        assert sms_length_of_body("a" * 100 + " <<Appointment Link>>", link_length=60).segments == 2

    def test_the_names_count_as_given(self):
        body = "Hi {{Patient First Name}}, from {{Practice Name}}"
        assert sms_length_of_body(body, link_length=0).units == len("Hi , from ")
        named = sms_length_of_body(body, link_length=0, patient_first_name="Siân", practice_name="Riverside")
        assert (named.encoding, named.units) == ("UCS-2", len("Hi Siân, from Riverside"))

    def test_the_body_counts_as_normalised(self):
        length = sms_length_of_body("It\u2019s\u00a0time:\u2026 {{Appointment Link}}", link_length=10)
        assert (length.encoding, length.units) == ("GSM-7", len("It's time:... ") + 10)

    @given(
        bodies,
        st.one_of(
            st.sampled_from(["https://book.example.nhs.uk", "http://testserver", "http://127.0.0.1:8000"]),
            st.text(alphabet=URL_SAFE + ":/.", min_size=1, max_size=60).map(lambda host: f"https://{host}"),
        ),
        st.text(alphabet=URL_SAFE, min_size=22, max_size=22),
        st.text(max_size=20),
        st.text(max_size=40),
    )
    def test_the_counted_length_is_the_length_of_the_text_as_sent(
        self, body, public_base_url, token, first_name, practice_name
    ):
        names = dict(patient_first_name=first_name, practice_name=practice_name)
        counted = sms_length_of_body(body, link_length=link_url_length(public_base_url=public_base_url), **names)
        # What message_send does: normalise the staff text, then fill in the real link.
        sent = tokens_render(sms_normalise(body), link_url=f"{public_base_url}/b/{token}", **names)
        assert counted == sms_length(sent)
