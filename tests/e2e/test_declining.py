"""The patient declines a campaign's invitation, in Chromium, by accessible names.

By keyboard alone (focus and keys, no clicks), and with JavaScript switched off; axe-core
checks every page state it meets at 320 px wide in tests/e2e/test_accessibility.py.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from booking.models import AuditEvent, BookingLink
from tests.scenarios import make_invitation_link, make_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_cache")]


def press(page, locator, key: str = "Enter") -> None:
    """What a keyboard user does: move focus to it, then press a key."""
    locator.focus()
    expect(locator).to_be_focused()
    page.keyboard.press(key)


def type_date_of_birth(page) -> None:
    dob = page.get_by_role("group", name="What is your date of birth?")
    for label, value in [("Day", "17"), ("Month", "5"), ("Year", "1980")]:
        field = dob.get_by_label(label, exact=True)
        field.focus()
        page.keyboard.type(value)
    press(page, page.get_by_role("button", name="Continue"))


def test_a_patient_declines_by_keyboard(page, practice):
    link = make_invitation_link(practice)
    page.goto(link.get_absolute_url())
    type_date_of_birth(page)

    expect(page.get_by_role("heading", name="Choose a time")).to_be_visible()
    press(page, page.get_by_role("button", name="I don't want this appointment"))

    expect(page.get_by_role("heading", name="I don't want this appointment", level=1)).to_be_visible()
    reasons = page.get_by_role("group", name="Why don't you want this appointment? (optional)")
    press(page, reasons.get_by_role("radio", name="Other reason"), "Space")
    expect(reasons.get_by_role("radio", name="Other reason")).to_be_checked()
    page.get_by_label("Tell us the reason (optional)").focus()
    page.keyboard.type("I live abroad for the winter")
    press(page, page.get_by_role("button", name="I don't want this appointment"))

    expect(page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    expect(page.get_by_role("link", name=practice.organisation.phone_for_display)).to_be_visible()
    link.refresh_from_db()
    assert (link.status, link.decline_reason, link.decline_detail) == (
        BookingLink.Status.DECLINED,
        "other",
        "I live abroad for the winter",
    )
    assert AuditEvent.objects.filter(booking_link=link, action=AuditEvent.Action.DECLINED).count() == 1

    # Opened again, the link says so, and offers no times.
    page.goto(link.get_absolute_url())
    expect(page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(0)


def test_declining_works_without_javascript(page_without_javascript, practice):
    page = page_without_javascript
    link = make_invitation_link(practice)
    page.goto(link.get_absolute_url())
    type_date_of_birth(page)
    page.get_by_role("button", name="I don't want this appointment").click()
    page.get_by_role("radio", name="Not now: maybe later").check()
    page.get_by_role("button", name="I don't want this appointment").click()
    expect(page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    link.refresh_from_db()
    assert (link.status, link.decline_reason) == (BookingLink.Status.DECLINED, "not_now")


def test_a_link_sent_by_hand_offers_no_decline(page, practice):
    link = make_link(practice)
    page.goto(link.get_absolute_url())
    type_date_of_birth(page)
    expect(page.get_by_role("heading", name="Choose a time")).to_be_visible()
    expect(page.get_by_role("button", name="I don't want this appointment")).to_have_count(0)
