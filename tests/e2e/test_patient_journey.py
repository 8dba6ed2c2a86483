"""The patient's half, in Chromium: open the link, date of birth, a time, book; found by accessible names.

axe-core checks every page a patient can meet for WCAG 2.2 AA problems, on a desktop window
and on a phone-sized one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from booking.links import booking_link_revoke
from booking.models import Appointment, AppointmentType, BookingLink, SharingAgreement, Slot
from tests.e2e.conftest import PHONE, axe_violations
from tests.factories import BookingLinkFactory
from tests.scenarios import make_hub, make_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_cache")]


def enter_date_of_birth(page, day: str = "17", month: str = "5", year: str = "1980") -> None:
    dob = page.get_by_role("group", name="What is your date of birth?")
    dob.get_by_label("Day", exact=True).fill(day)
    dob.get_by_label("Month", exact=True).fill(month)
    dob.get_by_label("Year", exact=True).fill(year)
    page.get_by_role("button", name="Continue").click()


def book_first_time(page) -> None:
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Book appointment").click()


def test_a_patient_books_a_time(page, practice, live_server):
    link = make_link(practice)
    requests = []
    page.on("request", lambda request: requests.append(request))

    page.goto(link.get_absolute_url())
    expect(page.get_by_text(practice.organisation.name).first).to_be_visible()
    enter_date_of_birth(page)

    expect(page.get_by_role("heading", name="Choose a time", level=1)).to_be_visible()
    expect(page.get_by_role("group", name="Next available")).to_be_visible()
    expect(page.get_by_role("radio")).to_have_count(3)
    page.get_by_role("group", name="Next available").get_by_role("radio").check()
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_role("heading", name="Check your appointment")).to_be_visible()
    page.get_by_role("button", name="Book appointment").click()

    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    appointment = Appointment.objects.get()
    expect(page.get_by_text(appointment.reference).first).to_be_visible()
    expect(page.get_by_role("link", name="Add to calendar")).to_be_visible()

    # No script, and nothing fetched from anywhere but this site.
    assert [r.url for r in requests if r.resource_type == "script"] == []
    assert [r.url for r in requests if not r.url.startswith(live_server.url)] == []


def test_the_journey_works_without_javascript(page_without_javascript, practice):
    page = page_without_javascript
    link = make_link(practice)
    page.goto(link.get_absolute_url())
    enter_date_of_birth(page)
    book_first_time(page)
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    assert Appointment.objects.count() == 1


def test_after_a_wrong_date_the_right_one_shows_the_times(page, practice):
    link = make_link(practice)
    page.goto(link.get_absolute_url())
    enter_date_of_birth(page, year="1981")
    expect(page.get_by_role("alert")).to_contain_text("You have 4 tries left.")
    # The summary's link takes the keyboard to the first box.
    page.get_by_role("link", name="The date of birth does not match. You have 4 tries left.").click()
    expect(page.get_by_label("Day", exact=True)).to_be_focused()
    enter_date_of_birth(page)
    expect(page.get_by_role("heading", name="Choose a time", level=1)).to_be_visible()


def _check_every_patient_page(page, practice) -> dict[str, list[str]]:
    """Walk every page a patient can meet and return axe's findings for each (empty when clean)."""
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        found[name] = axe_violations(page)

    page.goto("/b/not-a-real-link")
    expect(page.get_by_role("heading", name="Link not found")).to_be_visible()
    check("not found")

    link = make_link(practice)
    page.goto(link.get_absolute_url())
    check("date of birth")
    enter_date_of_birth(page, day="31", month="2")
    expect(page.get_by_text("Date of birth must be a real date").first).to_be_visible()
    check("date of birth, impossible date")
    enter_date_of_birth(page, year="1981")
    expect(page.get_by_text("You have 4 tries left.").first).to_be_visible()
    check("date of birth, no match")
    enter_date_of_birth(page)
    expect(page.get_by_role("heading", name="Choose a time", level=1)).to_be_visible()
    check("times")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("Choose a time").first).to_be_visible()
    check("times, nothing chosen")
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Book appointment")).to_be_visible()
    check("confirm")
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    check("booked")

    empty = make_link(practice)
    page.goto(empty.get_absolute_url())
    enter_date_of_birth(page)
    Slot.objects.filter(status=Slot.Status.FREE).update(status=Slot.Status.BLOCKED)
    page.reload()
    expect(page.get_by_role("heading", name="There are no times available to book online")).to_be_visible()
    check("times, none free")
    Slot.objects.filter(status=Slot.Status.BLOCKED).update(status=Slot.Status.FREE)

    expired = make_link(practice)
    now = timezone.now()
    BookingLink.objects.filter(pk=expired.pk).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(seconds=1)
    )
    page.goto(expired.get_absolute_url())
    expect(page.get_by_role("heading", name="This link has expired")).to_be_visible()
    check("expired")

    revoked = make_link(practice)
    booking_link_revoke(link=revoked, actor=None)
    page.goto(revoked.get_absolute_url())
    expect(page.get_by_role("heading", name="This link has been cancelled")).to_be_visible()
    check("revoked")

    locked = make_link(practice)
    BookingLink.objects.filter(pk=locked.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
    page.goto(locked.get_absolute_url())
    expect(page.get_by_role("heading", name="This link is locked")).to_be_visible()
    check("locked")

    hub = make_hub(practice)
    shared = BookingLinkFactory(patient=practice.patient, appointment_type=hub.appointment_type, location=hub.location)
    SharingAgreement.objects.filter(pk=hub.agreement.pk).update(ended_at=timezone.now())
    page.goto(shared.get_absolute_url())
    expect(page.get_by_role("heading", name="You can no longer book this appointment online")).to_be_visible()
    check("agreement ended")

    # Last: withdrawing the practice's type affects every link above.
    withdrawn = make_link(practice)
    AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(is_active=False)
    page.goto(withdrawn.get_absolute_url())
    expect(page.get_by_role("heading", name="This link has been cancelled by the practice")).to_be_visible()
    check("type withdrawn")
    return {name: problems for name, problems in found.items() if problems}


def test_every_patient_page_passes_axe(axe_page, practice):
    assert _check_every_patient_page(axe_page, practice) == {}


def test_every_patient_page_passes_axe_on_a_phone(axe_page, practice):
    axe_page.set_viewport_size(PHONE)
    assert _check_every_patient_page(axe_page, practice) == {}


def test_the_times_fit_a_phone_screen_without_sideways_scrolling(page, practice):
    page.set_viewport_size(PHONE)
    link = make_link(practice)
    page.goto(link.get_absolute_url())
    enter_date_of_birth(page)
    expect(page.get_by_role("heading", name="Choose a time", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
