"""NHS numbers: the modulus 11 check, in Python and in SQL, and how people may type them."""

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
