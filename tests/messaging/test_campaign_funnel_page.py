"""The campaign's page: who may see it, its funnel and controls, the outcomes CSV, constant queries."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.campaign_funnel import campaign_funnel_rows_make
from booking.models import AuditEvent, BookingLink, StaffMembership
from messaging.campaigns.funnel import campaign_funnel
from messaging.models import Campaign, CampaignEntry
from tests.factories import (
    BookingLinkFactory,
    CampaignEntryFactory,
    CampaignFactory,
    MessageFactory,
    PatientFactory,
    StaffMembershipFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def _campaign(practice, status="sending", **fields):
    return CampaignFactory(
        organisation=practice.organisation,
        name="Winter flu 2026",
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status=status,
        started_at=None if status in ("checking", "checked") else timezone.now() - timedelta(days=3),
        list_name="flu-search.csv",
        list_rows=3,
        **fields,
    )


def _invite(campaign, *, message_status="delivered", patient=None, **link_fields):
    patient = patient or PatientFactory(organisation=campaign.organisation)
    now = timezone.now()
    link = BookingLinkFactory(
        patient=patient,
        appointment_type=campaign.appointment_type,
        location=campaign.location,
        declinable=True,
        created_at=now - timedelta(days=2),
        **link_fields,
    )
    message = MessageFactory(patient=patient, booking_link=link, status=message_status)
    return CampaignEntryFactory(
        campaign=campaign, patient=patient, link=link, message=message, invited_at=now - timedelta(days=2)
    )


def _url(campaign, suffix=""):
    return f"/campaigns/{campaign.reference}/{suffix}"


def test_the_manager_sees_the_status_settings_funnel_and_controls(manager_client, practice):
    campaign = _campaign(practice, follow_up_1_days=5, follow_up_2_days=10, per_day=150, per_free_time=3)
    _invite(campaign)
    _invite(campaign, message_status="failed")
    CampaignEntryFactory(campaign=campaign)

    response = manager_client.get(_url(campaign))

    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Winter flu 2026</h1>" in html
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
        assert f'<th scope="row" class="nhsuk-table__header">{label}</th>' in html
    assert "1 of 3 patients" in html  # still to invite
    assert "Flu vaccination" in html
    assert "Riverside Surgery" in html
    assert "14 days" in html
    assert "At most 150 invitations a day and 3 for each free time, texts from 8am to 8pm" in html
    assert "5 and 10 days after the invitation" in html
    for button in (">Pause</button>", ">Stop sending</button>", ">Revoke all links</button>"):
        assert button in html
    assert ">Resume</button>" not in html
    assert f'href="/campaigns/{campaign.reference}/call-list/"' in html
    assert "Download outcomes (CSV)" in html
    # Live: htmx asks for the funnel again every 10 seconds; without JavaScript, a Refresh link.
    assert f'hx-get="/campaigns/{campaign.reference}/funnel/" hx-trigger="every 10s"' in html
    assert f'<a href="/campaigns/{campaign.reference}/">Refresh' in html


@pytest.mark.parametrize(
    ("status", "text", "buttons", "absent"),
    [
        (
            "waiting",
            "Waiting for free times: it goes on by itself when more appear",
            ["Pause", "Stop sending"],
            ["Resume"],
        ),
        ("paused", "Paused", ["Resume", "Stop sending"], ["Pause"]),
        ("stopped", "Stopped", [], ["Pause", "Resume", "Stop sending"]),
        ("finished", "Finished", [], ["Pause", "Resume", "Stop sending"]),
    ],
)
def test_each_status_says_what_it_means_and_offers_its_controls(
    manager_client, practice, status, text, buttons, absent
):
    campaign = _campaign(practice, status)

    html = manager_client.get(_url(campaign)).content.decode()

    assert f'<dd class="nhsuk-summary-list__value">{text}</dd>' in html
    for button in buttons:
        assert f">{button}</button>" in html
    for button in absent:
        assert f">{button}</button>" not in html


@pytest.mark.parametrize("status", ["checking", "checked"])
def test_a_campaign_not_started_sends_the_manager_to_its_check(manager_client, practice, status):
    campaign = _campaign(practice, status)

    response = manager_client.get(_url(campaign))

    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.reference}/check/"


def test_staff_who_are_not_managers_are_refused(staff_client, practice):
    campaign = _campaign(practice)

    assert staff_client.get(_url(campaign)).status_code == 403
    assert staff_client.post(_url(campaign, "pause/")).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "sending"


def test_another_organisations_manager_gets_404_like_a_missing_campaign(practice, other_practice):
    campaign = _campaign(practice)
    StaffMembership.objects.filter(user=other_practice.user).update(role=StaffMembership.Role.MANAGER)
    client = Client()
    client.force_login(other_practice.user)

    for path in ("", "funnel/", "outcomes.csv", "stop/", "revoke-links/"):
        assert client.get(_url(campaign, path)).status_code == 404
    assert client.post(_url(campaign, "stop/")).status_code == 404
    assert client.get("/campaigns/NOTAREF/").status_code == 404
    campaign.refresh_from_db()
    assert campaign.status == "sending"


def test_a_manager_of_two_organisations_reaches_each_ones_campaign(manager_client, practice, other_practice):
    StaffMembershipFactory(user=practice.user, organisation=other_practice.organisation, role="manager")
    campaign = _campaign(other_practice)

    assert manager_client.get(_url(campaign)).status_code == 200


def test_signed_out_visitors_are_sent_to_sign_in(client, practice):
    response = client.get(_url(_campaign(practice)))

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_the_funnel_fragment_is_the_live_part_alone(manager_client, practice):
    campaign = _campaign(practice)
    _invite(campaign)

    response = manager_client.get(_url(campaign, "funnel/"), HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="campaign-funnel"')
    assert "<h1>" not in html
    assert "Date of birth confirmed" in html


def test_pause_then_pause_again_says_nothing_changed(manager_client, practice):
    campaign = _campaign(practice)

    first = manager_client.post(_url(campaign, "pause/"), follow=True)
    second = manager_client.post(_url(campaign, "pause/"), follow=True)

    assert "Campaign paused" in first.content.decode()
    assert "The campaign is paused, so nothing changed." in second.content.decode()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).count() == 1
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED


def test_resume_from_the_page(manager_client, practice):
    campaign = _campaign(practice, "paused")

    response = manager_client.post(_url(campaign, "resume/"), follow=True)

    assert "Campaign resumed" in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_the_controls_only_act_on_post(manager_client, practice):
    campaign = _campaign(practice)

    assert manager_client.get(_url(campaign, "pause/")).status_code == 405
    assert manager_client.get(_url(campaign, "resume/")).status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == "sending"


def test_stopping_asks_to_confirm_first(manager_client, practice):
    campaign = _campaign(practice)
    link = _invite(campaign).link

    confirm = manager_client.get(_url(campaign, "stop/"))
    campaign.refresh_from_db()
    assert campaign.status == "sending"
    assert "Links already sent keep working until they expire" in confirm.content.decode()
    assert ">Yes, stop sending</button>" in confirm.content.decode()

    done = manager_client.post(_url(campaign, "stop/"), follow=True)

    assert "Campaign stopped: nothing more will be sent." in done.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.STOPPED
    link.refresh_from_db()
    assert link.status == BookingLink.Status.ACTIVE
    again = manager_client.post(_url(campaign, "stop/"), follow=True)
    assert "The campaign is stopped, so nothing changed." in again.content.decode()


def test_revoking_all_links_asks_to_confirm_with_the_count(manager_client, practice):
    campaign = _campaign(practice, "stopped", stopped_at=timezone.now())
    links = [_invite(campaign).link for _ in range(2)]

    confirm = manager_client.get(_url(campaign, "revoke-links/"))
    assert "2 links can still be used to book" in confirm.content.decode()
    assert all(BookingLink.objects.get(pk=link.pk).status == "active" for link in links)

    done = manager_client.post(_url(campaign, "revoke-links/"), follow=True)
    assert "2 links revoked: they can no longer be used to book." in done.content.decode()
    assert set(BookingLink.objects.filter(pk__in=[link.pk for link in links]).values_list("status", flat=True)) == {
        "revoked"
    }
    assert ">Revoke all links</button>" not in done.content.decode()  # none left to revoke

    again = manager_client.post(_url(campaign, "revoke-links/"), follow=True)
    assert "No links were left to revoke, so nothing changed." in again.content.decode()


def _csv(response) -> list[list[str]]:
    assert response.streaming
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_outcomes_csv_has_every_row_with_what_came_of_it(manager_client, practice):
    campaign = _campaign(practice)
    waiting = CampaignEntryFactory(campaign=campaign, row_number=2)
    rejected = CampaignEntryFactory(
        campaign=campaign, row_number=3, patient=None, nhs_number="=HYPERLINK(1)", problem="invalid"
    )
    delivered = _invite(campaign)
    declined = _invite(campaign, status="declined", declined_at=timezone.now(), decline_reason="not_now")
    by_phone = _invite(campaign)
    CampaignEntry.objects.filter(pk=by_phone.pk).update(call_outcome="booked_by_phone")
    failed = _invite(campaign, message_status="failed")
    expired = _invite(campaign, expires_at=timezone.now() - timedelta(hours=1))

    response = manager_client.get(_url(campaign, "outcomes.csv"))

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == f'attachment; filename="campaign-{campaign.reference}-outcomes.csv"'
    rows = _csv(response)
    assert rows[0] == ["Row", "NHS number", "Patient", "Outcome", "Call outcome"]
    by_row = {int(row[0]): row[1:] for row in rows[1:]}
    assert by_row[2] == [waiting.nhs_number, waiting.patient.full_name, "Not invited yet", ""]
    # A formula in the file comes back as text, never a formula a spreadsheet would run.
    assert by_row[3] == ["'=HYPERLINK(1)", "", "Not invited (invalid NHS number)", ""]
    assert by_row[delivered.row_number][2] == "Delivered"
    assert by_row[declined.row_number][2] == "Declined (Not now: maybe later)"
    assert by_row[by_phone.row_number][2:] == ["Booked by phone", "Booked by phone"]
    assert by_row[failed.row_number][2] == "Failed"
    assert by_row[expired.row_number][2] == "Expired"
    del rejected


def test_a_stopped_campaigns_uninvited_rows_say_so(manager_client, practice):
    campaign = _campaign(practice, "stopped", stopped_at=timezone.now())
    CampaignEntryFactory(campaign=campaign, row_number=2)

    rows = _csv(manager_client.get(_url(campaign, "outcomes.csv")))

    assert rows[1][3] == "Not invited (campaign stopped)"


def _queries(client, path) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(queries)


def test_the_page_the_fragment_and_the_csv_take_the_same_queries_at_any_size(manager_client, practice):
    PatientFactory.create_batch(80, organisation=practice.organisation)
    small, large = _campaign(practice), _campaign(practice)
    campaign_funnel_rows_make(campaign=small, rows=20, now=timezone.now())
    campaign_funnel_rows_make(campaign=large, rows=80, now=timezone.now())
    assert CampaignEntry.objects.filter(campaign=large).count() == 80

    for suffix in ("", "funnel/", "outcomes.csv"):
        _queries(manager_client, _url(small, suffix))  # the session's first reads out of the way
        assert _queries(manager_client, _url(small, suffix)) == _queries(manager_client, _url(large, suffix)), suffix
    assert _queries(manager_client, _url(large)) <= 6


def test_the_bench_rows_reach_every_stage(practice):
    PatientFactory.create_batch(40, organisation=practice.organisation)
    campaign = _campaign(practice)
    campaign_funnel_rows_make(campaign=campaign, rows=40, now=timezone.now())

    funnel = campaign_funnel(campaign=campaign, now=timezone.now())
    assert all(stage.count > 0 for stage in funnel.stages), funnel
    assert funnel.booked_by_phone > 0
    assert funnel.to_invite > 0
    assert funnel.time_to_book_median is not None


def test_a_signed_in_user_without_a_membership_is_refused(client, practice):
    client.force_login(UserFactory())

    assert client.get(_url(_campaign(practice))).status_code == 403
