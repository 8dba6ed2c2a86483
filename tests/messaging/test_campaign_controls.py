"""Pausing, resuming, stopping a campaign and revoking its links: conditional UPDATEs, audited once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.appointments import appointment_book
from booking.audit import audit_record
from booking.exceptions import LinkNotBookable
from booking.models import Appointment, AuditEvent, BookingLink, Slot
from messaging.campaigns.controls import (
    campaign_links_revoke,
    campaign_pause,
    campaign_resume,
    campaign_stop,
)
from messaging.models import Campaign
from tests.concurrency import lock_waiters, race, wait_until
from tests.factories import AppointmentFactory, BookingLinkFactory, CampaignEntryFactory, CampaignFactory, SlotFactory

pytestmark = pytest.mark.django_db


def _campaign(practice, status="sending"):
    return CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status=status,
        started_at=timezone.now() - timedelta(days=1),
    )


def _invited(campaign, **link_fields):
    entry = CampaignEntryFactory(campaign=campaign, invited_at=timezone.now())
    entry.link = BookingLinkFactory(
        patient=entry.patient,
        appointment_type=campaign.appointment_type,
        location=campaign.location,
        declinable=True,
        **link_fields,
    )
    entry.save(update_fields=["link"])
    return entry.link


def _campaign_events(campaign):
    return list(
        AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN, detail__campaign=campaign.reference).values_list(
            "detail__did", flat=True
        )
    )


@pytest.mark.parametrize("status", ["sending", "waiting"])
def test_pausing_a_running_campaign_pauses_it_and_audits_once(practice, status):
    campaign = _campaign(practice, status)

    assert campaign_pause(campaign=campaign, user=practice.user) is True

    assert campaign.status == Campaign.Status.PAUSED
    event = AuditEvent.objects.get(action=AuditEvent.Action.CAMPAIGN)
    assert event.detail == {"campaign": campaign.reference, "did": "paused"}
    assert event.actor == practice.user
    assert event.organisation == practice.organisation


def test_a_second_pause_changes_nothing_and_says_so(practice):
    campaign = _campaign(practice)
    campaign_pause(campaign=campaign, user=practice.user)
    changed_at = campaign.status_changed_at

    assert campaign_pause(campaign=campaign, user=practice.user) is False

    assert campaign.status_changed_at == changed_at
    assert _campaign_events(campaign) == ["paused"]


def test_resuming_sends_again_and_only_from_paused(practice):
    campaign = _campaign(practice, "paused")

    assert campaign_resume(campaign=campaign, user=practice.user) is True
    assert campaign.status == Campaign.Status.SENDING
    assert campaign_resume(campaign=campaign, user=practice.user) is False
    assert _campaign_events(campaign) == ["resumed"]


@pytest.mark.parametrize("status", ["checking", "checked", "stopped", "finished"])
def test_a_campaign_not_running_cannot_be_paused_resumed_or_stopped(practice, status):
    campaign = _campaign(practice, status)

    assert campaign_pause(campaign=campaign, user=practice.user) is False
    assert campaign_resume(campaign=campaign, user=practice.user) is False
    assert campaign_stop(campaign=campaign, user=practice.user) is False

    campaign.refresh_from_db()
    assert campaign.status == status
    assert _campaign_events(campaign) == []


@pytest.mark.parametrize("status", ["sending", "waiting", "paused"])
def test_stopping_records_when_and_leaves_the_links_working(practice, status):
    campaign = _campaign(practice, status)
    link = _invited(campaign)

    assert campaign_stop(campaign=campaign, user=practice.user) is True

    assert campaign.status == Campaign.Status.STOPPED
    assert campaign.stopped_at is not None
    link.refresh_from_db()
    assert link.status == BookingLink.Status.ACTIVE
    assert link.token_encrypted != ""  # still held: follow-ups may carry it
    assert _campaign_events(campaign) == ["stopped"]


def test_revoking_all_links_is_one_update_and_spares_booked_ones(practice, other_practice):
    campaign = _campaign(practice, "stopped")
    active = [_invited(campaign) for _ in range(3)]
    locked = _invited(campaign, status="locked", failed_attempts=5)
    booked = _invited(campaign, status="booked")
    appointment = AppointmentFactory(
        slot=SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            status="booked",
        ),
        patient=booked.patient,
        booking_link=booked,
    )
    declined = _invited(campaign, status="declined", declined_at=timezone.now())
    not_the_campaigns = BookingLinkFactory(patient=practice.patient)
    other_campaign = _campaign(other_practice)
    other_link = _invited(other_campaign)

    with CaptureQueriesContext(connection) as queries:
        result = campaign_links_revoke(campaign=campaign, user=practice.user)

    assert (result.links, result.stopped) == (4, False)
    link_updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "booking_bookinglink"')]
    assert len(link_updates) == 1
    for link in [*active, locked]:
        link.refresh_from_db()
        assert (link.status, link.token_encrypted) == (BookingLink.Status.REVOKED, "")
        assert link.revoked_at is not None
    for link, status in [
        (booked, "booked"),
        (declined, "declined"),
        (not_the_campaigns, "active"),
        (other_link, "active"),
    ]:
        link.refresh_from_db()
        assert link.status == status
    appointment.refresh_from_db()
    assert appointment.status == "booked"
    campaign.refresh_from_db()
    assert campaign.links_revoked_at is not None
    event = AuditEvent.objects.get(action=AuditEvent.Action.CAMPAIGN)
    assert event.detail == {"campaign": campaign.reference, "did": "revoked all links", "links": 4, "stopped": False}
    # And on each patient's own trail, as a link revoked by hand.
    trail = AuditEvent.objects.filter(action=AuditEvent.Action.REVOKED)
    assert sorted(trail.values_list("booking_link_id", flat=True)) == sorted(link.pk for link in [*active, locked])
    assert {(event.patient_id, event.actor_id) for event in trail} == {
        (link.patient_id, practice.user.pk) for link in [*active, locked]
    }


def test_revoking_all_links_of_a_running_campaign_stops_it_too(practice):
    campaign = _campaign(practice, "sending")
    _invited(campaign)

    result = campaign_links_revoke(campaign=campaign, user=practice.user)

    assert (result.links, result.stopped) == (1, True)
    assert campaign.status == Campaign.Status.STOPPED
    assert campaign.stopped_at is not None
    assert _campaign_events(campaign) == ["revoked all links"]


def test_revoking_again_changes_nothing_and_audits_nothing(practice):
    campaign = _campaign(practice, "stopped")
    _invited(campaign)
    campaign_links_revoke(campaign=campaign, user=practice.user)
    revoked_at = campaign.links_revoked_at

    result = campaign_links_revoke(campaign=campaign, user=practice.user)

    assert result.changed is False
    assert campaign.links_revoked_at == revoked_at
    assert _campaign_events(campaign) == ["revoked all links"]


@pytest.mark.django_db(transaction=True)
def test_two_tabs_pausing_at_once_pause_once(practice):
    campaign = _campaign(practice)

    results = race(lambda i: campaign_pause(campaign=Campaign.objects.get(pk=campaign.pk), user=practice.user), 6)

    assert sorted(results, key=str) == [False] * 5 + [True], results
    assert _campaign_events(campaign) == ["paused"]


@pytest.mark.django_db(transaction=True)
def test_control_reading_the_status_first_pauses_more_than_once(practice):
    # The same six clicks with the check in Python instead of in the UPDATE's WHERE: each tab reads
    # "sending" before any writes, so each "pauses" and each is audited. The guard is the WHERE.
    campaign = _campaign(practice)
    all_read = threading.Barrier(6)

    def pause_unguarded(i: int) -> bool:
        current = Campaign.objects.select_related("organisation").get(pk=campaign.pk)
        all_read.wait(timeout=30)
        if current.status not in ("sending", "waiting"):
            return False
        Campaign.objects.filter(pk=campaign.pk).update(status="paused")
        audit_record(
            action=AuditEvent.Action.CAMPAIGN,
            actor=practice.user,
            organisation=current.organisation,
            detail={"campaign": campaign.reference, "did": "paused"},
        )
        return True

    results = race(pause_unguarded, 6)

    assert results == [True] * 6
    assert _campaign_events(campaign) == ["paused"] * 6


@pytest.mark.django_db(transaction=True)
def test_stop_and_pause_at_once_end_stopped_whatever_the_order(practice):
    campaign = _campaign(practice)

    def act(i: int) -> bool:
        fresh = Campaign.objects.select_related("organisation").get(pk=campaign.pk)
        if i % 2:
            return campaign_stop(campaign=fresh, user=practice.user)
        return campaign_pause(campaign=fresh, user=practice.user)

    results = race(act, 4)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.STOPPED
    assert results.count(True) in (1, 2)  # the stop, and a pause only if it came first
    assert _campaign_events(campaign).count("stopped") == 1


def _bookable(practice):
    """A sending campaign with one invited row and a free time its link can book."""
    campaign = _campaign(practice)
    link = _invited(campaign)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()
    return campaign, link, slot


def _one_story(link) -> str:
    """How the link ended: booked with its appointment, or revoked with none. Anything else fails."""
    link.refresh_from_db()
    booked = Appointment.objects.filter(booking_link=link, status="booked").count()
    if link.status == BookingLink.Status.BOOKED:
        assert booked == 1
        return "booked"
    assert (link.status, booked, link.token_encrypted) == (BookingLink.Status.REVOKED, 0, "")
    return "revoked"


@pytest.mark.django_db(transaction=True)
def test_revoking_all_while_a_patient_books_ends_booked_or_revoked_never_both(practice):
    stories = set()
    for _ in range(3):  # the practice's three free times, one a round
        campaign, link, slot = _bookable(practice)

        def act(i: int, campaign=campaign, link=link, slot=slot) -> object:
            if i == 0:
                return appointment_book(link_id=link.pk, slot_id=slot.pk)
            return campaign_links_revoke(
                campaign=Campaign.objects.select_related("organisation").get(pk=campaign.pk), user=practice.user
            )

        results = race(act, 2)

        story = _one_story(link)
        stories.add(story)
        if story == "revoked":
            assert isinstance(results[0], LinkNotBookable), results
        Slot.objects.filter(pk=slot.pk).update(status="blocked")  # the next round books another time
    assert stories <= {"booked", "revoked"}


def _revoke_while_booking(practice, revoke) -> BookingLink:
    """Run `revoke(campaign)` while a booking holds the campaign's one link's row, then let the
    booking commit (the link booked) and the revoke go on; the link as it ended."""
    campaign, link, _ = _bookable(practice)
    locked, commit = threading.Event(), threading.Event()

    def booking() -> None:
        # What appointment_book does to the link, slowed down: lock its row, then mark it booked.
        try:
            with transaction.atomic():
                BookingLink.objects.select_for_update().filter(pk=link.pk).values("pk").get()
                locked.set()
                commit.wait(timeout=30)
                BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.BOOKED)
        finally:
            connections.close_all()

    booker = threading.Thread(target=booking)
    booker.start()
    assert locked.wait(timeout=10)
    revoking = threading.Thread(target=lambda: race(lambda i: revoke(campaign), 1))
    revoking.start()
    assert wait_until(lambda: lock_waiters() >= 1), "the revoke should wait for the link's row"
    commit.set()
    booker.join(timeout=30)
    revoking.join(timeout=30)
    link.refresh_from_db()
    return link


@pytest.mark.django_db(transaction=True)
def test_a_revoke_waiting_for_a_booking_of_the_link_then_spares_the_booked_link(practice):
    link = _revoke_while_booking(
        practice, lambda campaign: campaign_links_revoke(campaign=campaign, user=practice.user)
    )

    assert link.status == BookingLink.Status.BOOKED
    assert link.token_encrypted != ""


@pytest.mark.django_db(transaction=True)
def test_control_a_status_checked_inside_a_subquery_revokes_the_booked_link(practice):
    # The same UPDATE with the status condition where Django puts it for a filter across the
    # join (inside `id IN (SELECT ...)`): after waiting for the booking, PostgreSQL rechecks only
    # the outer WHERE against the booked row, and the subquery still sees it active.
    def revoke_through_the_join(campaign) -> int:
        return BookingLink.objects.filter(
            campaign_entry__campaign_id=campaign.pk, status__in=["active", "locked"]
        ).update(status=BookingLink.Status.REVOKED, token_encrypted="")

    link = _revoke_while_booking(practice, revoke_through_the_join)

    assert link.status == BookingLink.Status.REVOKED
