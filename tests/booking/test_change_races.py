"""Changing and cancelling under real concurrency, in real threads on the real database.

Two tabs changing one booking, a change racing another patient for the new time, a cancel
racing a change: each ends with exactly one consistent state, never zero appointments after a
failed change and never two. The guards: the link's row lock that every change and
cancellation takes first, the conditional UPDATE that ends the old appointment only while it is
booked, the slot claim's conditional UPDATE, and in the database `Appointment.replaces` (one
replacement per appointment) and the partial unique indexes (one booked appointment per link,
per slot).

Each race is made certain where it can be: the change is paused (PauseAt) after it has read the
link and its appointment, holding the lock, while the other side acts. Each control takes the
guards away and shows the damage, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

import booking.appointments
from booking.appointments import (
    appointment_book,
    appointment_cancel_by_patient,
    appointment_change,
    booking_link_booked_appointment,
)
from booking.exceptions import AppointmentNotCurrent, SlotTaken
from booking.models import Appointment, AuditEvent, BookingLink, CancellationReason, Slot
from tests.concurrency import PauseAt, in_thread, lock_waiters, race, wait_until
from tests.factories import BookingLinkFactory, PatientFactory, SlotFactory
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def booked_with_times():
    """A link that booked the practice's first time, and eight more free times it could move to."""
    practice = make_practice()
    first = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").last()
    for i in range(1, 7):
        start = first.start + timedelta(minutes=10 * i)
        SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start,
            end=start + timedelta(minutes=10),
        )
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    slots = list(Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start"))
    old = appointment_book(link_id=link.pk, slot_id=slots[0].pk)
    return practice, link, old, slots[1:]


def booked_for(link: BookingLink) -> list[Appointment]:
    return list(Appointment.objects.filter(booking_link=link, status="booked"))


def consistent(link: BookingLink) -> bool:
    """One booked appointment for the link, its slot booked, and every slot it left free."""
    now_booked = booked_for(link)
    if len(now_booked) != 1:
        return False
    left = Appointment.objects.filter(booking_link=link, status="cancelled").values_list("slot_id", flat=True)
    return Slot.objects.get(pk=now_booked[0].slot_id).status == "booked" and all(
        Slot.objects.get(pk=slot_id).status == "free" for slot_id in left if slot_id != now_booked[0].slot_id
    )


@contextmanager
def without_database_guards(*indexes: str, replaces_unique: bool = False) -> Iterator[None]:
    """Drop the named partial unique indexes (and `replaces`' unique constraint) for a control test."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'booking_appointment'::regclass AND contype = 'u'"
            " AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = 'booking_appointment'::regclass"
            " AND attname = 'replaces_id')]::smallint[]"
        )
        replaces = cursor.fetchone()[0]
        for index in indexes:
            cursor.execute(f'DROP INDEX "{index}"')
        if replaces_unique:
            cursor.execute(f'ALTER TABLE booking_appointment DROP CONSTRAINT "{replaces}"')
    try:
        yield
    finally:
        # Put the rows back within the rules so the guards can be made again (the audit trail,
        # append-only, keeps the appointments it names, so they are mended rather than deleted).
        Appointment.objects.filter(status="booked").update(
            status="cancelled", cancelled_at=timezone.now(), cancellation_source="practice", cancellation_reason="other"
        )
        seen: set[int] = set()
        for pk, replaced in (
            Appointment.objects.filter(replaces__isnull=False).order_by("pk").values_list("pk", "replaces_id")
        ):
            if replaced in seen:
                Appointment.objects.filter(pk=pk).update(replaces=None, original=None, change_count=0)
            seen.add(replaced)
        with connection.cursor() as cursor:
            if "appointment_one_booked_per_link" in indexes:
                cursor.execute(
                    'CREATE UNIQUE INDEX "appointment_one_booked_per_link" ON "booking_appointment" ("booking_link_id")'
                    " WHERE (status = 'booked' AND booking_link_id IS NOT NULL)"
                )
            if "appointment_one_booked_per_slot" in indexes:
                cursor.execute(
                    'CREATE UNIQUE INDEX "appointment_one_booked_per_slot" ON "booking_appointment" ("slot_id")'
                    " WHERE status = 'booked'"
                )
            if replaces_unique:
                cursor.execute(f'ALTER TABLE booking_appointment ADD CONSTRAINT "{replaces}" UNIQUE (replaces_id)')


# --- Two tabs changing one booking at once ----------------------------------------------------


class TestTwoTabs:
    def test_six_tabs_changing_at_once_make_exactly_one_change(self, booked_with_times):
        _, link, old, targets = booked_with_times
        results = race(
            lambda i: appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=targets[i].pk), threads=6
        )
        changed = [result for result in results if isinstance(result, Appointment)]
        assert len(changed) == 1, results
        assert all(isinstance(result, Appointment | AppointmentNotCurrent) for result in results), results
        assert booked_for(link) == changed
        assert changed[0].replaces_id == old.pk
        assert consistent(link)

    def test_a_second_tab_waits_for_the_first_and_finds_it_changed(self, booked_with_times, monkeypatch):
        _, link, old, targets = booked_with_times
        with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
            first, first_result = in_thread(
                lambda: appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=targets[0].pk)
            )
            assert pause.reached.wait(timeout=30)
            second, second_result = in_thread(
                lambda: appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=targets[1].pk)
            )
            assert wait_until(lambda: lock_waiters() >= 1), "the second tab should wait for the link's lock"
        first.join(timeout=30)
        second.join(timeout=30)
        assert isinstance(first_result[0], Appointment), first_result
        assert isinstance(second_result[0], AppointmentNotCurrent), second_result
        assert [appointment.slot_id for appointment in booked_for(link)] == [targets[0].pk]
        assert consistent(link)

    def test_control_without_the_guards_two_tabs_leave_two_bookings(self, booked_with_times):
        _, link, old, targets = booked_with_times
        barrier = threading.Barrier(2)

        def unguarded_change(i: int) -> Appointment:
            # Check, then write: a change without the link's lock or the conditional UPDATE.
            with transaction.atomic():
                previous = Appointment.objects.get(pk=old.pk)
                assert previous.status == "booked"
                barrier.wait()  # both tabs have looked before either writes
                Slot.objects.filter(pk=targets[i].pk).update(status="booked")
                Appointment.objects.filter(pk=old.pk).update(
                    status="cancelled",
                    cancelled_at=timezone.now(),
                    cancellation_source="changed",
                    cancellation_reason="changed",
                )
                return Appointment.objects.create(
                    slot=targets[i],
                    patient=link.patient,
                    booking_link=link,
                    replaces_id=old.pk,
                    original_id=old.pk,
                    change_count=1,
                )

        with without_database_guards("appointment_one_booked_per_link", replaces_unique=True):
            results = race(unguarded_change, threads=2)
            assert all(isinstance(result, Appointment) for result in results), results
            assert len(booked_for(link)) == 2


# --- A change racing another patient for the new time -------------------------------------------


class TestChangeAgainstBooking:
    def test_a_change_and_ten_bookings_for_one_time_make_exactly_one_and_the_change_keeps_its_old_time(
        self, booked_with_times
    ):
        practice, link, old, targets = booked_with_times
        target = targets[0]
        others = [
            BookingLinkFactory(
                patient=PatientFactory(organisation=practice.organisation),
                appointment_type=practice.appointment_type,
                location=practice.location,
            )
            for _ in range(10)
        ]

        def change_or_book(i: int) -> object:
            if i == 0:
                return appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=target.pk)
            return appointment_book(link_id=others[i - 1].pk, slot_id=target.pk)

        results = race(change_or_book, threads=11)
        assert sum(isinstance(result, Appointment) for result in results) == 1, results
        assert all(isinstance(result, Appointment | SlotTaken) for result in results), results
        assert Appointment.objects.filter(slot=target, status="booked").count() == 1
        # Never zero: the changing patient has their new time or still their old one.
        mine = booked_for(link)
        assert len(mine) == 1
        assert mine[0].slot_id == (target.pk if isinstance(results[0], Appointment) else old.slot_id)
        assert consistent(link)

    def test_a_change_that_loses_the_time_keeps_the_old_appointment(self, booked_with_times, monkeypatch):
        practice, link, old, targets = booked_with_times
        other = BookingLinkFactory(
            patient=PatientFactory(organisation=practice.organisation),
            appointment_type=practice.appointment_type,
            location=practice.location,
        )
        with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
            changer, changed = in_thread(
                lambda: appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=targets[0].pk)
            )
            assert pause.reached.wait(timeout=30)
            monkeypatch.undo()  # the booking claims for real, while the change waits to
            appointment_book(link_id=other.pk, slot_id=targets[0].pk)
        changer.join(timeout=30)
        assert isinstance(changed[0], SlotTaken), changed
        assert booked_for(link) == [old]
        assert Slot.objects.get(pk=old.slot_id).status == "booked"

    def test_control_without_the_guard_a_change_and_a_booking_share_the_time(self, booked_with_times, monkeypatch):
        practice, link, old, targets = booked_with_times
        target = targets[0]
        other = BookingLinkFactory(
            patient=PatientFactory(organisation=practice.organisation),
            appointment_type=practice.appointment_type,
            location=practice.location,
        )
        barrier = threading.Barrier(2)

        def unguarded_claim(*, link: BookingLink, slot_id: int, now=None) -> int | None:
            # Check, then write: a claim without `... WHERE status = 'free'` or SKIP LOCKED.
            free = Slot.objects.get(pk=slot_id).status == "free"
            barrier.wait()
            if not free:
                return None
            Slot.objects.filter(pk=slot_id).update(status="booked")
            return slot_id

        monkeypatch.setattr(booking.appointments, "slot_claim", unguarded_claim)
        with without_database_guards("appointment_one_booked_per_slot"):
            results = race(
                lambda i: (
                    appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=target.pk)
                    if i == 0
                    else appointment_book(link_id=other.pk, slot_id=target.pk)
                ),
                threads=2,
            )
            assert all(isinstance(result, Appointment) for result in results), results
            assert Appointment.objects.filter(slot=target, status="booked").count() == 2


# --- A cancel racing a change -----------------------------------------------------------------


def cancelled_yet_booked(link: BookingLink) -> bool:
    """The damage: the patient was told their appointment is cancelled, yet the link has one booked."""
    return (
        AuditEvent.objects.filter(action=AuditEvent.Action.CANCELLED, booking_link=link).exists()
        and Appointment.objects.filter(booking_link=link, status="booked").exists()
    )


def cancel_during_change(link: BookingLink, old: Appointment, target: Slot, monkeypatch) -> tuple[object, object]:
    """Start a change, stop it after it read the appointment, cancel in another tab, let the change go on."""
    with PauseAt(monkeypatch, booking.appointments, "slot_claim") as pause:
        changer, changed = in_thread(
            lambda: appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=target.pk)
        )
        assert pause.reached.wait(timeout=30)
        canceller, cancelled = in_thread(
            lambda: appointment_cancel_by_patient(
                link_id=link.pk, appointment_id=old.pk, reason=CancellationReason.NO_LONGER_NEEDED
            )
        )
        # Guarded, the cancel waits for the change's link lock; unguarded, it finishes now.
        assert wait_until(lambda: not canceller.is_alive() or lock_waiters() >= 1)
    changer.join(timeout=30)
    canceller.join(timeout=30)
    return changed[0], cancelled[0]


class TestCancelAgainstChange:
    def test_a_cancel_during_a_change_waits_and_finds_it_changed(self, booked_with_times, monkeypatch):
        _, link, old, targets = booked_with_times
        changed, cancelled = cancel_during_change(link, old, targets[0], monkeypatch)
        assert isinstance(changed, Appointment), changed
        assert isinstance(cancelled, AppointmentNotCurrent), cancelled
        assert not cancelled_yet_booked(link)
        assert consistent(link)

    def test_a_cancel_and_a_change_at_once_leave_one_of_them(self, booked_with_times):
        _, link, old, targets = booked_with_times

        def cancel_or_change(i: int) -> object:
            if i == 0:
                return appointment_cancel_by_patient(
                    link_id=link.pk, appointment_id=old.pk, reason=CancellationReason.NO_LONGER_NEEDED
                )
            return appointment_change(link_id=link.pk, appointment_id=old.pk, slot_id=targets[0].pk)

        results = race(cancel_or_change, threads=2)
        assert sum(isinstance(result, Appointment) for result in results) == 1, results
        assert sum(isinstance(result, AppointmentNotCurrent) for result in results) == 1, results
        assert not cancelled_yet_booked(link)
        if booking_link_booked_appointment(link=link) is None:
            assert Slot.objects.get(pk=targets[0].pk).status == "free"
            assert Slot.objects.get(pk=old.slot_id).status == "free"
        else:
            assert consistent(link)

    def test_control_without_the_lock_and_the_conditional_update_the_patient_is_cancelled_and_booked(
        self, booked_with_times, monkeypatch
    ):
        _, link, old, targets = booked_with_times
        monkeypatch.setattr(QuerySet, "select_for_update", lambda self, *args, **kwargs: self)

        def unconditional_end(*, appointment: Appointment, now) -> bool:
            Appointment.objects.filter(pk=appointment.pk).update(
                status="cancelled", cancelled_at=now, cancellation_source="changed", cancellation_reason="changed"
            )
            return True

        monkeypatch.setattr(booking.appointments, "_appointment_end_for_change", unconditional_end)
        changed, cancelled = cancel_during_change(link, old, targets[0], monkeypatch)
        assert isinstance(changed, Appointment), changed
        assert isinstance(cancelled, Appointment), cancelled
        assert cancelled_yet_booked(link)
