"""A decline against a booking of the same link, in real threads on the real database.

The booking holds the link's row lock from its check to its commit (booking/appointments.py,
`_link_locked`); the decline is a conditional UPDATE of that row (`... WHERE status = 'active'`),
so it waits for the booking and then finds the link booked: exactly one of them wins. The race
is made certain, not hoped for: the booking is paused after its check while the decline runs.
The control takes the link lock away and shows the damage (declined, and booked anyway).
"""

from __future__ import annotations

import pytest
from django.db.models import QuerySet

import booking.appointments
from booking.appointments import appointment_book
from booking.exceptions import LinkNotBookable
from booking.links import booking_link_decline
from booking.models import Appointment, AuditEvent, BookingLink, Slot
from tests.concurrency import PauseAt, in_thread, lock_waiters, race, wait_until
from tests.scenarios import make_invitation_link

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def invitation_and_slot(practice) -> tuple[BookingLink, Slot]:
    link = make_invitation_link(practice)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    return link, slot


def decline(link: BookingLink) -> bool:
    return booking_link_decline(
        link=BookingLink.objects.select_related("organisation", "patient").get(pk=link.pk),
        reason="not_now",
        detail="",
        ip_address=None,
    )


def decline_during_booking(link: BookingLink, slot: Slot, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """Start a booking, let it pass its link check and stop before it claims the slot, decline the
    link, then let the booking go on. Returns (what the booking returned, what the decline returned)."""
    with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
        booker, booked = in_thread(lambda: appointment_book(link_id=link.pk, slot_id=slot.pk))
        assert pause.reached.wait(timeout=30), "the booking never reached the slot"
        decliner, declined = in_thread(lambda: decline(link))
        # Guarded, the decline waits for the booking's link lock; unguarded, it finishes now.
        assert wait_until(lambda: not decliner.is_alive() or lock_waiters() >= 1)
    booker.join(timeout=30)
    decliner.join(timeout=30)
    return booked[0], declined[0]


def both_won(link: BookingLink) -> bool:
    """The damage: the patient was told they declined, and the link booked too."""
    declined = AuditEvent.objects.filter(booking_link=link, action=AuditEvent.Action.DECLINED).exists()
    return declined and Appointment.objects.filter(booking_link=link, status="booked").exists()


def test_a_decline_during_a_booking_waits_and_then_finds_it_booked(invitation_and_slot, monkeypatch):
    link, slot = invitation_and_slot
    booked, declined = decline_during_booking(link, slot, monkeypatch)
    assert isinstance(booked, Appointment), booked
    assert declined is False
    link.refresh_from_db()
    assert link.status == BookingLink.Status.BOOKED
    assert link.declined_at is None
    assert not both_won(link)


def test_a_decline_and_a_booking_at_once_exactly_one_wins(invitation_and_slot):
    link, slot = invitation_and_slot

    def decline_or_book(i: int) -> object:
        return decline(link) if i == 0 else appointment_book(link_id=link.pk, slot_id=slot.pk)

    declined, booked = race(decline_or_book, threads=2)
    link.refresh_from_db()
    if declined is True:
        assert isinstance(booked, LinkNotBookable), booked
        assert link.status == BookingLink.Status.DECLINED
        assert not Appointment.objects.filter(booking_link=link).exists()
    else:
        assert declined is False, declined
        assert isinstance(booked, Appointment), booked
        assert link.status == BookingLink.Status.BOOKED
    assert not both_won(link)


def test_control_without_the_link_lock_the_decline_slips_in_and_the_link_books_anyway(invitation_and_slot, monkeypatch):
    link, slot = invitation_and_slot
    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, *args, **kwargs: self)
    booked, declined = decline_during_booking(link, slot, monkeypatch)
    assert isinstance(booked, Appointment), booked
    assert declined is True
    assert both_won(link)
