"""NHS numbers, phone numbers and short references."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Value
from django.db.models.sql import Query
from hypothesis import given
from hypothesis import strategies as st

from booking.nhs_numbers import (
    NhsNumberIsValid,
    is_valid_nhs_number,
    nhs_number_check_digit,
    normalise_nhs_number,
    validate_nhs_number,
)
from booking.phones import format_phone_number_for_display, is_uk_mobile, normalise_phone_number
from booking.references import decode_reference, encode_reference

nine_digits = st.text(alphabet="0123456789", min_size=9, max_size=9)


class TestNhsNumbers:
    @pytest.mark.parametrize("number", ["9434765919", "4010232137", "9990000018"])
    def test_known_valid_numbers_pass(self, number):
        assert is_valid_nhs_number(number)

    @pytest.mark.parametrize("number", ["9434765918", "943476591", "94347659190", "943476591A", "", "0000000001"])
    def test_invalid_numbers_fail(self, number):
        assert not is_valid_nhs_number(number)

    @given(nine_digits)
    def test_a_computed_check_digit_makes_a_valid_number(self, first_nine):
        check = nhs_number_check_digit(first_nine)
        if check is None:
            assert not any(is_valid_nhs_number(first_nine + str(digit)) for digit in range(10))
        else:
            assert is_valid_nhs_number(first_nine + str(check))

    @given(nine_digits, st.integers(min_value=0, max_value=9), st.integers(min_value=1, max_value=9))
    def test_changing_any_one_digit_breaks_the_check(self, first_nine, position, change):
        check = nhs_number_check_digit(first_nine)
        if check is None:
            return
        number = list(first_nine + str(check))
        number[position] = str((int(number[position]) + change) % 10)
        assert not is_valid_nhs_number("".join(number))

    def test_people_can_type_spaces_and_dashes(self):
        assert normalise_nhs_number(" 943 476-5919 ") == "9434765919"

    def test_the_validator_explains_the_format(self):
        with pytest.raises(ValidationError, match="10 digits"):
            validate_nhs_number("12345")

    @pytest.mark.django_db
    @given(st.text(alphabet="0123456789", min_size=10, max_size=10))
    def test_the_database_and_python_agree(self, number):
        query = Query(None)
        expression = NhsNumberIsValid(Value(number)).resolve_expression(query)
        sql, params = expression.as_sql(query.get_compiler(connection=connection), connection)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {sql}", params)
            (valid_in_database,) = cursor.fetchone()
        assert valid_in_database == is_valid_nhs_number(number)


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


class TestReferences:
    @given(st.integers(min_value=1, max_value=2**62))
    def test_references_round_trip(self, pk):
        reference = encode_reference(pk, namespace="appointment")
        assert decode_reference(reference, namespace="appointment") == pk
        assert decode_reference(reference.lower(), namespace="appointment") == pk

    def test_references_are_short_and_avoid_confusable_characters(self):
        references = [encode_reference(pk) for pk in range(1, 2000)]
        assert all(6 <= len(reference) <= 8 for reference in references)
        assert not set("".join(references)) & set("01OIL")
        assert len(set(references)) == len(references)

    def test_kinds_of_object_get_different_references(self):
        assert encode_reference(42, namespace="appointment") != encode_reference(42, namespace="link")

    @given(st.text(max_size=40))
    def test_anything_else_decodes_to_nothing_or_a_canonical_id(self, text):
        pk = decode_reference(text)
        if pk is not None:
            assert encode_reference(pk) == text.strip().upper().replace(" ", "").replace("-", "")
