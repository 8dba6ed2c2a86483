"""The campaign's funnel: each stage counted from the rows' links, messages and appointments, in one query."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.models import Appointment, BookingLink
from messaging.campaigns.funnel import STAGES, campaign_funnel, duration_text
from messaging.models import CampaignEntry, Message
from tests.factories import (
    AppointmentFactory,
    BookingLinkFactory,
    CampaignEntryFactory,
    CampaignFactory,
    MessageFactory,
    PatientFactory,
    SlotFactory,
)
from tests.scenarios import make_change

pytestmark = pytest.mark.django_db


def _campaign(practice):
    return CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status="sending",
        started_at=timezone.now() - timedelta(days=20),
    )


def _invite(campaign, *, invited_at, message_status="sent", expires_at=None, **link_fields):
    """A found row invited at `invited_at`: its link (declinable) and its invitation message."""
    patient = PatientFactory(organisation=campaign.organisation)
    link = BookingLinkFactory(
        patient=patient,
        appointment_type=campaign.appointment_type,
        location=campaign.location,
        declinable=True,
        created_at=invited_at,
        expires_at=expires_at or invited_at + timedelta(days=14),
        **link_fields,
    )
    message = MessageFactory(patient=patient, booking_link=link, status=message_status)
    return CampaignEntryFactory(campaign=campaign, patient=patient, link=link, message=message, invited_at=invited_at)


def _book(entry, *, booked_at, practice):
    slot = SlotFactory(
        practitioner=practice.practitioner,
        location=practice.location,
        appointment_type=practice.appointment_type,
        status="booked",
    )
    BookingLink.objects.filter(pk=entry.link_id).update(status=BookingLink.Status.BOOKED)
    appointment = AppointmentFactory(slot=slot, patient=entry.patient, booking_link=entry.link)
    Appointment.objects.filter(pk=appointment.pk).update(booked_at=booked_at)
    return appointment


def test_each_stage_counts_the_rows_that_reached_it(practice):
    now = timezone.now()
    day = timedelta(days=1)
    campaign = _campaign(practice)
    # Not invited yet, and a rejected row (neither counts as invited; the first is still to invite).
    CampaignEntryFactory(campaign=campaign)
    CampaignEntryFactory(campaign=campaign, patient=None, nhs_number="123", problem="invalid")
    queued = _invite(campaign, invited_at=now, message_status="queued")
    sent = _invite(campaign, invited_at=now - day)
    delivered = _invite(campaign, invited_at=now - day, message_status="delivered")
    opened = _invite(campaign, invited_at=now - day, message_status="delivered", first_opened_at=now)
    verified = _invite(campaign, invited_at=now - day, message_status="delivered", first_opened_at=now, verified_at=now)
    booked = _invite(
        campaign, invited_at=now - 2 * day, message_status="delivered", first_opened_at=now, verified_at=now
    )
    _book(booked, booked_at=now - day, practice=practice)
    # Booked, then cancelled: still booked through the link as far as the funnel goes.
    cancelled = _invite(campaign, invited_at=now - 4 * day, message_status="delivered", first_opened_at=now)
    appointment = _book(cancelled, booked_at=now - day, practice=practice)
    Appointment.objects.filter(pk=appointment.pk).update(
        status="cancelled", cancelled_at=now, cancellation_source="patient", cancellation_reason="no_longer_needed"
    )
    declined = _invite(
        campaign,
        invited_at=now - day,
        message_status="delivered",
        first_opened_at=now,
        verified_at=now,
        status="declined",
        declined_at=now,
    )
    by_phone = _invite(campaign, invited_at=now - 15 * day)
    CampaignEntry.objects.filter(pk=by_phone.pk).update(call_outcome="booked_by_phone")
    declined_by_phone = _invite(campaign, invited_at=now - 15 * day, message_status="delivered")
    CampaignEntry.objects.filter(pk=declined_by_phone.pk).update(call_outcome="declined")
    expired = _invite(campaign, invited_at=now - 15 * day, expires_at=now - day)
    failed = _invite(campaign, invited_at=now - day, message_status="failed")

    funnel = campaign_funnel(campaign=campaign, now=now)

    counts = {stage.label: stage.count for stage in funnel.stages}
    assert counts == {
        "Invited": 12,
        "Sent": 10,  # all but the queued and the failed
        "Delivered": 7,
        "Opened": 5,
        "Date of birth confirmed": 3,
        "Booked": 3,  # two online (one cancelled since), one by phone
        "Declined": 2,
        "Expired": 1,
        "Failed": 1,
    }
    assert [stage.label for stage in funnel.stages] == list(STAGES)
    assert funnel.booked_by_phone == 1
    assert funnel.to_invite == 1
    assert funnel.found == 13
    # Still able to book: the queued, sent, delivered, opened, verified and failed rows' links (the
    # rest booked, declined, or invited 15 days ago with 14-day links).
    assert funnel.live_links == 6
    stage = {stage.label: stage for stage in funnel.stages}
    assert stage["Booked"].percentage == "25%"
    assert stage["Invited"].percentage == "100%"
    # Online bookings took 1 day and 3 days: median 2 days, 90th percentile 2.8 days.
    assert funnel.time_to_book_median == timedelta(days=2)
    assert funnel.time_to_book_90 == timedelta(days=2.8)
    del queued, sent, delivered, opened, verified, declined, expired, failed


def test_a_booking_changed_twice_counts_once_with_its_first_booking_time(practice):
    now = timezone.now()
    campaign = _campaign(practice)
    entry = _invite(campaign, invited_at=now - timedelta(days=3), message_status="delivered")
    first = _book(entry, booked_at=now - timedelta(days=2), practice=practice)
    second = make_change(first, SlotFactory(practitioner=practice.practitioner, location=practice.location))
    make_change(second, SlotFactory(practitioner=practice.practitioner, location=practice.location))

    funnel = campaign_funnel(campaign=campaign, now=now)

    assert funnel.count("Booked") == 1
    assert funnel.count("Invited") == 1
    assert funnel.time_to_book_median == timedelta(days=1)


def test_a_campaign_with_nobody_invited_has_no_percentages_or_time_to_book(practice):
    campaign = _campaign(practice)
    CampaignEntryFactory(campaign=campaign)

    funnel = campaign_funnel(campaign=campaign, now=timezone.now())

    assert funnel.invited == 0
    assert {stage.percentage for stage in funnel.stages} == {"–"}
    assert funnel.time_to_book_median is None
    assert funnel.time_to_book_median_text == ""


def test_the_funnel_is_one_query(practice):
    campaign = _campaign(practice)
    _invite(campaign, invited_at=timezone.now())

    with CaptureQueriesContext(connection) as queries:
        campaign_funnel(campaign=campaign, now=timezone.now())

    assert len(queries) == 1, [q["sql"] for q in queries]
    print(queries[0]["sql"])


def test_another_campaigns_rows_are_not_counted(practice, other_practice):
    campaign = _campaign(practice)
    other = _campaign(other_practice)
    _invite(other, invited_at=timezone.now())

    assert campaign_funnel(campaign=campaign, now=timezone.now()).invited == 0


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(minutes=25, seconds=59), "25 minutes"),
        (timedelta(hours=3, minutes=10), "3 hours 10 minutes"),
        (timedelta(hours=3), "3 hours"),
        (timedelta(days=2, hours=4, minutes=5), "2 days 4 hours"),
        (timedelta(days=1, minutes=5), "1 day"),
        (timedelta(seconds=20), "0 minutes"),
        (None, ""),
    ],
)
def test_time_to_book_reads_in_the_two_largest_units(span, text):
    assert duration_text(span) == text


def test_message_statuses_the_funnel_reads_exist():
    assert {"sent", "delivered", "failed", "queued"} <= set(Message.Status.values)
