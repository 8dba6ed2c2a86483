"""An appointment type knows whether it is in person, by telephone or by video, and every page asks it."""

from __future__ import annotations

import pytest
from django.test import Client

from booking.appointments import appointment_book
from booking.calendar import appointment_calendar
from booking.models import AppointmentType, Slot
from booking.references import encode_reference
from tests.factories import BookingLinkFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}


@pytest.mark.parametrize(
    ("mode", "video", "telephone"),
    [
        (AppointmentType.Mode.VIDEO, True, False),
        (AppointmentType.Mode.TELEPHONE, False, True),
        (AppointmentType.Mode.IN_PERSON, False, False),
    ],
)
def test_each_mode_answers_for_itself(mode, video, telephone):
    appointment_type = AppointmentType(mode=mode)
    assert (appointment_type.is_video, appointment_type.is_telephone) == (video, telephone)


def with_mode(practice, mode: str):
    AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode=mode)
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    client = Client()
    assert client.post(f"/b/{link.token}", DOB).status_code == 302
    return link, client


def first_slot(practice) -> Slot:
    return Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()


@pytest.mark.parametrize(
    ("mode", "says", "not_the_address"),
    [
        (AppointmentType.Mode.VIDEO, "Video appointment.", True),
        (AppointmentType.Mode.TELEPHONE, "Telephone appointment.", True),
        (AppointmentType.Mode.IN_PERSON, "Riverside Surgery", False),
    ],
)
def test_the_times_confirm_and_booked_pages_say_how_it_happens(practice, mode, says, not_the_address):
    link, client = with_mode(practice, mode)
    slot = encode_reference(first_slot(practice).pk, namespace="slot")
    pages = [client.get(f"/b/{link.token}/times"), client.get(f"/b/{link.token}/confirm", {"slot": slot})]
    client.post(f"/b/{link.token}/confirm", {"slot": slot})
    pages.append(client.get(f"/b/{link.token}/booked"))
    for response in pages:
        content = response.content.decode()
        assert says in content
        assert (practice.location.address_line_1 not in content) == not_the_address


def test_the_calendar_file_says_a_telephone_appointment_is_by_phone(practice):
    link, _ = with_mode(practice, AppointmentType.Mode.TELEPHONE)
    appointment = appointment_book(link_id=link.pk, slot_id=first_slot(practice).pk)
    assert "LOCATION:Telephone appointment" in appointment_calendar(
        appointment=appointment, organisation=practice.organisation
    )
