"""The shared scenarios: a practice with a member of staff, a patient, an appointment type with
free slots; a link for that patient; and a PCN hub sharing a type with the practice. The fixtures
over them are in tests/conftest.py (and the booking folder's link in tests/booking/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from booking.models import (
    Appointment,
    AppointmentType,
    BookingLink,
    Location,
    Organisation,
    Patient,
    Practitioner,
    SharingAgreement,
    Slot,
)
from messaging.models import Message
from messaging.texts import message_text
from tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    BookingLinkFactory,
    LocationFactory,
    MessageFactory,
    OrganisationFactory,
    PatientFactory,
    PractitionerFactory,
    RotaFactory,
    SharingAgreementFactory,
    SlotFactory,
    StaffMembershipFactory,
    UserFactory,
)


@dataclass
class Practice:
    organisation: Organisation
    user: object
    patient: Patient
    appointment_type: AppointmentType
    location: object
    practitioner: Practitioner


def make_practice(name: str = "Riverside") -> Practice:
    organisation = OrganisationFactory(name=f"{name} Practice")
    user = UserFactory(username=name.lower())
    StaffMembershipFactory(user=user, organisation=organisation)
    location = LocationFactory(organisation=organisation, name=f"{name} Surgery")
    practitioner = PractitionerFactory(organisation=organisation, name=f"Dr {name}")
    appointment_type = AppointmentTypeFactory(organisation=organisation, name="Flu vaccination", minimum_notice_hours=1)
    RotaFactory(practitioner=practitioner, location=location, appointment_type=appointment_type)
    start = timezone.now().replace(microsecond=0, second=0) + timedelta(days=2)
    for i in range(3):
        SlotFactory(
            practitioner=practitioner,
            location=location,
            appointment_type=appointment_type,
            start=start + timedelta(minutes=10 * i),
            end=start + timedelta(minutes=10 * (i + 1)),
        )
    patient = PatientFactory(organisation=organisation, first_name="Oliver", last_name="Smith")
    return Practice(organisation, user, patient, appointment_type, location, practitioner)


def make_link(practice: Practice) -> BookingLink:
    """An active link for the practice's patient, to its appointment type at its location."""
    return BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )


@dataclass
class Hub:
    organisation: Organisation
    agreement: SharingAgreement
    appointment_type: AppointmentType
    location: object
    other_location: object
    practitioner: Practitioner


def make_hub(practice: Practice) -> Hub:
    """A PCN hub that shares its smear tests at one of its two locations with `practice`."""
    organisation = OrganisationFactory(name="Northgate PCN Hub", kind=Organisation.Kind.HUB)
    location = LocationFactory(organisation=organisation, name="Northgate Health Centre")
    other_location = LocationFactory(organisation=organisation, name="Northgate Annexe")
    practitioner = PractitionerFactory(organisation=organisation, name="Dr Hub")
    appointment_type = AppointmentTypeFactory(organisation=organisation, name="Smear test", minimum_notice_hours=1)
    RotaFactory(practitioner=practitioner, location=location, appointment_type=appointment_type)
    start = timezone.now().replace(microsecond=0, second=0) + timedelta(days=3)
    SlotFactory(
        practitioner=practitioner,
        location=location,
        appointment_type=appointment_type,
        start=start,
        end=start + timedelta(minutes=10),
    )
    agreement = SharingAgreementFactory(host=organisation, partner=practice.organisation)
    agreement.appointment_types.set([appointment_type])
    agreement.locations.set([location])
    return Hub(organisation, agreement, appointment_type, location, other_location, practitioner)


def text_as_sent(message: Message) -> str:
    """The text the patient receives, link included: the stored body shows it as a placeholder.

    Put back from the link's encrypted token (messaging/texts.py), as delivery does, so it works
    while the link can still book.
    """
    return message_text(message=Message.objects.select_related("booking_link").get(pk=message.pk))


def book_at(
    practice: Practice,
    start: datetime,
    *,
    patient: Patient | None = None,
    practitioner: Practitioner | None = None,
    location: Location | None = None,
    booked_at: datetime | None = None,
    through_link: bool = False,
) -> Appointment:
    """A booked appointment at `start` (past or future) in a slot of its own: by staff, or
    through a link when `through_link`; booked at `booked_at` (a week before `start` unless said)."""
    practitioner = practitioner or practice.practitioner
    slot = SlotFactory(
        practitioner=practitioner,
        location=location or practice.location,
        appointment_type=practice.appointment_type,
        start=start,
        end=start + timedelta(minutes=10),
        status=Slot.Status.BOOKED,
    )
    patient = patient or PatientFactory(organisation=practice.organisation)
    link = (
        BookingLinkFactory(
            patient=patient,
            appointment_type=practice.appointment_type,
            location=slot.location,
            status=BookingLink.Status.BOOKED,
        )
        if through_link
        else None
    )
    return Appointment.objects.create(
        slot=slot,
        patient=patient,
        booking_link=link,
        booked_by=None if through_link else practice.user,
        booked_at=booked_at or start - timedelta(days=7),
    )


SESSION_PATIENTS = (("Amira", "Khan"), ("Ben", "Jones"), ("Cara", "Lee"))


def make_clinic_session(practice: Practice, start: datetime) -> list[Appointment]:
    """The practitioner's list at the practice's location: three patients booked ten minutes
    apart from `start` (Amira Khan, Ben Jones, Cara Lee), the second through a link."""
    return [
        book_at(
            practice,
            start + timedelta(minutes=10 * i),
            patient=PatientFactory(organisation=practice.organisation, first_name=first, last_name=last),
            through_link=i == 1,
        )
        for i, (first, last) in enumerate(SESSION_PATIENTS)
    ]


def make_booked_appointment(
    practice: Practice,
    *,
    start: datetime,
    booked_at: datetime,
    channel: str = "sms",
    patient: Patient | None = None,
    appointment_type: AppointmentType | None = None,
    practitioner: Practitioner | None = None,
) -> Appointment:
    """An appointment booked through a link that was sent by `channel`, at `start`, booked at `booked_at`.

    Made row by row rather than through appointment_book, whose booking window is the real
    clock's: reminder tests book on days around the clock changes, years from now. The link
    keeps its encrypted token, as a booked link does while its appointment is to come.
    """
    patient = patient or practice.patient
    appointment_type = appointment_type or practice.appointment_type
    link = BookingLinkFactory(
        patient=patient,
        appointment_type=appointment_type,
        location=practice.location,
        status=BookingLink.Status.BOOKED,
        expires_at=None,
    )
    address = patient.mobile if channel == "sms" else patient.email
    MessageFactory(patient=patient, booking_link=link, channel=channel, to_address=address)
    slot = SlotFactory(
        practitioner=practitioner or practice.practitioner,
        location=practice.location,
        appointment_type=appointment_type,
        start=start,
        end=start + timedelta(minutes=10),
        status=Slot.Status.BOOKED,
    )
    return AppointmentFactory(slot=slot, patient=patient, booking_link=link, booked_at=booked_at)
