"""A member of staff filters the Appointments page and cancels an appointment for the patient, with
a reason, by keyboard; and sees the changes by patients from home."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import expect

from booking.formats import date_and_time, london_time
from booking.models import Appointment, AuditEvent, Slot
from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_staff_filter_the_appointments_and_cancel_one_with_a_reason_by_keyboard(page, practice, every_status):
    booked = every_status.booked
    sign_in(page, practice)

    page.get_by_role("link", name="Appointments", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Appointments", level=1)).to_be_visible()
    table = page.get_by_role("table", name="Appointments")
    expect(table.get_by_text("Cancelled by patient")).to_be_visible()

    # Status: Booked (the option after "Any status"), and the day of the booked appointment.
    page.get_by_label("Status").focus()
    page.keyboard.press("ArrowDown")
    expect(page.get_by_label("Status")).to_have_value("booked")
    day = london_time(booked.slot.start).date()
    page.keyboard.press("Tab")
    expect(page.get_by_label("From")).to_be_focused()
    # A date input's day, month and year are segments that Tab moves between, in the browser's
    # locale order: set the values whole, as a date picker does.
    page.get_by_label("From").fill(day.isoformat())
    page.get_by_label("To").fill(day.isoformat())
    page.get_by_role("button", name="Apply filters").focus()
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile(r"status=booked"))
    expect(table.get_by_text("Cancelled by patient")).to_have_count(0)
    expect(table.get_by_text(every_status.by_practice.patient.full_name)).to_have_count(0)
    cancel = page.get_by_role(
        "link", name=f"Cancel {booked.patient.full_name}'s appointment on {date_and_time(booked.slot.start)}"
    )
    cancel.focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("heading", name="Cancel appointment")).to_be_visible()
    reasons = page.get_by_role("group", name="Why is the appointment being cancelled?")
    # "Other reason" without words first: the page says what is missing.
    reasons.get_by_role("radio", name="Other reason").focus()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Details (needed for Other reason)")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Cancel appointment")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert").get_by_text("There is a problem")).to_be_visible()
    assert Appointment.objects.get(pk=booked.pk).status == Appointment.Status.BOOKED

    page.get_by_role("link", name="Enter the reason, as you chose Other reason.").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Details (needed for Other reason)")).to_be_focused()
    page.keyboard.type("Clinic closed for training")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(page.get_by_text(f"Cancelled {booked.patient.full_name}'s appointment on")).to_be_visible()
    booked.refresh_from_db()
    assert booked.status == Appointment.Status.CANCELLED
    assert (booked.cancellation_source, booked.cancellation_reason, booked.cancellation_detail) == (
        "practice",
        "other",
        "Clinic closed for training",
    )
    assert Slot.objects.get(pk=booked.slot_id).status == Slot.Status.FREE
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED, actor=practice.user).count() == 1
    row = page.get_by_role("row", name=re.compile(booked.reference))
    expect(row.get_by_text("Cancelled by practice")).to_be_visible()
    expect(row.get_by_text("Other reason: “Clinic closed for training”.")).to_be_visible()


def test_staff_open_the_changes_by_patients_from_home(page, practice, every_status):
    User.objects.filter(pk=practice.user.pk).update(date_joined=timezone.now() - timedelta(days=7))
    sign_in(page, practice)
    page.get_by_role("link", name="2 changes since you last looked").click()
    table = page.get_by_role("table", name="Appointments")
    expect(table.get_by_role("row")).to_have_count(3)  # the header and two changes
    expect(table.get_by_text("Cancelled by patient")).to_be_visible()
    expect(table.get_by_text(f"To {date_and_time(every_status.replacement.slot.start)}")).to_be_visible()
    page.get_by_role("link", name="Home").first.click()
    expect(page.get_by_text("No appointments cancelled or changed by patients since you last looked.")).to_be_visible()
