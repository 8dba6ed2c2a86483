"""One slot, one booking, under real concurrency on the real database.

Threads start together on a barrier, each with its own connection, so the statements really
interleave. The control tests switch the guard off (the partial unique index dropped, and a
check-then-write booking in place of the conditional update) and show the race then
double-books, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.utils import timezone

from booking.appointments import appointment_book
from booking.exceptions import BookingBusy, LinkNotBookable, SlotTaken
from booking.models import Appointment, BookingLink, Slot
from tests.concurrency import race
from tests.factories import BookingLinkFactory, PatientFactory, SlotFactory
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10


def links_for_one_practice(count: int):
    practice = make_practice()
    links = [
        BookingLinkFactory(
            patient=PatientFactory(organisation=practice.organisation),
            appointment_type=practice.appointment_type,
            location=practice.location,
        )
        for _ in range(count)
    ]
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    return practice, links, slot


def book(slot: Slot, patients: list) -> Callable[[int], Appointment]:
    return lambda i: Appointment.objects.create(slot_id=slot.pk, patient_id=patients[i].pk)


class TestTheUniqueIndexAlone:
    def test_ten_simultaneous_bookings_of_one_slot_make_exactly_one(self):
        slot = SlotFactory(status=Slot.Status.BOOKED)
        patients = [PatientFactory(organisation=slot.location.organisation) for _ in range(THREADS)]
        results = race(book(slot, patients), threads=THREADS)
        assert sum(isinstance(result, Appointment) for result in results) == 1
        assert sum(isinstance(result, IntegrityError) for result in results) == THREADS - 1
        assert Appointment.objects.filter(slot=slot, status=Appointment.Status.BOOKED).count() == 1

    def test_control_without_the_partial_unique_index_the_race_double_books(self):
        slot = SlotFactory(status=Slot.Status.BOOKED)
        patients = [PatientFactory(organisation=slot.location.organisation) for _ in range(THREADS)]
        with connection.cursor() as cursor:
            cursor.execute('DROP INDEX "appointment_one_booked_per_slot"')
        try:
            race(book(slot, patients), threads=THREADS)
            assert Appointment.objects.filter(slot=slot, status=Appointment.Status.BOOKED).count() > 1
        finally:
            Appointment.objects.all().delete()
            with connection.cursor() as cursor:
                cursor.execute(
                    'CREATE UNIQUE INDEX "appointment_one_booked_per_slot" ON "booking_appointment" ("slot_id") '
                    "WHERE status = 'booked'"
                )


class TestOneSlotOneBooking:
    def test_twenty_patients_racing_for_one_slot_make_exactly_one_booking(self):
        _, links, slot = links_for_one_practice(20)
        results = race(lambda i: appointment_book(link_id=links[i].pk, slot_id=slot.pk), threads=20)
        booked = [r for r in results if isinstance(r, Appointment)]
        taken = [r for r in results if isinstance(r, SlotTaken)]
        assert len(booked) == 1
        assert len(taken) == 19, results
        assert Appointment.objects.filter(slot=slot, status="booked").count() == 1
        assert BookingLink.objects.filter(status="booked").count() == 1

    def test_control_without_the_guard_the_same_race_double_books(self):
        _, links, slot = links_for_one_practice(20)
        barrier = threading.Barrier(20)

        def unguarded_book(i: int) -> Appointment:
            # Check, then write: the way a booking goes wrong without a conditional update.
            with transaction.atomic():
                free = Slot.objects.get(pk=slot.pk).status == Slot.Status.FREE
                barrier.wait()  # everyone has looked before anyone writes
                if not free:
                    raise SlotTaken()
                Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.BOOKED)
                return Appointment.objects.create(slot_id=slot.pk, patient=links[i].patient, booking_link=links[i])

        with connection.cursor() as cursor:
            cursor.execute('DROP INDEX "appointment_one_booked_per_slot"')
        try:
            race(unguarded_book, threads=20)
            assert Appointment.objects.filter(slot=slot, status="booked").count() > 1
        finally:
            Appointment.objects.all().delete()
            with connection.cursor() as cursor:
                cursor.execute(
                    'CREATE UNIQUE INDEX "appointment_one_booked_per_slot" ON "booking_appointment" ("slot_id") '
                    "WHERE status = 'booked'"
                )

    def test_one_link_in_two_tabs_choosing_different_times_books_once(self):
        practice, links, _ = links_for_one_practice(1)
        slots = list(Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start")[:2])
        results = race(lambda i: appointment_book(link_id=links[0].pk, slot_id=slots[i % 2].pk), threads=6)
        assert sum(isinstance(r, Appointment) for r in results) == 1
        assert all(isinstance(r, Appointment | LinkNotBookable) for r in results), results
        assert Appointment.objects.filter(booking_link=links[0]).count() == 1
        assert Slot.objects.filter(status="booked").count() == 1


class TestLockTimeout:
    def test_a_lock_held_too_long_is_busy_not_a_crash(self, settings):
        _, links, slot = links_for_one_practice(1)
        holding = threading.Event()
        release = threading.Event()

        def hold_the_link() -> None:
            try:
                with transaction.atomic():
                    BookingLink.objects.select_for_update().get(pk=links[0].pk)
                    holding.set()
                    release.wait(timeout=30)
            finally:
                connections.close_all()

        holder = threading.Thread(target=hold_the_link)
        holder.start()
        holding.wait(timeout=30)
        try:
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '200ms'")
            with pytest.raises(BookingBusy):
                appointment_book(link_id=links[0].pk, slot_id=slot.pk, now=timezone.now() + timedelta(seconds=1))
        finally:
            release.set()
            holder.join(timeout=30)
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
        assert not Appointment.objects.exists()
