"""Ending a sharing agreement against a booking already under way, on the real database.

The booking holds the agreement's row `FOR SHARE` from its check to its commit, and the end's
conditional UPDATE needs that row: so an end either comes wholly before a booking (which then
sees it ended) or wholly after it. To make the interleaving certain, a second connection holds
the slot's row lock, so the booking stops just after its agreement check while the end runs.
The controls take the lock away (the unlocked check main had) and show the end then slips in
between the check and the booking, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction

import booking.appointments
from booking.appointments import appointment_book
from booking.exceptions import LinkNotBookable
from booking.links import LinkState
from booking.models import Appointment, AuditEvent, BookingLink, SharingAgreement, Slot
from booking.sharing import sharing_agreement_end
from tests.concurrency import PauseAt, in_thread, lock_waiters, wait_until
from tests.factories import BookingLinkFactory
from tests.scenarios import Hub, Practice, make_hub, make_practice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared_link_and_slot() -> tuple[Hub, Practice, BookingLink, Slot]:
    practice = make_practice()
    hub = make_hub(practice)
    link = BookingLinkFactory(patient=practice.patient, appointment_type=hub.appointment_type, location=hub.location)
    slot = Slot.objects.get(appointment_type=hub.appointment_type)
    return hub, practice, link, slot


def without_the_agreement_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    # Booking then trusts the unlocked check in booking_link_patient_state, as on main before.
    monkeypatch.setattr(booking.appointments, "sharing_agreement_hold", lambda *, link: True)


def end_during_booking(
    hub: Hub, link: BookingLink, slot: Slot, monkeypatch: pytest.MonkeyPatch
) -> tuple[object, object]:
    """Start a booking, let it pass its agreement check and stop before it claims the slot, end
    the agreement, then let the booking go on. Returns (what the booking returned, what the end
    returned)."""
    with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
        booker, booked = in_thread(lambda: appointment_book(link_id=link.pk, slot_id=slot.pk))
        assert pause.reached.wait(timeout=30), "the booking never reached the slot"
        ender, ended = in_thread(
            lambda: sharing_agreement_end(
                organisation=hub.organisation, agreement_id=hub.agreement.pk, actor=AnonymousUser()
            )
        )
        # Guarded, the end waits for the booking's FOR SHARE; unguarded, it finishes now.
        assert wait_until(lambda: not ender.is_alive() or lock_waiters() >= 1)
    booker.join(timeout=30)
    ender.join(timeout=30)
    return booked[0], ended[0]


def booked_after_the_end() -> bool:
    """Whether a booking committed after the agreement's end: its audit row comes later."""
    end = AuditEvent.objects.filter(detail__sharing="ended").order_by("pk").first()
    booked = AuditEvent.objects.filter(action=AuditEvent.Action.BOOKED).order_by("pk").first()
    return end is not None and booked is not None and booked.pk > end.pk


class TestEndAgainstBooking:
    def test_an_end_during_a_booking_waits_for_it_so_the_booking_is_before_the_end(
        self, shared_link_and_slot, monkeypatch
    ):
        hub, _, link, slot = shared_link_and_slot
        booked, ended = end_during_booking(hub, link, slot, monkeypatch)
        assert isinstance(booked, Appointment), booked
        assert ended is True
        assert not booked_after_the_end()

    def test_control_without_the_lock_the_end_slips_in_and_the_booking_lands_after_it(
        self, shared_link_and_slot, monkeypatch
    ):
        without_the_agreement_lock(monkeypatch)
        hub, _, link, slot = shared_link_and_slot
        booked, ended = end_during_booking(hub, link, slot, monkeypatch)
        assert isinstance(booked, Appointment), booked
        assert ended is True
        assert booked_after_the_end()

    def test_an_end_that_commits_first_is_seen_by_a_booking_waiting_for_it(self, shared_link_and_slot):
        hub, _, link, slot = shared_link_and_slot
        booked, ended = book_during_end(hub, link, slot)
        assert ended is True
        assert isinstance(booked, LinkNotBookable), booked
        assert booked.state == LinkState.AGREEMENT_ENDED
        assert not Appointment.objects.exists()

    def test_control_without_the_lock_a_booking_books_through_an_end_committing_under_it(
        self, shared_link_and_slot, monkeypatch
    ):
        without_the_agreement_lock(monkeypatch)
        hub, _, link, slot = shared_link_and_slot
        booked, ended = book_during_end(hub, link, slot)
        assert ended is True
        assert isinstance(booked, Appointment), booked
        assert SharingAgreement.objects.get().ended_at is not None


def book_during_end(hub: Hub, link: BookingLink, slot: Slot) -> tuple[object, object]:
    """End the agreement in a transaction that stays open while a booking starts; then commit
    the end. Returns (what the booking returned, what the end returned)."""
    ended_uncommitted, commit = threading.Event(), threading.Event()

    def end() -> bool:
        with transaction.atomic():
            result = sharing_agreement_end(
                organisation=hub.organisation, agreement_id=hub.agreement.pk, actor=AnonymousUser()
            )
            ended_uncommitted.set()
            commit.wait(timeout=30)
        return result

    ender, ended = in_thread(end)
    assert ended_uncommitted.wait(timeout=30)
    booker, booked = in_thread(lambda: appointment_book(link_id=link.pk, slot_id=slot.pk))
    # Guarded, the booking waits on the agreement row; unguarded, it books at once.
    assert wait_until(lambda: not booker.is_alive() or lock_waiters() >= 1)
    commit.set()
    ender.join(timeout=30)
    booker.join(timeout=30)
    return booked[0], ended[0]
