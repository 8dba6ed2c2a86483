"""England and Wales bank holidays, from the copy bundled with govuk-bank-holidays.

No network at run time: the package ships GOV.UK's file, and a newer package release brings
newer years. Dates past the bundled data are treated as ordinary days; `known_until()` lets
callers warn about that.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from govuk_bank_holidays.bank_holidays import BankHolidays


@lru_cache(maxsize=1)
def _england_and_wales() -> frozenset[date]:
    holidays = BankHolidays(use_cached_holidays=True)
    return frozenset(h["date"] for h in holidays.get_holidays(division=BankHolidays.ENGLAND_AND_WALES))


def is_bank_holiday(day: date) -> bool:
    return day in _england_and_wales()


def known_until() -> date:
    """The last date the bundled data covers (the end of its last year)."""
    return date(max(_england_and_wales()).year, 12, 31)
