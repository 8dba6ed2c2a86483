"""Changing and cancelling an appointment through its link, as the domain functions do them.

The pages are tested in test_managing_an_appointment.py, the races in test_change_races.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from booking.appointments import (
    appointment_book,
    appointment_cancel,
    appointment_cancel_by_patient,
    appointment_change,
    booking_link_booked_appointment,
)
from booking.exceptions import (
    AppointmentNotCurrent,
    AppointmentNotFound,
    ChangeNotAllowed,
    LinkNotBookable,
    SlotNotAllowed,
    SlotTaken,
)
from booking.links import booking_link_offer_withdrawn
from booking.models import (
    Appointment,
    AppointmentType,
    AuditEvent,
    BookingLink,
    CancellationReason,
    CancellationSource,
    SharingAgreement,
    Slot,
)
from booking.signals import appointment_cancelled, appointment_changed
from tests.factories import BookingLinkFactory, PractitionerFactory, SlotFactory
from tests.scenarios import make_hub

pytestmark = pytest.mark.django_db


def free_slots(practice) -> list[Slot]:
    return list(Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start"))


@pytest.fixture
def booked_link(practice, link) -> tuple[BookingLink, Appointment]:
    appointment = appointment_book(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
    return link, appointment


def booked_for(link: BookingLink) -> list[Appointment]:
    return list(Appointment.objects.filter(booking_link=link, status="booked"))


class TestChange:
    def test_a_change_books_the_new_time_frees_the_old_and_keeps_the_history(
        self, practice, booked_link, django_capture_on_commit_callbacks
    ):
        link, old = booked_link
        target = free_slots(practice)[0]
        sent = []
        appointment_changed.connect(lambda **kwargs: sent.append(kwargs), weak=False, dispatch_uid="test-changed")
        try:
            with django_capture_on_commit_callbacks(execute=True):
                new = appointment_change(
                    link_id=link.pk, appointment_id=old.pk, slot_id=target.pk, ip_address="203.0.113.9"
                )
        finally:
            appointment_changed.disconnect(dispatch_uid="test-changed")
        old.refresh_from_db()
        assert (old.status, old.cancellation_source, old.cancellation_reason) == (
            "cancelled",
            CancellationSource.CHANGED,
            CancellationReason.CHANGED,
        )
        assert Slot.objects.get(pk=old.slot_id).status == "free"
        assert Slot.objects.get(pk=target.pk).status == "booked"
        assert (new.replaces_id, new.original_id, new.change_count, new.booking_link_id) == (old.pk, old.pk, 1, link.pk)
        assert booked_for(link) == [new]
        assert AuditEvent.objects.filter(action=AuditEvent.Action.APPOINTMENT_CHANGED, appointment=new).exists()
        assert [(call["appointment"], call["previous"]) for call in sent] == [(new, old)]
        assert sent[0]["previous"].cancellation_source == CancellationSource.CHANGED
        assert BookingLink.objects.get(pk=link.pk).token_encrypted  # still carried by later messages

    def test_a_second_change_keeps_the_chains_first_appointment(self, practice, booked_link):
        link, first = booked_link
        second = appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        third = appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert (third.original_id, third.replaces_id, third.change_count) == (first.pk, second.pk, 2)

    def test_changes_stop_at_the_types_limit_but_cancelling_still_works(self, practice, booked_link):
        link, _ = booked_link
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(max_changes=1)
        appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        with pytest.raises(ChangeNotAllowed) as error:
            appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert error.value.refused == "changes_used"
        assert "changed once" in error.value.message
        appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.NO_LONGER_NEEDED)
        assert booked_for(link) == []

    def test_a_taken_time_changes_nothing(self, practice, booked_link):
        link, old = booked_link
        target = free_slots(practice)[0]
        Slot.objects.filter(pk=target.pk).update(status="booked")
        with pytest.raises(SlotTaken):
            appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=target.pk)
        assert booked_for(link) == [old]
        assert Slot.objects.get(pk=old.slot_id).status == "booked"

    def test_the_time_already_booked_or_one_the_link_never_offered_is_refused(self, practice, booked_link):
        link, old = booked_link
        with pytest.raises(SlotNotAllowed, match="already have"):
            appointment_change(link_id=link.pk, slot_id=old.slot_id)
        other = PractitionerFactory(organisation=practice.organisation)
        same_start = SlotFactory(
            practitioner=other,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=old.slot.start,
            end=old.slot.end,
        )
        with pytest.raises(SlotNotAllowed, match="already have"):
            appointment_change(link_id=link.pk, slot_id=same_start.pk)
        elsewhere = SlotFactory(
            start=timezone.now() + timedelta(days=2), end=timezone.now() + timedelta(days=2, minutes=5)
        )
        for slot_id in (elsewhere.pk, 999_999_999):
            with pytest.raises(SlotNotAllowed):
                appointment_change(link_id=link.pk, slot_id=slot_id)
        assert booked_for(link) == [old]

    def test_a_stale_or_forged_appointment_reference_is_refused(self, practice, booked_link):
        link, old = booked_link
        new = appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=free_slots(practice)[0].pk)
        with pytest.raises(AppointmentNotCurrent):
            appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=free_slots(practice)[0].pk)
        someone_else = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        theirs = appointment_book(link_id=someone_else.pk, slot_id=free_slots(practice)[0].pk)
        with pytest.raises(AppointmentNotFound):
            appointment_change(link_id=link.pk, appointment_id=theirs.pk, slot_id=free_slots(practice)[0].pk)
        with pytest.raises(AppointmentNotFound):
            appointment_cancel_by_patient(
                link_id=link.pk, appointment_id=theirs.pk, reason=CancellationReason.NO_LONGER_NEEDED
            )
        assert booked_for(link) == [new]
        assert booked_for(someone_else) == [theirs]

    def test_the_cut_off_is_checked_at_the_moment_of_the_change(self, practice, booked_link):
        link, old = booked_link
        cut_off = old.slot.start - timedelta(hours=24)
        target = free_slots(practice)[0]
        for now in (cut_off, cut_off + timedelta(seconds=1), old.slot.start):
            with pytest.raises(ChangeNotAllowed) as error:
                appointment_change(link_id=link.pk, slot_id=target.pk, now=now)
            with pytest.raises(ChangeNotAllowed):
                appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.OTHER, detail="x", now=now)
        assert "less than 24 hours before" in error.value.message or "passed" in error.value.message
        assert booked_for(link) == [old]
        new = appointment_change(link_id=link.pk, slot_id=target.pk, now=cut_off - timedelta(seconds=1))
        assert booked_for(link) == [new]

    def test_a_type_not_online_is_refused(self, practice, booked_link):
        link, old = booked_link
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(online_changes_until_hours=None)
        with pytest.raises(ChangeNotAllowed) as error:
            appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert error.value.refused == "not_online"
        assert booked_for(link) == [old]

    def test_an_expired_booked_link_still_changes_and_cancels(self, practice, booked_link):
        link, _ = booked_link
        now = timezone.now()
        BookingLink.objects.filter(pk=link.pk).update(
            created_at=now - timedelta(days=2), expires_at=now - timedelta(hours=1)
        )
        new = appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert booked_for(link) == [new]
        appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.CANNOT_MAKE_TIME)
        assert booked_for(link) == []

    @pytest.mark.parametrize("status", ["revoked", "locked"])
    def test_a_revoked_or_locked_link_changes_and_cancels_nothing(self, practice, booked_link, status):
        link, old = booked_link
        BookingLink.objects.filter(pk=link.pk).update(status=status, failed_attempts=5 if status == "locked" else 0)
        with pytest.raises(LinkNotBookable) as error:
            appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert error.value.state == status
        with pytest.raises(LinkNotBookable):
            appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.NO_LONGER_NEEDED)
        assert booked_for(link) == [old]

    def test_a_withdrawn_type_may_not_change_but_may_cancel(self, practice, booked_link):
        link, old = booked_link
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(self_bookable=False)
        link.refresh_from_db()
        assert booking_link_offer_withdrawn(
            link=BookingLink.objects.select_related("appointment_type").get(pk=link.pk)
        ) == ("type_withdrawn")
        with pytest.raises(LinkNotBookable) as error:
            appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        assert error.value.state == "type_withdrawn"
        assert booked_for(link) == [old]
        appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.NO_LONGER_NEEDED)
        assert booked_for(link) == []

    def test_an_ended_agreement_stops_a_change_at_a_hub(self, practice):
        hub = make_hub(practice)
        start = timezone.now() + timedelta(days=4)
        SlotFactory(
            practitioner=hub.practitioner,
            location=hub.location,
            appointment_type=hub.appointment_type,
            start=start,
            end=start + timedelta(minutes=10),
        )
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=hub.appointment_type, location=hub.location
        )
        hub_slots = list(Slot.objects.filter(appointment_type=hub.appointment_type).order_by("start"))
        old = appointment_book(link_id=link.pk, slot_id=hub_slots[0].pk)
        SharingAgreement.objects.filter(pk=hub.agreement.pk).update(ended_at=timezone.now())
        with pytest.raises(LinkNotBookable) as error:
            appointment_change(link_id=link.pk, slot_id=hub_slots[1].pk)
        assert error.value.state == "agreement_ended"
        assert booked_for(link) == [old]

    def test_nothing_booked_through_the_link_is_not_current(self, link, practice):
        with pytest.raises(AppointmentNotCurrent):
            appointment_change(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        with pytest.raises(LinkNotBookable):
            appointment_change(link_id=999_999_999, slot_id=free_slots(practice)[0].pk)


class TestPatientCancel:
    def test_the_patient_cancels_with_a_reason_and_the_slot_is_free_again(
        self, booked_link, django_capture_on_commit_callbacks
    ):
        link, appointment = booked_link
        sent = []
        appointment_cancelled.connect(lambda **kwargs: sent.append(kwargs), weak=False, dispatch_uid="test-cancelled")
        try:
            with django_capture_on_commit_callbacks(execute=True):
                appointment_cancel_by_patient(
                    link_id=link.pk,
                    appointment_id=appointment.pk,
                    reason=CancellationReason.OTHER,
                    detail="Moving house",
                    ip_address="203.0.113.9",
                )
        finally:
            appointment_cancelled.disconnect(dispatch_uid="test-cancelled")
        appointment.refresh_from_db()
        assert (appointment.status, appointment.cancellation_source, appointment.cancellation_reason) == (
            "cancelled",
            "patient",
            "other",
        )
        assert (appointment.cancellation_detail, appointment.cancelled_by) == ("Moving house", None)
        assert Slot.objects.get(pk=appointment.slot_id).status == "free"
        assert BookingLink.objects.get(pk=link.pk).token_encrypted == ""
        event = AuditEvent.objects.get(action=AuditEvent.Action.CANCELLED, appointment=appointment)
        assert (event.ip_address, event.actor) == ("203.0.113.9", None)
        assert [call["appointment"].pk for call in sent] == [appointment.pk]

    def test_a_second_cancel_finds_nothing_to_cancel(self, booked_link):
        link, appointment = booked_link
        appointment_cancel_by_patient(
            link_id=link.pk, appointment_id=appointment.pk, reason=CancellationReason.OTHER, detail="x"
        )
        with pytest.raises(AppointmentNotCurrent):
            appointment_cancel_by_patient(
                link_id=link.pk, appointment_id=appointment.pk, reason=CancellationReason.OTHER, detail="x"
            )
        assert AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED).count() == 1

    def test_only_a_patients_reasons_are_accepted(self, booked_link):
        link, appointment = booked_link
        with pytest.raises(ValueError, match="not a reason a patient gives"):
            appointment_cancel_by_patient(link_id=link.pk, reason=CancellationReason.BOOKED_IN_ERROR)
        assert booking_link_booked_appointment(link=link) == appointment

    def test_a_practice_cancel_of_a_link_booking_still_works(self, practice, booked_link):
        _, appointment = booked_link
        assert appointment_cancel(appointment=Appointment.objects.get(pk=appointment.pk), actor=practice.user)
        appointment.refresh_from_db()
        assert (appointment.status, appointment.cancellation_source, appointment.cancelled_by) == (
            "cancelled",
            "practice",
            practice.user,
        )
