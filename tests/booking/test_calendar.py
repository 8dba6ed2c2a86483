"""Calendar files, read back with `icalendar` as a calendar would: every property, folding,
escaping, the clock changes, and one event (one UID) through a change and a cancellation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from booking.calendar import CalendarMethod, appointment_calendar, calendar_uid
from booking.models import Appointment, AppointmentType, Location
from tests.factories import AppointmentFactory, SlotFactory
from tests.scenarios import make_change

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
STAMP = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)


def appointment_at(start: datetime, **slot: object) -> Appointment:
    return AppointmentFactory(slot__start=start, slot__end=start.astimezone(UTC) + timedelta(minutes=10), **slot)


def event_of(text: str) -> tuple[Calendar, object]:
    calendar = Calendar.from_ical(text)
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def ics(appointment: Appointment, method: CalendarMethod = CalendarMethod.PUBLISH) -> str:
    appointment = Appointment.objects.select_related(
        "slot__appointment_type", "slot__location", "slot__practitioner", "patient__organisation"
    ).get(pk=appointment.pk)
    return appointment_calendar(
        appointment=appointment, organisation=appointment.patient.organisation, method=method, now=STAMP
    )


class TestTheBookedEvent:
    def test_every_property_as_a_calendar_reads_it(self, settings):
        settings.PUBLIC_BASE_URL = "https://booking.example.org"
        settings.DEFAULT_FROM_EMAIL = "Appointments <appointments@booking.example.org>"
        appointment = appointment_at(datetime(2030, 12, 16, 14, 30, tzinfo=LONDON))
        organisation = appointment.patient.organisation
        slot = appointment.slot
        calendar, event = event_of(ics(appointment))
        assert {key: str(value) for key, value in calendar.items()} == {
            "PRODID": "-//Self-booking links//EN",
            "VERSION": "2.0",
            "CALSCALE": "GREGORIAN",
            "METHOD": "PUBLISH",
        }
        assert set(event) == {
            "UID",
            "SEQUENCE",
            "DTSTAMP",
            "DTSTART",
            "DTEND",
            "ORGANIZER",
            "SUMMARY",
            "LOCATION",
            "DESCRIPTION",
            "STATUS",
            "TRANSP",
        }
        assert str(event["UID"]) == f"{appointment.reference}@booking.example.org"
        assert event["SEQUENCE"] == 0
        assert event.decoded("DTSTAMP") == STAMP
        assert event.decoded("DTSTART") == datetime(2030, 12, 16, 14, 30, tzinfo=UTC)
        assert event.decoded("DTEND") == datetime(2030, 12, 16, 14, 40, tzinfo=UTC)
        assert str(event["ORGANIZER"]) == "mailto:appointments@booking.example.org"
        assert event["ORGANIZER"].params["CN"] == organisation.name
        assert str(event["SUMMARY"]) == f"{slot.appointment_type.name} at {organisation.name}"
        assert str(event["LOCATION"]) == ", ".join([slot.location.name, *slot.location.address_lines])
        assert str(event["DESCRIPTION"]).split("\n") == [
            f"Booking reference: {appointment.reference}",
            f"With {slot.practitioner.name}",
            f"To change or cancel, call {organisation.name} on {organisation.phone_for_display}.",
        ]
        assert str(event["STATUS"]) == "CONFIRMED"
        assert str(event["TRANSP"]) == "OPAQUE"

    def test_nothing_about_the_patient_and_no_link(self):
        appointment = appointment_at(
            datetime(2030, 12, 16, 14, 30, tzinfo=LONDON), patient__first_name="Oliver", patient__last_name="Smith"
        )
        text = ics(appointment)
        patient = appointment.patient
        for detail in (patient.first_name, patient.last_name, patient.nhs_number, "1980", patient.email, "/b/"):
            assert detail not in text

    @pytest.mark.parametrize(
        ("london", "utc"),
        [
            # British Summer Time: London is an hour ahead of UTC.
            (datetime(2030, 7, 15, 14, 30, tzinfo=LONDON), "20300715T133000Z"),
            # Winter: London is on UTC.
            (datetime(2030, 12, 16, 14, 30, tzinfo=LONDON), "20301216T143000Z"),
            # The night the clocks go back: 1:30am happens twice; the second is in GMT.
            (datetime(2030, 10, 27, 1, 30, fold=1, tzinfo=LONDON), "20301027T013000Z"),
        ],
    )
    def test_times_are_utc_across_the_clock_changes(self, london, utc):
        text = ics(appointment_at(london))
        assert f"\r\nDTSTART:{utc}\r\n" in text
        _, event = event_of(text)
        assert event.decoded("DTSTART") == london.astimezone(UTC)
        assert event.decoded("DTSTART").astimezone(LONDON).strftime("%H:%M") == london.strftime("%H:%M")

    def test_long_lines_fold_at_75_octets_without_splitting_a_character_and_read_back_whole(self):
        appointment = appointment_at(datetime(2030, 7, 15, 14, 30, tzinfo=LONDON))
        name = "Ysbyty Gŵyr, Canolfan Iechyd; Meddygfa \\ Bryn " + "ŵ" * 60
        Location.objects.filter(pk=appointment.slot.location_id).update(name=name, address_line_2="Flat 2; Block B")
        text = ics(appointment)
        raw = text.encode()
        assert raw.endswith(b"END:VCALENDAR\r\n")
        for line in raw.split(b"\r\n"):
            assert len(line) <= 75
            line.decode()  # every piece is whole UTF-8: no character cut in two
        assert "\r\n " in text  # folded
        _, event = event_of(text)
        assert str(event["LOCATION"]).startswith(name + ", ")
        assert "Flat 2; Block B" in str(event["LOCATION"])

    def test_text_values_are_escaped(self):
        appointment = appointment_at(datetime(2030, 7, 15, 14, 30, tzinfo=LONDON))
        AppointmentType.objects.filter(pk=appointment.slot.appointment_type_id).update(name="Bloods, fasting; a\\b")
        text = ics(appointment)
        assert "SUMMARY:Bloods\\, fasting\\; a\\\\b at " in text.replace("\r\n ", "")
        assert "\\n" in text.replace("\r\n ", "")  # the description's line breaks
        _, event = event_of(text)
        assert str(event["SUMMARY"]).startswith("Bloods, fasting; a\\b at ")

    @pytest.mark.parametrize(
        ("mode", "where"),
        [(AppointmentType.Mode.VIDEO, "Video appointment"), (AppointmentType.Mode.TELEPHONE, "Telephone appointment")],
    )
    def test_a_remote_appointment_has_no_address(self, mode, where):
        appointment = appointment_at(datetime(2030, 7, 15, 14, 30, tzinfo=LONDON))
        AppointmentType.objects.filter(pk=appointment.slot.appointment_type_id).update(mode=mode)
        _, event = event_of(ics(appointment))
        assert str(event["LOCATION"]) == where
        assert appointment.slot.location.address_line_1 not in str(event["DESCRIPTION"])


class TestOneEventThroughChangesAndCancellation:
    def test_a_change_keeps_the_uid_and_raises_the_sequence(self, django_capture_on_commit_callbacks):
        first = appointment_at(datetime(2030, 7, 15, 14, 30, tzinfo=LONDON))
        second_slot = SlotFactory(
            practitioner=first.slot.practitioner,
            location=first.slot.location,
            appointment_type=first.slot.appointment_type,
            start=datetime(2030, 12, 16, 9, 0, tzinfo=LONDON),
            end=datetime(2030, 12, 16, 9, 10, tzinfo=LONDON),
        )
        third_slot = SlotFactory(
            practitioner=first.slot.practitioner,
            location=first.slot.location,
            appointment_type=first.slot.appointment_type,
            start=datetime(2030, 12, 17, 9, 0, tzinfo=LONDON),
            end=datetime(2030, 12, 17, 9, 10, tzinfo=LONDON),
        )
        with django_capture_on_commit_callbacks(execute=True):
            second = make_change(first, second_slot)
            third = make_change(second, third_slot)
        uids, sequences = set(), []
        for appointment in (first, second, third):
            _, event = event_of(ics(appointment))
            uids.add(str(event["UID"]))
            sequences.append(event["SEQUENCE"])
        assert uids == {f"{first.reference}@testserver"} == {calendar_uid(appointment=third)}
        assert sequences == [0, 1, 2]
        _, event = event_of(ics(third))
        assert event.decoded("DTSTART") == datetime(2030, 12, 17, 9, 0, tzinfo=UTC)
        # The new booking reference is the one the patient quotes; the UID stays the first's.
        assert f"Booking reference: {third.reference}" in str(event["DESCRIPTION"])

    def test_a_cancellation_cancels_the_same_event_with_a_higher_sequence(self):
        appointment = appointment_at(datetime(2030, 12, 16, 14, 30, tzinfo=LONDON))
        organisation = appointment.patient.organisation
        published = event_of(ics(appointment))[1]
        calendar, event = event_of(ics(appointment, CalendarMethod.CANCEL))
        assert str(calendar["METHOD"]) == "CANCEL"
        assert str(event["UID"]) == str(published["UID"])
        # RFC 5545 3.8.7.4: a change of STATUS increments SEQUENCE; a calendar ignores a CANCEL
        # whose SEQUENCE is below the one it holds.
        assert event["SEQUENCE"] == published["SEQUENCE"] + 1 == 1
        assert str(event["STATUS"]) == "CANCELLED"
        assert str(event["TRANSP"]) == "TRANSPARENT"
        assert event.decoded("DTSTART") == published.decoded("DTSTART")
        assert str(event["ORGANIZER"]) == str(published["ORGANIZER"])
        assert str(event["SUMMARY"]).startswith("Cancelled: ")
        assert str(event["DESCRIPTION"]).split("\n") == [
            "This appointment is cancelled.",
            f"Booking reference: {appointment.reference}",
            f"To book again, call {organisation.name} on {organisation.phone_for_display}.",
        ]

    def test_cancelling_a_changed_appointment_outranks_every_version_before(self, django_capture_on_commit_callbacks):
        first = appointment_at(datetime(2030, 7, 15, 14, 30, tzinfo=LONDON))
        slot = SlotFactory(
            practitioner=first.slot.practitioner,
            location=first.slot.location,
            appointment_type=first.slot.appointment_type,
            start=datetime(2030, 7, 16, 14, 30, tzinfo=LONDON),
            end=datetime(2030, 7, 16, 14, 40, tzinfo=LONDON),
        )
        with django_capture_on_commit_callbacks(execute=True):
            second = make_change(first, slot)
        _, event = event_of(ics(second, CalendarMethod.CANCEL))
        assert str(event["UID"]) == f"{first.reference}@testserver"
        assert event["SEQUENCE"] == 2
