"""The shared scenarios: a practice with a member of staff, a patient, an appointment type with
free slots; a link for that patient; a PCN hub sharing a type with the practice; and appointments
in each way one can stand (booked, cancelled by the patient or the practice, changed). The fixtures
over them are in tests/conftest.py (and the booking folder's link in tests/booking/conftest.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from booking.formats import LONDON
from booking.models import (
    Appointment,
    AppointmentType,
    BookingLink,
    CancellationReason,
    CancellationSource,
    Location,
    Organisation,
    Patient,
    Practitioner,
    SharingAgreement,
    Slot,
)
from booking.signals import appointment_changed
from booking.slots import london_datetime
from messaging.models import Campaign, CampaignEntry, Message
from messaging.texts import message_text
from tests.factories import (
    AppointmentFactory,
    AppointmentTypeFactory,
    BookingLinkFactory,
    CampaignEntryFactory,
    CampaignFactory,
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


def make_invitation_link(practice: Practice) -> BookingLink:
    """A campaign's invitation for the practice's patient: a link that offers "I don't want this appointment"."""
    return BookingLinkFactory(
        patient=practice.patient,
        appointment_type=practice.appointment_type,
        location=practice.location,
        declinable=True,
    )


# When the campaign tests' invitation went: Tuesday 1 December 2026, 10am London time (GMT).
CAMPAIGN_INVITED = datetime(2026, 12, 1, 10, 0, tzinfo=LONDON)


def make_campaign(practice: Practice, **fields: object) -> Campaign:
    """A campaign of the practice under way (sending) for its flu vaccinations at its surgery."""
    values: dict[str, object] = {
        "organisation": practice.organisation,
        "appointment_type": practice.appointment_type,
        "location": practice.location,
        "created_by": practice.user,
        "started_by": practice.user,
        "status": Campaign.Status.SENDING,
        # Started the day before its invitations (CAMPAIGN_INVITED), whatever today's date: the
        # funnel looks for a campaign's invitations from its start (messaging/campaigns/funnel.py).
        "created_at": CAMPAIGN_INVITED - timedelta(days=1),
        "started_at": CAMPAIGN_INVITED - timedelta(days=1),
        **fields,
    }
    return CampaignFactory(**values)


def make_invitation(
    campaign: Campaign, patient: Patient, *, invited_at: datetime, channel: str = "sms", **entry_fields: object
) -> CampaignEntry:
    """The campaign's invitation of `patient`, made at `invited_at` as its pacing makes one: a
    declinable link (14 days), its message (stored with the hidden link) and the invited row."""
    link = BookingLinkFactory(
        patient=patient,
        appointment_type=campaign.appointment_type,
        location=campaign.location,
        practitioner=campaign.practitioner,
        declinable=True,
        created_at=invited_at,
        expires_at=invited_at + timedelta(days=14),
    )
    message = Message.objects.create(
        organisation=campaign.organisation,
        patient=patient,
        channel=channel,
        to_address=patient.mobile if channel == "sms" else patient.email,
        template_body=campaign.body,
        body=f"{patient.first_name}, {campaign.organisation.name} invites you to book: [link to book: hidden]",
        booking_link=link,
        status=Message.Status.DELIVERED,
        created_at=invited_at,
    )
    return CampaignEntryFactory(
        campaign=campaign, patient=patient, link=link, message=message, invited_at=invited_at, **entry_fields
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


@dataclass
class Clinic:
    """A hub clinic run by many clinicians: one type at one location, the same times for each."""

    organisation: Organisation
    appointment_type: AppointmentType
    location: Location
    practitioners: list[Practitioner]
    patient: Patient
    days: list[date] = field(default_factory=list)


def clinic_times(start: time = time(8, 0), end: time = time(18, 0), minutes: int = 10) -> list[time]:
    """London wall-clock start times from `start` up to `end`, every `minutes`."""
    moment = datetime.combine(date.min, start)
    last = datetime.combine(date.min, end)
    times = []
    while moment < last:
        times.append(moment.time())
        moment += timedelta(minutes=minutes)
    return times


def clinic_weekdays(*, weeks: int, after: date | None = None) -> list[date]:
    """Monday to Friday for `weeks` weeks from the Monday after `after` (today in London)."""
    today = after or timezone.localdate()
    monday = today + timedelta(days=7 - today.weekday())
    return [monday + timedelta(weeks=week, days=day) for week in range(weeks) for day in range(5)]


def make_clinic(
    *,
    clinicians: int = 20,
    days: list[date] | None = None,
    times: list[time] | None = None,
    maximum_days_ahead: int = 200,
) -> Clinic:
    """A PCN hub's clinic: `clinicians` practitioners, each with a free slot at every time of
    every day (London wall-clock times), at one location for one self-bookable type. Bulk made."""
    organisation = OrganisationFactory(name="Northgate PCN Hub", kind=Organisation.Kind.HUB)
    location = LocationFactory(organisation=organisation, name="Northgate Health Centre")
    appointment_type = AppointmentTypeFactory(
        organisation=organisation,
        name="GP appointment",
        minimum_notice_hours=1,
        maximum_days_ahead=maximum_days_ahead,
    )
    practitioners = [
        PractitionerFactory(organisation=organisation, name=f"Dr Clinician {n:02d}") for n in range(clinicians)
    ]
    days = days if days is not None else clinic_weekdays(weeks=1)
    length = timedelta(minutes=appointment_type.duration_minutes)
    starts = [moment for day in days for wall in times or clinic_times() if (moment := london_datetime(day, wall))]
    Slot.objects.bulk_create(
        Slot(
            practitioner=practitioner,
            location=location,
            appointment_type=appointment_type,
            start=start,
            end=start + length,
        )
        for practitioner in practitioners
        for start in starts
    )
    patient = PatientFactory(organisation=organisation, first_name="Amelia", last_name="Jones")
    return Clinic(organisation, appointment_type, location, practitioners, patient, days)


def make_clinic_link(
    clinic: Clinic, *, practitioner: Practitioner | None = None, patient: Patient | None = None
) -> BookingLink:
    """An active link to the clinic's type and location, for any clinician unless one is given."""
    return BookingLinkFactory(
        patient=patient or clinic.patient,
        appointment_type=clinic.appointment_type,
        location=clinic.location,
        practitioner=practitioner,
    )


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
    # make_practice's free slots lie two days from the real now, which a fixed `start` can meet:
    # a clinician is in one place at a time (the database's exclusion constraint), so they go.
    Slot.objects.filter(
        practitioner=practitioner, status=Slot.Status.FREE, start__lt=start + timedelta(minutes=10), end__gt=start
    ).delete()
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


@dataclass
class EveryStatus:
    """One appointment in each way an appointment stands, for the practice's patients."""

    booked: Appointment
    by_patient: Appointment  # cancelled by the patient: "I can't make this time"
    by_practice: Appointment  # cancelled by the practice's member of staff: "The clinician is not available"
    changed: Appointment  # moved by the patient to `replacement`
    replacement: Appointment  # booked, replacing `changed`


def make_every_status(
    practice: Practice, *, start: datetime | None = None, cancelled_at: datetime | None = None
) -> EveryStatus:
    """Five appointments (four patients) from `start` (default: in 4 days), ten minutes apart.

    Made as the model allows (its check constraints tie the cancellation fields and the change
    chain to the status), the way booking/appointments.py leaves them.
    """
    start = start or timezone.now().replace(second=0, microsecond=0) + timedelta(days=4)
    cancelled_at = cancelled_at or timezone.now() - timedelta(hours=1)

    def slot(i: int, status: str) -> Slot:
        return SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start + timedelta(minutes=10 * i),
            end=start + timedelta(minutes=10 * (i + 1)),
            status=status,
        )

    def patient(first_name: str, last_name: str) -> Patient:
        return PatientFactory(organisation=practice.organisation, first_name=first_name, last_name=last_name)

    ended = {"status": Appointment.Status.CANCELLED, "cancelled_at": cancelled_at}
    booked = AppointmentFactory(slot=slot(0, Slot.Status.BOOKED), patient=practice.patient)
    by_patient = AppointmentFactory(
        slot=slot(1, Slot.Status.FREE),
        patient=patient("Amelia", "Jones"),
        cancellation_source=CancellationSource.PATIENT,
        cancellation_reason=CancellationReason.CANNOT_MAKE_TIME,
        cancellation_detail="Away that week",
        **ended,
    )
    by_practice = AppointmentFactory(
        slot=slot(2, Slot.Status.FREE),
        patient=patient("Noah", "Brown"),
        cancellation_source=CancellationSource.PRACTICE,
        cancellation_reason=CancellationReason.CLINICIAN_UNAVAILABLE,
        cancelled_by=practice.user,
        **ended,
    )
    mover = patient("Isla", "Taylor")
    changed = AppointmentFactory(
        slot=slot(3, Slot.Status.FREE),
        patient=mover,
        cancellation_source=CancellationSource.CHANGED,
        cancellation_reason=CancellationReason.CHANGED,
        **ended,
    )
    replacement = AppointmentFactory(
        slot=slot(5, Slot.Status.BOOKED), patient=mover, replaces=changed, original=changed, change_count=1
    )
    return EveryStatus(booked, by_patient, by_practice, changed, replacement)


def make_change(appointment: Appointment, slot: Slot) -> Appointment:
    """Move a booked `appointment` to `slot` the way a change does (booking/signals.py,
    appointment_changed): in one transaction the old one ends cancelled with source "changed",
    a new one with the same link replaces it (the chain's `original`, one more `change_count`),
    the slots swap, and `appointment_changed` is sent on commit. Returns the new appointment."""
    with transaction.atomic():
        Slot.objects.filter(pk=appointment.slot_id).update(status=Slot.Status.FREE)
        Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.BOOKED)
        Appointment.objects.filter(pk=appointment.pk).update(
            status=Appointment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancellation_source=CancellationSource.CHANGED,
            cancellation_reason=CancellationReason.CHANGED,
        )
        new = Appointment.objects.create(
            slot_id=slot.pk,
            patient_id=appointment.patient_id,
            booking_link_id=appointment.booking_link_id,
            replaces=appointment,
            original_id=appointment.original_id or appointment.pk,
            change_count=appointment.change_count + 1,
        )
        appointment.refresh_from_db()
        transaction.on_commit(
            lambda: appointment_changed.send(sender=Appointment, appointment=new, previous=appointment)
        )
    return new


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


def make_free_times(practice: Practice, *, count: int, start: datetime) -> list[Slot]:
    """`count` free 10-minute times of the practice's type and location from `start`, back to back."""
    return Slot.objects.bulk_create(
        Slot(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start + timedelta(minutes=10 * i),
            end=start + timedelta(minutes=10 * (i + 1)),
        )
        for i in range(count)
    )


def make_paced_campaign(
    practice: Practice,
    *,
    now: datetime,
    patients: int = 5,
    free_times: int = 10,
    status: str = Campaign.Status.SENDING,
    **settings: object,
) -> Campaign:
    """A campaign of the practice's, started an hour before `now`, with `patients` found rows
    (new patients, rows 2 onwards) and `free_times` free times two days after `now` (the
    scenario's own three are removed, so the count is exactly that). `settings` are the
    campaign's fields (per_day, per_free_time, starts_at, preferred_channel...)."""
    Slot.objects.filter(appointment_type=practice.appointment_type).delete()
    make_free_times(practice, count=free_times, start=now + timedelta(days=2))
    campaign = CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        started_by=practice.user,
        started_at=now - timedelta(hours=1),
        status=status,
        **{"starts_at": now - timedelta(hours=1), **settings},
    )
    for row in range(patients):
        patient = PatientFactory(organisation=practice.organisation, mobile=f"+4474001{row:05d}")
        CampaignEntryFactory(campaign=campaign, patient=patient, row_number=row + 2)
    return campaign


@dataclass
class CampaignList:
    """A list of NHS numbers with a row for every outcome of a campaign's check, by outcome."""

    numbers: dict[str, str]  # CampaignEntry.Problem value ("" for found) -> the NHS number in that row
    elsewhere: Patient  # registered at an organisation the manager isn't a member of: "not found"
    rows: list[str] = field(default_factory=list)  # the NHS numbers in the list's order

    def csv(self, *, header: str = "NHS Number", delimiter: str = ",", line_end: str = "\r\n") -> bytes:
        lines = [f"Surname{delimiter}{header}{delimiter}Date of birth"]
        lines += [f"Example{delimiter}{number}{delimiter}17-May-1980" for number in self.rows]
        return (line_end.join(lines) + line_end).encode()


def make_campaign_list(practice: Practice) -> CampaignList:
    """The practice's patients in each state a campaign's check tells apart, and one elsewhere.

    The practice's member of staff is also a member of a branch practice ("not one of our
    patients" there); a third practice, theirs to nobody here, has a patient too.
    """
    branch = OrganisationFactory(name=f"{practice.organisation.name} Branch")
    StaffMembershipFactory(user=practice.user, organisation=branch)
    branch_patient = PatientFactory(organisation=branch)
    elsewhere = PatientFactory(organisation=OrganisationFactory(name="Faraway Practice"))

    def ours(**fields: object) -> Patient:
        return PatientFactory(organisation=practice.organisation, **fields)

    no_contact = ours(mobile="", email="")
    opted_out = ours(sms_opted_out=True, email="")
    booked = ours()
    AppointmentFactory(
        patient=booked,
        slot=SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=timezone.now() + timedelta(days=5),
            status=Slot.Status.BOOKED,
        ),
    )
    holding = ours()
    BookingLinkFactory(patient=holding, appointment_type=practice.appointment_type, location=practice.location)
    found = practice.patient.nhs_number or ""
    invalid = found[:9] + str((int(found[9]) + 1) % 10)
    numbers = {
        "": found,
        "invalid": invalid,
        "duplicate": found,
        "not_found": "9434765919",
        "not_ours": branch_patient.nhs_number or "",
        "no_contact": no_contact.nhs_number or "",
        "opted_out": opted_out.nhs_number or "",
        "has_appointment": booked.nhs_number or "",
        "has_link": holding.nhs_number or "",
    }
    rows = [numbers[problem] for problem in numbers] + [elsewhere.nhs_number or ""]
    return CampaignList(numbers=numbers, elsewhere=elsewhere, rows=rows)
