"""NHS numbers: ten digits whose last is a modulus 11 check digit.

The same rule is enforced twice: in Python for friendly form errors, and in the database
(`NhsNumberIsValid`, used by a check constraint) so that no code path can store a bad one.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import BooleanField, Func
from django.db.models.sql.compiler import SQLCompiler

_TEN_DIGITS = re.compile(r"^[0-9]{10}$")
_WEIGHTS = range(10, 1, -1)  # the first nine digits are weighted 10, 9, ... 2


def nhs_number_check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no check digit can make them valid."""
    total = sum(int(digit) * weight for digit, weight in zip(first_nine, _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def is_valid_nhs_number(value: str) -> bool:
    if not _TEN_DIGITS.match(value):
        return False
    return nhs_number_check_digit(value[:9]) == int(value[9])


def normalise_nhs_number(value: str) -> str:
    """Strip the spaces and dashes people type ("943 476 5919")."""
    return re.sub(r"[\s-]", "", value or "")


def validate_nhs_number(value: str) -> None:
    if not is_valid_nhs_number(normalise_nhs_number(value)):
        raise ValidationError(
            "Enter a valid NHS number: 10 digits, like 943 476 5919.",
            code="invalid_nhs_number",
        )


class NhsNumberIsValid(Func):
    """SQL: true when the expression is ten digits with a correct modulus 11 check digit.

    CASE guards the casts: PostgreSQL does not promise to evaluate AND left to right, and
    casting a letter to integer would raise instead of failing the check.
    """

    output_field = BooleanField()

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> tuple[str, tuple[str | int, ...]]:
        # Func's own arguments (function, template, arg_joiner) are named only to keep its
        # signature: this SQL is written out whole and uses none of them.
        value_sql, params = compiler.compile(self.source_expressions[0])
        weighted = " + ".join(
            f"substr({value_sql}, {position}, 1)::int * {weight}" for position, weight in enumerate(_WEIGHTS, start=1)
        )
        sql = (
            f"(CASE WHEN {value_sql} ~ '^[0-9]{{10}}$' "
            f"THEN (11 - ({weighted}) %% 11) %% 11 = substr({value_sql}, 10, 1)::int "
            f"ELSE false END)"
        )
        # %% because Django formats the SQL with its parameters.
        # The value appears 11 times in the SQL: once in the pattern test, ten in the sum.
        return sql, tuple(params) * 11
