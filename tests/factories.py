"""factory-boy factories for the domain; each makes a valid, saved object by default."""

from __future__ import annotations

from datetime import date, time, timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from booking import models
from booking.nhs_numbers import nhs_number_check_digit

PASSWORD = "correct-horse-battery"  # every factory-made user's


def _valid_nhs_number(n: int) -> str:
    """The n-th valid NHS number in a simple sequence (skipping those with no check digit)."""
    candidate = 900000000 + n * 7
    while True:
        first_nine = f"{candidate:09d}"
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            return first_nine + str(check)
        candidate += 1


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password(PASSWORD)


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Organisation

    name = factory.Sequence(lambda n: f"Practice {n}")
    ods_code = factory.Sequence(lambda n: f"A{90000 + n}")
    phone = "+441134960000"


class StaffMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.StaffMembership

    user = factory.SubFactory(UserFactory)
    organisation = factory.SubFactory(OrganisationFactory)


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Location

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Surgery {n}")
    address_line_1 = "1 High Street"
    town = "Leeds"
    postcode = "LS1 4AP"


class PractitionerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Practitioner
        skip_postgeneration_save = True

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Dr Example {n}")
    role = "GP"


class AppointmentTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AppointmentType

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Appointment type {n}")
    duration_minutes = 10


class RotaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Rota

    practitioner = factory.SubFactory(PractitionerFactory)
    location = factory.SubFactory(LocationFactory, organisation=factory.SelfAttribute("..practitioner.organisation"))
    appointment_type = factory.SubFactory(
        AppointmentTypeFactory, organisation=factory.SelfAttribute("..practitioner.organisation")
    )
    weekdays = factory.LazyFunction(lambda: [0, 1, 2, 3, 4])
    start_time = time(9, 0)
    end_time = time(10, 0)
    slot_minutes = 10
    valid_from = date(2020, 1, 1)


class SlotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Slot

    practitioner = factory.SubFactory(PractitionerFactory)
    location = factory.SubFactory(LocationFactory, organisation=factory.SelfAttribute("..practitioner.organisation"))
    appointment_type = factory.SubFactory(
        AppointmentTypeFactory, organisation=factory.SelfAttribute("..practitioner.organisation")
    )
    start = factory.Sequence(lambda n: timezone.now().replace(microsecond=0) + timedelta(days=1, hours=n))
    end = factory.LazyAttribute(lambda o: o.start + timedelta(minutes=10))


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Patient

    organisation = factory.SubFactory(OrganisationFactory)
    first_name = factory.Sequence(lambda n: f"Pat{n}")
    last_name = "Example"
    date_of_birth = date(1980, 5, 17)
    nhs_number = factory.Sequence(_valid_nhs_number)
    mobile = "+447400123456"
    email = factory.LazyAttribute(lambda o: f"{o.first_name.lower()}@example.com")


class SharingAgreementFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SharingAgreement

    host = factory.SubFactory(OrganisationFactory, kind=models.Organisation.Kind.HUB)
    partner = factory.SubFactory(OrganisationFactory)
    # In force unless a test says otherwise: accepted by the partner. `accepted_at=None` makes
    # an offer still waiting.
    accepted_at = factory.LazyFunction(timezone.now)


class BookingLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.BookingLink

    patient = factory.SubFactory(PatientFactory)
    organisation = factory.SelfAttribute("patient.organisation")
    appointment_type = factory.SubFactory(AppointmentTypeFactory, organisation=factory.SelfAttribute("..organisation"))
    location = factory.SubFactory(LocationFactory, organisation=factory.SelfAttribute("..organisation"))
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=14))


class AppointmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Appointment

    slot = factory.SubFactory(SlotFactory, status=models.Slot.Status.BOOKED)
    patient = factory.SubFactory(PatientFactory, organisation=factory.SelfAttribute("..slot.location.organisation"))


class AuditEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.AuditEvent

    action = models.AuditEvent.Action.OPENED
    patient = factory.SubFactory(PatientFactory)
    organisation = factory.SelfAttribute("patient.organisation")


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.MessageTemplate"

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Template {n}")
    body = "Hello {{Patient First Name}}, please book: {{Appointment Link}}"


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.Message"

    patient = factory.SubFactory(PatientFactory)
    organisation = factory.SelfAttribute("patient.organisation")
    channel = "sms"
    to_address = factory.SelfAttribute("patient.mobile")
    template_body = "Hello {{Patient First Name}}"
    body = factory.LazyAttribute(lambda o: f"Hello {o.patient.first_name}")
    status = "sent"


class CampaignFactory(factory.django.DjangoModelFactory):
    """A campaign whose list is checked and not yet started (status "checked")."""

    class Meta:
        model = "messaging.Campaign"

    organisation = factory.SubFactory(OrganisationFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    appointment_type = factory.SubFactory(AppointmentTypeFactory, organisation=factory.SelfAttribute("..organisation"))
    location = factory.SubFactory(LocationFactory, organisation=factory.SelfAttribute("..organisation"))
    link_expiry = "14d"
    body = "{{Patient First Name}}, {{Practice Name}} invites you to book: {{Appointment Link}}"
    status = "checked"
    created_by = factory.SubFactory(UserFactory)


class CampaignEntryFactory(factory.django.DjangoModelFactory):
    """A found row of a campaign's list, not yet invited."""

    class Meta:
        model = "messaging.CampaignEntry"

    campaign = factory.SubFactory(CampaignFactory)
    row_number = factory.Sequence(lambda n: n + 2)
    patient = factory.SubFactory(PatientFactory, organisation=factory.SelfAttribute("..campaign.organisation"))
    nhs_number = factory.SelfAttribute("patient.nhs_number")
