"""Demo data: two practices and a PCN hub, ready to try every journey.

Everything is keyed on natural keys (ODS codes, names, NHS numbers) and written with
update_or_create, so running it again changes nothing; slots come from the rotas through the
same idempotent generator admins use. Names and numbers are generated from a fixed seed, and
phone numbers sit in Ofcom's ranges reserved for drama where phonenumbers accepts them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, time, timedelta

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from booking.links import LinkExpiry
from booking.models import (
    AppointmentType,
    Location,
    Organisation,
    Patient,
    Practitioner,
    Rota,
    SharingAgreement,
    StaffMembership,
)
from booking.nhs_numbers import nhs_number_check_digit
from booking.slots import SlotGenerationResult, slots_generate_from_rotas
from messaging.campaigns.checks import campaign_list_check
from messaging.campaigns.creation import CampaignSettings, campaign_create
from messaging.campaigns.lists import campaign_list_shape
from messaging.models import Campaign, Channel

DEMO_PASSWORD = "self-booking-demo"  # noqa: S105 -- published on purpose; seed_demo refuses production
SLOT_DAYS = 28
PATIENT_COUNT = 50
WEEKDAYS = [0, 1, 2, 3, 4]

MODE = AppointmentType.Mode

APPOINTMENT_TYPES = {
    "GP appointment": dict(
        duration_minutes=10,
        mode=MODE.IN_PERSON,
        minimum_notice_hours=2,
        maximum_days_ahead=14,
        guidance="A 10-minute appointment with a GP about one problem. If you need help now, call 111 or, in an emergency, 999.",
    ),
    "Smear test": dict(
        duration_minutes=15,
        mode=MODE.IN_PERSON,
        minimum_notice_hours=24,
        maximum_days_ahead=28,
        guidance="Cervical screening with a practice nurse. Try to book a time when you are not having a period, or the 2 days before or after.",
    ),
    "Blood test": dict(
        duration_minutes=10,
        mode=MODE.IN_PERSON,
        minimum_notice_hours=12,
        maximum_days_ahead=28,
        guidance="If you were asked to fast, eat nothing for 12 hours before your test; you can drink water.",
    ),
    "Flu vaccination": dict(
        duration_minutes=5,
        mode=MODE.IN_PERSON,
        minimum_notice_hours=2,
        maximum_days_ahead=28,
        guidance="Wear a top that lets us reach your upper arm easily. Tell us if you have had a severe reaction to a vaccine before.",
    ),
    "Video consultation": dict(
        duration_minutes=15,
        mode=MODE.VIDEO,
        minimum_notice_hours=2,
        maximum_days_ahead=14,
        guidance="We will send you a link to join before the appointment. Find somewhere quiet with a good connection.",
    ),
}


@dataclass(frozen=True)
class DemoOrganisation:
    ods_code: str
    name: str
    kind: str
    phone: str
    uses_nhs_identity: bool  # the NHS primary care logo on its patient pages
    username: str
    locations: tuple[tuple[str, str, str, str], ...]  # name, line 1, town, postcode
    practitioners: tuple[tuple[str, str], ...]  # name, role
    # appointment type, practitioner index, location index, weekdays, start, end
    rotas: tuple[tuple[str, int, int, tuple[int, ...], time, time], ...]


ORGANISATIONS = (
    DemoOrganisation(
        ods_code="A99001",
        name="Riverside Medical Practice",
        kind=Organisation.Kind.PRACTICE,
        phone="+441134960100",
        uses_nhs_identity=True,
        username="riverside",
        locations=(
            ("Riverside Surgery", "12 River Street", "Leeds", "LS1 4AP"),
            ("Kirkstall Branch Surgery", "3 Abbey Road", "Leeds", "LS5 3HP"),
        ),
        practitioners=(
            ("Dr Amina Shah", "GP"),
            ("Dr Tom Okafor", "GP"),
            ("Grace Lee", "Practice nurse"),
            ("Sam Patel", "Healthcare assistant"),
        ),
        rotas=(
            ("GP appointment", 0, 0, (0, 1, 2, 3, 4), time(9, 0), time(12, 0)),
            ("GP appointment", 1, 1, (0, 2, 4), time(14, 0), time(17, 0)),
            ("Video consultation", 1, 0, (1, 3), time(9, 0), time(11, 0)),
            ("Smear test", 2, 0, (1, 3), time(13, 30), time(16, 30)),
            ("Blood test", 3, 0, (0, 1, 2, 3, 4), time(8, 0), time(10, 30)),
            ("Flu vaccination", 2, 1, (5,), time(9, 0), time(12, 0)),
        ),
    ),
    DemoOrganisation(
        ods_code="A99002",
        name="Hillview Surgery",
        kind=Organisation.Kind.PRACTICE,
        phone="+441134960200",
        uses_nhs_identity=True,
        username="hillview",
        locations=(("Hillview Surgery", "88 Hill Top Lane", "Leeds", "LS6 2QB"),),
        practitioners=(
            ("Dr Priya Nair", "GP"),
            ("Megan Jones", "Practice nurse"),
            ("Luke Brown", "Healthcare assistant"),
        ),
        rotas=(
            ("GP appointment", 0, 0, (0, 1, 2, 3, 4), time(8, 30), time(12, 30)),
            ("Video consultation", 0, 0, (0, 2), time(14, 0), time(16, 0)),
            ("Smear test", 1, 0, (0, 2, 4), time(9, 0), time(12, 0)),
            ("Blood test", 2, 0, (1, 3), time(8, 0), time(11, 0)),
            ("Flu vaccination", 1, 0, (1, 3), time(14, 0), time(17, 0)),
        ),
    ),
    DemoOrganisation(
        ods_code="U99001",
        name="Northgate PCN Hub",
        kind=Organisation.Kind.HUB,
        phone="+441134960300",
        # Whether a hub may show the logo depends on who runs it; off, so the demo shows both looks.
        uses_nhs_identity=False,
        username="northgate",
        locations=(("Northgate Health Centre", "1 Northgate", "Leeds", "LS2 7UE"),),
        practitioners=(("Dr Hannah Clarke", "GP"), ("Olu Adeyemi", "Practice nurse")),
        rotas=(
            ("GP appointment", 0, 0, (0, 1, 2, 3, 4), time(18, 30), time(20, 0)),
            ("GP appointment", 0, 0, (5,), time(9, 0), time(13, 0)),
            ("Flu vaccination", 1, 0, (5,), time(9, 0), time(16, 0)),
            ("Smear test", 1, 0, (0, 2), time(17, 0), time(20, 0)),
        ),
    ),
)

# What the hub offers its member practices.
HUB_SHARED_TYPES = ("GP appointment", "Flu vaccination", "Smear test")

DEMO_TEMPLATES = (
    (
        "Flu vaccination invite",
        "Hello {{Patient First Name}}, you are due a flu vaccination. Book a time that suits you: "
        "{{Appointment Link}} {{Practice Name}}",
    ),
    (
        "Book an appointment",
        "Hello {{Patient First Name}}, please book your appointment with {{Practice Name}} here: {{Appointment Link}}",
    ),
)

FIRST_NAMES = (
    "Oliver",
    "Amelia",
    "Mohammed",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Arthur",
    "Ivy",
    "Leo",
    "Freya",
    "Harry",
    "Florence",
    "Oscar",
    "Lily",
    "Archie",
    "Evie",
    "Jack",
    "Sophia",
    "Aisha",
    "Ravi",
    "Chloe",
    "Kwame",
    "Zara",
)
LAST_NAMES = (
    "Smith",
    "Jones",
    "Williams",
    "Taylor",
    "Brown",
    "Davies",
    "Evans",
    "Wilson",
    "Thomas",
    "Johnson",
    "Roberts",
    "Robinson",
    "Thompson",
    "Wright",
    "Walker",
    "White",
    "Edwards",
    "Hughes",
    "Green",
    "Hall",
    "Khan",
    "Ahmed",
    "Singh",
    "Mensah",
    "O'Neill",
)


@dataclass
class DemoResult:
    logins: list[tuple[str, str, str]]  # username, password, what it is for
    slots: SlotGenerationResult


def demo_nhs_numbers(rng: random.Random, count: int) -> list[str]:
    """Valid NHS numbers, starting with 9 like the numbers used in test data."""
    numbers: list[str] = []
    while len(numbers) < count:
        first_nine = "9" + "".join(str(rng.randrange(10)) for _ in range(8))
        check = nhs_number_check_digit(first_nine)
        if check is not None and first_nine + str(check) not in numbers:
            numbers.append(first_nine + str(check))
    return numbers


def demo_mobile(index: int) -> str:
    # 07700 900xxx is Ofcom's drama range but phonenumbers rejects it; 07400 1xxxxx is a real
    # mobile range, so the demo must never run against a live SMS provider (see README).
    return f"+4474001{index:05d}"


def _demo_manager_of(organisation: Organisation) -> User | None:
    membership = (
        StaffMembership.objects.filter(organisation=organisation, role=StaffMembership.Role.MANAGER)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return membership.user if membership else None


@transaction.atomic
def seed_demo(*, today: date | None = None) -> DemoResult:
    today = today or timezone.localdate()
    rng = random.Random(20261124)
    User = get_user_model()
    logins: list[tuple[str, str, str]] = []
    rotas: list[Rota] = []
    organisations: dict[str, Organisation] = {}
    types_by_org: dict[str, dict[str, AppointmentType]] = {}
    locations_by_org: dict[str, list[Location]] = {}

    for spec in ORGANISATIONS:
        organisation, _ = Organisation.objects.update_or_create(
            ods_code=spec.ods_code,
            defaults=dict(name=spec.name, kind=spec.kind, phone=spec.phone, uses_nhs_identity=spec.uses_nhs_identity),
        )
        organisations[spec.ods_code] = organisation
        locations = [
            Location.objects.update_or_create(
                organisation=organisation,
                name=name,
                defaults=dict(address_line_1=line_1, town=town, postcode=postcode, is_active=True),
            )[0]
            for name, line_1, town, postcode in spec.locations
        ]
        locations_by_org[spec.ods_code] = locations
        practitioners = []
        for name, role in spec.practitioners:
            practitioner, _ = Practitioner.objects.update_or_create(
                organisation=organisation, name=name, defaults=dict(role=role, is_active=True)
            )
            practitioners.append(practitioner)
        types = {}
        for type_name in {rota[0] for rota in spec.rotas}:
            types[type_name], _ = AppointmentType.objects.update_or_create(
                organisation=organisation,
                name=type_name,
                defaults=dict(**APPOINTMENT_TYPES[type_name], self_bookable=True, is_active=True),
            )
        types_by_org[spec.ods_code] = types
        for type_name, practitioner_index, location_index, weekdays, start, end in spec.rotas:
            practitioner = practitioners[practitioner_index]
            location = locations[location_index]
            practitioner.locations.add(location)
            appointment_type = types[type_name]
            rota, _ = Rota.objects.update_or_create(
                practitioner=practitioner,
                location=location,
                appointment_type=appointment_type,
                start_time=start,
                defaults=dict(
                    weekdays=list(weekdays),
                    end_time=end,
                    slot_minutes=appointment_type.duration_minutes,
                    valid_from=date(today.year, 1, 1),
                    valid_until=None,
                    is_active=True,
                ),
            )
            rotas.append(rota)

        user, _ = User.objects.get_or_create(username=spec.username)
        user.first_name, user.last_name = "Reception", spec.name
        user.email = f"{spec.username}@example.com"
        user.is_active, user.is_staff, user.is_superuser = True, False, False
        user.set_password(DEMO_PASSWORD)
        user.save()
        StaffMembership.objects.update_or_create(
            # Managers, so a person trying the demo sees every staff page (templates, sharing, audit).
            user=user,
            organisation=organisation,
            defaults=dict(role=StaffMembership.Role.MANAGER),
        )
        logins.append((spec.username, DEMO_PASSWORD, f"manager at {spec.name}"))

    hub = organisations["U99001"]
    for partner_code in ("A99001", "A99002"):
        partner = organisations[partner_code]
        agreement = SharingAgreement.objects.open().filter(host=hub, partner=partner).first()
        if agreement is None:
            agreement = SharingAgreement.objects.create(host=hub, partner=partner)
        if agreement.accepted_at is None:
            # The demo shows sharing at work, so each offer is already accepted, by the
            # partner's demo manager, as it would be after they pressed Accept.
            agreement.offered_by = _demo_manager_of(hub)
            agreement.accepted_at = timezone.now()
            agreement.accepted_by = _demo_manager_of(partner)
            agreement.save(update_fields=["offered_by", "accepted_at", "accepted_by"])
        agreement.appointment_types.set([types_by_org["U99001"][name] for name in HUB_SHARED_TYPES])
        agreement.locations.set(locations_by_org["U99001"])

    admin, _ = User.objects.get_or_create(username="admin")
    admin.email = "admin@example.com"
    admin.is_active, admin.is_staff, admin.is_superuser = True, True, True
    admin.set_password(DEMO_PASSWORD)
    admin.save()
    logins.append(("admin", DEMO_PASSWORD, "superuser for Django admin (/admin/)"))

    practices = [organisations["A99001"], organisations["A99002"]]
    # Message templates live in messaging; booking never imports it, so look the model up by name.
    message_template = apps.get_model("messaging", "MessageTemplate")
    sender_profile = apps.get_model("messaging", "SenderProfile")
    for practice in practices:
        for name, body in DEMO_TEMPLATES:
            message_template.objects.update_or_create(organisation=practice, name=name, defaults={"body": body})
        # The name patients would see as the sender of texts, were Twilio set up.
        sender_profile.objects.update_or_create(
            organisation=practice, defaults={"sms_sender_id": practice.name.split()[0][:11].upper()}
        )

    for index, nhs_number in enumerate(demo_nhs_numbers(rng, PATIENT_COUNT)):
        first_name = FIRST_NAMES[index % len(FIRST_NAMES)]
        last_name = LAST_NAMES[(index * 7) % len(LAST_NAMES)]
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 68))
        email_name = f"{first_name}.{last_name}".lower().replace("'", "")
        Patient.objects.update_or_create(
            organisation=practices[index % 2],
            nhs_number=nhs_number,
            defaults=dict(
                first_name=first_name,
                last_name=last_name,
                date_of_birth=born,
                # A few patients lack a mobile or an email, and one has opted out of texts,
                # so the staff pages' disabled channels can be tried.
                mobile="" if index % 10 == 9 else demo_mobile(index),
                email="" if index % 10 == 4 else f"{email_name}{index}@example.com",
                contact_preference=Patient.ContactPreference.EMAIL if index % 5 == 0 else Patient.ContactPreference.SMS,
                sms_opted_out=index == 7,
            ),
        )

    slots = slots_generate_from_rotas(rotas=rotas, start_date=today, end_date=today + timedelta(days=SLOT_DAYS - 1))
    _demo_campaign(organisation=organisations["A99001"], appointment_type=types_by_org["A99001"]["Flu vaccination"])
    return DemoResult(logins=logins, slots=slots)


DEMO_CAMPAIGN_NAME = "Flu clinic invitations (demo)"
DEMO_CAMPAIGN_BODY = (
    "{{Patient First Name}}, {{Practice Name}} is inviting you to this year's flu vaccination. "
    "Choose a time that suits you: {{Appointment Link}}"
)


def _demo_campaign(*, organisation: Organisation, appointment_type: AppointmentType) -> None:
    """A flu campaign at Riverside with its list checked, ready for "Start sending" (once only).

    Its list is the practice's patients (up to 40), with an invalid NHS number and a duplicate, so
    the check page shows what it tells apart. Made and checked as a manager's upload would be
    (messaging/campaigns/), so nothing is sent until someone presses Start sending.
    """
    if Campaign.objects.filter(organisation=organisation, name=DEMO_CAMPAIGN_NAME).exists():
        return
    manager = _demo_manager_of(organisation)
    location = Location.objects.filter(rotas__appointment_type=appointment_type).order_by("pk").first()
    if manager is None or location is None:
        return
    patients = Patient.objects.filter(organisation=organisation).exclude(nhs_number="").order_by("pk")
    numbers = [str(number) for number in patients.values_list("nhs_number", flat=True)]
    rows = ["NHS Number", *numbers[:40], "123 456 7890", numbers[0]]
    content = ("\r\n".join(rows) + "\r\n").encode()
    _, count = campaign_list_shape(content=content)
    campaign = campaign_create(
        organisation=organisation,
        user=manager,
        settings=CampaignSettings(
            name=DEMO_CAMPAIGN_NAME,
            appointment_type=appointment_type,
            location=location,
            practitioner=None,
            link_expiry=LinkExpiry.DAYS_14,
            body=DEMO_CAMPAIGN_BODY,
            preferred_channel=Channel.SMS,
        ),
        list_name="flu-demo.csv",
        content=content,
        list_rows=count,
    )
    campaign_list_check(campaign_id=campaign.pk)
