"""The patient changes or cancels their appointment from the link, in Chromium, by accessible names.

Both journeys by keyboard alone (focus and keys, no clicks) and with JavaScript switched off;
axe-core checks every page state they meet at 320 px wide in tests/e2e/test_accessibility.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking.appointments import appointment_book
from booking.models import Appointment, BookingLink, Slot
from tests.scenarios import make_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_cache")]


def booked_link(practice) -> tuple[BookingLink, Appointment]:
    link = make_link(practice)
    first = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    return link, appointment_book(link_id=link.pk, slot_id=first.pk)


def open_with_date_of_birth(page, link: BookingLink) -> None:
    page.goto(link.get_absolute_url())
    dob = page.get_by_role("group", name="What is your date of birth?")
    dob.get_by_label("Day", exact=True).fill("17")
    dob.get_by_label("Month", exact=True).fill("5")
    dob.get_by_label("Year", exact=True).fill("1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()


def press(page, locator, key: str = "Enter") -> None:
    """What a keyboard user does: move focus to it, then press a key."""
    locator.focus()
    expect(locator).to_be_focused()
    page.keyboard.press(key)


def test_a_patient_cancels_by_keyboard(page, practice):
    link, appointment = booked_link(practice)
    open_with_date_of_birth(page, link)
    press(page, page.get_by_role("link", name="Cancel appointment"))

    expect(page.get_by_role("heading", name="Cancel appointment", level=1)).to_be_visible()
    reasons = page.get_by_role("group", name="Why are you cancelling?")
    press(page, reasons.get_by_role("radio", name="I can't make this time"), "Space")
    expect(reasons.get_by_role("radio", name="I can't make this time")).to_be_checked()
    press(page, page.get_by_role("button", name="Cancel appointment"))

    expect(page.get_by_role("heading", name="Appointment cancelled")).to_be_visible()
    expect(page.get_by_text(practice.organisation.phone_for_display)).to_be_visible()
    appointment.refresh_from_db()
    assert (appointment.status, appointment.cancellation_reason) == ("cancelled", "cannot_make_time")


def test_a_patient_changes_by_keyboard(page, practice):
    link, old = booked_link(practice)
    open_with_date_of_birth(page, link)
    press(page, page.get_by_role("link", name="Change appointment"))

    expect(page.get_by_role("heading", name="Choose a new time")).to_be_visible()
    expect(page.get_by_text("Your current appointment")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(2)  # the current time is not offered
    press(page, page.get_by_role("radio").last, "Space")
    press(page, page.get_by_role("button", name="Continue"))

    expect(page.get_by_role("heading", name="Current appointment")).to_be_visible()
    expect(page.get_by_role("heading", name="New appointment")).to_be_visible()
    press(page, page.get_by_role("button", name="Change appointment"))

    expect(page.get_by_role("heading", name="Appointment changed")).to_be_visible()
    new = Appointment.objects.get(booking_link=link, status="booked")
    assert new.replaces_id == old.pk
    expect(page.get_by_text(new.reference).first).to_be_visible()


def test_both_journeys_work_without_javascript(page_without_javascript, practice):
    page = page_without_javascript
    link, old = booked_link(practice)
    open_with_date_of_birth(page, link)

    page.get_by_role("link", name="Change appointment").click()
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Change appointment").click()
    expect(page.get_by_role("heading", name="Appointment changed")).to_be_visible()

    page.get_by_role("link", name="Cancel appointment").click()
    # Other reason needs words: the box is there without a script to reveal it.
    page.get_by_role("radio", name="Other reason").check()
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter the reason you are cancelling")
    page.get_by_label("Tell us the reason").fill("I am moving away")
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("heading", name="Appointment cancelled")).to_be_visible()

    assert not Appointment.objects.filter(booking_link=link, status="booked").exists()
    ended = Appointment.objects.get(booking_link=link, replaces=old)
    assert (ended.cancellation_source, ended.cancellation_detail) == ("patient", "I am moving away")
