"""Fixtures the messaging tests share; those every folder uses are in tests/conftest.py."""

from __future__ import annotations

import pytest
from django.test import override_settings

from booking.models import StaffMembership
from messaging.models import Campaign, CampaignEntry
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN
from tests.scenarios import CAMPAIGN_INVITED, Practice, make_campaign, make_invitation
from tests.workers import DATABASE_TASKS


@pytest.fixture
def twilio_account(settings) -> None:
    """Our Twilio account's credentials, as Twilio's webhooks expect them: the signatures on its
    callbacks are checked with AUTH_TOKEN, over the URL at PUBLIC_BASE_URL."""
    settings.TWILIO_ACCOUNT_SID = ACCOUNT_SID
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = "http://testserver"


@pytest.fixture
def manager_client(staff_client, practice):
    """The practice's member of staff, signed in, made a manager."""
    StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
    return staff_client


@pytest.fixture
def flu_campaign(practice: Practice) -> Campaign:
    """The practice's campaign under way, "Flu 2026", with the default follow-ups (days 5 and 10)."""
    return make_campaign(practice, name="Flu 2026")


@pytest.fixture
def invited_entry(flu_campaign: Campaign, practice: Practice) -> CampaignEntry:
    """Its invitation of the practice's patient, sent at CAMPAIGN_INVITED (by SMS, a 14-day link)."""
    return make_invitation(flu_campaign, practice.patient, invited_at=CAMPAIGN_INVITED)


@pytest.fixture
def database_task_rows():
    """The database task backend: queuing writes task rows (as in production) and runs nothing."""
    with override_settings(TASKS=DATABASE_TASKS):
        yield
