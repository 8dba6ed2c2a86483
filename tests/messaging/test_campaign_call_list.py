"""A campaign's call list: who is on it and when, and staff recording the outcome of each call.

Two members of staff recording the same row at once are in test_campaign_call_list_races.py.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client

from booking.formats import LONDON
from booking.models import AuditEvent, BookingLink
from messaging.campaigns.follow_ups import campaign_call_list, campaign_follow_ups_send
from messaging.models import Campaign, CampaignEntry
from tests.factories import CampaignEntryFactory, PatientFactory
from tests.scenarios import CAMPAIGN_INVITED, make_campaign, make_invitation, make_practice

pytestmark = pytest.mark.django_db


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


INVITED = CAMPAIGN_INVITED  # a Tuesday, GMT
DAY_5 = london(2026, 12, 6, 10, 0)
DAY_10 = london(2026, 12, 11, 10, 0)
DAY_12 = london(2026, 12, 13, 10, 0)


def text(response) -> str:
    content = response.content.decode()
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", content)).strip())


def followed_up(entry: CampaignEntry) -> CampaignEntry:
    """The follow-ups sent on time, on days 5 and 10."""
    assert campaign_follow_ups_send(now=DAY_5) >= 1
    assert campaign_follow_ups_send(now=DAY_10) >= 1
    entry.refresh_from_db()
    return entry


def on_list(campaign: Campaign, now: datetime) -> list[int]:
    return [entry.pk for entry in campaign_call_list(campaign=campaign, now=now)]


@contextmanager
def signed_in_at(moment: datetime, client: Client, user: object) -> Iterator[Client]:
    """The clock at `moment`, and the member of staff signed in then (sessions end after 10 hours)."""
    with time_machine.travel(moment):
        client.force_login(user)
        yield client


def page_url(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.reference}/call-list/"


def outcome_url(campaign: Campaign, entry: CampaignEntry) -> str:
    return f"/campaigns/{campaign.reference}/call-list/{entry.pk}/"


class TestWhoIsOnIt:
    def test_two_days_after_the_last_follow_up_and_not_before(self, flu_campaign, invited_entry):
        followed_up(invited_entry)
        assert on_list(flu_campaign, DAY_12 - timedelta(minutes=1)) == []
        assert on_list(flu_campaign, DAY_12) == [invited_entry.pk]

    def test_with_no_follow_ups_two_days_after_the_invitation(self, practice):
        campaign = make_campaign(practice, follow_up_1_days=None, follow_up_2_days=None)
        entry = make_invitation(campaign, practice.patient, invited_at=INVITED)
        assert on_list(campaign, london(2026, 12, 3, 9, 59)) == []
        assert on_list(campaign, london(2026, 12, 3, 10, 0)) == [entry.pk]

    def test_with_one_follow_up_two_days_after_it(self, practice):
        campaign = make_campaign(practice, follow_up_1_days=5, follow_up_2_days=None)
        entry = make_invitation(campaign, practice.patient, invited_at=INVITED)
        campaign_follow_ups_send(now=DAY_5)
        assert on_list(campaign, london(2026, 12, 8, 9, 59)) == []
        assert on_list(campaign, london(2026, 12, 8, 10, 0)) == [entry.pk]

    def test_a_follow_up_that_went_late_puts_it_off(self, flu_campaign, invited_entry):
        BookingLink.objects.filter(pk=invited_entry.link_id).update(expires_at=None)
        campaign_follow_ups_send(now=DAY_5)
        late = DAY_10 + timedelta(days=1)
        campaign_follow_ups_send(now=late)
        assert on_list(flu_campaign, DAY_12) == []
        assert on_list(flu_campaign, late + timedelta(days=2)) == [invited_entry.pk]

    def test_a_patient_who_booked_or_declined_is_not_on_it(self, flu_campaign, practice):
        booked = make_invitation(flu_campaign, practice.patient, invited_at=INVITED)
        declined = make_invitation(flu_campaign, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        BookingLink.objects.filter(pk=booked.link_id).update(status="booked")
        BookingLink.objects.filter(pk=declined.link_id).update(status="declined", declined_at=DAY_5)
        assert on_list(flu_campaign, DAY_12) == []

    def test_a_link_that_expired_or_was_revoked_stays_on_it(self, flu_campaign, practice, invited_entry):
        revoked = make_invitation(flu_campaign, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        BookingLink.objects.filter(pk=revoked.link_id).update(status="revoked")
        # The invitation's link expired on day 14; the patient still hasn't booked.
        assert sorted(on_list(flu_campaign, INVITED + timedelta(days=20))) == sorted([invited_entry.pk, revoked.pk])

    def test_rows_not_invited_or_with_an_outcome_or_of_another_campaign_are_not_on_it(
        self, flu_campaign, practice, invited_entry
    ):
        CampaignEntryFactory(campaign=flu_campaign)  # found, not invited yet
        recorded = make_invitation(flu_campaign, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        CampaignEntry.objects.filter(pk=recorded.pk).update(call_outcome="no_answer")
        make_invitation(make_campaign(practice), practice.patient, invited_at=INVITED)
        assert on_list(flu_campaign, DAY_12) == [invited_entry.pk]


class TestThePage:
    def test_it_lists_the_patients_to_call_with_an_outcome_form_each(
        self, staff_client, flu_campaign, invited_entry, practice
    ):
        followed_up(invited_entry)
        with signed_in_at(DAY_12, staff_client, practice.user):
            response = staff_client.get(page_url(flu_campaign))
        assert response.status_code == 200
        page = text(response)
        assert "Call list" in page
        for heading in ["Patient", "NHS number", "Mobile", "Invited", "Follow-ups sent", "Link status"]:
            assert heading in page
        patient = practice.patient
        assert f"{patient.full_name} {patient.nhs_number_for_display} {patient.mobile_for_display}" in page
        assert "Tuesday 1 December 2026" in page or "1 December" in page
        assert "Active, expires in 2 days" in page
        for label in ["Booked by phone", "Declined", "No answer", "Record outcome"]:
            assert label in page
        assert "No calls recorded yet." in page

    def test_before_anyone_is_due_it_says_so(self, staff_client, flu_campaign, invited_entry, practice):
        with signed_in_at(DAY_5, staff_client, practice.user):
            page = text(staff_client.get(page_url(flu_campaign)))
        assert "Nobody to call now" in page

    def test_recording_an_outcome_moves_the_row_to_recorded_with_a_banner(
        self, staff_client, flu_campaign, invited_entry, practice
    ):
        followed_up(invited_entry)
        with signed_in_at(DAY_12, staff_client, practice.user):
            response = staff_client.post(outcome_url(flu_campaign, invited_entry), {"outcome": "booked_by_phone"})
            assert response.status_code == 302
            assert response.url == page_url(flu_campaign)
            page = text(staff_client.get(response.url))
        assert f"Success {practice.patient.full_name}: booked by phone recorded." in page
        assert "Nobody to call now" in page
        assert "1 call recorded" in page
        assert f"{practice.patient.full_name} {practice.patient.nhs_number_for_display} Booked by phone" in page
        invited_entry.refresh_from_db()
        assert invited_entry.call_outcome == "booked_by_phone"
        assert invited_entry.call_outcome_by == practice.user
        (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN)
        assert event.organisation == practice.organisation
        assert event.actor == practice.user
        assert event.detail == {
            "did": "call_outcome",
            "campaign": flu_campaign.reference,
            "row": invited_entry.row_number,
            "outcome": "booked_by_phone",
        }

    def test_a_second_record_keeps_the_first_and_says_so(self, staff_client, flu_campaign, invited_entry):
        assert staff_client.post(outcome_url(flu_campaign, invited_entry), {"outcome": "no_answer"}).status_code == 302
        response = staff_client.post(outcome_url(flu_campaign, invited_entry), {"outcome": "declined"}, follow=True)
        assert "already had an outcome recorded: no answer. Nothing was changed." in text(response)
        invited_entry.refresh_from_db()
        assert invited_entry.call_outcome == "no_answer"
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).count() == 1

    @pytest.mark.parametrize("data", [{}, {"outcome": "maybe"}])
    def test_a_bad_outcome_says_why_with_400_and_records_nothing(
        self, staff_client, flu_campaign, invited_entry, practice, data
    ):
        followed_up(invited_entry)
        with signed_in_at(DAY_12, staff_client, practice.user):
            response = staff_client.post(outcome_url(flu_campaign, invited_entry), data)
        assert response.status_code == 400
        assert "There is a problem" in text(response)
        assert "Choose Booked by phone, Declined or No answer." in text(response)
        invited_entry.refresh_from_db()
        assert invited_entry.call_outcome == ""

    def test_a_row_of_another_campaign_or_not_invited_is_not_found(
        self, staff_client, flu_campaign, invited_entry, practice
    ):
        other = make_invitation(make_campaign(practice), practice.patient, invited_at=INVITED)
        not_invited = CampaignEntryFactory(campaign=flu_campaign)
        for row in [other, not_invited]:
            assert staff_client.post(outcome_url(flu_campaign, row), {"outcome": "no_answer"}).status_code == 404
        assert (
            staff_client.post(f"/campaigns/{flu_campaign.reference}/call-list/0/", {"outcome": "x"}).status_code == 404
        )
        assert not CampaignEntry.objects.exclude(call_outcome="").exists()

    def test_a_manager_sees_it_too(self, manager_client, flu_campaign, invited_entry):
        assert manager_client.get(page_url(flu_campaign)).status_code == 200

    def test_another_organisations_staff_and_strangers_dont(self, flu_campaign, invited_entry):
        other = make_practice("Hillview")
        client = Client()
        client.force_login(other.user)
        assert client.get(page_url(flu_campaign)).status_code == 404
        assert client.post(outcome_url(flu_campaign, invited_entry), {"outcome": "no_answer"}).status_code == 404
        response = Client().get(page_url(flu_campaign))
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/")
        assert Client().get("/campaigns/not-a-reference/call-list/").status_code == 302

    def test_recording_needs_a_post(self, staff_client, flu_campaign, invited_entry):
        assert staff_client.get(outcome_url(flu_campaign, invited_entry)).status_code == 405

    @pytest.mark.parametrize("patients", [2, 20])
    def test_the_page_costs_the_same_queries_whatever_its_size(
        self, staff_client, flu_campaign, practice, patients, django_assert_num_queries
    ):
        for i in range(patients):
            patient = PatientFactory(organisation=practice.organisation)
            entry = make_invitation(flu_campaign, patient, invited_at=INVITED)
            if i % 2:
                CampaignEntry.objects.filter(pk=entry.pk).update(
                    call_outcome="no_answer", call_outcome_by=practice.user
                )
        # The session and the user, the organisations the user may see, the campaign, the list's
        # count and its page, the recorded rows and their count.
        with signed_in_at(DAY_12 + timedelta(days=30), staff_client, practice.user), django_assert_num_queries(8):
            assert staff_client.get(page_url(flu_campaign)).status_code == 200
