"""A booked link: staff can revoke it (the appointment stays booked), its token is held while it
can still manage the appointment and wiped when it can't, and a change keeps it working."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from booking.appointments import appointment_book, appointment_cancel
from booking.encryption import token_encrypt
from booking.links import booking_link_revoke, booking_link_state, booking_link_unlock, booking_links_wipe_unusable
from booking.models import Appointment, AuditEvent, BookingLink, Slot, StaffMembership
from messaging.confirmations import confirmation_send
from messaging.delivery import message_deliver
from messaging.models import Message
from messaging.tasks import delivery_enqueue
from messaging.texts import message_link_url
from tests.factories import BookingLinkFactory, MessageFactory
from tests.scenarios import Practice, make_change

pytestmark = pytest.mark.django_db


def no_enqueue(**kwargs: object) -> None:
    """Delivery is not the point here: the message is only written."""


def booked_through_a_link(practice: Practice, capture) -> tuple[BookingLink, Appointment]:
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    MessageFactory(patient=practice.patient, booking_link=link, channel="sms", to_address=practice.patient.mobile)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()
    with capture(execute=True):
        appointment = appointment_book(link_id=link.pk, slot_id=slot.pk)
    link.refresh_from_db()
    return link, appointment


def free_slot(practice: Practice) -> Slot:
    return Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()


class TestRevokingABookedLink:
    def test_it_stops_the_link_wipes_its_token_and_keeps_the_appointment(
        self, practice, django_capture_on_commit_callbacks
    ):
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        assert link.token_encrypted
        assert booking_link_revoke(link=link, actor=practice.user) is True
        link.refresh_from_db()
        appointment.refresh_from_db()
        assert (link.status, link.token_encrypted) == (BookingLink.Status.REVOKED, "")
        assert appointment.status == Appointment.Status.BOOKED
        assert AuditEvent.objects.filter(action=AuditEvent.Action.REVOKED, booking_link=link).count() == 1
        assert booking_link_revoke(link=link, actor=practice.user) is False  # once

    def test_staff_read_it_as_booked_with_the_link_revoked(self, practice, django_capture_on_commit_callbacks):
        link, _appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        booking_link_revoke(link=link, actor=practice.user)
        state = booking_link_state(link=link, appointment=Appointment.objects.select_related("slot").get())
        assert re.fullmatch(r"Booked for \w+ \d+ \w+ \d{4} at [\w:]+, link revoked", state), state

    def test_the_sweep_wipes_a_revoked_booked_links_token(self, practice, django_capture_on_commit_callbacks):
        link, _ = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        # As if revoked before revoking wiped tokens itself: the sweep still catches it.
        BookingLink.objects.filter(pk=link.pk).update(
            status=BookingLink.Status.REVOKED, token_encrypted=token_encrypt("x" * 22)
        )
        assert booking_links_wipe_unusable() == 1
        assert BookingLink.objects.get(pk=link.pk).token_encrypted == ""

    def test_a_confirmation_written_before_the_revoke_is_not_sent_with_a_dead_link(
        self, practice, django_capture_on_commit_callbacks
    ):
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        confirmation = Message.objects.get(confirms=appointment)
        Message.objects.filter(pk=confirmation.pk).update(status=Message.Status.QUEUED, attempts=0)
        booking_link_revoke(link=link, actor=practice.user)
        assert message_deliver(message_id=confirmation.pk, enqueue=delivery_enqueue) == "failed"
        confirmation.refresh_from_db()
        assert confirmation.failure_reason == (
            "Not sent: its link can't be used any more (revoked, or the appointment has passed)."
        )

    def test_a_confirmation_written_after_the_revoke_carries_no_link(
        self, practice, settings, django_capture_on_commit_callbacks
    ):
        settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        booking_link_revoke(link=link, actor=practice.user)
        confirmation = confirmation_send(appointment_id=appointment.pk, enqueue=no_enqueue)
        assert confirmation is not None
        assert confirmation.link_carried is None
        assert "[link" not in confirmation.body
        assert f"call {practice.organisation.name} on {practice.organisation.phone_for_display}" in confirmation.body


class TestTheStaffPages:
    def test_a_booked_links_message_offers_revoke_and_says_what_it_does(
        self, staff_client, practice, django_capture_on_commit_callbacks
    ):
        link, _ = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        invitation = Message.objects.get(booking_link=link)
        listed = staff_client.get("/messages/").content.decode()
        assert f'action="/messages/links/{link.reference}/revoke/"' in listed
        detail = staff_client.get(f"/messages/{invitation.reference}/").content.decode()
        assert f'action="/messages/links/{link.reference}/revoke/"' in detail
        response = staff_client.post(f"/messages/links/{link.reference}/revoke/", follow=True)
        page = response.content.decode()
        assert "can no longer be used to change or cancel online. The appointment is still booked." in page
        assert ", link revoked" in page
        assert f'action="/messages/links/{link.reference}/revoke/"' not in page  # nothing left to revoke

    def test_a_second_revoke_changes_nothing_and_says_so(self, staff_client, practice):
        link = BookingLinkFactory(patient=practice.patient, status=BookingLink.Status.REVOKED)
        MessageFactory(patient=practice.patient, booking_link=link)
        response = staff_client.post(f"/messages/links/{link.reference}/revoke/", follow=True)
        assert "That link was already revoked, so nothing changed." in response.content.decode()

    def test_confirmations_and_notices_are_labelled(self, staff_client, practice, django_capture_on_commit_callbacks):
        _link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slot(practice))
        with django_capture_on_commit_callbacks(execute=True):
            appointment_cancel(appointment=changed, actor=practice.user)
        page = staff_client.get("/messages/").content.decode()
        for label in ("Booking confirmation", "Change confirmation", "Cancellation notice"):
            assert label in page


class TestUnlockAfterBooking:
    def test_a_link_locked_after_booking_unlocks_to_booked(self, practice, django_capture_on_commit_callbacks):
        StaffMembership.objects.filter(user=practice.user).update(role="manager")
        link, _ = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
        assert booking_link_unlock(link=link, actor=practice.user) is True
        assert link.status == BookingLink.Status.BOOKED

    def test_one_whose_appointment_was_cancelled_unlocks_to_booked_too_never_active(
        self, practice, django_capture_on_commit_callbacks
    ):
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        appointment_cancel(appointment=appointment, actor=practice.user)
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
        assert booking_link_unlock(link=link, actor=practice.user) is True
        # Active, it could book a second appointment: it has had its one booking.
        assert link.status == BookingLink.Status.BOOKED


class TestAChangeKeepsTheLink:
    def test_the_token_stays_and_the_link_manages_the_new_appointment(
        self, practice, django_capture_on_commit_callbacks
    ):
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slot(practice))
        link.refresh_from_db()
        assert link.status == BookingLink.Status.BOOKED
        assert link.token_encrypted
        assert booking_links_wipe_unusable() == 0
        assert BookingLink.objects.get(pk=link.pk).token_encrypted
        confirmation = Message.objects.select_related("link_carried", "confirms").get(confirms=changed)
        assert confirmation.link_carried == link
        assert message_link_url(message=confirmation).startswith("http://testserver/b/")

    def test_the_token_goes_once_the_new_appointment_has_passed(self, practice, django_capture_on_commit_callbacks):
        link, appointment = booked_through_a_link(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slot(practice))
        changed = Appointment.objects.select_related("slot").get(pk=changed.pk)
        assert booking_links_wipe_unusable(now=changed.slot.start - timedelta(minutes=1)) == 0
        assert booking_links_wipe_unusable(now=changed.slot.start + timedelta(minutes=1)) == 1
        assert BookingLink.objects.get(pk=link.pk).token_encrypted == ""
        assert timezone.now() < changed.slot.start
