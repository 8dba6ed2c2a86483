"""The attendance report: its numbers on a hand-built data set (the clock changes included), its
date range, who may see it, its CSV, and a constant number of queries."""

from __future__ import annotations

import csv
import html
import io
from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.http import HttpResponse
from django.utils import timezone

from booking.formats import LONDON
from booking.models import Appointment, Slot
from booking.spreadsheets import spreadsheet_cell
from messaging.models import Message, Reminder
from messaging.reports import AttendanceReport, attendance_report
from tests.factories import PractitionerFactory
from tests.scenarios import Practice, book_at

pytestmark = pytest.mark.django_db

NOW = datetime(2027, 4, 1, 12, 0, tzinfo=LONDON)
FIRST, LAST = date(2026, 10, 1), date(2027, 4, 2)


def london(text: str) -> datetime:
    """A London wall-clock time, as the practice reads it: "2026-10-25 00:30"."""
    return datetime.fromisoformat(text).replace(tzinfo=LONDON)


def appointment(
    practice: Practice,
    start: str,
    booked: str,
    *,
    link: bool = False,
    outcome: str = "",
    cancelled: str = "",
    reminder: str = "",
) -> Appointment:
    made = book_at(practice, london(start), booked_at=london(booked), through_link=link)
    if outcome:
        Appointment.objects.filter(pk=made.pk).update(outcome=outcome, outcome_recorded_at=london(start))
    if cancelled:
        Appointment.objects.filter(pk=made.pk).update(
            status="cancelled", cancelled_at=london(booked), cancellation_source=cancelled, cancellation_reason="other"
        )
    if reminder:
        message = Message.objects.create(
            organisation=practice.organisation,
            patient=made.patient,
            channel="sms",
            to_address=made.patient.mobile,
            template_body="Reminder",
            body="Reminder",
            status=reminder,
        )
        Reminder.objects.create(appointment=made, kind="1d", due_at=london(start), message=message)
    return made


def hand_built(practice: Practice, other_practice: Practice) -> None:
    # 1 to 2 London days ahead, though 9.5 hours: booked late on the Saturday the clocks go back.
    appointment(practice, "2026-10-25 09:00", "2026-10-24 23:30", link=True, outcome="attended", reminder="delivered")
    # 1 day ahead in London, the same day in UTC (both 24 October there).
    appointment(practice, "2026-10-25 00:30", "2026-10-24 23:50", outcome="did_not_attend", reminder="delivered")
    # 15 London days, though 14 days 23 hours 15 minutes, and 14 UTC days: across the spring change.
    appointment(practice, "2027-03-30 00:30", "2027-03-15 00:15", link=True, outcome="did_not_attend")
    # The same day the clocks go forward, booked before the change; its reminder failed.
    appointment(practice, "2027-03-28 15:00", "2027-03-28 00:30", outcome="attended", reminder="failed")
    appointment(practice, "2026-11-10 10:00", "2026-11-05 10:00", link=True, cancelled="patient")
    appointment(practice, "2026-11-11 10:00", "2026-11-01 10:00", cancelled="practice")
    appointment(practice, "2026-11-12 10:00", "2026-11-10 10:00", link=True, cancelled="changed")
    appointment(practice, "2026-12-01 10:00", "2026-11-20 10:00")  # its time has passed: not recorded
    appointment(practice, "2026-10-01 00:30", "2026-09-20 10:00", outcome="attended")  # the first London day
    appointment(practice, "2027-04-02 09:00", "2027-03-31 09:00")  # to come
    # Not counted: the last London minutes of 30 September, and another practice's.
    appointment(practice, "2026-09-30 23:30", "2026-09-20 10:00", outcome="attended")
    appointment(other_practice, "2026-11-02 10:00", "2026-11-01 10:00", outcome="did_not_attend")


def figures(report: AttendanceReport) -> dict[str, list[int]]:
    return {tally.label: tally.counts() for _, tallies in report.sections() for tally in tallies}


def rates(report: AttendanceReport) -> dict[str, str]:
    return {tally.label: tally.rate_text for _, tallies in report.sections() for tally in tallies}


def test_the_reports_numbers_on_a_hand_built_data_set(practice, other_practice):
    hand_built(practice, other_practice)
    report = attendance_report(organisation_ids=[practice.organisation.pk], first_day=FIRST, last_day=LAST, now=NOW)
    # booked, attended, did not attend, not recorded, to come, cancelled by patient, by practice, changed
    assert figures(report) == {
        "Through a link": [4, 1, 1, 0, 0, 1, 0, 1],
        "By staff": [6, 2, 1, 1, 1, 0, 1, 0],
        "All appointments": [10, 3, 2, 1, 1, 1, 1, 1],
        "Same day": [1, 1, 0, 0, 0, 0, 0, 0],
        "1 to 2 days": [4, 1, 1, 0, 1, 0, 0, 1],
        "3 to 7 days": [1, 0, 0, 0, 0, 1, 0, 0],
        "8 to 14 days": [3, 1, 0, 1, 0, 0, 1, 0],
        "15 days or more": [1, 0, 1, 0, 0, 0, 0, 0],
        "Reminder delivered": [2, 1, 1, 0, 0, 0, 0, 0],
        "No reminder delivered": [8, 2, 1, 1, 1, 1, 1, 1],
    }
    assert rates(report) == {
        "Through a link": "50.0%",
        "By staff": "33.3%",
        "All appointments": "40.0%",
        "Same day": "0.0%",
        "1 to 2 days": "50.0%",
        "3 to 7 days": "No outcomes recorded",
        "8 to 14 days": "0.0%",
        "15 days or more": "100.0%",
        "Reminder delivered": "50.0%",
        "No reminder delivered": "33.3%",
    }


def test_the_other_practice_sees_only_its_own(practice, other_practice):
    hand_built(practice, other_practice)
    report = attendance_report(
        organisation_ids=[other_practice.organisation.pk], first_day=FIRST, last_day=LAST, now=NOW
    )
    assert report.total.counts() == [1, 0, 1, 0, 0, 0, 0, 0]


# --- The page ----------------------------------------------------------------------------------


def text(response: HttpResponse) -> str:
    return html.unescape(response.content.decode())


def test_the_page_shows_the_figures_the_chart_and_the_csv_link(manager_client, practice, other_practice):
    hand_built(practice, other_practice)
    with time_machine.travel(NOW, tick=False):
        manager_client.force_login(practice.user)
        response = manager_client.get("/reports/attendance/", {"start": "2026-10-01", "end": "2027-04-02"})
    assert response.status_code == 200
    page = text(response)
    assert "Thursday 1 October 2026 to Friday 2 April 2027" in page
    assert "15 days or more:" in page
    assert "100.0% (1 of 1)" in page  # the bar's value in words beside it
    assert "app-bar--100" in page  # scaled to the longest bar
    assert "app-bar--50" in page
    assert "3 to 7 days:" in page
    assert "no outcomes recorded" in page
    assert "/reports/attendance.csv?start=2026-10-01&end=2027-04-02" in page


def test_the_default_is_the_last_four_weeks(manager_client, practice):
    # Half past midnight in London: still 29 November in UTC.
    with time_machine.travel(datetime(2026, 11, 30, 0, 30, tzinfo=LONDON), tick=False):
        manager_client.force_login(practice.user)
        page = text(manager_client.get("/reports/attendance/"))
    assert "Tuesday 3 November 2026 to Monday 30 November 2026" in page
    assert 'value="2026-11-03"' in page
    assert 'value="2026-11-30"' in page


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"start": "2026-13-01"}, "Enter the first day as a date like 2026-11-02."),
        ({"end": "yesterday"}, "Enter the last day as a date like 2026-11-02."),
        ({"start": "2026-11-10", "end": "2026-11-09"}, "The last day must be the same as or after the first day."),
        ({"start": "2025-01-01", "end": "2026-11-09"}, "Choose a range of 366 days or fewer."),
    ],
)
def test_bad_dates_get_a_clear_message_and_a_400(manager_client, query, message):
    for path in ("/reports/attendance/", "/reports/attendance.csv"):
        response = manager_client.get(path, query)
        assert response.status_code == 400
        page = text(response)
        assert "There is a problem" in page
        assert message in page


def test_the_report_is_for_managers(staff_client):
    assert staff_client.get("/reports/attendance/").status_code == 403
    assert staff_client.get("/reports/attendance.csv").status_code == 403
    assert "Attendance report" not in text(staff_client.get("/"))


def test_managers_find_it_from_the_home_page(manager_client):
    assert '<a href="/reports/attendance/">Attendance report</a>' in text(manager_client.get("/"))


def test_it_is_read_only(manager_client):
    assert manager_client.post("/reports/attendance/").status_code == 405


# --- The CSV -------------------------------------------------------------------------------------


def test_the_csv_has_the_same_figures(manager_client, practice, other_practice):
    hand_built(practice, other_practice)
    with time_machine.travel(NOW, tick=False):
        manager_client.force_login(practice.user)
        response = manager_client.get("/reports/attendance.csv", {"start": "2026-10-01", "end": "2027-04-02"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="attendance-2026-10-01-to-2027-04-02.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[:3] == [["Attendance report", "Riverside Practice"], ["From", "1 October 2026"], ["To", "2 April 2027"]]
    assert rows[4][:4] == ["Grouped by", "Group", "Appointments", "Attended"]
    assert ["Booked ahead", "15 days or more", "1", "0", "1", "0", "0", "0", "0", "0", "100.0"] in rows
    assert ["Reminder", "Reminder delivered", "2", "1", "1", "0", "0", "0", "0", "0", "50.0"] in rows
    assert ["Booked ahead", "3 to 7 days", "1", "0", "0", "0", "0", "1", "0", "0", ""] in rows


def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(manager_client, practice):
    practice.organisation.name = "=HYPERLINK(evil) Practice"
    practice.organisation.save()
    rows = list(csv.reader(io.StringIO(manager_client.get("/reports/attendance.csv").content.decode())))
    assert rows[0] == ["Attendance report", "'=HYPERLINK(evil) Practice"]


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+44 7700", "'+44 7700"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Riverside", "Riverside"),
        ("a=1", "a=1"),
        (12, "12"),
        ("", ""),
        (None, ""),
    ],
)
def test_spreadsheet_cell(value, cell):
    assert spreadsheet_cell(value) == cell


# --- Queries -------------------------------------------------------------------------------------


def grow(practice: Practice, count: int) -> None:
    """`count` more appointments in the last four weeks, half of them with a delivered reminder."""
    start = timezone.now().replace(second=0, microsecond=0)
    practitioner = PractitionerFactory(organisation=practice.organisation)
    slots = Slot.objects.bulk_create(
        Slot(
            practitioner=practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start - timedelta(minutes=10 * (i + 10)),
            end=start - timedelta(minutes=10 * (i + 10) - 10),
            status="booked",
        )
        for i in range(count)
    )
    appointments = Appointment.objects.bulk_create(
        Appointment(slot=slot, patient=practice.patient, booked_at=slot.start - timedelta(minutes=60 * 24 * (i % 20)))
        for i, slot in enumerate(slots)
    )
    messages = Message.objects.bulk_create(
        Message(
            organisation=practice.organisation,
            patient=practice.patient,
            channel="sms",
            to_address=practice.patient.mobile,
            template_body="Reminder",
            body="Reminder",
            status="delivered",
        )
        for _ in appointments[::2]
    )
    Reminder.objects.bulk_create(
        Reminder(appointment=made, kind="1d", due_at=made.slot.start, message=message)
        for made, message in zip(appointments[::2], messages, strict=True)
    )


def test_the_page_and_the_csv_make_five_queries_whatever_the_data(
    manager_client, practice, django_assert_max_num_queries
):
    # The session, the user, their memberships, the organisations' names, one aggregate.
    def count(path: str) -> int:
        with django_assert_max_num_queries(5) as captured:
            assert manager_client.get(path).status_code == 200
        return len(captured.captured_queries)

    grow(practice, 5)
    small = (count("/reports/attendance/"), count("/reports/attendance.csv"))
    grow(practice, 300)
    large = (count("/reports/attendance/"), count("/reports/attendance.csv"))
    assert small == large
