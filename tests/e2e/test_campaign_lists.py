"""A manager creates a campaign from a CSV file, watches the list being checked, starts it and
watches it go: the scheduler's jobs are run here, and the patient answers in another tab."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from booking.formats import LONDON
from booking.models import StaffMembership
from messaging.campaigns.checks import campaign_lists_check
from messaging.campaigns.pacing import campaigns_pace
from messaging.models import Campaign
from messaging.texts import message_text
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

    # The campaign's page: nothing invited until the scheduler's pacing job runs.
    expect(page.get_by_role("heading", name="Flu 2026 over-65s")).to_be_visible()
    funnel = page.get_by_role("table", name="Funnel")
    expect(funnel.get_by_role("row", name=re.compile(r"^Invited 0\b"))).to_be_visible()
    invited = campaigns_pace(now=_in_sending_hours_after(campaign.starts_at or timezone.now()))
    assert invited.invited == 1
    page.reload()
    expect(funnel.get_by_role("row", name=re.compile(r"^Invited 1 100%"))).to_be_visible()
    expect(funnel.get_by_role("row", name=re.compile(r"^Sent 1 100%"))).to_be_visible()

    # The patient opens their invitation in another tab and declines it; the page counts it.
    entry = campaign.entries.get(link__isnull=False)
    patient_page = page.context.new_page()
    link_path = re.search(r"/b/[A-Za-z0-9_-]+", message_text(message=entry.message))
    assert link_path is not None
    patient_page.goto(link_path.group())
    dob = patient_page.get_by_role("group", name="What is your date of birth?")
    born = entry.patient.date_of_birth
    dob.get_by_label("Day", exact=True).fill(str(born.day))
    dob.get_by_label("Month", exact=True).fill(str(born.month))
    dob.get_by_label("Year", exact=True).fill(str(born.year))
    patient_page.get_by_role("button", name="Continue").click()
    patient_page.get_by_role("button", name="I don't want this appointment").click()
    patient_page.get_by_role("button", name="I don't want this appointment").click()
    expect(patient_page.get_by_role("heading", name="You have declined this appointment")).to_be_visible()
    patient_page.close()

    page.reload()
    for stage in ("Opened", "Date of birth confirmed", "Declined"):
        expect(funnel.get_by_role("row", name=re.compile(rf"^{stage} 1 100%"))).to_be_visible()
    expect(funnel.get_by_role("row", name=re.compile(r"^Booked 0\b"))).to_be_visible()


def _in_sending_hours_after(moment: datetime) -> datetime:
    """The first 10am London time at or after `moment`: invitations go only 08:00-20:00."""
    local = moment.astimezone(LONDON)
    ten = local.replace(hour=10, minute=0, second=0, microsecond=0)
    return ten if ten >= local else ten + timedelta(days=1)
