"""The database guards hold when real threads race on the real database.

Each test starts its threads together on a barrier, each with its own connection, so the
statements really interleave. The control tests drop the guard first and show the race then
does the damage, so the guarded tests can't pass by accident.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from django.db import IntegrityError, connection

from booking.models import Appointment, Slot
from booking.slots import slots_generate_from_rota
from tests.concurrency import race
from tests.factories import PatientFactory, RotaFactory, SlotFactory

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 10


def book(slot: Slot, patients: list) -> Callable[[int], Appointment]:
    return lambda i: Appointment.objects.create(slot_id=slot.pk, patient_id=patients[i].pk)


class TestOneBookingPerSlot:
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


class TestSlotGenerationRaces:
    def test_two_admins_generating_the_same_rota_at_once_make_each_slot_once(self):
        rota = RotaFactory()
        results = race(
            lambda i: slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 6)),
            threads=4,
        )
        assert not [result for result in results if isinstance(result, Exception)]
        assert Slot.objects.filter(rota=rota).count() == 30
        assert sum(result.created for result in results) == 30
