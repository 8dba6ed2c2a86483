"""Sent messages: delivery and link status, and revoking and unlocking links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from booking.models import Appointment, AuditEvent, BookingLink, Slot, StaffMembership
from tests.factories import AppointmentFactory, BookingLinkFactory, MessageFactory, SlotFactory

pytestmark = pytest.mark.django_db


def message_with_link(practice, **link_fields):
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location, **link_fields
    )
    return MessageFactory(patient=practice.patient, booking_link=link)


class TestLinkStatus:
    @pytest.mark.parametrize(
        ("fields", "shown"),
        [
            ({"expires_at": "days:3"}, "Active, expires in 3 days"),
            ({"expires_at": "hours:5"}, "Active, expires in 5 hours"),
            ({"expires_at": None}, "Active, never expires"),
            ({"status": "revoked"}, "Revoked"),
            ({"status": "locked", "failed_attempts": 5}, "Locked"),
        ],
    )
    def test_the_list_shows_each_links_status(self, staff_client, practice, fields, shown):
        expires = fields.get("expires_at", "days:14")
        if isinstance(expires, str):
            unit, amount = expires.split(":")
            fields["expires_at"] = timezone.now() + timedelta(**{unit: int(amount)}) - timedelta(minutes=1)
        message_with_link(practice, **fields)
        assert shown in staff_client.get("/messages/").content.decode()

    def test_an_expired_link_says_expired(self, staff_client, practice):
        message = message_with_link(practice)
        BookingLink.objects.filter(pk=message.booking_link.pk).update(
            created_at=timezone.now() - timedelta(days=20), expires_at=timezone.now() - timedelta(days=1)
        )
        assert "Expired" in staff_client.get("/messages/").content.decode()

    def test_a_booked_link_says_when_for(self, staff_client, practice):
        message = message_with_link(practice, status="booked")
        slot = SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=datetime(2030, 6, 3, 13, 15, tzinfo=UTC),  # 2:15pm in London (BST)
            end=datetime(2030, 6, 3, 13, 25, tzinfo=UTC),
            status=Slot.Status.BOOKED,
        )
        AppointmentFactory(slot=slot, patient=practice.patient, booking_link=message.booking_link)
        assert "Booked for Monday 3 June 2030 at 2:15pm" in staff_client.get("/messages/").content.decode()

    def test_the_list_makes_the_same_queries_for_3_or_30_messages(
        self, staff_client, practice, django_assert_max_num_queries
    ):
        for _ in range(3):
            message_with_link(practice)
        staff_client.get("/messages/")
        with django_assert_max_num_queries(12) as few:
            staff_client.get("/messages/")
        for _ in range(27):
            booked = message_with_link(practice, status="booked")
            AppointmentFactory(
                slot=SlotFactory(
                    practitioner=practice.practitioner,
                    location=practice.location,
                    appointment_type=practice.appointment_type,
                    status=Slot.Status.BOOKED,
                ),
                patient=practice.patient,
                booking_link=booked.booking_link,
                status=Appointment.Status.BOOKED,
            )
        with django_assert_max_num_queries(len(few.captured_queries)):
            staff_client.get("/messages/")

    def test_only_the_organisations_messages_are_listed(self, staff_client, practice, other_practice):
        MessageFactory(patient=other_practice.patient)
        assert other_practice.patient.full_name not in staff_client.get("/messages/").content.decode()

    def test_another_organisations_message_is_not_found(self, staff_client, practice, other_practice):
        message = MessageFactory(patient=other_practice.patient)
        assert staff_client.get(f"/messages/{message.reference}/").status_code == 404


class TestRevokeAndUnlock:
    def test_revoking_a_link_stops_it_and_is_audited(self, staff_client, practice):
        message = message_with_link(practice)
        response = staff_client.post(f"/messages/links/{message.booking_link.reference}/revoke/")
        assert response.status_code == 302
        message.booking_link.refresh_from_db()
        assert message.booking_link.status == BookingLink.Status.REVOKED
        event = AuditEvent.objects.get(action=AuditEvent.Action.REVOKED)
        assert (event.actor, event.booking_link) == (practice.user, message.booking_link)
        assert "revoked" in staff_client.get(response["Location"]).content.decode()

    def test_only_a_manager_can_unlock(self, staff_client, practice):
        message = message_with_link(practice, status="locked", failed_attempts=5)
        assert "Unlock link" not in staff_client.get("/messages/").content.decode()
        response = staff_client.post(f"/messages/links/{message.booking_link.reference}/unlock/")
        assert response.status_code == 403
        message.booking_link.refresh_from_db()
        assert message.booking_link.status == "locked"

    def test_unlocking_a_locked_link_lets_the_patient_try_again_and_is_audited(self, staff_client, practice):
        StaffMembership.objects.filter(user=practice.user).update(role="manager")
        message = message_with_link(practice, status="locked", failed_attempts=5)
        assert "Unlock link" in staff_client.get("/messages/").content.decode()
        staff_client.post(f"/messages/links/{message.booking_link.reference}/unlock/")
        message.booking_link.refresh_from_db()
        assert (message.booking_link.status, message.booking_link.failed_attempts) == ("active", 0)
        assert AuditEvent.objects.filter(action=AuditEvent.Action.UNLOCKED, actor=practice.user).exists()

    def test_revoke_and_unlock_only_accept_post(self, staff_client, practice):
        message = message_with_link(practice)
        assert staff_client.get(f"/messages/links/{message.booking_link.reference}/revoke/").status_code == 405
        message.booking_link.refresh_from_db()
        assert message.booking_link.status == BookingLink.Status.ACTIVE

    def test_another_organisations_link_cant_be_revoked(self, staff_client, practice, other_practice):
        message = message_with_link(other_practice)
        response = staff_client.post(f"/messages/links/{message.booking_link.reference}/revoke/")
        assert response.status_code == 404
        message.booking_link.refresh_from_db()
        assert message.booking_link.status == BookingLink.Status.ACTIVE

    def test_the_return_address_must_be_one_of_ours(self, staff_client, practice):
        message = message_with_link(practice)
        response = staff_client.post(
            f"/messages/links/{message.booking_link.reference}/revoke/", {"next": "https://evil.example/"}
        )
        assert response["Location"] == "/messages/"


def test_many_messages_are_shown_a_page_at_a_time(staff_client, practice):
    for _ in range(30):
        MessageFactory(patient=practice.patient)
    first = staff_client.get("/messages/").content.decode()
    assert "Older" in first
    assert "Newer" not in first
    second = staff_client.get("/messages/?page=2").content.decode()
    assert "Newer" in second
    assert second.count("nhsuk-table__row") == 5  # 30 messages, 25 a page
