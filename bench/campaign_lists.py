"""Checking a campaign's 10,000-row list: the issue's budget is under 10 seconds on two cores.

Runs inside one transaction that is rolled back at the end, so the data set stays as it was
built. In that transaction a practice of its own (so the figure doesn't depend on how the data
set spreads its patients) gets 11,000 patients beside the data set's, and a branch practice of
the same manager a few hundred; some of the practice's patients have no mobile or email, some
opted out of texts with no email, some a booked appointment to come or an active link of the
campaign's type. The list mixes every outcome the check tells apart, in a shuffled order:
mostly found, and invalid numbers, duplicates, numbers nobody has, the branch's patients, the
unreachable, the opted out, the booked and the link holders. The request's part (reading the
file's shape) and the scheduler's (`campaign_list_check`, every batch) are timed apart, with
the queries each batch made.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.models import (
    Appointment,
    AppointmentType,
    BookingLink,
    Location,
    Organisation,
    Patient,
    Practitioner,
    Slot,
    StaffMembership,
    hash_token,
)
from booking.nhs_numbers import nhs_number_check_digit
from messaging.campaigns.checks import BATCH_ROWS, campaign_list_check
from messaging.campaigns.lists import campaign_list_shape
from messaging.models import Campaign, CampaignEntry, CampaignUpload

ROWS = 10_000
BUDGET_SECONDS = 10.0
# Of every 100 rows: how many of each outcome (the rest found).
MIX = {
    "invalid": 4,
    "duplicate": 4,
    "not_found": 4,
    "not_ours": 3,
    "no_contact": 3,
    "opted_out": 3,
    "has_appointment": 3,
    "has_link": 3,
}


class _RolledBack(Exception):
    """Raised to leave the transaction without committing what the scenario wrote."""


def campaign_list_check_bench(*, rows: int = ROWS, batch_rows: int = BATCH_ROWS, seed: int = 2026) -> dict[str, Any]:
    """Time checking a `rows`-row list with every outcome; the figures, with nothing left in the database."""
    rng = random.Random(seed)
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            campaign, content = _scenario(rows=rows, rng=rng)
            started = time.perf_counter()
            _, counted = campaign_list_shape(content=content)
            shape_seconds = time.perf_counter() - started
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE booking_patient; ANALYZE booking_appointment; ANALYZE booking_bookinglink")
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                checked = campaign_list_check(campaign_id=campaign.pk, batch_rows=batch_rows)
            seconds = time.perf_counter() - started
            campaign.refresh_from_db()
            outcomes = dict(
                CampaignEntry.objects.filter(campaign=campaign)
                .order_by()
                .values_list("problem")
                .annotate(n=Count("pk"))
                .values_list("problem", "n")
            )
            batches = -(-rows // batch_rows)
            result.update(
                rows=counted,
                checked=checked,
                status=campaign.status,
                file_bytes=len(content),
                shape_seconds=round(shape_seconds, 3),
                seconds=round(seconds, 3),
                database_seconds=round(sum(float(query["time"]) for query in queries.captured_queries), 3),
                batches=batches,
                batch_size=batch_rows,
                queries=len(queries),
                queries_per_batch=_queries_per_middle_batch(queries.captured_queries),
                outcomes={(problem or "found"): count for problem, count in sorted(outcomes.items())},
            )
            raise _RolledBack
    except _RolledBack:
        pass
    return result


def _queries_per_middle_batch(captured: list[dict[str, Any]]) -> int:
    """Queries from the second batch's savepoint to its release: a batch as every batch but the
    first (which also reads the rows already checked) and the last (which finishes the check)."""
    savepoints = [i for i, query in enumerate(captured) if query["sql"].startswith("SAVEPOINT")]
    if len(savepoints) < 2:
        return len(captured)
    start = savepoints[1]
    end = next(i for i in range(start, len(captured)) if captured[i]["sql"].startswith("RELEASE SAVEPOINT"))
    return end - start + 1


def _nhs_numbers(start: int, count: int) -> list[str]:
    """`count` valid NHS numbers from `start` on, in a range the data set doesn't use (it starts at 4)."""
    found: list[str] = []
    candidate = start
    while len(found) < count:
        first_nine = f"{candidate:09d}"
        check = nhs_number_check_digit(first_nine)
        if check is not None:
            found.append(first_nine + str(check))
        candidate += 1
    return found


def _scenario(*, rows: int, rng: random.Random) -> tuple[Campaign, bytes]:
    now = timezone.now()
    share = {problem: rows * per_hundred // 100 for problem, per_hundred in MIX.items()}
    found = rows - sum(share.values())
    practice = Organisation.objects.create(name="Bench Campaign Practice", ods_code="BENCHC1", phone="+441134960000")
    branch = Organisation.objects.create(name="Bench Campaign Branch", ods_code="BENCHC2", phone="+441134960001")
    manager = get_user_model().objects.create(username="bench-campaign-manager")
    StaffMembership.objects.create(user=manager, organisation=practice, role=StaffMembership.Role.MANAGER)
    StaffMembership.objects.create(user=manager, organisation=branch)
    location = Location.objects.create(
        organisation=practice, name="Bench Surgery", address_line_1="1 High Street", town="Leeds", postcode="LS1 4AP"
    )
    practitioner = Practitioner.objects.create(organisation=practice, name="Dr Bench", role="GP")
    appointment_type = AppointmentType.objects.create(organisation=practice, name="Flu vaccination")

    # Ours: the found and the duplicates' first rows, and each kind of patient the check rejects.
    ours_needed = found + share["no_contact"] + share["opted_out"] + share["has_appointment"] + share["has_link"]
    numbers = _nhs_numbers(100_000_000, ours_needed + share["not_ours"] + share["not_found"])
    ours = numbers[:ours_needed]
    kinds = (
        ["found"] * found
        + ["no_contact"] * share["no_contact"]
        + ["opted_out"] * share["opted_out"]
        + ["has_appointment"] * share["has_appointment"]
        + ["has_link"] * share["has_link"]
    )
    patients = Patient.objects.bulk_create(
        [
            Patient(
                organisation=practice,
                first_name=f"Bench{i}",
                last_name="Campaign",
                date_of_birth="1950-01-01",
                nhs_number=number,
                mobile="" if kind == "no_contact" else f"+4474{i:08d}",
                email="" if kind in ("no_contact", "opted_out") else f"bench{i}@example.com",
                sms_opted_out=kind == "opted_out",
            )
            for i, (number, kind) in enumerate(zip(ours, kinds, strict=True))
        ],
        batch_size=2000,
    )
    by_kind: dict[str, list[Patient]] = {}
    for patient, kind in zip(patients, kinds, strict=True):
        by_kind.setdefault(kind, []).append(patient)
    # The branch's patients, and the numbers nobody has.
    branch_numbers = numbers[ours_needed : ours_needed + share["not_ours"]]
    Patient.objects.bulk_create(
        [
            Patient(
                organisation=branch,
                first_name=f"Branch{i}",
                last_name="Campaign",
                date_of_birth="1950-01-01",
                nhs_number=number,
                mobile=f"+4475{i:08d}",
            )
            for i, number in enumerate(branch_numbers)
        ]
    )
    nobodys = numbers[ours_needed + share["not_ours"] :]
    # Booked appointments of the type to come, and active links of the type.
    start = now.replace(second=0, microsecond=0) + timedelta(days=3)
    slots = Slot.objects.bulk_create(
        [
            Slot(
                practitioner=practitioner,
                location=location,
                appointment_type=appointment_type,
                start=start + timedelta(minutes=10 * i),
                end=start + timedelta(minutes=10 * (i + 1)),
                status=Slot.Status.BOOKED,
            )
            for i in range(len(by_kind["has_appointment"]))
        ]
    )
    booked = zip(slots, by_kind["has_appointment"], strict=True)
    Appointment.objects.bulk_create([Appointment(slot=slot, patient=patient) for slot, patient in booked])
    BookingLink.objects.bulk_create(
        [
            BookingLink(
                token_digest=hash_token(f"bench-campaign-link-{patient.pk}"),
                organisation=practice,
                patient=patient,
                appointment_type=appointment_type,
                location=location,
                expires_at=now + timedelta(days=14),
                created_at=now,
            )
            for patient in by_kind["has_link"]
        ]
    )

    cells = [patient.nhs_number or "" for kind_patients in by_kind.values() for patient in kind_patients]
    cells += rng.sample([p.nhs_number or "" for p in by_kind["found"]], share["duplicate"])
    cells += branch_numbers + nobodys
    cells += [number[:9] + str((int(number[9]) + 1) % 10) for number in rng.sample(ours, share["invalid"])]
    rng.shuffle(cells)
    lines = ["Surname,NHS Number,Date of birth", *(f"Campaign,{cell},01-Jan-1950" for cell in cells)]
    content = ("\r\n".join(lines) + "\r\n").encode()
    _, counted = campaign_list_shape(content=content)
    campaign = Campaign.objects.create(
        organisation=practice,
        name="Bench flu campaign",
        appointment_type=appointment_type,
        location=location,
        link_expiry="14d",
        body="{{Patient First Name}}, book your flu vaccination: {{Appointment Link}}",
        status=Campaign.Status.CHECKING,
        list_name="bench.csv",
        list_rows=counted,
        created_by=manager,
    )
    CampaignUpload.objects.create(campaign=campaign, content=content)
    return campaign, content
