"""Phone numbers: stored in E.164, refused with an example, and texts only to UK mobiles."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from booking.phones import format_phone_number_for_display, is_uk_mobile, normalise_phone_number


class TestPhones:
    @pytest.mark.parametrize(
        ("typed", "stored"),
        [
            ("07400 123456", "+447400123456"),
            ("+44 7400 123456", "+447400123456"),
            ("0044 7400 123456", "+447400123456"),
            ("0113 496 0100", "+441134960100"),
        ],
    )
    def test_numbers_are_stored_in_e164(self, typed, stored):
        assert normalise_phone_number(typed) == stored

    @pytest.mark.parametrize("typed", ["", "12345", "07400", "not a number", "+44 7400 1234567890"])
    def test_invalid_numbers_are_refused_with_an_example(self, typed):
        with pytest.raises(ValidationError, match="07700 900982"):
            normalise_phone_number(typed)

    @pytest.mark.parametrize(
        ("number", "mobile"),
        [
            ("+447400123456", True),  # GB mobile
            ("+447797123456", True),  # Jersey
            ("+447781123456", True),  # Guernsey
            ("+447624123456", True),  # Isle of Man
            ("+441134960100", False),  # landline: some carriers read texts aloud
            ("+447011123456", False),  # 070 personal number
            ("+447600123456", False),  # 076 pager
            ("+33612345678", False),  # a French mobile
            ("garbage", False),
        ],
    )
    def test_only_uk_mobiles_can_receive_sms(self, number, mobile):
        assert is_uk_mobile(number) is mobile

    def test_uk_numbers_display_in_national_format(self):
        assert format_phone_number_for_display("+447400123456") == "07400 123456"
        assert format_phone_number_for_display("") == ""
