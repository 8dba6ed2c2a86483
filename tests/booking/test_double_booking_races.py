"""Booking and the date-of-birth count under real concurrency, on the real database.

Threads start together on a barrier, each with its own connection. The control tests switch
the guard off (a check-then-write booking with the unique index dropped) and show the race
then double-books, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from booking.appointments import appointment_book
from booking.exceptions import BookingBusy, LinkNotBookable, SlotTaken
from booking.links import DobCheck, booking_link_verify_dob
from booking.models import Appointment, AuditEvent, BookingLink, Slot
from tests.concurrency import race
from tests.factories import BookingLinkFactory, PatientFactory
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db(transaction=True)


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


class TestDateOfBirthCount:
    def test_fifty_parallel_wrong_dates_count_exactly_five(self):
        practice = make_practice()
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        results = race(
            lambda i: booking_link_verify_dob(
                link=BookingLink.objects.select_related("patient").get(pk=link.pk),
                date_of_birth=date(1901, 1, 1),
                ip_address="203.0.113.9",
            ),
            threads=50,
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        link.refresh_from_db()
        assert (link.failed_attempts, link.status) == (5, "locked")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DOB_FAILED, booking_link=link).count() == 5
        assert AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED, booking_link=link).count() == 1
        assert sum(1 for result, _ in results if result is DobCheck.MISMATCH) == 4
        assert sum(1 for result, _ in results if result is DobCheck.LOCKED) == 46


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
