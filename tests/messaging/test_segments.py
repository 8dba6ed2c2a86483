"""SMS length and cost: the GSM 03.38 alphabet, units, and segments packed as carriers pack them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from messaging.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_SMS_SEGMENTS,
    SmsLength,
    is_gsm7,
    sms_length,
    sms_normalise,
)

# The standard, written independently of the module: GSM 03.38 code -> Unicode code point
# (3GPP TS 23.038 section 6.2.1). Codes not listed map to the same ASCII code point; 0x1B is
# the escape to the extension table and maps to nothing.
_NOT_ASCII = {
    0x00: 0x0040, 0x01: 0x00A3, 0x02: 0x0024, 0x03: 0x00A5, 0x04: 0x00E8, 0x05: 0x00E9, 0x06: 0x00F9,
    0x07: 0x00EC, 0x08: 0x00F2, 0x09: 0x00C7, 0x0B: 0x00D8, 0x0C: 0x00F8, 0x0E: 0x00C5, 0x0F: 0x00E5,
    0x10: 0x0394, 0x11: 0x005F, 0x12: 0x03A6, 0x13: 0x0393, 0x14: 0x039B, 0x15: 0x03A9, 0x16: 0x03A0,
    0x17: 0x03A8, 0x18: 0x03A3, 0x19: 0x0398, 0x1A: 0x039E, 0x1C: 0x00C6, 0x1D: 0x00E6, 0x1E: 0x00DF,
    0x1F: 0x00C9, 0x24: 0x00A4, 0x40: 0x00A1, 0x5B: 0x00C4, 0x5C: 0x00D6, 0x5D: 0x00D1, 0x5E: 0x00DC,
    0x5F: 0x00A7, 0x60: 0x00BF, 0x7B: 0x00E4, 0x7C: 0x00F6, 0x7D: 0x00F1, 0x7E: 0x00FC, 0x7F: 0x00E0,
}  # fmt: skip
# LF (0x0A) and CR (0x0D) are the only control characters in the alphabet.
STANDARD_BASIC = frozenset(
    chr(_NOT_ASCII.get(code, code)) for code in range(0x80) if code in _NOT_ASCII or code >= 0x20
) | {"\n", "\r"}
# The extension table (3GPP TS 23.038 section 6.2.1.1), sent as ESC + a septet.
STANDARD_EXTENSION = frozenset(
    chr(point) for point in (0x000C, 0x005E, 0x007B, 0x007D, 0x005C, 0x005B, 0x007E, 0x005D, 0x007C, 0x20AC)
)
STANDARD_ALL = STANDARD_BASIC | STANDARD_EXTENSION


def gsm_cost(char: str) -> int:
    return 2 if char in STANDARD_EXTENSION else 1


# Texts that reach the interesting places: long GSM-7 texts with extension characters (to
# cross part boundaries), and mixed texts with emoji, joiners and look-alikes.
gsm_texts = st.text(alphabet=st.sampled_from(sorted(STANDARD_ALL)), max_size=700)
mixed_texts = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(STANDARD_ALL)),
        st.sampled_from(["😀", "ŵ", "ç", "…", "\u00a0", "\u200d", "\u200b", "’", "–", "\t", "\r", "\n"]),
        st.characters(),
    ),
    max_size=400,
)
any_texts = st.one_of(st.text(), gsm_texts, mixed_texts)


class TestTheAlphabet:
    def test_the_basic_set_is_exactly_the_standard_one(self):
        assert GSM7_BASIC == STANDARD_BASIC
        assert len(GSM7_BASIC) == 127  # 128 codes less the escape

    def test_the_extension_table_is_exactly_the_standard_one(self):
        assert GSM7_EXTENSION == STANDARD_EXTENSION
        assert set("^{}\\[~]|€\f") == GSM7_EXTENSION

    @pytest.mark.parametrize("char", ["$", "¤", "£", "¥", "Ç", "é", "É", "Δ", "_", "§", "¿", "¡", "à", "\n", "\r"])
    def test_these_characters_are_in_the_basic_set(self, char):
        assert char in GSM7_BASIC

    # U+2126 is the ohm sign, a look-alike of the Greek capital omega (which is in the set).
    @pytest.mark.parametrize("char", ["ç", "ï", "ê", "á", "À", "`", "\t", "ŵ", "\u00a0", "’", "…", "\x1b", "\u2126"])
    def test_these_characters_are_in_neither_table(self, char):
        assert char not in GSM7_BASIC
        assert char not in GSM7_EXTENSION


class TestKnownLengths:
    @pytest.mark.parametrize(
        ("text", "segments", "per_segment", "remaining"),
        [
            ("a" * 160, 1, 160, 0),
            ("a" * 161, 2, 153, 145),
            ("a" * 306, 2, 153, 0),
            ("a" * 307, 3, 153, 152),
        ],
    )
    def test_gsm_7_text_fills_160_then_153_a_message(self, text, segments, per_segment, remaining):
        assert sms_length(text) == SmsLength(
            encoding="GSM-7",
            units=len(text),
            characters=len(text),
            segments=segments,
            per_segment=per_segment,
            remaining_in_segment=remaining,
        )

    @pytest.mark.parametrize(("count", "segments"), [(0, 0), (1, 1), (1530, 10), (1531, 11)])
    def test_the_product_limit_of_ten_messages_is_1530_gsm_7_characters(self, count, segments):
        assert sms_length("a" * count).segments == segments
        assert MAX_SMS_SEGMENTS == 10

    @pytest.mark.parametrize(
        ("count", "segments", "per_segment", "remaining"),
        [(70, 1, 70, 0), (71, 2, 67, 63), (134, 2, 67, 0), (135, 3, 67, 66)],
    )
    def test_ucs_2_text_fills_70_then_67_a_message(self, count, segments, per_segment, remaining):
        length = sms_length("ŵ" * count)  # Welsh w-circumflex is not in GSM-7
        assert length.encoding == "UCS-2"
        assert (length.units, length.segments, length.per_segment) == (count, segments, per_segment)
        assert length.remaining_in_segment == remaining

    def test_empty_text_is_no_message(self):
        assert sms_length("") == SmsLength(
            encoding="GSM-7", units=0, characters=0, segments=0, per_segment=160, remaining_in_segment=160
        )

    def test_extension_characters_count_two_septets(self):
        assert sms_length("€").units == 2
        assert sms_length("[]{}").units == 8
        length = sms_length("Cost: €5 [approx] ^_^ {ok} ~ | \\")
        assert (length.encoding, length.characters, length.units) == ("GSM-7", 32, 32 + 10)

    def test_extension_characters_fill_a_single_message_to_exactly_160(self):
        assert sms_length("a" * 80 + "€" * 40).segments == 1  # 80 + 80 = 160 septets
        assert sms_length("a" * 79 + "€" * 41).segments == 2  # 161

    def test_eighty_euro_signs_fit_one_message_and_eighty_one_take_two(self):
        assert (sms_length("€" * 80).units, sms_length("€" * 80).segments) == (160, 1)
        # Multipart, 76 pairs fill 152 of a part's 153 septets; the 153rd can't hold half a pair.
        length = sms_length("€" * 81)
        assert (length.units, length.segments, length.remaining_in_segment) == (162, 2, 153 - 10)

    def test_an_escape_pair_at_a_part_boundary_moves_whole_to_the_next_part(self):
        # 152 'a' + '€' is 154 septets: one message, since a single SMS holds 160.
        assert sms_length("a" * 152 + "€").segments == 1
        # Multipart, the pair would sit at septets 153-154 and straddle parts 1 and 2; it moves
        # whole to part 2, so 305 septets still take two parts (152 + 153)...
        exact = sms_length("a" * 152 + "€" + "a" * 151)
        assert (exact.units, exact.segments, exact.remaining_in_segment) == (305, 2, 0)
        # ...and 306 septets take three, where dividing by 153 would say two.
        over = sms_length("a" * 152 + "€" + "a" * 152)
        assert (over.units, over.segments, over.remaining_in_segment) == (306, 3, 152)

    def test_an_emoji_is_two_units_and_one_character(self):
        length = sms_length("😀")
        assert (length.encoding, length.units, length.characters, length.segments) == ("UCS-2", 2, 1, 1)
        assert sms_length("€😀").characters == 2

    def test_a_surrogate_pair_at_a_part_boundary_moves_whole_to_the_next_part(self):
        # 66 units, then the emoji can't split across units 67/68, so it starts part 2.
        fits = sms_length("ŵ" * 66 + "😀" + "ŵ" * 65)
        assert (fits.units, fits.segments, fits.remaining_in_segment) == (133, 2, 0)
        # 134 units would be two parts of 67 by division; packed, they take three.
        over = sms_length("a" * 66 + "😀" + "a" * 66)
        assert (over.units, over.segments, over.remaining_in_segment) == (134, 3, 66)

    @pytest.mark.parametrize(
        ("text", "encoding"),
        [
            ("café", "GSM-7"),  # é is in the basic set
            ("naïve", "UCS-2"),  # ï is not
            ("Ça va", "GSM-7"),  # capital Ç is at 0x09...
            ("ça va", "UCS-2"),  # ...small ç is not in the alphabet
            ("£5 @ 10:00, $5 or ¤5", "GSM-7"),
            ("Dydd Llun: ŵ ŷ", "UCS-2"),
            ("Zażółć gęślą jaźń", "UCS-2"),
            ("预约", "UCS-2"),
            ("Tab\there", "UCS-2"),
        ],
    )
    def test_the_encoding_follows_the_alphabet(self, text, encoding):
        assert sms_length(text).encoding == encoding


class TestLengthProperties:
    @given(any_texts)
    def test_segments_is_zero_only_for_empty_text(self, text):
        assert (sms_length(text).segments == 0) == (text == "")

    @given(any_texts, st.one_of(st.characters(), st.sampled_from(["€", "😀", "a", "ŵ"])))
    def test_appending_a_character_never_takes_fewer_messages(self, text, char):
        assert sms_length(text + char).segments >= sms_length(text).segments

    @given(any_texts)
    def test_the_encoding_is_gsm_7_exactly_when_every_character_is_in_the_alphabet(self, text):
        expected = all(char in STANDARD_ALL for char in text)
        assert (sms_length(text).encoding == "GSM-7") == expected
        assert is_gsm7(text) == expected

    @given(gsm_texts)
    def test_gsm_7_units_are_the_sum_of_each_characters_septets(self, text):
        assert sms_length(text).units == sum(gsm_cost(char) for char in text)

    @given(mixed_texts)
    def test_ucs_2_units_are_utf_16_code_units(self, text):
        length = sms_length(text)
        if length.encoding == "UCS-2":
            # surrogatepass: hypothesis also makes lone surrogates, one unit each, though no form can post one.
            assert length.units == len(text.encode("utf-16-le", "surrogatepass")) // 2

    @given(any_texts)
    def test_characters_are_code_points(self, text):
        assert sms_length(text).characters == len(text)

    @given(any_texts)
    def test_the_parts_hold_every_unit_and_waste_at_most_one_each(self, text):
        length = sms_length(text)
        assert length.segments * length.per_segment >= length.units
        assert 0 <= length.remaining_in_segment <= length.per_segment
        if length.segments > 1:
            # Every part but the last is full, or one short where a pair moved on.
            assert length.units >= (length.segments - 1) * (length.per_segment - 1) + 1
            assert length.per_segment == {"GSM-7": 153, "UCS-2": 67}[length.encoding]
        else:
            assert length.per_segment == {"GSM-7": 160, "UCS-2": 70}[length.encoding]
            assert length.remaining_in_segment == length.per_segment - length.units


class TestNormalise:
    @pytest.mark.parametrize(
        ("typed", "sent"),
        [
            ("Hello\u00a0Sam", "Hello Sam"),
            ("9\u202fam", "9 am"),
            ("\u2018Hi\u2019 \u201aok\u201b", "'Hi' 'ok'"),
            ("\u201cBook\u201d \u201enow\u201d", '"Book" "now"'),
            ("9\u201310, Mon\u2014Fri, \u22122", "9-10, Mon-Fri, -2"),
            ("Wait\u2026", "Wait..."),
            ("\u2022 Bring a list", "- Bring a list"),
            ("Zero\u200bwidth\u2060 joiner\ufeff", "Zerowidth joiner"),
            ("line one\r\nline two", "line one\nline two"),
            ("it\u2019s 9\u201310am \u2026", "it's 9-10am ..."),
        ],
    )
    def test_look_alikes_that_would_force_unicode_become_gsm_7_characters(self, typed, sent):
        assert sms_normalise(typed) == sent
        assert sms_length(sent).encoding == "GSM-7"

    @pytest.mark.parametrize(
        "text",
        [
            "Dydd Llun: ŵ ŷ",
            "Zażółć gęślą jaźń",
            "预约 😀",
            "Family: 👨\u200d👩\u200d👧",  # the joiners hold the emoji together
            "naïve café",
        ],
    )
    def test_genuine_non_gsm_text_is_left_alone(self, text):
        assert sms_normalise(text) == text

    def test_a_curly_quote_no_longer_halves_the_room(self):
        text = "Your appointment at Riverside Surgery is ready to book \u2013 it\u2019s quick. " * 2
        assert sms_length(text).segments == 3
        assert sms_length(sms_normalise(text)).segments == 1

    def test_an_ellipsis_stays_when_the_text_is_unicode_anyway(self):
        assert sms_normalise("Wait\u2026 \U0001f600") == "Wait\u2026 \U0001f600"

    def test_ellipses_stay_when_three_dots_each_would_take_more_messages(self):
        text = "\u2026" * 70  # 1 UCS-2 message; as "..." it would be 210 septets, 2 messages
        assert sms_normalise(text) == text

    @given(any_texts)
    def test_normalising_twice_changes_nothing_more(self, text):
        once = sms_normalise(text)
        assert sms_normalise(once) == once

    @given(any_texts)
    def test_normalising_never_takes_more_messages(self, text):
        assert sms_length(sms_normalise(text)).segments <= sms_length(text).segments

    @given(any_texts)
    def test_normalised_text_has_no_windows_line_ends(self, text):
        assert "\r\n" not in sms_normalise(text)
