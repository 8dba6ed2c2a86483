"""The scale data set: 10 organisations (9 practices and a PCN hub), 40 locations, 300
practitioners, 1,000,000 slots over six months, 200,000 patients, 100,000 links (at scale 1).

Written with COPY in one transaction, with ids chosen here so rows can refer to each other
without a round trip. It reuses the domain where the rules live: slots come from rotas through
`rota_slot_times` (London wall-clock time, bank holidays skipped, clock changes), link digests
from `hash_token`, expiries from `LinkExpiry`, NHS numbers from `nhs_number_check_digit`; every
row also passes the database's own constraints (no overlapping slots per practitioner, NHS
number modulus 11, E.164 mobiles, one booking per slot and per link), which check it as it is
written.

Link tokens exist only here and in `links.tsv` beside the manifest (git-ignored): the database
keeps digests, as in production, and the load generator needs the tokens to open the links.
"""

from __future__ import annotations

import json
import random
import secrets
import time
import uuid
from collections.abc import Iterable, Iterator, Sized
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from tqdm import tqdm

from bench.environment import BENCH_DIR, STAFF_PASSWORD
from booking.links import LinkExpiry
from booking.models import (
    AppointmentType,
    Location,
    Organisation,
    Practitioner,
    Rota,
    SharingAgreement,
    StaffMembership,
    hash_token,
)
from booking.nhs_numbers import nhs_number_check_digit
from booking.references import encode_reference
from booking.slots import rota_slot_times
from hero.demo import APPOINTMENT_TYPES, DEMO_TEMPLATES, FIRST_NAMES, HUB_SHARED_TYPES, LAST_NAMES

if TYPE_CHECKING:
    from messaging.models import MessageTemplate

# Bump when the shape of the data set changes, so an old one is rebuilt.
DATASET_VERSION = 1
SLOT_DAYS = 182  # six months
# A data set is a snapshot in time (slots from the day it was built, links sent in the days
# before); after this long its windows and expiries no longer look like a live practice's.
MAX_AGE = timedelta(days=7)
LOCATIONS_PER_ORGANISATION = 4
# Each rota makes 14 slots a weekday; each practitioner has a morning and an afternoon rota.
SLOTS_PER_ROTA_DAY = 14
# About three rotas share each (type, location), so a link sees the times of 1–3 clinicians.
ROTAS_PER_COMBINATION = 3

PLACES = ("Riverside", "Hillview", "Kirkstall", "Headingley", "Roundhay", "Chapel Allerton", "Meanwood",
          "Armley", "Horsforth", "Moortown", "Seacroft", "Beeston", "Pudsey", "Garforth", "Otley")  # fmt: skip
POSTCODES = ("LS1 4AP", "LS6 2QB", "LS5 3HP", "LS2 7UE", "LS8 1AA", "LS7 4RB", "LS16 5DE", "LS12 1XY")
STREETS = ("High Street", "Church Lane", "Station Road", "Park Avenue", "Mill Lane", "Victoria Road")
EXTRA_FIRST_NAMES = ("James", "Emily", "William", "Grace", "Thomas", "Olivia", "Daniel", "Hannah", "Joseph",
                     "Sophie", "Samuel", "Ella", "David", "Lucy", "Adam", "Fatima", "Yusuf", "Maryam", "Ibrahim",
                     "Priya", "Arjun", "Chen", "Wei", "Oluwaseun", "Chidi", "Siobhan", "Niamh", "Callum", "Rhys",
                     "Bethan", "Ewan", "Morag", "Kasia", "Piotr", "Andrei", "Elena", "Sara", "Luca")  # fmt: skip
EXTRA_LAST_NAMES = ("Patel", "Hussain", "Ali", "Begum", "Shah", "Martin", "Jackson", "Clarke", "Wood",
                    "Harris", "Lewis", "Turner", "Hill", "Cooper", "Ward", "Morris", "Moore", "King", "Baker",
                    "Harrison", "Morgan", "Allen", "James", "Scott", "Phillips", "Watson", "Davis", "Parker",
                    "Bennett", "Price", "Griffiths", "Young", "Mitchell", "Kelly", "Cook", "Carter", "Richardson",
                    "Bailey", "Collins", "Bell", "Shaw", "Murphy", "Miller", "Cox", "Richards", "Marshall",
                    "Anderson", "Simpson", "Ellis", "Adams", "Chapman", "Chen", "Kowalski", "Nowak", "Okafor",
                    "Adeyemi", "Osei", "Nguyen", "Rahman", "Iqbal", "Chaudhry", "Sharma", "Gill", "Kaur")  # fmt: skip
# Surnames beyond the common ones: a long tail, as a real list has.
SURNAME_STARTS = ("Ash", "Brad", "Craw", "Dun", "Elm", "Fair", "Gold", "Hart", "Holl", "Kings", "Lang", "Mill",
                  "North", "Oak", "Pen", "Rad", "Shel", "Stan", "Thorn", "Wood", "Black", "Brook", "Cald",
                  "Hal")  # fmt: skip
SURNAME_ENDS = ("ley", "ford", "wick", "ton", "worth", "by", "field", "well", "more", "ham", "bury", "stock",
                "dale", "combe", "gate", "hurst", "ridge", "shaw", "thwaite", "croft")  # fmt: skip
ROLES = ("GP", "GP", "Practice nurse", "Healthcare assistant")
# How links were sent: the product's expiry options, 14 days (the default) most often.
EXPIRY_WEIGHTS = {
    LinkExpiry.DAYS_14: 60,
    LinkExpiry.DAYS_30: 15,
    LinkExpiry.DAYS_7: 10,
    LinkExpiry.HOURS_48: 5,
    LinkExpiry.HOURS_24: 5,
    LinkExpiry.NEVER: 5,
}
LINK_BODY = "Hello {{Patient First Name}}, please book your appointment: {{Appointment Link}}"


@dataclass(frozen=True)
class Scale:
    """How big the data set is; 1 is the issue's practice-and-PCN size."""

    factor: float

    @property
    def organisations(self) -> int:
        return max(2, round(10 * self.factor))

    @property
    def locations(self) -> int:
        return LOCATIONS_PER_ORGANISATION * self.organisations

    @property
    def practitioners(self) -> int:
        return max(2 * self.organisations, round(300 * self.factor))

    @property
    def slots(self) -> int:
        return round(1_000_000 * self.factor)

    @property
    def patients(self) -> int:
        return round(200_000 * self.factor)

    @property
    def links(self) -> int:
        return round(100_000 * self.factor)

    def counts(self) -> dict[str, int]:
        return {
            "organisations": self.organisations,
            "locations": self.locations,
            "practitioners": self.practitioners,
            "slots": self.slots,
            "patients": self.patients,
            "links": self.links,
        }


@dataclass
class Manifest:
    version: int
    scale: float
    counts: dict[str, int]
    built_at: str
    build_seconds: float
    migrations: list[str]
    database: str
    extra: dict[str, int] = field(default_factory=dict)  # appointments, messages, audit events

    @classmethod
    def load(cls, path: Path) -> Manifest | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None


def manifest_path(directory: Path = BENCH_DIR) -> Path:
    return directory / "dataset.json"


def tokens_path(directory: Path = BENCH_DIR) -> Path:
    return directory / "links.tsv"


def applied_migrations() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT app || '.' || name FROM django_migrations ORDER BY app, name")
        return [row[0] for row in cursor.fetchall()]


def database_label() -> str:
    settings = connection.settings_dict
    return f"{settings['NAME']} on {settings.get('HOST') or 'embedded'}"


def why_rebuild(*, scale: Scale, directory: Path = BENCH_DIR, now: datetime | None = None) -> str | None:
    """Why the data set must be (re)built, or None when the one there matches this scale."""
    manifest = Manifest.load(manifest_path(directory))
    if manifest is None:
        return "no data set yet"
    if manifest.version != DATASET_VERSION:
        return f"the data set's shape changed (version {manifest.version}, now {DATASET_VERSION})"
    if manifest.scale != scale.factor:
        return f"it was built at scale {manifest.scale}, not {scale.factor}"
    if manifest.migrations != applied_migrations():
        return "the schema changed since it was built"
    age = (now or timezone.now()) - datetime.fromisoformat(manifest.built_at)
    if age > MAX_AGE:
        return f"it is {age.days} days old (slot windows and link expiries have moved on)"
    if not tokens_path(directory).exists():
        return "the link tokens file is missing"
    # The data set's own rows have ids up to its counts; a run adds rows after them.
    for table, key in (("booking_slot", "slots"), ("booking_patient", "patients"), ("booking_bookinglink", "links")):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table} WHERE id <= %s", [manifest.counts[key]])
            if cursor.fetchone()[0] != manifest.counts[key]:
                return f"the database doesn't hold the data set's {key}"
    return None


# --- Building ---------------------------------------------------------------------------------


@dataclass
class _Org:
    pk: int
    kind: str
    staff_user_id: int
    locations: list[int] = field(default_factory=list)
    types: dict[str, AppointmentType] = field(default_factory=dict)
    # (type id, location id) -> practitioner ids with a rota there
    combinations: dict[tuple[int, int], list[int]] = field(default_factory=dict)
    patients: list[int] = field(default_factory=list)  # those a link can be sent to by SMS


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def bar(self, total: int, desc: str) -> tqdm:
        return tqdm(total=total, desc=f"{desc:<22}", unit=" rows", unit_scale=True, disable=not self.enabled,
                    dynamic_ncols=True, leave=True)  # fmt: skip


def build(*, scale: Scale, directory: Path = BENCH_DIR, progress: bool = True, seed: int = 2026) -> Manifest:
    """Empty the bench database and build the data set in it. Returns the manifest it wrote."""
    started = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    manifest_path(directory).unlink(missing_ok=True)
    rng = random.Random(seed)
    now = timezone.now().replace(microsecond=0)
    today = timezone.localdate(now)
    bars = _Progress(progress)

    # TRUNCATE every table (the audit trigger allows it), then the data set in one transaction.
    call_command("flush", interactive=False, verbosity=0)
    tokens: list[tuple[int, str, date]] = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
        orgs = _organisations(scale=scale, rng=rng, today=today, bars=bars)
        rotas = _rotas(orgs=orgs, scale=scale, today=today)
        slots = _slots(rotas=rotas, scale=scale, today=today, bars=bars)
        patients_dob = _patients(orgs=orgs, scale=scale, rng=rng, now=now, bars=bars)
        rows = _links_and_bookings(
            orgs=orgs, slots=slots, patients_dob=patients_dob, scale=scale, rng=rng, now=now, tokens=tokens, bars=bars
        )
        # Each table's rows once, with their final values, parents before children.
        _copy_slots(slots=slots, rotas=rotas, bars=bars)
        _copy(bars, "links", "booking_bookinglink",
              "id, token_digest, organisation_id, patient_id, appointment_type_id, location_id, practitioner_id, "
              "expires_at, status, failed_attempts, created_by_id, created_at, first_opened_at, revoked_at",
              rows.links)  # fmt: skip
        _copy(bars, "messages", "messaging_message",
              "id, organisation_id, patient_id, channel, to_address, template_body, body, booking_link_id, status, "
              "provider_message_id, sent_by_id, idempotency_key, created_at, sent_at, subject, failure_reason",
              rows.messages)  # fmt: skip
        _copy(bars, "appointments", "booking_appointment",
              "id, slot_id, patient_id, booking_link_id, booked_by_id, booked_at, status",
              rows.appointments)  # fmt: skip
        _copy(bars, "audit events", "booking_auditevent",
              "created_at, action, actor_id, organisation_id, patient_id, booking_link_id, appointment_id, detail",
              rows.audit)  # fmt: skip
        extra = {
            "appointments": len(rows.appointments),
            "messages": len(rows.messages),
            "audit_events": len(rows.audit),
            "booked_slots": slots.status.count("booked"),
            "blocked_slots": slots.status.count("blocked"),
        }
        _reset_sequences()
    with bars.bar(1, "vacuum analyze") as bar:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        bar.update(1)

    _write_tokens(tokens, tokens_path(directory))
    manifest = Manifest(
        version=DATASET_VERSION,
        scale=scale.factor,
        counts=scale.counts(),
        built_at=now.isoformat(),
        build_seconds=round(time.monotonic() - started, 1),
        migrations=applied_migrations(),
        database=database_label(),
        extra=extra,
    )
    manifest_path(directory).write_text(json.dumps(asdict(manifest), indent=2))
    return manifest


def _organisations(*, scale: Scale, rng: random.Random, today: date, bars: _Progress) -> list[_Org]:
    User = get_user_model()
    password = make_password(STAFF_PASSWORD)  # one hash: PBKDF2 is slow on purpose
    orgs: list[_Org] = []
    practitioners_left = scale.practitioners
    with bars.bar(scale.organisations, "organisations") as bar:
        for index in range(scale.organisations):
            is_hub = index == scale.organisations - 1
            place = PLACES[index % len(PLACES)] + ("" if index < len(PLACES) else f" {index}")
            organisation = Organisation.objects.create(
                name=f"{place} PCN Hub" if is_hub else f"{place} Medical Practice",
                ods_code=f"U8{index:04d}" if is_hub else f"B8{index:04d}",
                kind=Organisation.Kind.HUB if is_hub else Organisation.Kind.PRACTICE,
                phone=f"+44113496{index:04d}",
                email=f"practice{index}@example.com",
            )
            user = User.objects.create(
                username=f"bench-{organisation.ods_code.lower()}",
                password=password,
                first_name="Reception",
                last_name=organisation.name,
            )
            StaffMembership.objects.create(user=user, organisation=organisation, role=StaffMembership.Role.MANAGER)
            org = _Org(pk=organisation.pk, kind=organisation.kind, staff_user_id=user.pk)
            org.locations = [
                Location.objects.create(
                    organisation=organisation,
                    name=f"{place} Surgery" if n == 0 else f"{place} Branch {n}",
                    address_line_1=f"{n + 1} {STREETS[(index + n) % len(STREETS)]}",
                    town="Leeds",
                    postcode=POSTCODES[(index + n) % len(POSTCODES)],
                ).pk
                for n in range(LOCATIONS_PER_ORGANISATION)
            ]
            type_names = HUB_SHARED_TYPES if is_hub else tuple(APPOINTMENT_TYPES)
            for name in type_names:
                org.types[name] = AppointmentType.objects.create(
                    organisation=organisation, name=name, self_bookable=True, **APPOINTMENT_TYPES[name]
                )
            if not is_hub:
                for name, body in DEMO_TEMPLATES:
                    _message_template().objects.create(organisation=organisation, name=name, body=body)
            count = practitioners_left // (scale.organisations - index)
            practitioners_left -= count
            names = set()
            for n in range(count):
                name = f"{rng.choice(('Dr ', 'Dr ', ''))}{rng.choice(FIRST_NAMES + EXTRA_FIRST_NAMES)} {rng.choice(LAST_NAMES + EXTRA_LAST_NAMES)}"  # noqa: E501
                while name in names:
                    name = f"{name} {n}"
                names.add(name)
                Practitioner.objects.create(organisation=organisation, name=name, role=ROLES[n % len(ROLES)])
            orgs.append(org)
            bar.update(1)
    hub = orgs[-1]
    for org in orgs[:-1]:
        # Accepted by the partner, or it would share nothing (booking/offers.py reads in force).
        agreement = SharingAgreement.objects.create(
            host_id=hub.pk,
            partner_id=org.pk,
            created_at=timezone.now() - timedelta(days=90),
            accepted_at=timezone.now() - timedelta(days=89),
        )
        agreement.appointment_types.set([t.pk for t in hub.types.values()])
        agreement.locations.set(hub.locations)
    return orgs


def _message_template() -> type[MessageTemplate]:
    from django.apps import apps

    return apps.get_model("messaging", "MessageTemplate")


@dataclass
class _RotaPlan:
    rota: Rota
    org: _Org
    type: AppointmentType


def _rotas(*, orgs: list[_Org], scale: Scale, today: date) -> list[_RotaPlan]:
    """Two rotas a weekday per practitioner (morning and afternoon), about three per (type, location)."""
    plans: list[_RotaPlan] = []
    for org in orgs:
        practitioners = list(Practitioner.objects.filter(organisation_id=org.pk).order_by("pk"))
        combinations = [(t, location) for location in org.locations for t in org.types.values()]
        used = combinations[: max(1, min(len(combinations), 2 * len(practitioners) // ROTAS_PER_COMBINATION))]
        for n, practitioner in enumerate(practitioners):
            for half, start in enumerate((clock(8, 30), clock(14, 0))):
                appointment_type, location = used[(2 * n + half) % len(used)]
                minutes = appointment_type.duration_minutes
                end = (datetime.combine(today, start) + timedelta(minutes=minutes * SLOTS_PER_ROTA_DAY)).time()
                rota = Rota(
                    practitioner=practitioner,
                    location_id=location,
                    appointment_type=appointment_type,
                    weekdays=[0, 1, 2, 3, 4],
                    start_time=start,
                    end_time=end,
                    slot_minutes=minutes,
                    valid_from=today - timedelta(days=90),
                )
                plans.append(_RotaPlan(rota, org, appointment_type))
                org.combinations.setdefault((appointment_type.pk, location), [])
                if practitioner.pk not in org.combinations[(appointment_type.pk, location)]:
                    org.combinations[(appointment_type.pk, location)].append(practitioner.pk)
        through = Practitioner.locations.through
        through.objects.bulk_create(
            [
                through(practitioner_id=pk, location_id=location)
                for (_, location), pks in org.combinations.items()
                for pk in pks
            ],
            ignore_conflicts=True,
        )
    Rota.objects.bulk_create([plan.rota for plan in plans])
    return plans


@dataclass
class _Slots:
    """The slots before they are written: rows in start order (id = position + 1), by combination."""

    rows: list[tuple[datetime, int, datetime]]  # start, index of the rota, end
    # (type id, location id) -> [(slot id, start, practitioner id)], in start order
    by_combination: dict[tuple[int, int], list[tuple[int, datetime, int]]]
    status: list[str]  # index = slot id - 1


def _slots(*, rotas: list[_RotaPlan], scale: Scale, today: date, bars: _Progress) -> _Slots:
    last_day = today + timedelta(days=SLOT_DAYS - 1)
    generated: list[tuple[datetime, int, datetime]] = []
    with bars.bar(len(rotas), "slots: from rotas") as bar:
        for index, plan in enumerate(rotas):
            times, _ = rota_slot_times(rota=plan.rota, start_date=today, end_date=last_day)
            generated.extend((start, index, end) for start, end in times)
            bar.update(1)
    if len(generated) < scale.slots:
        raise RuntimeError(f"The rotas make {len(generated)} slots in six months; {scale.slots} are needed.")
    # Exactly the number asked for: the earliest ones, so the six months end part-way through
    # their last afternoon.
    generated.sort(key=lambda row: (row[0], row[1]))
    del generated[scale.slots :]
    by_combination: dict[tuple[int, int], list[tuple[int, datetime, int]]] = {}
    for slot_id, (start, index, _end) in enumerate(generated, start=1):
        rota = rotas[index].rota
        by_combination.setdefault((rota.appointment_type_id, rota.location_id), []).append(
            (slot_id, start, rota.practitioner_id)
        )
    return _Slots(rows=generated, by_combination=by_combination, status=["free"] * len(generated))


def _copy_slots(*, slots: _Slots, rotas: list[_RotaPlan], bars: _Progress) -> None:
    rows = (
        (slot_id, rota.practitioner_id, rota.location_id, rota.appointment_type_id, rota.pk, start, end, status)
        for slot_id, ((start, index, end), status) in enumerate(zip(slots.rows, slots.status, strict=True), start=1)
        for rota in (rotas[index].rota,)
    )
    _copy(bars, "slots", "booking_slot",
          'id, practitioner_id, location_id, appointment_type_id, rota_id, start, "end", status', rows,
          total=len(slots.rows))  # fmt: skip


def _nhs_numbers(count: int, *, start: int = 900_000_000) -> Iterator[str]:
    candidate = start
    made = 0
    while made < count:
        first_nine = f"{candidate:09d}"
        check = nhs_number_check_digit(first_nine)
        candidate += 1
        if check is not None:
            made += 1
            yield first_nine + str(check)


def _surnames(rng: random.Random) -> Iterator[str]:
    common = LAST_NAMES + EXTRA_LAST_NAMES
    # A Zipf-like spread: Smith is common, the long tail rare, as on a real practice list.
    weights = [1 / (rank + 10) for rank in range(len(common))]
    tail = [start + end for start in SURNAME_STARTS for end in SURNAME_ENDS]
    while True:
        if rng.random() < 0.6:
            yield rng.choices(common, weights)[0]
        else:
            yield rng.choice(tail)


def _patients(*, orgs: list[_Org], scale: Scale, rng: random.Random, now: datetime, bars: _Progress) -> list[date]:
    practices = [org for org in orgs if org.kind == Organisation.Kind.PRACTICE]
    first_names = FIRST_NAMES + EXTRA_FIRST_NAMES
    surnames = _surnames(rng)
    dobs: list[date] = []
    earliest = date(1930, 1, 1).toordinal()
    latest = date(2024, 12, 31).toordinal()
    columns = (
        "id, organisation_id, first_name, last_name, date_of_birth, nhs_number, mobile, email, "
        "contact_preference, sms_opted_out, created_at"
    )

    def rows() -> Iterator[tuple[Any, ...]]:
        for patient_id, nhs_number in enumerate(_nhs_numbers(scale.patients), start=1):
            org = practices[(patient_id - 1) % len(practices)]
            born = date.fromordinal(rng.randint(earliest, latest))
            dobs.append(born)
            has_mobile = rng.random() < 0.95
            opted_out = has_mobile and rng.random() < 0.01
            mobile = f"+447400{patient_id:06d}" if has_mobile else ""
            email = f"patient{patient_id}@example.com" if rng.random() < 0.7 else ""
            preference = "email" if email and (not has_mobile or rng.random() < 0.15) else "sms"
            if has_mobile and not opted_out:
                org.patients.append(patient_id)
            yield (patient_id, org.pk, rng.choice(first_names), next(surnames), born, nhs_number, mobile, email,
                   preference, opted_out, now - timedelta(days=rng.randint(0, 3650)))  # fmt: skip

    _copy(bars, "patients", "booking_patient", columns, rows(), total=scale.patients)
    return dobs


@dataclass
class _Rows:
    links: list[tuple]
    messages: list[tuple]
    appointments: list[tuple]
    audit: list[tuple]


def _links_and_bookings(
    *,
    orgs: list[_Org],
    slots: _Slots,
    patients_dob: list[date],
    scale: Scale,
    rng: random.Random,
    now: datetime,
    tokens: list[tuple[int, str, date]],
    bars: _Progress,
) -> _Rows:
    """Links (each sent in a message and audited), some booked, revoked or locked; staff bookings too."""
    hub = orgs[-1]
    practices = [org for org in orgs if org.kind == Organisation.Kind.PRACTICE]
    flu = hub.types["Flu vaccination"].pk
    hub_flu = [combination for combination in hub.combinations if combination[0] == flu] or list(hub.combinations)
    types = {t.pk: t for org in orgs for t in org.types.values()}
    # Free slots a link could book now, per combination, soonest first; consumed as booked.
    free: dict[tuple[int, int], list[tuple[int, datetime, int]]] = {}
    for combination, rows in slots.by_combination.items():
        appointment_type = types[combination[0]]
        earliest, latest = now + appointment_type.minimum_notice, now + appointment_type.maximum_ahead
        free[combination] = [row for row in rows if earliest <= row[1] < latest]
    expiries, weights = list(EXPIRY_WEIGHTS), list(EXPIRY_WEIGHTS.values())
    own = {org.pk: list(org.combinations) for org in practices}

    link_rows: list[tuple[Any, ...]] = []
    message_rows: list[tuple[Any, ...]] = []
    audit_rows: list[tuple[Any, ...]] = []
    appointment_rows: list[tuple[Any, ...]] = []
    appointment_id = 0
    with bars.bar(scale.links, "links: plan") as bar:
        for link_id in range(1, scale.links + 1):
            org = practices[(link_id - 1) % len(practices)]
            patient_id = rng.choice(org.patients)
            combination = rng.choice(hub_flu) if rng.random() < 0.2 else rng.choice(own[org.pk])
            owner = hub if combination in hub.combinations and combination not in org.combinations else org
            practitioner_id = rng.choice(owner.combinations[combination]) if rng.random() < 0.1 else None
            created_at = now - timedelta(seconds=rng.randint(600, 20 * 86400))
            expires_at = LinkExpiry(rng.choices(expiries, weights)[0]).expires_at(now=created_at)
            roll = rng.random()
            status, failed_attempts, first_opened_at, revoked_at = "active", 0, None, None
            if roll < 0.5:
                first_opened_at = created_at + timedelta(seconds=rng.randint(60, 3600))
            if roll < 0.10:
                slot = _take_free_slot(free.get(combination, []), practitioner_id, rng)
                if slot is not None:
                    assert first_opened_at is not None, "a link booked was opened (roll < 0.5)"
                    status = "booked"
                    appointment_id += 1
                    slots.status[slot[0] - 1] = "booked"
                    booked_at = min(now, first_opened_at + timedelta(minutes=2))
                    appointment_rows.append((appointment_id, slot[0], patient_id, link_id, None, booked_at, "booked"))
                    audit_rows.append((booked_at, "booked", None, org.pk, patient_id, link_id, appointment_id, "{}"))
            elif roll < 0.12:
                status, failed_attempts = "locked", 5
            elif roll < 0.15:
                status, revoked_at = "revoked", min(now, created_at + timedelta(hours=rng.randint(1, 48)))
            token = secrets.token_urlsafe(16)
            tokens.append((link_id, token, patients_dob[patient_id - 1]))
            link_rows.append((link_id, hash_token(token), org.pk, patient_id, combination[0], combination[1],
                              practitioner_id, expires_at, status, failed_attempts, org.staff_user_id, created_at,
                              first_opened_at, revoked_at))  # fmt: skip
            body = f"Hello, please book your appointment: {_public_url(token)}"
            message_rows.append((link_id, org.pk, patient_id, "sms", f"+447400{patient_id:06d}", LINK_BODY, body,
                                 link_id, "delivered", f"bench-{link_id}", org.staff_user_id,
                                 uuid.UUID(int=rng.getrandbits(128)), created_at, created_at, "", ""))  # fmt: skip
            detail = json.dumps({"message": encode_reference(link_id, namespace="message"), "channel": "sms"})
            audit_rows.append((created_at, "sent", org.staff_user_id, org.pk, patient_id, link_id, None, detail))
            bar.update(1)

    # Staff book a fifth of the next four weeks' remaining free slots by phone.
    for combination, rows in free.items():
        owner = next(org for org in orgs if combination in org.combinations)
        for slot_id, start, _practitioner in rows:
            if start >= now + timedelta(days=28) or slots.status[slot_id - 1] != "free" or rng.random() >= 0.2:
                continue
            patient_org = owner if owner.kind == Organisation.Kind.PRACTICE else rng.choice(practices)
            appointment_id += 1
            slots.status[slot_id - 1] = "booked"
            booked_at = now - timedelta(seconds=rng.randint(60, 14 * 86400))
            appointment_rows.append(
                (
                    appointment_id,
                    slot_id,
                    rng.choice(patient_org.patients),
                    None,
                    owner.staff_user_id,
                    booked_at,
                    "booked",
                )
            )
    # A few slots blocked by staff (training, leave).
    for index, status in enumerate(slots.status):
        if status == "free" and rng.random() < 0.01:
            slots.status[index] = "blocked"

    return _Rows(links=link_rows, messages=message_rows, appointments=appointment_rows, audit=audit_rows)


def _take_free_slot(
    rows: list[tuple[int, datetime, int]], practitioner_id: int | None, rng: random.Random
) -> tuple[int, datetime, int] | None:
    """One of the first free slots (patients book soon), with the link's practitioner if it has one."""
    if practitioner_id is None:
        return rows.pop(rng.randrange(min(200, len(rows)))) if rows else None
    candidates = [i for i, row in enumerate(rows[:2000]) if row[2] == practitioner_id]
    if not candidates:
        return None
    return rows.pop(rng.choice(candidates[:200]))


def _public_url(token: str) -> str:
    from django.conf import settings

    return f"{settings.PUBLIC_BASE_URL}/b/{token}"


def _copy(
    bars: _Progress, desc: str, table: str, columns: str, rows: Iterable[tuple[Any, ...]], *, total: int | None = None
) -> None:
    """COPY rows into an empty table the way pg_restore does: without its indexes, unique,
    exclusion and foreign key constraints, which are then made again. Making a constraint checks
    every row against it, so the data is held to each one as if it had been there all along, at a
    fraction of the cost of maintaining a GiST index and queuing a foreign key check per row.
    """
    if total is None:
        assert isinstance(rows, Sized), "rows made on the fly need their total"
        total = len(rows)
    with (
        connection.cursor() as cursor,
        _without_indexes(cursor, table, bars, desc),
        bars.bar(total, f"{desc}: copy") as bar,
    ):
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for n, row in enumerate(rows, start=1):
                copy.write_row(row)
                if n % 10_000 == 0:
                    bar.update(10_000)
        bar.update(total % 10_000)


@contextmanager
def _without_indexes(cursor: CursorWrapper, table: str, bars: _Progress, desc: str) -> Iterator[None]:
    # Run the foreign key checks queued so far now: a table with pending checks can't be altered.
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype IN ('u', 'x', 'f') ORDER BY contype DESC, conname",
        [table],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)",
        [table, table],
    )
    indexes = cursor.fetchall()
    for name, _ in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cursor.execute(f'DROP INDEX "{name}"')
    yield
    with bars.bar(len(indexes) + len(constraints), f"{desc}: index, check") as bar:
        for _, definition in indexes:
            cursor.execute(definition)
            bar.update(1)
        for name, definition in reversed(constraints):
            cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
            bar.update(1)


def _reset_sequences() -> None:
    with connection.cursor() as cursor:
        for table in ("booking_slot", "booking_patient", "booking_bookinglink", "booking_appointment",
                      "messaging_message"):  # fmt: skip
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )


def _write_tokens(tokens: list[tuple[int, str, date]], path: Path) -> None:
    temporary = path.with_suffix(".tmp")
    with temporary.open("w") as out:
        out.write("link_id\ttoken\tdate_of_birth\n")
        for link_id, token, born in tokens:
            out.write(f"{link_id}\t{token}\t{born.isoformat()}\n")
    temporary.replace(path)


def read_tokens(path: Path | None = None) -> dict[int, tuple[str, str]]:
    """link id -> (token, date of birth as YYYY-MM-DD)."""
    tokens: dict[int, tuple[str, str]] = {}
    with (path or tokens_path()).open() as lines:
        next(lines)
        for line in lines:
            link_id, token, born = line.rstrip("\n").split("\t")
            tokens[int(link_id)] = (token, born)
    return tokens
