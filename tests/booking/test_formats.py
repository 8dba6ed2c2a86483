"""How dates and times read to people: booking/formats.py and its template filters ({% load when %})."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest
import time_machine
from django.template import Context, Template, TemplateSyntaxError

from booking.formats import date_and_time, day_label, day_month_year, time_of_day


class TestTimeOfDay:
    @pytest.mark.parametrize(
        ("moment", "reads"),
        [
            (datetime(2026, 1, 12, 9, 0, tzinfo=UTC), "9am"),
            (datetime(2026, 1, 12, 9, 30, tzinfo=UTC), "9:30am"),
            (datetime(2026, 1, 12, 12, 0, tzinfo=UTC), "midday"),
            (datetime(2026, 1, 12, 12, 5, tzinfo=UTC), "12:05pm"),
            (datetime(2026, 1, 12, 14, 15, tzinfo=UTC), "2:15pm"),
            (datetime(2026, 1, 12, 0, 0, tzinfo=UTC), "midnight"),
            (datetime(2026, 1, 12, 0, 30, tzinfo=UTC), "12:30am"),
        ],
    )
    def test_a_time_reads_the_govuk_way(self, moment, reads):
        assert time_of_day(moment) == reads

    def test_a_summer_time_reads_in_british_summer_time(self):
        assert time_of_day(datetime(2026, 6, 3, 13, 15, tzinfo=UTC)) == "2:15pm"

    def test_the_hours_either_side_of_the_clocks_changing_read_in_london_time(self):
        # 29 March 2026: 01:00 GMT becomes 02:00 BST. 25 October 2026: 02:00 BST becomes 01:00 GMT.
        assert time_of_day(datetime(2026, 3, 29, 0, 30, tzinfo=UTC)) == "12:30am"
        assert time_of_day(datetime(2026, 3, 29, 1, 30, tzinfo=UTC)) == "2:30am"
        assert time_of_day(datetime(2026, 10, 25, 0, 30, tzinfo=UTC)) == "1:30am"
        assert time_of_day(datetime(2026, 10, 25, 1, 30, tzinfo=UTC)) == "1:30am"

    def test_a_wall_clock_time_reads_the_same_way(self):
        assert time_of_day(time(9, 0)) == "9am"
        assert time_of_day(time(17, 45)) == "5:45pm"

    def test_with_seconds_a_record_keeps_them(self):
        assert time_of_day(datetime(2026, 1, 12, 14, 15, 7, tzinfo=UTC), seconds=True) == "2:15:07pm"
        assert time_of_day(datetime(2026, 1, 12, 12, 0, 0, tzinfo=UTC), seconds=True) == "12:00:00pm"


class TestDays:
    def test_a_day_this_year_reads_without_its_year(self):
        assert day_label(date(2026, 11, 30), today=date(2026, 6, 1)) == "Monday 30 November"

    def test_a_day_in_another_year_reads_with_it(self):
        assert day_label(date(2027, 1, 4), today=date(2026, 12, 30)) == "Monday 4 January 2027"

    def test_with_year_always_has_it(self):
        assert day_label(date(2026, 11, 30), today=date(2026, 6, 1), with_year=True) == "Monday 30 November 2026"

    def test_a_moment_is_on_its_london_day(self):
        # 23:30 UTC on a summer evening is 00:30 the next morning in London.
        assert day_label(datetime(2026, 6, 10, 23, 30, tzinfo=UTC), today=date(2026, 6, 1)) == "Thursday 11 June"

    def test_this_year_is_the_current_one_by_default(self):
        with time_machine.travel(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False):
            assert day_label(date(2026, 11, 30)) == "Monday 30 November"
            assert day_label(date(2027, 1, 4)) == "Monday 4 January 2027"

    def test_a_date_on_its_own_reads_day_month_year(self):
        assert day_month_year(date(1980, 5, 17)) == "17 May 1980"
        assert day_month_year(datetime(2026, 6, 10, 23, 30, tzinfo=UTC)) == "11 June 2026"


class TestDateAndTime:
    def test_a_moment_reads_in_full_with_its_year(self):
        assert date_and_time(datetime(2026, 11, 30, 14, 15, tzinfo=UTC)) == "Monday 30 November 2026 at 2:15pm"

    def test_a_summer_moment_reads_in_british_summer_time(self):
        assert date_and_time(datetime(2030, 6, 3, 13, 15, tzinfo=UTC)) == "Monday 3 June 2030 at 2:15pm"

    def test_with_seconds_for_records(self):
        moment = datetime(2026, 11, 30, 9, 0, 5, tzinfo=UTC)
        assert date_and_time(moment, seconds=True) == "Monday 30 November 2026 at 9:00:05am"

    def test_a_naive_datetime_is_refused(self):
        with pytest.raises(ValueError, match="naive"):
            date_and_time(datetime(2026, 11, 30, 14, 15))


def render(source: str, **context) -> str:
    return Template("{% load when %}" + source).render(Context(context))


class TestTemplateFilters:
    moment = datetime(2026, 11, 30, 14, 15, 7, tzinfo=UTC)

    def test_the_filters_read_as_the_functions_do(self):
        with time_machine.travel(datetime(2026, 6, 1, tzinfo=UTC), tick=False):
            assert render("{{ m|time_of_day }}", m=self.moment) == "2:15pm"
            assert render("{{ m|day_label }}", m=self.moment) == "Monday 30 November"
            assert render('{{ m|day_label:"with year" }}', m=self.moment) == "Monday 30 November 2026"
            assert render("{{ m|date_and_time }}", m=self.moment) == "Monday 30 November 2026 at 2:15pm"
            assert render('{{ m|date_and_time:"seconds" }}', m=self.moment) == "Monday 30 November 2026 at 2:15:07pm"
            assert render("{{ d|day_month_year }}", d=date(1980, 5, 17)) == "17 May 1980"

    @pytest.mark.parametrize("source", ["{{ m|time_of_day }}", "{{ m|day_label }}", "{{ m|date_and_time }}"])
    def test_an_empty_value_reads_as_nothing(self, source):
        assert render(source, m=None) == ""

    def test_a_misspelt_option_is_an_error_not_ignored(self):
        with pytest.raises(TemplateSyntaxError, match="with year"):
            render('{{ m|day_label:"year" }}', m=self.moment)
