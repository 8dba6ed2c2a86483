"""Reports for managers: attendance, on the page (a chart and tables) and as a CSV download."""

from __future__ import annotations

import io
from datetime import date, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from booking.access import MANAGING_ROLES, organisation_ids_for
from booking.formats import day_month_year, today_in_london
from booking.models import Organisation
from booking.spreadsheets import spreadsheet_rows_write
from messaging.reports import COUNTS, AttendanceReport, Tally, attendance_report

DEFAULT_DAYS = 28  # the last four weeks, today included
MAXIMUM_DAYS = 366
DATE_FORMAT_HELP = "a date like 2026-11-02"


class ReportPeriodForm(forms.Form):
    """The report's date range, from the query string; either end may be left out."""

    start = forms.DateField(
        label="From",
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": f"Enter the first day as {DATE_FORMAT_HELP}."},
    )
    end = forms.DateField(
        label="To",
        required=False,
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": f"Enter the last day as {DATE_FORMAT_HELP}."},
    )

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        end: date = cleaned.get("end") or today_in_london()
        start: date = cleaned.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        if end < start:
            self.add_error("end", "The last day must be the same as or after the first day.")
        elif (end - start).days >= MAXIMUM_DAYS:
            self.add_error("end", f"Choose a range of {MAXIMUM_DAYS} days or fewer.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned


def _report_for(request: HttpRequest) -> tuple[ReportPeriodForm, AttendanceReport | None, list[str]]:
    organisation_ids = organisation_ids_for(request.user, roles=MANAGING_ROLES)
    if not organisation_ids:
        raise PermissionDenied("The attendance report is for managers.")
    form = ReportPeriodForm(request.GET)
    if not form.is_valid():
        return form, None, []
    names = list(Organisation.objects.filter(pk__in=organisation_ids).order_by("name").values_list("name", flat=True))
    report = attendance_report(
        organisation_ids=organisation_ids, first_day=form.cleaned_data["start"], last_day=form.cleaned_data["end"]
    )
    return form, report, names


@never_cache
@login_required
@require_GET
def attendance(request: HttpRequest) -> HttpResponse:
    """The attendance report for the manager's organisations over a date range (the last 4 weeks
    unless chosen), with its charts and tables; a bad date is a 400 with the form's message."""
    form, report, names = _report_for(request)
    return render(
        request,
        "messaging/report.html",
        {
            "form": form,
            "report": report,
            "organisations": names,
            "columns": [label for _, label in COUNTS],
            "charts": _charts(report) if report else [],
        },
        status=200 if report else 400,
    )


@never_cache
@login_required
@require_GET
def attendance_csv(request: HttpRequest) -> HttpResponse:
    """The same report as a CSV file; every cell is safe to open in a spreadsheet."""
    form, report, names = _report_for(request)
    if report is None:
        return render(
            request,
            "messaging/report.html",
            {"form": form, "report": None, "organisations": [], "columns": [], "charts": []},
            status=400,
        )
    out = io.StringIO()
    spreadsheet_rows_write(out=out, rows=_csv_rows(report, names))
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="attendance-{report.first_day:%Y-%m-%d}-to-{report.last_day:%Y-%m-%d}.csv"'
    )
    return response


def _csv_rows(report: AttendanceReport, names: list[str]) -> list[list[object]]:
    rows: list[list[object]] = [
        ["Attendance report", "; ".join(names)],
        ["From", day_month_year(report.first_day)],
        ["To", day_month_year(report.last_day)],
        [],
        ["Grouped by", "Group", *(label for _, label in COUNTS), "Did not attend rate (%)"],
    ]
    for section, tallies in report.sections():
        for tally in tallies:
            rate = tally.did_not_attend_rate
            rows.append([section, tally.label, *tally.counts(), "" if rate is None else f"{rate:.1f}"])
    return rows


class Bar:
    """One bar of a chart: its label, its value in words, and its length (0-100, for the CSS class)."""

    def __init__(self, tally: Tally, *, longest: float) -> None:
        self.label = tally.label
        rate = tally.did_not_attend_rate
        self.width = round(100 * rate / longest) if rate and longest else 0
        self.value = (
            "no outcomes recorded" if rate is None else f"{rate:.1f}% ({tally.did_not_attend} of {tally.with_outcome})"
        )


def _charts(report: AttendanceReport) -> list[tuple[str, list[Bar]]]:
    """The did-not-attend rate by lead time and by reminder, each chart scaled to its longest bar."""
    charts = []
    for title, tallies in (
        ("Did not attend, by how far ahead it was booked", report.by_lead_time),
        ("Did not attend, by whether a reminder was delivered", report.by_reminder),
    ):
        longest = max((tally.did_not_attend_rate or 0 for tally in tallies), default=0)
        charts.append((title, [Bar(tally, longest=longest) for tally in tallies]))
    return charts
