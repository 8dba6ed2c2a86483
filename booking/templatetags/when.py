"""`{% load when %}`: booking/formats.py's wording of dates and times, for templates.

    {{ slot.start|time_of_day }}            2:15pm
    {{ slot.start|day_label }}              Monday 30 November (the year when not this year)
    {{ slot.start|day_label:"with year" }}  Monday 30 November 2026
    {{ event.created_at|date_and_time }}    Monday 30 November 2026 at 2:15pm
    {{ event.created_at|date_and_time:"seconds" }}   ... at 2:15:07pm
    {{ patient.date_of_birth|day_month_year }}       17 May 1980

An empty value (no date yet) reads as nothing, like Django's own `date` filter.
"""

from __future__ import annotations

from datetime import date, datetime, time

from django import template

from booking import formats

register = template.Library()


def _option(given: str, allowed: str, filter_name: str) -> bool:
    # A misspelt option would otherwise be ignored without a word.
    if given not in ("", allowed):
        raise template.TemplateSyntaxError(f'{filter_name} takes no option or "{allowed}", not "{given}".')
    return given == allowed


@register.filter
def time_of_day(value: datetime | time | None) -> str:
    return formats.time_of_day(value) if value else ""


@register.filter
def day_label(value: date | datetime | None, option: str = "") -> str:
    with_year = _option(option, "with year", "day_label")
    return formats.day_label(value, with_year=with_year) if value else ""


@register.filter
def day_month_year(value: date | datetime | None) -> str:
    return formats.day_month_year(value) if value else ""


@register.filter
def date_and_time(value: datetime | None, option: str = "") -> str:
    seconds = _option(option, "seconds", "date_and_time")
    return formats.date_and_time(value, seconds=seconds) if value else ""
