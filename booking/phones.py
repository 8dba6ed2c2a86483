"""Phone numbers: parsed with phonenumbers, stored in E.164 (+447700900123).

`normalise_phone_number` is the one way a number from outside (a form, the admin, a
provider's webhook) becomes the stored form; the database's check constraints hold the shape.
"""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError

E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"

# Texts to landlines are read aloud as voice calls by some UK carriers, link included, so SMS
# goes only to mobiles on the UK's numbering plan: Great Britain and the Crown Dependencies.
UK_MOBILE_REGIONS = frozenset({"GB", "JE", "GG", "IM"})


def normalise_phone_number(value: str) -> str:
    """Return `value` in E.164, reading national numbers as UK ones; raise ValidationError."""
    try:
        number = phonenumbers.parse(value, "GB")
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ValidationError(
            "Enter a valid phone number, like 07700 900982 or +44 7700 900982.",
            code="invalid_phone_number",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_uk_mobile(e164: str) -> bool:
    """True for a mobile number in GB, Jersey, Guernsey or the Isle of Man.

    phonenumbers types 070 personal numbers and 076 pagers as PERSONAL_NUMBER and PAGER, not
    MOBILE, so they are refused here too.
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return False
    return (
        phonenumbers.is_valid_number(number)
        and phonenumbers.region_code_for_number(number) in UK_MOBILE_REGIONS
        and phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
    )


def format_phone_number_for_display(e164: str) -> str:
    """07700 900982 for UK numbers, +33 6 12 34 56 78 for others."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if phonenumbers.region_code_for_number(number) in UK_MOBILE_REGIONS | {"GB"}:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
