"""What one run of the load generator does, written to a plan file it reads.

Reading scenarios use links from the data set (opening a link and checking the date of birth
change nothing that matters, so any run can reuse them). Booking uses up a link and a slot, so
each run makes its own: links for uncontended bookings, each with a free slot of its own, and
for the race a fresh flu clinic at the PCN hub with 20 slots and 200 links to them. Every new
link is sent in a message, as real ones are (booking looks the message up to confirm).

The many-clinicians clinic (issue 12: 20 practitioners on one type at one location, 26 weeks of
10-minute slots Monday to Friday 08:00-18:00, 30% booked) is made once a week by the rotas'
own slot generation and reused by the runs that week; each run gets new links to it, for any
clinician and for one practitioner.
"""

from __future__ import annotations

import ipaddress
import json
import random
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bench.dataset import LINK_BODY, read_tokens, tokens_path
from bench.environment import BENCH_DIR, PUBLIC_BASE_URL, STAFF_PASSWORD
from booking.models import (
    Appointment,
    AppointmentType,
    BookingLink,
    Organisation,
    Patient,
    Practitioner,
    Rota,
    SharingAgreement,
    Slot,
    StaffMembership,
    hash_token,
)
from booking.references import decode_reference, encode_reference
from booking.slots import london_datetime, slot_starts_available, slots_generate_from_rota
from messaging.models import Message

# Requests per scenario at --requests 1.
COUNTS = {"floor": 300, "open": 600, "book": 300, "search": 1000, "send": 300, "clinic": 300}
# Changing an appointment (its own entry: other scenarios' counts stay as they are).
CHANGE_COUNT = 300
# Booked this far ahead at least, so a change is well inside every type's online window.
CHANGE_AHEAD = timedelta(hours=48)
CLINIC_CLINICIANS = 20
CLINIC_WEEKS = 26
CLINIC_BOOKED_PERCENT = 30
# Browsers per kind of clinic link; each looks at its pages many times.
CLINIC_PATIENTS = 20
RACE_SLOTS = 20
RACE_CLIENTS = 200
WARMUP = 20
# RFC 2544's benchmarking range: each simulated patient's address in X-Forwarded-For.
CLIENT_ADDRESSES = ipaddress.ip_network("198.18.0.0/15")


@dataclass
class _Addresses:
    next_index: int = 1

    def take(self) -> str:
        address = str(CLIENT_ADDRESSES[self.next_index])
        self.next_index += 1
        return address


def plan_path(directory: Path = BENCH_DIR) -> Path:
    return directory / "plan.json"


def make_plan(
    *,
    requests: float = 1.0,
    seed: int | None = None,
    now: datetime | None = None,
    directory: Path = BENCH_DIR,
    clinic_weeks: int = CLINIC_WEEKS,
) -> dict:
    """Make this run's fixtures in the database and return the plan (also written to plan.json).

    `clinic_weeks` shortens the many-clinicians clinic for the bench's own tests.
    """
    rng = random.Random(seed)
    now = now or timezone.now()
    counts = {name: max(1, round(count * requests)) for name, count in COUNTS.items()}
    addresses = _Addresses()
    tokens = read_tokens(tokens_path(directory))
    staff = _staff()
    with transaction.atomic():
        plan: dict[str, Any] = {
            "made_at": now.isoformat(),
            "floor": [f"/b/{secrets.token_hex(4)}" for _ in range(counts["floor"] + WARMUP)],
            "open": _open(tokens, counts["open"] + WARMUP, rng, now, addresses),
            "book": _book(counts["book"] + WARMUP, rng, now, addresses),
            "race": _race(rng, now, addresses),
            "staff": [{"username": username, "password": STAFF_PASSWORD} for username, _ in staff],
            "search": _search(staff, counts["search"] + WARMUP, rng),
            "send": _send(staff, counts["send"] + WARMUP, rng),
            "clinic": _clinic(rng, now, addresses, requests=counts["clinic"] + WARMUP, weeks=clinic_weeks),
            "warmup": WARMUP,
        }
        plan["change"] = _change(
            max(1, round(CHANGE_COUNT * requests)) + WARMUP, now, addresses, avoid=_planned_slots(plan["book"])
        )
    plan_path(directory).write_text(json.dumps(plan))
    return plan


def _staff() -> list[tuple[str, int]]:
    """(username, organisation id) of each practice's manager: the staff who search and send."""
    return list(
        StaffMembership.objects.filter(organisation__kind=Organisation.Kind.PRACTICE)
        .order_by("organisation_id")
        .values_list("user__username", "organisation_id")
    )


def _open(
    tokens: dict[int, tuple[str, str]], count: int, rng: random.Random, now: datetime, addresses: _Addresses
) -> list[dict]:
    """Active data-set links that stay alive through the run and have times to show."""
    ids = list(
        BookingLink.objects.filter(status=BookingLink.Status.ACTIVE, pk__in=list(tokens))
        .exclude(expires_at__lte=now + timedelta(days=1))
        .values_list("pk", flat=True)
    )
    chosen = rng.sample(ids, min(count, len(ids)))
    return [{"token": tokens[pk][0], "dob": tokens[pk][1], "ip": addresses.take()} for pk in chosen]


def _mint_links(
    specs: list[tuple[Patient, int, int, int]], now: datetime, *, practitioner_id: int | None = None
) -> list[str]:
    """Links (patient, type id, location id, owner org id) sent in messages; returns their tokens."""
    tokens = [secrets.token_urlsafe(16) for _ in specs]
    staff_by_org = dict(StaffMembership.objects.values_list("organisation_id", "user_id"))
    links = BookingLink.objects.bulk_create(
        BookingLink(
            token_digest=hash_token(token),
            organisation_id=patient.organisation_id,
            patient=patient,
            appointment_type_id=type_id,
            location_id=location_id,
            practitioner_id=practitioner_id,
            expires_at=now + timedelta(days=14),
            created_by_id=staff_by_org[patient.organisation_id],
            created_at=now - timedelta(hours=1),
        )
        for token, (patient, type_id, location_id, _owner) in zip(tokens, specs, strict=True)
    )
    Message.objects.bulk_create(
        Message(
            organisation_id=link.organisation_id,
            patient=link.patient,
            channel="sms",
            to_address=link.patient.mobile,
            template_body=LINK_BODY,
            body=f"Hello, please book your appointment: {PUBLIC_BASE_URL}/b/{token}",
            booking_link=link,
            status=Message.Status.DELIVERED,
            sent_by_id=link.created_by_id,
            idempotency_key=uuid.uuid4(),
            created_at=link.created_at,
        )
        for link, token in zip(links, tokens, strict=True)
    )
    return tokens


def _patients_by_org(rng: random.Random, per_org: int = 3000) -> dict[int, list[Patient]]:
    """A sample of each practice's patients who can get a text."""
    patients: dict[int, list[Patient]] = {}
    for org_id in Organisation.objects.filter(kind=Organisation.Kind.PRACTICE).values_list("pk", flat=True):
        patients[org_id] = list(
            Patient.objects.filter(organisation_id=org_id, sms_opted_out=False)
            .exclude(mobile="")
            .order_by("?")
            .only("pk", "organisation_id", "mobile", "date_of_birth")[:per_org]
        )
    return patients


def _book(count: int, rng: random.Random, now: datetime, addresses: _Addresses) -> list[dict]:
    """New links, each with its own free slot in its window, so no two bookings meet."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT slot.id, slot.appointment_type_id, slot.location_id, kind.organisation_id
            FROM booking_slot slot
            JOIN booking_appointmenttype kind ON kind.id = slot.appointment_type_id
            WHERE slot.status = 'free'
              AND slot.start >= %s + make_interval(hours => kind.minimum_notice_hours + 1)
              AND slot.start < %s + make_interval(days => kind.maximum_days_ahead - 1)
              AND kind.name NOT LIKE 'Bench race%%'
            ORDER BY random()
            LIMIT %s
            """,
            [now, now, count],
        )
        slots = cursor.fetchall()
    patients = _patients_by_org(rng)
    practices = list(patients)
    specs = []
    for _slot_id, type_id, location_id, owner in slots:
        org = owner if owner in patients else rng.choice(practices)  # a hub's slot: any member practice
        specs.append((rng.choice(patients[org]), type_id, location_id, owner))
    tokens = _mint_links(specs, now)
    return [
        {
            "token": token,
            "dob": patient.date_of_birth.isoformat(),
            "slot": encode_reference(slot_id, namespace="slot"),
            "ip": addresses.take(),
        }
        for token, (slot_id, *_), (patient, *_) in zip(tokens, slots, specs, strict=True)
    ]


def _race(rng: random.Random, now: datetime, addresses: _Addresses) -> dict:
    """A new flu clinic at the hub: 20 five-minute slots the day after tomorrow, 200 links to it."""
    hub = Organisation.objects.filter(kind=Organisation.Kind.HUB).first()
    location = hub.locations.order_by("pk").first() if hub else None
    if hub is None or location is None:
        raise RuntimeError("The data set has no PCN hub with a location: rebuild it (--rebuild).")
    stamp = now.strftime("%Y%m%d%H%M%S")
    flu = AppointmentType.objects.create(
        organisation=hub,
        name=f"Bench race {stamp}: flu clinic",
        duration_minutes=5,
        minimum_notice_hours=1,
        maximum_days_ahead=28,
    )
    nurse = Practitioner.objects.create(organisation=hub, name=f"Bench race nurse {stamp}", role="Practice nurse")
    nurse.locations.add(location)
    for agreement in SharingAgreement.objects.in_force().filter(host=hub):
        agreement.appointment_types.add(flu)
    day = timezone.localdate(now) + timedelta(days=2)
    first = london_datetime(day, time(9, 0))
    assert first is not None, "09:00 is never inside a clock change"
    slots = Slot.objects.bulk_create(
        Slot(
            practitioner=nurse,
            location=location,
            appointment_type=flu,
            start=first + timedelta(minutes=5 * n),
            end=first + timedelta(minutes=5 * (n + 1)),
        )
        for n in range(RACE_SLOTS)
    )
    patients = [patient for group in _patients_by_org(rng, per_org=RACE_CLIENTS).values() for patient in group]
    # Two hundred different patients where the list has them (a tiny data set may not).
    if len(patients) >= RACE_CLIENTS:
        chosen = rng.sample(patients, RACE_CLIENTS)
    else:
        chosen = rng.choices(patients, k=RACE_CLIENTS)
    tokens = _mint_links([(patient, flu.pk, location.pk, hub.pk) for patient in chosen], now)
    references = [encode_reference(slot.pk, namespace="slot") for slot in slots]
    return {
        "appointment_type_id": flu.pk,
        "slots": references,
        "clients": [
            {
                "token": token,
                "dob": patient.date_of_birth.isoformat(),
                "slot": references[n % RACE_SLOTS],
                "ip": addresses.take(),
            }
            for n, (token, patient) in enumerate(zip(tokens, chosen, strict=True))
        ],
    }


def _clinic_type(hub: Organisation, location_id: int, monday: date, weeks: int) -> AppointmentType:
    """The week's many-clinicians clinic at the hub, made by its rotas on first use, then reused."""
    name = f"Bench clinic from {monday.isoformat()}: {CLINIC_CLINICIANS} clinicians, {weeks} weeks"
    existing = AppointmentType.objects.filter(organisation=hub, name=name).first()
    if existing is not None:
        return existing
    kind = AppointmentType.objects.create(
        organisation=hub, name=name, duration_minutes=10, minimum_notice_hours=1, maximum_days_ahead=7 * weeks
    )
    for agreement in SharingAgreement.objects.in_force().filter(host=hub):
        agreement.appointment_types.add(kind)
    last = monday + timedelta(weeks=weeks, days=-1)
    for n in range(CLINIC_CLINICIANS):
        clinician = Practitioner.objects.create(organisation=hub, name=f"Dr Bench {n + 1:02d} ({monday:%d %b})")
        clinician.locations.add(location_id)
        rota = Rota.objects.create(
            practitioner=clinician,
            location_id=location_id,
            appointment_type=kind,
            weekdays=[0, 1, 2, 3, 4],
            start_time=time(8, 0),
            end_time=time(18, 0),
            slot_minutes=10,
            valid_from=monday,
            valid_until=last,
        )
        slots_generate_from_rota(rota=rota, start_date=monday, end_date=last)
    # Staff booked 30% by phone: which ones, fixed by the slot's id so every run sees the same.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE booking_slot SET status = %s WHERE appointment_type_id = %s AND id %% 10 < %s",
            [Slot.Status.BOOKED, kind.pk, CLINIC_BOOKED_PERCENT // 10],
        )
    return kind


def _clinic(rng: random.Random, now: datetime, addresses: _Addresses, *, requests: int, weeks: int) -> dict:
    """Links to the many-clinicians clinic: for any clinician and for one, and the day to look at."""
    hub = Organisation.objects.filter(kind=Organisation.Kind.HUB).first()
    location = hub.locations.order_by("pk").first() if hub else None
    if hub is None or location is None:
        raise RuntimeError("The data set has no PCN hub with a location: rebuild it (--rebuild).")
    today = timezone.localdate(now)
    kind = _clinic_type(hub, location.pk, today - timedelta(days=today.weekday()), weeks)
    clinician = Practitioner.objects.filter(rotas__appointment_type=kind).order_by("pk").first()
    patients = [patient for group in _patients_by_org(rng, per_org=CLINIC_PATIENTS).values() for patient in group]
    plan: dict = {"requests": requests, "appointment_type_id": kind.pk}
    for name, practitioner_id in (("any", None), ("one", clinician.pk if clinician else None)):
        chosen = rng.sample(patients, CLINIC_PATIENTS)
        tokens = _mint_links(
            [(patient, kind.pk, location.pk, hub.pk) for patient in chosen], now, practitioner_id=practitioner_id
        )
        link = BookingLink.objects.get(token_digest=hash_token(tokens[0]))
        first = slot_starts_available(link=link, now=now, limit=1)
        # The day of the next available time: a whole day of the clinic's times.
        day = timezone.localdate(first[0].start) if first else today
        plan[name] = {
            "day": day.isoformat(),
            "patients": [
                {"token": token, "dob": patient.date_of_birth.isoformat(), "ip": addresses.take()}
                for token, patient in zip(tokens, chosen, strict=True)
            ],
        }
    return plan


def _search(staff: list[tuple[str, int]], count: int, rng: random.Random) -> list[dict]:
    """What reception staff type: parts of surnames as the results update, names, NHS numbers, dates."""
    searches = []
    samples = {
        org_id: list(
            Patient.objects.filter(organisation_id=org_id)
            .order_by("?")
            .values_list("first_name", "last_name", "nhs_number", "date_of_birth")[:500]
        )
        for _, org_id in staff
    }
    for _ in range(count):
        index = rng.randrange(len(staff))
        first, last, nhs_number, born = rng.choice(samples[staff[index][1]])
        roll = rng.random()
        if roll < 0.3:
            query = last[: rng.randint(2, 5)].lower()  # typed so far, with the results updating
        elif roll < 0.5:
            query = last
        elif roll < 0.7:
            query = f"{first} {last}"
        elif roll < 0.85 and nhs_number:
            query = f"{nhs_number[:3]} {nhs_number[3:6]} {nhs_number[6:]}"
        else:
            query = f"{born:%d/%m/%Y}"
        searches.append({"staff": index, "q": query})
    return searches


def _send(staff: list[tuple[str, int]], count: int, rng: random.Random) -> list[dict]:
    """A link for one of the practice's own (type, location) pairs with times, sent by SMS."""
    patients = _patients_by_org(rng, per_org=max(50, count))
    pairs = {
        org_id: list(
            Rota.objects.filter(appointment_type__organisation_id=org_id, appointment_type__self_bookable=True)
            .values_list("appointment_type_id", "location_id")
            .distinct()
        )
        for _, org_id in staff
    }
    sends = []
    for _ in range(count):
        index = rng.randrange(len(staff))
        org_id = staff[index][1]
        type_id, location_id = rng.choice(pairs[org_id])
        sends.append(
            {
                "staff": index,
                "patient": encode_reference(rng.choice(patients[org_id]).pk, namespace="patient"),
                "appointment_type": type_id,
                "location": location_id,
            }
        )
    return sends


def _nth(patients: list[Patient], n: int) -> Patient:
    return patients[n % len(patients)]


def _planned_slots(items: list[dict]) -> set[int]:
    return {slot_id for item in items if (slot_id := decode_reference(item["slot"], namespace="slot")) is not None}


def _change(count: int, now: datetime, addresses: _Addresses, *, avoid: set[int]) -> list[dict]:
    """Links already booked, each with a later free time of its own to move to, so no two changes meet.

    The booking is made here directly (the appointment, its slot, the link's status), as the data
    set makes its own: the run measures the change, not the booking before it.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT booked.id, later.id, booked.appointment_type_id, booked.location_id, kind.organisation_id
            FROM booking_slot booked
            JOIN booking_appointmenttype kind ON kind.id = booked.appointment_type_id
            JOIN LATERAL (
                SELECT other.id FROM booking_slot other
                WHERE other.appointment_type_id = booked.appointment_type_id
                  AND other.location_id = booked.location_id
                  AND other.status = 'free'
                  AND other.start > booked.start
                  AND other.start < %s + make_interval(days => kind.maximum_days_ahead - 1)
                ORDER BY other.start
                LIMIT 1
            ) later ON true
            WHERE booked.status = 'free'
              AND booked.start >= %s
              AND booked.start < %s + make_interval(days => kind.maximum_days_ahead - 2)
              AND kind.online_changes_until_hours IS NOT NULL
              AND kind.max_changes > 0
              AND kind.name NOT LIKE 'Bench race%%'
            ORDER BY random()
            LIMIT %s
            """,
            [now, now + CHANGE_AHEAD, now, count * 3],
        )
        rows = cursor.fetchall()
    used = set(avoid)
    pairs = []
    for booked_id, later_id, type_id, location_id, owner in rows:
        if booked_id in used or later_id in used:
            continue
        used.update((booked_id, later_id))
        pairs.append((booked_id, later_id, type_id, location_id, owner))
        if len(pairs) == count:
            break
    patients = _patients_by_org(random.Random(len(pairs)))
    practices = list(patients)
    specs = [
        (_nth(patients[owner if owner in patients else practices[n % len(practices)]], n), type_id, location_id, owner)
        for n, (_, _, type_id, location_id, owner) in enumerate(pairs)
    ]
    tokens = _mint_links(specs, now)
    links = BookingLink.objects.in_bulk([hash_token(token) for token in tokens], field_name="token_digest")
    appointments = Appointment.objects.bulk_create(
        Appointment(
            slot_id=booked_id,
            patient=patient,
            booking_link=links[hash_token(token)],
            booked_at=now - timedelta(minutes=30),
        )
        for token, (booked_id, *_), (patient, *_) in zip(tokens, pairs, specs, strict=True)
    )
    Slot.objects.filter(pk__in=[booked_id for booked_id, *_ in pairs]).update(status=Slot.Status.BOOKED)
    BookingLink.objects.filter(pk__in=[link.pk for link in links.values()]).update(status=BookingLink.Status.BOOKED)
    return [
        {
            "token": token,
            "dob": patient.date_of_birth.isoformat(),
            "appointment": appointment.reference,
            "slot": encode_reference(later_id, namespace="slot"),
            "ip": addresses.take(),
        }
        for token, appointment, (_, later_id, *_), (patient, *_) in zip(tokens, appointments, pairs, specs, strict=True)
    ]
