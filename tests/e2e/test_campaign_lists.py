"""A manager creates a campaign from a CSV file, watches the list being checked and starts it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from booking.models import StaffMembership
from messaging.campaigns.checks import campaign_lists_check
from messaging.models import Campaign
from tests.e2e.conftest import sign_in
from tests.scenarios import make_campaign_list

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_manager_creates_checks_and_starts_a_campaign(page, practice):
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    patients = make_campaign_list(practice)
    sign_in(page, practice)

    page.get_by_role("link", name="Campaigns", exact=True).click()
    expect(page.get_by_role("heading", name="Campaigns")).to_be_visible()
    page.get_by_role("link", name="New campaign").click()
    page.get_by_label("Campaign name").fill("Flu 2026 over-65s")
    page.get_by_label("Select an appointment type").select_option(label="Flu vaccination")
    page.get_by_label("Location", exact=True).select_option(label=practice.location.name)
    # The practitioners fit the chosen type and location (htmx asks for the fields again).
    practitioner = page.get_by_label("Practitioner (optional)")
    expect(practitioner.get_by_role("option", name="Dr Riverside (GP)")).to_be_attached()
    practitioner.select_option(label="Dr Riverside (GP)")
    expect(page.get_by_label("Link expiry")).to_have_value("14d")
    expect(page.get_by_label("Message")).to_have_value(re.compile(r"\{\{Appointment Link\}\}"))
    page.get_by_label("SMS, or email if no mobile").check()
    page.get_by_label("Patients (CSV file)").set_input_files(
        files=[{"name": "flu.csv", "mimeType": "text/csv", "buffer": patients.csv()}]
    )
    page.get_by_role("button", name="Check the list").click()

    expect(page.get_by_role("heading", name="Checking the list")).to_be_visible()
    expect(page.get_by_text("Checked 0 of 10 rows")).to_be_visible()
    expect(page.get_by_role("progressbar", name="Checked 0 of 10 rows")).to_be_visible()
    campaign = Campaign.objects.get()
    assert campaign.status == "checking"

    assert campaign_lists_check() == 10  # the scheduler's job, run here
    # The page refreshes itself every 2 seconds: no click.
    expect(page.get_by_role("heading", name="The list is checked")).to_be_visible(timeout=15_000)
    counts = page.get_by_role("table", name="What the check found")
    expect(counts.get_by_role("row", name="Found 1")).to_be_visible()
    expect(counts.get_by_role("row", name="Duplicate in the list 1")).to_be_visible()
    expect(counts.get_by_role("row", name="Not found 2")).to_be_visible()
    expect(page.get_by_text("1 patient for 3 free times in the next")).to_be_visible()
    expect(page.get_by_role("link", name="Download the rejected rows (CSV)")).to_be_visible()

    page.get_by_label("Invitations per day").fill("50")
    page.get_by_label("Invitations per free time").fill("2")
    page.get_by_role("button", name="Start sending").click()
    page.wait_for_url(f"**/campaigns/{campaign.reference}/")
    campaign.refresh_from_db()
    assert (campaign.status, campaign.per_day, campaign.per_free_time) == ("sending", 50, 2)
    assert campaign.practitioner == practice.practitioner
