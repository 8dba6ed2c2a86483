"""Booking through a link, and the date-of-birth check, as the domain functions do them."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from booking.appointments import appointment_book, booking_link_booked_appointment
from booking.exceptions import LinkNotBookable, SlotNotAllowed, SlotTaken
from booking.links import (
    DobCheck,
    booking_link_find,
    booking_link_patient_state,
    booking_link_record_opened,
    booking_link_verify_dob,
)
from booking.models import Appointment, AuditEvent, BookingLink, Slot
from booking.slots import slot_list_available
from tests.factories import (
    AppointmentTypeFactory,
    BookingLinkFactory,
    LocationFactory,
    OrganisationFactory,
    PractitionerFactory,
    SharingAgreementFactory,
    SlotFactory,
)

pytestmark = pytest.mark.django_db


def free_slots(practice):
    return list(Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start"))


class TestFinding:
    def test_a_token_finds_its_link(self, link):
        assert booking_link_find(link.token) == link

    @pytest.mark.parametrize("token", ["", "short", "a" * 65, "has space in it here", "ünïcödé" * 4, None, "../../etc"])
    def test_malformed_tokens_find_nothing(self, token):
        assert booking_link_find(token) is None

    def test_a_truncated_token_finds_nothing(self, link):
        assert booking_link_find(link.token[:-1]) is None

    def test_opening_records_the_first_time_and_audits_each_time(self, link):
        booking_link_record_opened(link=link, ip_address="203.0.113.9")
        first = BookingLink.objects.get(pk=link.pk).first_opened_at
        booking_link_record_opened(link=link, ip_address="203.0.113.9")
        assert BookingLink.objects.get(pk=link.pk).first_opened_at == first
        assert AuditEvent.objects.filter(action=AuditEvent.Action.OPENED, booking_link=link).count() == 2


class TestDateOfBirth:
    def test_the_right_date_matches(self, link):
        assert booking_link_verify_dob(link=link, date_of_birth=link.patient.date_of_birth, ip_address=None) == (
            DobCheck.MATCH,
            5,
        )

    def test_a_wrong_date_counts_and_says_how_many_tries_are_left(self, link):
        result = booking_link_verify_dob(link=link, date_of_birth=date(1990, 1, 1), ip_address="203.0.113.9")
        assert result == (DobCheck.MISMATCH, 4)
        assert BookingLink.objects.get(pk=link.pk).failed_attempts == 1
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DOB_FAILED, booking_link=link).count() == 1

    def test_the_fifth_wrong_date_locks_and_then_the_right_one_is_refused(self, link):
        results = [
            booking_link_verify_dob(link=link, date_of_birth=date(1990, 1, 1), ip_address=None) for _ in range(5)
        ]
        assert [r[0] for r in results] == [DobCheck.MISMATCH] * 4 + [DobCheck.LOCKED]
        link.refresh_from_db()
        assert (link.status, link.failed_attempts) == ("locked", 5)
        assert booking_link_verify_dob(link=link, date_of_birth=link.patient.date_of_birth, ip_address=None)[0] == (
            DobCheck.LOCKED
        )
        assert AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED, booking_link=link).count() == 1


class TestStates:
    def test_the_state_follows_the_status_and_the_expiry(self, link):
        assert booking_link_patient_state(link=link) == "active"
        link.expires_at = timezone.now() - timedelta(seconds=1)
        assert booking_link_patient_state(link=link) == "expired"
        for status in ("revoked", "locked", "booked"):
            link.status = status
            assert booking_link_patient_state(link=link) == status

    def test_a_link_without_expiry_never_expires(self, link):
        link.expires_at = None
        assert booking_link_patient_state(link=link, now=timezone.now() + timedelta(days=3650)) == "active"


class TestTimes:
    def test_only_free_times_inside_the_booking_window_are_offered_in_order(self, practice, link):
        taken = free_slots(practice)[0]
        Slot.objects.filter(pk=taken.pk).update(status="booked")
        SlotFactory(  # too soon: inside the minimum notice
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=timezone.now() + timedelta(minutes=30),
            end=timezone.now() + timedelta(minutes=40),
        )
        SlotFactory(  # too far ahead
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=timezone.now() + timedelta(days=40),
            end=timezone.now() + timedelta(days=40, minutes=10),
        )
        times = slot_list_available(link=link)
        assert len(times) == 2
        assert times == sorted(times, key=lambda slot: slot.start)

    def test_a_practitioner_on_the_link_narrows_the_times(self, practice, link):
        other = PractitionerFactory(organisation=practice.organisation)
        start = timezone.now() + timedelta(days=2, hours=3)
        SlotFactory(
            practitioner=other,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start,
            end=start + timedelta(minutes=10),
        )
        assert len(slot_list_available(link=link)) == 4
        link.practitioner = practice.practitioner
        assert len(slot_list_available(link=link)) == 3

    def test_the_list_is_one_query(self, link, django_assert_num_queries):
        with django_assert_num_queries(1):
            [slot.practitioner.name for slot in slot_list_available(link=link)]


class TestBooking:
    def test_booking_makes_the_appointment_and_uses_the_link(self, practice, link, django_capture_on_commit_callbacks):
        slot = free_slots(practice)[0]
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            appointment = appointment_book(link_id=link.pk, slot_id=slot.pk, ip_address="203.0.113.9")
        slot.refresh_from_db()
        link.refresh_from_db()
        assert (appointment.slot, appointment.patient, appointment.booking_link) == (slot, practice.patient, link)
        assert (slot.status, link.status) == ("booked", "booked")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.BOOKED, appointment=appointment).exists()
        assert len(callbacks) == 1  # appointment_booked, after the commit
        assert booking_link_booked_appointment(link=link) == appointment

    def test_a_link_books_once(self, practice, link):
        first, second = free_slots(practice)[:2]
        appointment_book(link_id=link.pk, slot_id=first.pk)
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(link_id=link.pk, slot_id=second.pk)
        assert error.value.state == "booked"
        assert Appointment.objects.count() == 1

    def test_a_taken_slot_says_so(self, practice, link):
        slot = free_slots(practice)[0]
        Slot.objects.filter(pk=slot.pk).update(status="booked")
        with pytest.raises(SlotTaken):
            appointment_book(link_id=link.pk, slot_id=slot.pk)
        assert BookingLink.objects.get(pk=link.pk).status == "active"

    def test_a_slot_of_another_type_location_or_practitioner_is_refused(self, practice, link):
        elsewhere = SlotFactory(
            start=timezone.now() + timedelta(days=2), end=timezone.now() + timedelta(days=2, minutes=5)
        )
        with pytest.raises(SlotNotAllowed):
            appointment_book(link_id=link.pk, slot_id=elsewhere.pk)
        with pytest.raises(SlotNotAllowed):
            appointment_book(link_id=link.pk, slot_id=999_999_999)
        other = PractitionerFactory(organisation=practice.organisation)
        start = timezone.now() + timedelta(days=2, hours=5)
        theirs = SlotFactory(
            practitioner=other,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start,
            end=start + timedelta(minutes=10),
        )
        BookingLink.objects.filter(pk=link.pk).update(practitioner=practice.practitioner)
        with pytest.raises(SlotNotAllowed):
            appointment_book(link_id=link.pk, slot_id=theirs.pk)
        assert not Appointment.objects.exists()

    def test_a_slot_outside_the_booking_window_is_refused(self, practice, link):
        soon = SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=timezone.now() + timedelta(minutes=20),
            end=timezone.now() + timedelta(minutes=30),
        )
        with pytest.raises(SlotNotAllowed):
            appointment_book(link_id=link.pk, slot_id=soon.pk)

    @pytest.mark.parametrize(
        ("change", "state"),
        [
            ({"expires_at": "past"}, "expired"),
            ({"status": "revoked"}, "revoked"),
            ({"status": "locked", "failed_attempts": 5}, "locked"),
        ],
    )
    def test_the_link_is_checked_again_inside_the_booking(self, practice, link, change, state):
        if change.get("expires_at") == "past":
            change = {
                "expires_at": timezone.now() - timedelta(seconds=1),
                "created_at": timezone.now() - timedelta(days=1),
            }
        BookingLink.objects.filter(pk=link.pk).update(**change)
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert error.value.state == state
        assert not Appointment.objects.exists()
        assert Slot.objects.filter(status="booked").count() == 0

    def test_an_ended_sharing_agreement_stops_booking_the_hosts_slot(self, practice):
        host = OrganisationFactory(kind="hub")
        hub_type = AppointmentTypeFactory(organisation=host, minimum_notice_hours=1)
        hub_location = LocationFactory(organisation=host)
        hub_practitioner = PractitionerFactory(organisation=host)
        start = timezone.now() + timedelta(days=2)
        slot = SlotFactory(
            practitioner=hub_practitioner,
            location=hub_location,
            appointment_type=hub_type,
            start=start,
            end=start + timedelta(minutes=10),
        )
        agreement = SharingAgreementFactory(host=host, partner=practice.organisation)
        agreement.appointment_types.set([hub_type])
        agreement.locations.set([hub_location])
        shared = BookingLinkFactory(patient=practice.patient, appointment_type=hub_type, location=hub_location)
        agreement.ended_at = timezone.now()
        agreement.save()
        with pytest.raises(LinkNotBookable):
            appointment_book(link_id=shared.pk, slot_id=slot.pk)
        agreement.ended_at = None
        agreement.save()
        assert appointment_book(link_id=shared.pk, slot_id=slot.pk).slot == slot


class TestLockedAfterBooking:
    def test_unlocking_a_link_locked_after_it_booked_returns_it_to_booked(self, practice, link):
        from booking.links import booking_link_unlock

        appointment_book(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        for _ in range(5):
            booking_link_verify_dob(link=link, date_of_birth=date(1990, 1, 1), ip_address=None)
        link.refresh_from_db()
        assert link.status == "locked"
        booking_link_unlock(link=link, actor=None)
        link.refresh_from_db()
        assert (link.status, link.failed_attempts) == ("booked", 0)

    def test_a_second_booking_on_a_link_is_refused_even_if_its_status_says_active(self, practice, link):
        first, second = free_slots(practice)[:2]
        appointment_book(link_id=link.pk, slot_id=first.pk)
        BookingLink.objects.filter(pk=link.pk).update(status="active")
        with pytest.raises(LinkNotBookable) as error:
            appointment_book(link_id=link.pk, slot_id=second.pk)
        assert error.value.state == "booked"
        assert Slot.objects.get(pk=second.pk).status == "free"
