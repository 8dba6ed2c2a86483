"""axe-core finds no WCAG 2.2 AA problems on the pages that exist, in each state a user meets."""

from __future__ import annotations

import re
from datetime import datetime, time

import pytest
import time_machine
from django.test import override_settings
from playwright.sync_api import expect

from booking.appointments import appointment_cancel
from booking.formats import LONDON
from booking.models import Appointment, Slot, StaffMembership
from booking.slots import london_datetime
from tests.e2e.conftest import axe_violations, sign_in
from tests.scenarios import clinic_times, clinic_weekdays, make_clinic, make_clinic_link, make_clinic_session

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


def test_every_page_of_changing_and_cancelling_passes_axe_at_320_px(axe_page, practice):
    from booking.appointments import appointment_book
    from booking.models import AppointmentType, BookingLink, Slot
    from tests.scenarios import make_link

    page = axe_page
    page.set_viewport_size({"width": 320, "height": 800})
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        found[name] = axe_violations(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: scrolls sideways"

    def booked_and_open() -> BookingLink:
        link = make_link(practice)
        free = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start")
        appointment_book(link_id=link.pk, slot_id=free.first().pk)
        page.goto(link.get_absolute_url())
        page.get_by_label("Day", exact=True).fill("17")
        page.get_by_label("Month", exact=True).fill("5")
        page.get_by_label("Year", exact=True).fill("1980")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
        return link

    link = booked_and_open()
    check("booked, with change and cancel")
    page.get_by_role("link", name="Change appointment").click()
    expect(page.get_by_role("heading", name="Choose a new time")).to_be_visible()
    check("change: times")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check("change: times, nothing chosen")
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="Change appointment")).to_be_visible()
    check("change: confirm")
    confirm_url = page.url
    page.get_by_role("button", name="Change appointment").click()
    expect(page.get_by_role("heading", name="Appointment changed")).to_be_visible()
    check("changed")
    page.goto(confirm_url)  # the same time again: no longer available, the times with the error
    expect(page.get_by_role("alert")).to_be_visible()
    check("change: time gone")
    page.go_back()
    page.go_back()
    page.reload()
    page.get_by_role("radio").first.check()
    page.get_by_role("button", name="Continue").click()
    # The confirm page, loaded, before its form is tampered with (a busy machine is slow to navigate).
    expect(page.get_by_role("button", name="Change appointment")).to_be_visible()
    page.evaluate("document.querySelector('input[name=slot]').value = 'NOTAREALTIME'")
    page.get_by_role("button", name="Change appointment").click()
    expect(page.get_by_role("heading", name="That time cannot be booked")).to_be_visible()
    check("change: forged time")

    page.goto(f"/b/{link.token}/cancel")
    check("cancel")
    expect(page.get_by_role("button", name="Cancel appointment")).to_be_visible()
    page.evaluate("document.querySelector('input[name=appointment]').value = 'NOTREAL'")
    page.get_by_role("radio", name="I no longer need it").check()
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("heading", name="Appointment not found")).to_be_visible()
    check("cancel: forged appointment")
    page.goto(f"/b/{link.token}/cancel")
    page.get_by_role("radio", name="Other reason").check()
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check("cancel: with errors")
    page.get_by_label("Tell us the reason").fill("Moving away")
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("heading", name="Appointment cancelled")).to_be_visible()
    check("cancelled")
    page.goto(link.get_absolute_url())
    expect(page.get_by_role("heading", name="Appointment cancelled")).to_be_visible()
    check("reopened after cancelling")

    other = booked_and_open()
    page.goto(f"/b/{other.token}/cancel")
    second_tab = page.context.new_page()
    second_tab.goto(f"/b/{other.token}/change")
    second_tab.get_by_role("radio").first.check()
    second_tab.get_by_role("button", name="Continue").click()
    second_tab.get_by_role("button", name="Change appointment").click()
    expect(second_tab.get_by_role("heading", name="Appointment changed")).to_be_visible()
    second_tab.close()
    page.get_by_role("radio", name="I no longer need it").check()
    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_role("heading", name="This appointment has already been changed")).to_be_visible()
    check("cancel from a tab left on the old appointment (409)")
    page.goto(f"/b/{other.token}/booked")
    check("booked after a change")

    AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(max_changes=0)
    page.reload()
    check("booked, changes used up")
    page.goto(f"/b/{other.token}/change")
    expect(page.get_by_role("heading", name="You cannot do this online")).to_be_visible()
    check("change refused (403)")
    AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(online_changes_until_hours=24 * 28)
    page.goto(f"/b/{other.token}/booked")
    expect(page.get_by_text("less than 672 hours before")).to_be_visible()
    check("booked, inside the cut-off")

    assert {name: problems for name, problems in found.items() if problems} == {}


def test_the_days_first_times_pages_pass_axe_at_320_pixels(axe_page):
    """Many times: the days, the next fortnight, a day, a day with an error, a lost race on a
    day, a day with no times left, confirm with "the first available clinician", booked."""
    page = axe_page
    page.set_viewport_size({"width": 320, "height": 640})
    clinic = make_clinic(
        clinicians=3, days=clinic_weekdays(weeks=3), times=clinic_times(time(8, 0), time(20, 0), minutes=60)
    )
    link = make_clinic_link(clinic)
    day = clinic.days[1]
    page.goto(link.get_absolute_url())
    dob = page.get_by_role("group", name="What is your date of birth?")
    dob.get_by_label("Day", exact=True).fill("17")
    dob.get_by_label("Month", exact=True).fill("5")
    dob.get_by_label("Year", exact=True).fill("1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Or choose a day")).to_be_visible()
    assert axe_violations(page) == [], "the days"
    page.get_by_role("link", name=re.compile("^Next")).click()
    expect(page.get_by_role("link", name=re.compile("^Previous"))).to_be_visible()
    assert axe_violations(page) == [], "the next fortnight"
    page.goto(f"{link.get_absolute_url()}/times?day={day.isoformat()}")
    assert axe_violations(page) == [], "a day"
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "a day, continuing without a time"
    page.get_by_role("radio", name="2pm").check()
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_text("The first available clinician")).to_be_visible()
    assert axe_violations(page) == [], "confirm, several clinicians free"
    Slot.objects.filter(start=london_datetime(day, time(14, 0))).update(status=Slot.Status.BOOKED)
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_text("Sorry, that time has just been taken").first).to_be_visible()
    assert axe_violations(page) == [], "a day after a lost race"
    page.goto(f"{link.get_absolute_url()}/times?day=2099-01-01")
    expect(page.get_by_text("There are no free times on")).to_be_visible()
    assert axe_violations(page) == [], "a day without times"
    page.goto(f"{link.get_absolute_url()}/times?day=not-a-day")
    assert axe_violations(page) == [], "a day that is not a date"
    page.goto(f"{link.get_absolute_url()}/times?day={day.isoformat()}")
    page.get_by_role("radio", name="3pm").check()
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Book appointment").click()
    expect(page.get_by_role("heading", name="Appointment booked")).to_be_visible()
    assert axe_violations(page) == [], "booked"


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


@pytest.mark.parametrize("width", [320, 1100], ids=["320px", "desktop"])
def test_the_appointments_pages_pass_axe(axe_page, practice, every_status, width):
    from datetime import timedelta

    from django.contrib.auth.models import User
    from django.utils import timezone

    # The account is older than the patients' changes, so home counts them.
    User.objects.filter(pk=practice.user.pk).update(date_joined=timezone.now() - timedelta(days=7))
    page = axe_page
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, practice)
    expect(page.get_by_role("link", name="2 changes since you last looked")).to_be_visible()
    assert axe_violations(page) == [], "home with changes by patients"

    page.get_by_role("link", name="2 changes since you last looked").click()
    expect(page.get_by_text("Changes by patients since")).to_be_visible()
    assert axe_violations(page) == [], "changes by patients"

    page.goto("/appointments/")
    expect(page.get_by_role("table", name="Appointments").get_by_text("Cancelled by practice")).to_be_visible()
    assert axe_violations(page) == [], "appointments with every status"

    page.goto("/appointments/?from_date=2026-13-01&to_date=nonsense")
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "appointments with bad filters"

    page.goto(f"/appointments/{every_status.booked.reference}/cancel/")
    expect(page.get_by_role("heading", name="Cancel appointment")).to_be_visible()
    assert axe_violations(page) == [], "cancel appointment"

    page.get_by_role("button", name="Cancel appointment").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "cancel appointment with errors"

    page.goto(f"/appointments/{every_status.by_patient.reference}/cancel/")
    expect(page.get_by_role("heading", name="This appointment can't be cancelled")).to_be_visible()
    assert axe_violations(page) == [], "cancel refused"


def test_the_campaign_pages_pass_axe_at_320_px(axe_page, practice):
    from messaging.campaigns.checks import campaign_lists_check
    from tests.scenarios import make_campaign_list

    StaffMembership.objects.filter(user=practice.user).update(role="manager")
    patients = make_campaign_list(practice)
    page = axe_page
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, practice)

    def check(name: str) -> None:
        assert axe_violations(page) == [], name
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: scrolls sideways"

    page.goto("/campaigns/")
    check("campaigns, none yet")
    page.goto("/campaigns/new/")
    check("new campaign")
    page.get_by_role("button", name="Check the list").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    check("new campaign with errors")

    page.get_by_label("Campaign name").fill("Flu 2026")
    page.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    page.get_by_label("Location", exact=True).select_option(label=practice.location.name)
    page.get_by_label("Patients (CSV file)").set_input_files(
        files=[{"name": "flu.csv", "mimeType": "text/csv", "buffer": patients.csv()}]
    )
    page.get_by_role("button", name="Check the list").click()
    expect(page.get_by_role("heading", name="Checking the list")).to_be_visible()
    check("checking")

    campaign_lists_check()
    page.reload()
    expect(page.get_by_role("heading", name="The list is checked")).to_be_visible()
    check("checked")
    page.get_by_label("Invitations per free time").fill("9")
    page.get_by_role("button", name="Start sending").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    check("pace with errors")
    page.goto("/campaigns/")
    check("campaigns")


def test_every_page_of_declining_passes_axe_at_320_px(axe_page, practice):
    """A campaign's invitation: the times with "I don't want this appointment", the decline page,
    with an error, declined, and the link reopened after."""
    from tests.scenarios import make_invitation_link

    page = axe_page
    page.set_viewport_size({"width": 320, "height": 800})
    found: dict[str, list[str]] = {}

    def check(name: str) -> None:
        found[name] = axe_violations(page)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: scrolls sideways"

    link = make_invitation_link(practice)
    page.goto(link.get_absolute_url())
    dob = page.get_by_role("group", name="What is your date of birth?")
    dob.get_by_label("Day", exact=True).fill("17")
    dob.get_by_label("Month", exact=True).fill("5")
    dob.get_by_label("Year", exact=True).fill("1980")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("button", name="I don't want this appointment")).to_be_visible()
    check("times, with the choice to decline")
    page.get_by_role("button", name="I don't want this appointment").click()
    expect(page.get_by_role("heading", name="I don't want this appointment")).to_be_visible()
    check("decline")
    page.get_by_role("radio", name="Other reason").check()
    page.get_by_label("Tell us the reason (optional)").evaluate("input => input.removeAttribute('maxlength')")
    page.get_by_label("Tell us the reason (optional)").fill("x" * 201)
    page.get_by_role("button", name="I don't want this appointment").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    check("decline, with an error")
    page.get_by_label("Tell us the reason (optional)").fill("Moving away")
    page.get_by_role("button", name="I don't want this appointment").click()
    expect(page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    check("declined")
    page.goto(link.get_absolute_url())
    expect(page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    check("reopened after declining (410)")

    assert {name: problems for name, problems in found.items() if problems} == {}


@pytest.mark.parametrize("width", [320, 1100], ids=["320px", "desktop"])
def test_the_call_list_passes_axe(axe_page, practice, width):
    from datetime import timedelta

    from django.utils import timezone

    from messaging.models import CampaignEntry
    from tests.factories import PatientFactory
    from tests.scenarios import make_campaign, make_invitation

    campaign = make_campaign(practice, follow_up_1_days=None, follow_up_2_days=None, name="Flu 2026")
    invited = timezone.now() - timedelta(days=3)
    make_invitation(campaign, practice.patient, invited_at=invited)
    make_invitation(campaign, PatientFactory(organisation=practice.organisation, first_name="Ada"), invited_at=invited)
    recorded = make_invitation(
        campaign, PatientFactory(organisation=practice.organisation, first_name="Bea"), invited_at=invited
    )
    CampaignEntry.objects.filter(pk=recorded.pk).update(
        call_outcome="no_answer", call_outcome_at=timezone.now(), call_outcome_by=practice.user
    )
    page = axe_page
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, practice)
    page.goto(f"/campaigns/{campaign.reference}/call-list/")
    expect(page.get_by_role("heading", name="Call list")).to_be_visible()
    assert axe_violations(page) == [], "call list"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "scrolls sideways"

    page.get_by_role("button", name="Record outcome for Oliver Smith").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    assert axe_violations(page) == [], "call list, recording without an outcome"

    row = page.get_by_role("row", name=re.compile("Oliver Smith"))
    row.get_by_role("radio", name="Booked by phone").check()
    row.get_by_role("button", name="Record outcome").click()
    expect(page.get_by_text("Oliver Smith: booked by phone recorded.")).to_be_visible()
    assert axe_violations(page) == [], "call list, outcome recorded"


@pytest.mark.parametrize("status", ["sending", "waiting", "paused", "stopped", "finished"])
def test_the_campaign_page_passes_axe_at_320_px_in_each_status(axe_page, practice, status):
    from booking.models import BookingLink
    from tests.factories import BookingLinkFactory, CampaignEntryFactory, CampaignFactory

    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    campaign = CampaignFactory(
        organisation=practice.organisation,
        name="Winter flu 2026",
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status=status,
        started_at=datetime(2026, 11, 1, 9, 0, tzinfo=LONDON),
    )
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    CampaignEntryFactory(campaign=campaign, patient=practice.patient, link=link, invited_at=link.created_at)
    CampaignEntryFactory(campaign=campaign)
    page = axe_page
    page.set_viewport_size({"width": 320, "height": 800})
    sign_in(page, practice)

    def check(name: str) -> None:
        assert axe_violations(page) == [], name
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), f"{name}: scrolls sideways"

    page.goto(f"/campaigns/{campaign.reference}/")
    expect(page.get_by_role("heading", name="Winter flu 2026")).to_be_visible()
    check(f"campaign page, {status}")
    page.goto(f"/campaigns/{campaign.reference}/revoke-links/")
    check("revoke all links: confirm")
    if status in ("sending", "waiting", "paused"):
        page.goto(f"/campaigns/{campaign.reference}/stop/")
        check("stop sending: confirm")
        page.get_by_role("button", name="Yes, stop sending").click()
        expect(page.get_by_text("Campaign stopped")).to_be_visible()
        check("campaign stopped, with its message")
    assert BookingLink.objects.get(pk=link.pk).status == "active"
