"""Staff record attendance by keyboard, and a manager reads the attendance report."""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

import pytest
import time_machine
from playwright.sync_api import expect

from booking.formats import LONDON
from booking.models import Appointment, StaffMembership
from tests.e2e.conftest import sign_in
from tests.scenarios import make_clinic_session

pytestmark = pytest.mark.django_db(transaction=True)

# The afternoon after a morning clinic (the live server's clock too: time_machine moves the
# process's clock, and it ticks on from here).
AFTERNOON = datetime(2026, 12, 2, 15, 0, tzinfo=LONDON)
MORNING = datetime(2026, 12, 2, 9, 0, tzinfo=LONDON)


def tab_to(page, target, *, presses: int = 80) -> None:
    """Press Tab until `target` has the keyboard focus, as a keyboard user would."""
    for _ in range(presses):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} can't be reached with the Tab key")


def test_staff_mark_a_session_attended_then_flip_one_by_keyboard(page, practice):
    with time_machine.travel(AFTERNOON):
        amira, ben, cara = make_clinic_session(practice, MORNING)
        sign_in(page, practice)
        page.get_by_role("link", name="Appointments").click()

        mark_all = page.get_by_role(
            "button", name="Mark all as attended for Dr Riverside at Riverside Surgery, Wednesday 2 December"
        )
        tab_to(page, mark_all)
        page.keyboard.press("Enter")
        expect(page.get_by_text("Marked 3 appointments as attended.")).to_be_visible()

        did_not_attend = page.get_by_role("button", name="Did not attend for Ben Jones, 9:10am")
        tab_to(page, did_not_attend)
        page.keyboard.press("Enter")
        expect(page.get_by_text("Ben Jones: did not attend.")).to_be_visible()
        row = page.get_by_role("row", name=re.compile("Ben Jones"))
        expect(row.get_by_text("Did not attend", exact=True)).to_be_visible()
        # Changed back the same way, should it have been a mistake.
        expect(row.get_by_role("button", name="Attended for Ben Jones, 9:10am")).to_be_visible()
        expect(row.get_by_role("button", name=re.compile("^Did not attend"))).to_have_count(0)

    outcomes = dict(Appointment.objects.values_list("pk", "outcome"))
    assert [outcomes[a.pk] for a in (amira, ben, cara)] == ["attended", "did_not_attend", "attended"]


def test_marking_works_without_javascript(page_without_javascript, practice):
    page = page_without_javascript
    with time_machine.travel(AFTERNOON):
        amira, *_ = make_clinic_session(practice, MORNING)
        sign_in(page, practice)
        page.goto("/appointments/")
        page.get_by_role("button", name="Did not attend for Amira Khan, 9am").click()
        expect(page.get_by_text("Amira Khan: did not attend.")).to_be_visible()
    assert Appointment.objects.get(pk=amira.pk).outcome == "did_not_attend"


def test_a_manager_reads_the_attendance_report_and_downloads_it(page, practice):
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    with time_machine.travel(AFTERNOON):
        amira, ben, _ = make_clinic_session(practice, MORNING)  # Cara Lee: not recorded
        Appointment.objects.filter(pk=amira.pk).update(outcome="attended", outcome_recorded_at=AFTERNOON)
        Appointment.objects.filter(pk=ben.pk).update(outcome="did_not_attend", outcome_recorded_at=AFTERNOON)
        sign_in(page, practice)
        page.get_by_role("link", name="Attendance report").click()
        expect(page.get_by_role("heading", name="Attendance report")).to_be_visible()

        # A range that ends before it starts is refused with a message next to the field.
        page.get_by_label("From").fill("2026-12-03")
        page.get_by_label("To").fill("2026-12-01")
        page.get_by_role("button", name="Show report").click()
        expect(page.get_by_role("alert")).to_contain_text("The last day must be the same as or after the first day.")

        page.get_by_label("From").fill("2026-12-01")
        page.get_by_label("To").fill("2026-12-02")
        page.get_by_role("button", name="Show report").click()
        expect(page.get_by_role("heading", name="Tuesday 1 December 2026 to Wednesday 2 December 2026")).to_be_visible()
        chart = page.get_by_role("list").filter(has_text="1 to 2 days:")
        expect(chart.get_by_role("listitem").filter(has_text="3 to 7 days:")).to_contain_text("50.0% (1 of 2)")
        booked = page.get_by_role("table", name="Booked")
        link_row = booked.get_by_role("row", name=re.compile("^Through a link"))
        expect(link_row.get_by_role("cell")).to_have_text(["1", "0", "1", "0", "0", "0", "0", "0", "100.0%"])

        with page.expect_download() as download:
            page.get_by_role("link", name=re.compile("^Download as CSV")).click()
        rows = list(csv.reader(io.StringIO(download.value.path().read_text())))
    assert ["Booked", "By staff", "2", "1", "0", "1", "0", "0", "0", "0", "0.0"] in rows
