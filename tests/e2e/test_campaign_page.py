"""A manager watches a campaign's funnel move, and pauses, resumes and stops it, with and without JavaScript."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from booking.models import BookingLink, StaffMembership
from messaging.models import Campaign
from tests.e2e.conftest import sign_in
from tests.factories import BookingLinkFactory, CampaignEntryFactory, CampaignFactory, MessageFactory, PatientFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _campaign_with_rows(practice, *, invited: int, waiting: int) -> Campaign:
    """A sending campaign of the practice: `invited` rows invited (delivered), `waiting` not yet."""
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    campaign = CampaignFactory(
        organisation=practice.organisation,
        name="Winter flu 2026",
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status="sending",
        started_at=timezone.now() - timedelta(days=1),
        list_name="flu.csv",
        list_rows=invited + waiting,
    )
    for _ in range(invited):
        patient = PatientFactory(organisation=practice.organisation)
        link = BookingLinkFactory(
            patient=patient, appointment_type=practice.appointment_type, location=practice.location, declinable=True
        )
        message = MessageFactory(patient=patient, booking_link=link, status="delivered")
        CampaignEntryFactory(campaign=campaign, patient=patient, link=link, message=message, invited_at=timezone.now())
    for _ in range(waiting):
        CampaignEntryFactory(campaign=campaign)
    return campaign


def _count(page, label: str):
    """The count cell of the funnel's row headed `label`."""
    row = page.get_by_role("row", name=re.compile(f"^{re.escape(label)} "))
    return row.get_by_role("cell").first


def test_a_manager_pauses_resumes_and_stops_and_sees_the_counts_change(page, practice):
    campaign = _campaign_with_rows(practice, invited=3, waiting=2)
    sign_in(page, practice)
    page.goto(f"/campaigns/{campaign.reference}/")

    expect(page.get_by_role("heading", name="Winter flu 2026", level=1)).to_be_visible()
    table = page.get_by_role("table", name="Funnel")
    for label in (
        "Invited",
        "Sent",
        "Delivered",
        "Opened",
        "Date of birth confirmed",
        "Booked",
        "Declined",
        "Expired",
        "Failed",
    ):
        expect(table.get_by_role("rowheader", name=label, exact=True)).to_be_visible()
    expect(_count(page, "Invited")).to_have_text("3")
    expect(_count(page, "Opened")).to_have_text("0")

    # A patient opens their link and gives their date of birth: the page catches up by itself.
    link = BookingLink.objects.filter(campaign_entry__campaign=campaign).first()
    BookingLink.objects.filter(pk=link.pk).update(first_opened_at=timezone.now(), verified_at=timezone.now())
    expect(_count(page, "Opened")).to_have_text("1", timeout=15_000)
    expect(_count(page, "Date of birth confirmed")).to_have_text("1")
    expect(page.get_by_role("row", name=re.compile("^Opened "))).to_contain_text("33%")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Campaign paused: no more invitations go until you resume it.")).to_be_visible()
    expect(page.get_by_text("Paused", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Pause")).to_have_count(0)

    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text("Campaign resumed")).to_be_visible()
    expect(page.get_by_text("Sending", exact=True)).to_be_visible()

    page.get_by_role("button", name="Stop sending").click()
    expect(page.get_by_role("heading", name="Stop sending this campaign?")).to_be_visible()
    page.get_by_role("button", name="Yes, stop sending").click()
    expect(page.get_by_text("Campaign stopped: nothing more will be sent.")).to_be_visible()
    expect(page.get_by_text("Stopped", exact=True)).to_be_visible()
    expect(page.get_by_role("button", name="Stop sending")).to_have_count(0)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.STOPPED
    # Stopping didn't revoke: the links still work, and the manager may revoke them all.
    assert set(BookingLink.objects.filter(campaign_entry__campaign=campaign).values_list("status", flat=True)) == {
        "active"
    }
    page.get_by_role("button", name="Revoke all links").click()
    expect(page.get_by_text("3 links can still be used to book.")).to_be_visible()
    page.get_by_role("button", name="Yes, revoke all links").click()
    expect(page.get_by_text("3 links revoked")).to_be_visible()
    assert set(BookingLink.objects.filter(campaign_entry__campaign=campaign).values_list("status", flat=True)) == {
        "revoked"
    }


def test_the_page_works_without_javascript_by_its_refresh_link(page_without_javascript, practice):
    page = page_without_javascript
    campaign = _campaign_with_rows(practice, invited=2, waiting=0)
    sign_in(page, practice)
    page.goto(f"/campaigns/{campaign.reference}/")
    expect(_count(page, "Opened")).to_have_text("0")

    BookingLink.objects.filter(campaign_entry__campaign=campaign).update(first_opened_at=timezone.now())
    page.get_by_role("link", name="Refresh the campaign's figures").click()
    expect(_count(page, "Opened")).to_have_text("2")

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_text("Campaign paused")).to_be_visible()
    page.get_by_role("button", name="Stop sending").click()
    page.get_by_role("button", name="Yes, stop sending").click()
    expect(page.get_by_text("Stopped", exact=True)).to_be_visible()


def test_the_controls_work_by_keyboard(page, practice):
    campaign = _campaign_with_rows(practice, invited=1, waiting=1)
    sign_in(page, practice)
    page.goto(f"/campaigns/{campaign.reference}/")

    pause = page.get_by_role("button", name="Pause")
    for _ in range(60):
        if pause.evaluate("element => element === document.activeElement"):
            break
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Campaign paused")).to_be_visible()


def test_the_outcomes_download_is_a_csv_of_every_row(page, practice):
    campaign = _campaign_with_rows(practice, invited=2, waiting=1)
    sign_in(page, practice)
    page.goto(f"/campaigns/{campaign.reference}/")

    with page.expect_download() as download:
        page.get_by_role("link", name="Download outcomes (CSV)").click()

    text = Path(download.value.path()).read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    assert lines[0] == "Row,NHS number,Patient,Outcome,Call outcome"
    assert len(lines) == 4
    assert sum("Delivered" in line for line in lines) == 2
    assert sum("Not invited yet" in line for line in lines) == 1
