"""Staff acting on a link while the patient uses it, in real threads on the real database.

Revoke against book: the booking holds the link's row lock from its check to its commit, and
the revoke is a conditional UPDATE of that row, so a revoke either comes first (the booking
sees it) or waits and revokes the link as booked (the appointment stands; a booked link can be
revoked, which stops online changes). Unlock against wrong dates: a wrong date counts with
a conditional UPDATE evaluated on the row as it is when written, so a wrong date read before an
unlock and written after it counts as the first try after the unlock, never erasing it.

Each race is made certain rather than hoped for: a second connection holds a row lock, or the
patient's request is paused at the point where it has read the link, while staff act. Each
control takes the guard away and shows the damage, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

import threading
from datetime import date
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.db.models import QuerySet

import booking.appointments
import booking.links
from booking.appointments import appointment_book
from booking.audit import audit_record
from booking.exceptions import LinkNotBookable
from booking.links import DobCheck, booking_link_revoke, booking_link_unlock, booking_link_verify_dob
from booking.models import MAX_DOB_ATTEMPTS, Appointment, AuditEvent, BookingLink, Slot
from tests.concurrency import PauseAt, in_thread, lock_waiters, race, wait_until
from tests.factories import BookingLinkFactory
from tests.scenarios import Practice, make_practice

pytestmark = pytest.mark.django_db(transaction=True)

WRONG = date(1901, 1, 1)


@pytest.fixture
def own_link_and_slot() -> tuple[Practice, BookingLink, Slot]:
    practice = make_practice()
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    return practice, link, slot


# --- Revoke against book ----------------------------------------------------------------------


def revoke_during_booking(link: BookingLink, slot: Slot, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    """Start a booking, let it pass its link check and stop before it claims the slot, revoke the
    link, then let the booking go on. Returns (what the booking returned, what the revoke returned)."""
    with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
        booker, booked = in_thread(lambda: appointment_book(link_id=link.pk, slot_id=slot.pk))
        assert pause.reached.wait(timeout=30), "the booking never reached the slot"
        revoker, revoked = in_thread(
            lambda: booking_link_revoke(link=BookingLink.objects.get(pk=link.pk), actor=AnonymousUser())
        )
        # Guarded, the revoke waits for the booking's link lock; unguarded, it finishes now.
        assert wait_until(lambda: not revoker.is_alive() or lock_waiters() >= 1)
    booker.join(timeout=30)
    revoker.join(timeout=30)
    return booked[0], revoked[0]


def revoked_and_booked(link: BookingLink) -> bool:
    """The damage: staff were told the link was revoked, yet it booked after that.

    Revoking a link that has booked is allowed (it stops online changes; the appointment
    stands), so the damage is a booking that comes after the revoke, which leaves the link
    booked as if the revoke never happened.
    """
    events = list(
        AuditEvent.objects.filter(
            booking_link=link, action__in=[AuditEvent.Action.REVOKED, AuditEvent.Action.BOOKED]
        ).order_by("pk")
    )
    actions = [event.action for event in events]
    return (
        AuditEvent.Action.REVOKED in actions
        and AuditEvent.Action.BOOKED in actions
        and actions.index(AuditEvent.Action.REVOKED) < actions.index(AuditEvent.Action.BOOKED)
        and Appointment.objects.filter(booking_link=link, status="booked").exists()
    )


class TestRevokeAgainstBook:
    def test_a_revoke_during_a_booking_waits_then_revokes_the_booked_link(self, own_link_and_slot, monkeypatch):
        _, link, slot = own_link_and_slot
        booked, revoked = revoke_during_booking(link, slot, monkeypatch)
        assert isinstance(booked, Appointment), booked
        # It waited for the booking, then revoked the link as booked: the appointment stands.
        assert revoked is True
        link.refresh_from_db()
        assert link.status == BookingLink.Status.REVOKED
        assert link.token_encrypted == ""
        assert Appointment.objects.get(booking_link=link).status == Appointment.Status.BOOKED
        assert not revoked_and_booked(link)

    def test_a_revoke_that_commits_first_stops_the_booking(self, own_link_and_slot):
        _, link, slot = own_link_and_slot

        def revoke_or_book(i: int) -> object:
            if i == 0:
                return booking_link_revoke(link=BookingLink.objects.get(pk=link.pk), actor=AnonymousUser())
            return appointment_book(link_id=link.pk, slot_id=slot.pk)

        results = race(revoke_or_book, threads=2)
        # Whichever took the link row first goes first: a revoke first stops the booking; a
        # booking first is then revoked as booked. Never a booking after the revoke.
        assert results[0] is True, results
        assert isinstance(results[1], Appointment | LinkNotBookable), results
        assert not revoked_and_booked(link)

    def test_control_without_the_link_lock_the_revoke_slips_in_and_the_link_books_anyway(
        self, own_link_and_slot, monkeypatch
    ):
        _, link, slot = own_link_and_slot
        monkeypatch.setattr(QuerySet, "select_for_update", lambda self, *args, **kwargs: self)
        booked, revoked = revoke_during_booking(link, slot, monkeypatch)
        assert isinstance(booked, Appointment), booked
        assert revoked is True
        assert revoked_and_booked(link)


# --- Unlock against wrong dates ---------------------------------------------------------------


class PauseAfterRead:
    """Hold the patient's date-of-birth check after it has read the link, until released.

    `booking_link_verify_dob` reads the link, compares the date (hmac.compare_digest), then
    counts; pausing the comparison pauses it between its read and its write.
    """

    def __init__(self) -> None:
        self.paused, self.resume = threading.Event(), threading.Event()

    def compare_digest(self, a: bytes, b: bytes) -> bool:
        self.paused.set()
        assert self.resume.wait(timeout=30)
        return a == b


def unguarded_verify_dob(*, link: BookingLink, date_of_birth: date, ip_address: str | None) -> tuple[DobCheck, int]:
    # Read, then write what was read plus one: a count without the conditional UPDATE.
    link.refresh_from_db(fields=["status", "failed_attempts"])
    if link.status == BookingLink.Status.LOCKED:
        return DobCheck.LOCKED, 0
    if booking.links.hmac.compare_digest(date_of_birth.isoformat().encode(), b""):
        return DobCheck.MATCH, MAX_DOB_ATTEMPTS - link.failed_attempts
    attempts = link.failed_attempts + 1
    status = BookingLink.Status.LOCKED if attempts >= MAX_DOB_ATTEMPTS else link.status
    with transaction.atomic():
        BookingLink.objects.filter(pk=link.pk).update(failed_attempts=attempts, status=status)
        audit_record(action=AuditEvent.Action.DOB_FAILED, patient=link.patient, booking_link=link)
    return DobCheck.MISMATCH, MAX_DOB_ATTEMPTS - attempts


def wrong_date_across_an_unlock(link: BookingLink, monkeypatch: pytest.MonkeyPatch, verify) -> None:
    """A wrong date reads the link with one try left, and waits; meanwhile another wrong date
    locks it and staff unlock it; then the first goes on and writes."""
    BookingLink.objects.filter(pk=link.pk).update(failed_attempts=MAX_DOB_ATTEMPTS - 1)
    pause = PauseAfterRead()
    monkeypatch.setattr(booking.links, "hmac", SimpleNamespace(compare_digest=pause.compare_digest))
    slow, _ = in_thread(
        lambda: verify(
            link=BookingLink.objects.select_related("patient").get(pk=link.pk), date_of_birth=WRONG, ip_address=None
        )
    )
    assert pause.paused.wait(timeout=30)
    monkeypatch.undo()
    assert booking_link_verify_dob(
        link=BookingLink.objects.select_related("patient").get(pk=link.pk), date_of_birth=WRONG, ip_address=None
    ) == (DobCheck.LOCKED, 0)
    assert booking_link_unlock(link=BookingLink.objects.get(pk=link.pk), actor=AnonymousUser())
    pause.resume.set()
    slow.join(timeout=30)


def unlock_kept(link: BookingLink) -> bool:
    """The count since the last unlock is exactly the wrong dates recorded since, and the link is
    locked exactly when that count reaches the limit."""
    link.refresh_from_db()
    unlocked = AuditEvent.objects.filter(action=AuditEvent.Action.UNLOCKED, booking_link=link).latest("pk")
    since = AuditEvent.objects.filter(
        action=AuditEvent.Action.DOB_FAILED, booking_link=link, pk__gt=unlocked.pk
    ).count()
    locked = link.status == BookingLink.Status.LOCKED
    return link.failed_attempts == since and locked == (link.failed_attempts >= MAX_DOB_ATTEMPTS)


class TestUnlockAgainstWrongDates:
    def test_a_wrong_date_in_flight_across_an_unlock_counts_as_the_first_try_after_it(
        self, own_link_and_slot, monkeypatch
    ):
        _, link, _ = own_link_and_slot
        wrong_date_across_an_unlock(link, monkeypatch, booking_link_verify_dob)
        link.refresh_from_db()
        assert (link.status, link.failed_attempts) == (BookingLink.Status.ACTIVE, 1)
        assert unlock_kept(link)

    def test_many_wrong_dates_against_repeated_unlocks_keep_the_count_exact(self, own_link_and_slot):
        _, link, _ = own_link_and_slot
        stop = threading.Event()

        def unlock_repeatedly() -> None:
            while not stop.is_set():
                booking_link_unlock(link=BookingLink.objects.get(pk=link.pk), actor=AnonymousUser())

        unlocker, _ = in_thread(unlock_repeatedly)
        guessers = [
            in_thread(
                lambda: [
                    booking_link_verify_dob(
                        link=BookingLink.objects.select_related("patient").get(pk=link.pk),
                        date_of_birth=WRONG,
                        ip_address=None,
                    )
                    for _ in range(10)
                ]
            )
            for _ in range(8)
        ]
        for thread, _ in guessers:
            thread.join(timeout=60)
        stop.set()
        unlocker.join(timeout=30)
        booking_link_unlock(link=BookingLink.objects.get(pk=link.pk), actor=AnonymousUser())
        assert all(isinstance(result[0], list) for _, result in guessers), guessers
        assert AuditEvent.objects.filter(action=AuditEvent.Action.UNLOCKED).exists()
        assert unlock_kept(link)

    def test_control_without_the_conditional_update_the_unlock_is_lost(self, own_link_and_slot, monkeypatch):
        _, link, _ = own_link_and_slot
        wrong_date_across_an_unlock(link, monkeypatch, unguarded_verify_dob)
        link.refresh_from_db()
        # The stale write relocked the link the moment staff unlocked it.
        assert (link.status, link.failed_attempts) == (BookingLink.Status.LOCKED, MAX_DOB_ATTEMPTS)
        assert not unlock_kept(link)
