"""axe-core finds no WCAG 2.2 AA problems on the pages that exist, in each state a user meets."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
import time_machine
from django.test import override_settings
from playwright.sync_api import expect

from booking.appointments import appointment_cancel
from booking.formats import LONDON
from booking.models import Appointment, StaffMembership
from tests.e2e.conftest import axe_violations, sign_in
from tests.scenarios import make_clinic_session

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path", ["/", "/accounts/login/", "/accounts/password_reset/", "/b/not-a-real-link"])
def test_the_public_pages_pass_axe(axe_page, path):
    page = axe_page
    page.goto(path)
    assert axe_violations(page) == []


def test_sign_in_with_errors_passes_axe(axe_page):
    page = axe_page
    page.goto("/accounts/login/")
    page.get_by_role("button", name="Sign in").click()
    assert axe_violations(page) == []


def test_every_staff_page_of_a_whole_send_passes_axe(axe_page, practice):
    page = axe_page
    sign_in(page, practice)
    assert axe_violations(page) == [], "home"

    page.get_by_role("button", name="Send message").click()
    page.get_by_label("Patient").fill("Smith")
    expect(page.get_by_role("link", name=re.compile("Oliver Smith"))).to_be_visible()
    assert axe_violations(page) == [], "patient search"

    page.get_by_role("link", name=re.compile("Oliver Smith")).click()
    assert axe_violations(page) == [], "message builder"

    page.get_by_role("button", name="Invite to book").click()
    dialog = page.get_by_role("dialog", name="Invite to book")
    dialog.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    dialog.get_by_label("Location").select_option(label=practice.location.name)
    expect(dialog.get_by_text("3 free times")).to_be_visible()
    assert axe_violations(page) == [], "invite dialog"

    dialog.get_by_role("button", name="Add link").click()
    page.get_by_label("Message").fill("")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "builder with errors"

    page.get_by_label("Message").fill("Please book: {{Appointment Link}}")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_text("Message sent.")).to_be_visible()
    assert axe_violations(page) == [], "message sent"

    page.goto("/messages/")
    assert axe_violations(page) == [], "sent messages"

    with override_settings(DEBUG=True):
        page.goto("/dev/outbox/")
        expect(page.get_by_role("heading", name=f"Text to {practice.patient.mobile}")).to_be_visible()
        assert axe_violations(page) == [], "development outbox"


def test_the_check_finds_a_real_problem(axe_page):
    # So the tests above can't pass because axe looked at nothing.
    axe_page.goto("/")
    axe_page.evaluate("document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=x.png>')")
    assert any(line.startswith("image-alt") for line in axe_violations(axe_page))


def test_the_manager_pages_pass_axe(axe_page, practice):
    from booking.models import StaffMembership

    StaffMembership.objects.filter(user=practice.user).update(role="manager")
    page = axe_page
    sign_in(page, practice)
    for path in ("/appointments/", "/audit/", "/templates/", "/templates/new/", "/sharing/"):
        page.goto(path)
        assert axe_violations(page) == [], path
    page.goto("/sharing/")
    page.get_by_role("button", name="Start sharing").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "sharing with errors"


@pytest.mark.parametrize("width", [320, 1100])
def test_the_attendance_pages_pass_axe(axe_page, practice, width):
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    page = axe_page
    page.set_viewport_size({"width": width, "height": 900})
    with time_machine.travel(datetime(2026, 12, 2, 15, 0, tzinfo=LONDON)):
        amira, _, cara = make_clinic_session(practice, datetime(2026, 12, 2, 9, 0, tzinfo=LONDON))
        Appointment.objects.filter(pk=amira.pk).update(outcome="attended", outcome_recorded_at=amira.slot.start)
        sign_in(page, practice)
        page.goto("/appointments/")
        assert axe_violations(page) == [], "appointments with attendance to record"

        page.get_by_role("button", name="Did not attend for Ben Jones, 9:10am").click()
        expect(page.get_by_text("Ben Jones: did not attend.")).to_be_visible()
        assert axe_violations(page) == [], "attendance recorded"

        # Cancelled in another tab after this page showed its buttons.
        appointment_cancel(appointment=cara, actor=practice.user)
        page.get_by_role("button", name="Attended for Cara Lee, 9:20am").click()
        expect(page.get_by_role("heading", name="Attendance not recorded")).to_be_visible()
        assert axe_violations(page) == [], "attendance not recorded"

        page.goto("/reports/attendance/?start=2026-11-01&end=2026-12-02")
        assert axe_violations(page) == [], "attendance report"

        page.goto("/reports/attendance/?start=2026-12-05&end=2026-12-01")
        expect(page.get_by_text("There is a problem")).to_be_visible()
        assert axe_violations(page) == [], "attendance report with errors"
