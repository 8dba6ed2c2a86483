"""One start time, many clinicians, more patients: each free slot is booked once.

Fifty patients choose 2:30pm on the same day while twenty clinicians are free then. Each
booking claims any free slot the link offers at that start in one statement (`slot_claim`:
`UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1)`), so there are exactly 20
bookings, on 20 different slots, and 30 patients see "that time has just been taken" on the
same day's page with the times refreshed. The control swaps the claim for a plain read then
update and shows the same race handing one slot to several patients.
"""

from __future__ import annotations

import re
import time as clock
from datetime import datetime, time

import pytest
from django.test import Client

from booking import appointments
from booking.models import Appointment, BookingLink, Slot
from booking.references import encode_reference
from booking.slots import london_datetime
from tests.concurrency import race
from tests.factories import PatientFactory
from tests.scenarios import Clinic, make_clinic, make_clinic_link

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("empty_cache")]

CLINICIANS = 20
PATIENTS = 50
DOB = {"day": "17", "month": "5", "year": "1980"}
HALF_TWO = time(14, 30)


def patients_choosing_half_two(clinic: Clinic) -> tuple[list[Client], list[BookingLink], Slot]:
    """Fifty verified browsers, each with its own any-clinician link, and the slot the page names."""
    links = [
        make_clinic_link(clinic, patient=PatientFactory(organisation=clinic.organisation)) for _ in range(PATIENTS)
    ]
    clients = []
    for link in links:
        client = Client()
        assert client.post(link.get_absolute_url(), DOB).status_code == 302
        clients.append(client)
    day = clinic.days[0]
    page = clients[0].get(f"{links[0].get_absolute_url()}/times?day={day.isoformat()}").content.decode()
    chosen = Slot.objects.filter(start=london_datetime(day, HALF_TWO)).order_by("pk").first()
    # The day's page offers 2:30pm once, named by one slot; every patient chooses that.
    assert page.count(f'value="{encode_reference(chosen.pk, namespace="slot")}"') == 1
    return clients, links, chosen


@pytest.fixture
def twenty_free_at_half_two() -> Clinic:
    """Twenty clinicians, each free at 2pm, 2:30pm and 3pm on one day."""
    return make_clinic(clinicians=CLINICIANS, times=[time(14, 0), HALF_TWO, time(15, 0)])


def test_fifty_patients_choosing_half_two_when_twenty_are_free_make_twenty_bookings(twenty_free_at_half_two):
    clinic = twenty_free_at_half_two
    clients, links, chosen = patients_choosing_half_two(clinic)
    day = clinic.days[0].isoformat()
    form = {"slot": encode_reference(chosen.pk, namespace="slot"), "day": day}
    responses = race(lambda i: clients[i].post(f"{links[i].get_absolute_url()}/confirm", form), threads=PATIENTS)

    booked = [r for r in responses if getattr(r, "status_code", None) == 302]
    taken = [r for r in responses if getattr(r, "status_code", None) == 409]
    assert len(booked) == CLINICIANS, responses
    assert len(taken) == PATIENTS - CLINICIANS, responses
    for response in taken:
        html = response.content.decode()
        assert "Sorry, that time has just been taken" in html
        # The same day again, its times read afresh: 2pm and 3pm are still there to choose.
        assert f'name="day" value="{day}"' in html
        assert len(re.findall(r'type="radio"', html)) >= 2
    appointments_made = Appointment.objects.filter(status=Appointment.Status.BOOKED)
    assert appointments_made.count() == CLINICIANS
    slots = set(appointments_made.values_list("slot_id", flat=True))
    assert len(slots) == CLINICIANS
    assert set(Slot.objects.filter(pk__in=slots).values_list("start", flat=True)) == {chosen.start}
    assert not Slot.objects.filter(start=chosen.start, status=Slot.Status.FREE).exists()
    assert BookingLink.objects.filter(status=BookingLink.Status.BOOKED).count() == CLINICIANS
    # Afterwards nobody is offered 2:30pm that day.
    after = clients[0].get(f"{links[0].get_absolute_url()}/times?day={day}").content.decode()
    assert "2:30pm" not in after


def test_control_a_read_then_update_claim_hands_one_slot_to_several_patients(twenty_free_at_half_two, monkeypatch):
    _, links, chosen = patients_choosing_half_two(twenty_free_at_half_two)
    claims: list[int] = []

    def read_then_update(*, link: BookingLink, slot_id: int, now: datetime | None = None) -> int | None:
        # No row lock and no status check on the write: what the guard exists to prevent.
        free = (
            Slot.objects.offered_by(link, now=now)
            .filter(start=Slot.objects.get(pk=slot_id).start)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if free is None:
            return None
        clock.sleep(0.2)  # everyone reads before anyone writes
        Slot.objects.filter(pk=free).update(status=Slot.Status.BOOKED)
        claims.append(free)
        return free

    monkeypatch.setattr(appointments, "slot_claim", read_then_update)
    results = race(lambda i: appointments.appointment_book(link_id=links[i].pk, slot_id=chosen.pk), threads=PATIENTS)
    # The same slot was handed out again and again; the bookings behind it fail (the partial
    # unique index refuses the second appointment for a slot), and most clinicians stay unbooked.
    assert len(claims) > len(set(claims))
    assert sum(isinstance(result, Appointment) for result in results) < CLINICIANS
