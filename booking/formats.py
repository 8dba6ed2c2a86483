"""How dates and times read to patients and staff: one wording, in London time, everywhere.

GOV.UK style (https://www.gov.uk/guidance/style-guide/a-to-z#times): "9am", "2:15pm",
"midday", "midnight"; "Monday 30 November", with the year when it isn't this year; a moment
as "Monday 30 November 2026 at 2:15pm". Pages, texts, emails and staff pages all use these,
through the template filters in booking/templatetags/when.py (`{% load when %}`).

Every aware moment is shown in the practice's wall-clock time, Europe/London, whatever the
server's zone, so the hour is right on both sides of the clocks changing.
"""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from django.utils import timezone

LONDON = ZoneInfo("Europe/London")


def london_time(moment: datetime) -> datetime:
    """An aware moment as London wall-clock time (GMT or BST, whichever was in force then)."""
    return timezone.localtime(moment, LONDON)


def _london_date(value: date | datetime) -> date:
    return london_time(value).date() if isinstance(value, datetime) else value


def today_in_london() -> date:
    return timezone.localdate(timezone.now(), LONDON)


def time_of_day(value: datetime | time, *, seconds: bool = False) -> str:
    """9am, 9:30am, midday, 2:15pm, midnight; with seconds (2:15:07pm) for records like the audit trail.

    An aware datetime is read in London time; a `time` is taken as a London wall-clock time.
    """
    local = london_time(value) if isinstance(value, datetime) else value
    if seconds:
        hour = local.hour % 12 or 12
        return f"{hour}:{local.minute:02d}:{local.second:02d}{'am' if local.hour < 12 else 'pm'}"
    if local.minute == 0 and local.hour == 12:
        return "midday"
    if local.minute == 0 and local.hour == 0:
        return "midnight"
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{hour}{suffix}" if local.minute == 0 else f"{hour}:{local.minute:02d}{suffix}"


def day_label(value: date | datetime, *, today: date | None = None, with_year: bool = False) -> str:
    """Tuesday 1 December, with the year when it isn't this year (London's, unless `today` says).

    `with_year` always adds it: for what a person keeps, like the booked page.
    """
    day = _london_date(value)
    label = f"{day:%A} {day.day} {day:%B}"
    if not with_year and day.year == (today or today_in_london()).year:
        return label
    return f"{label} {day.year}"


def day_month_year(value: date | datetime) -> str:
    """1 December 2026: a date on its own, like a date of birth."""
    day = _london_date(value)
    return f"{day.day} {day:%B} {day.year}"


def date_and_time(moment: datetime, *, seconds: bool = False) -> str:
    """Tuesday 1 December 2026 at 2:15pm: a full moment, always with its year (records outlive the year)."""
    local = london_time(moment)
    return f"{day_label(local, with_year=True)} at {time_of_day(local, seconds=seconds)}"
