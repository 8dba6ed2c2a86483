"""Checking a campaign's list: each row found, or why it won't be invited (CampaignEntry.Problem).

Run by the scheduler (`campaign_lists_check`, every few seconds), never in the request: the
request only stored the file (messaging/campaigns/creation.py). The check streams the held
upload in batches; each batch is one transaction that locks the campaign's row, reads the
batch's patients in one query, writes its rows in one INSERT and moves the progress the page
shows (`list_rows_checked`). At the end the campaign is CHECKED and the upload, which holds
NHS numbers nobody needs any more, deleted.

Patients are looked for only in the organisations the manager who created the campaign is a
member of: a number registered elsewhere is "not found", never matched or named. One
registered at another of the manager's organisations (a branch practice, a hub) is "not one
of our patients".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from booking.access import ANY_ROLE, organisation_ids_for
from booking.models import Appointment, BookingLink, Patient
from booking.nhs_numbers import is_valid_nhs_number
from messaging.campaigns.lists import campaign_list_rows
from messaging.channels import channel_reaching
from messaging.models import Campaign, CampaignEntry, CampaignUpload, Channel

BATCH_ROWS = 1000
# What the check reads of a patient: the contact details channel_options looks at.
PATIENT_FIELDS = (
    "organisation_id",
    "nhs_number",
    "first_name",
    "mobile",
    "email",
    "contact_preference",
    "sms_opted_out",
    "email_undeliverable_reason",
)

Problem = CampaignEntry.Problem


@dataclass
class _Reading:
    """Where this run is in the file, and the valid numbers in the rows before it (for duplicates)."""

    rows: Iterator[tuple[int, str]]
    position: int
    seen: set[str]


def campaign_list_check(*, campaign_id: int, batch_rows: int = BATCH_ROWS, now: datetime | None = None) -> int:
    """Check the rest of a CHECKING campaign's list; how many rows this run checked.

    Each batch is a transaction that locks the campaign's row (`FOR UPDATE SKIP LOCKED`): a
    second scheduler checking the same campaign at once skips it and returns, and a run that
    dies mid-way leaves the rows up to its last batch, which the next run goes on from (the
    unique (campaign, row number) constraint is the backstop). A constant number of queries a
    batch, whatever its size. Raises nothing for a campaign that isn't CHECKING: returns 0.
    """
    now = now or timezone.now()
    campaign = Campaign.objects.select_related("created_by").filter(pk=campaign_id).first()
    if campaign is None or campaign.status != Campaign.Status.CHECKING:
        return 0
    content = CampaignUpload.objects.filter(pk=campaign_id).values_list("content", flat=True).first()
    # Ours and the manager's other organisations: patients anywhere else are never read.
    organisation_ids = sorted({campaign.organisation_id, *organisation_ids_for(campaign.created_by, roles=ANY_ROLE)})
    reading: _Reading | None = None
    checked = 0
    while True:
        with transaction.atomic():
            locked = (
                Campaign.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("appointment_type")
                .filter(pk=campaign_id, status=Campaign.Status.CHECKING)
                .first()
            )
            if locked is None:
                return checked  # another run holds it, or it was checked (or deleted) meanwhile
            if content is None or locked.list_rows_checked >= locked.list_rows:
                _finish(campaign=locked, now=now)
                return checked
            if reading is None or reading.position != locked.list_rows_checked:
                # A fresh run, or another run moved on between our batches: read from where it is.
                reading = _reading_from(campaign_id=campaign_id, content=bytes(content), skip=locked.list_rows_checked)
            batch = list(islice(reading.rows, batch_rows))
            entries = _entries(
                campaign=locked, batch=batch, seen=reading.seen, organisation_ids=organisation_ids, now=now
            )
            CampaignEntry.objects.bulk_create(entries)
            reading.position += len(batch)
            # The file may hold fewer rows than counted (it can't, but a short read must still end).
            done = not batch or reading.position >= locked.list_rows
            Campaign.objects.filter(pk=campaign_id).update(
                list_rows_checked=locked.list_rows if done else reading.position
            )
            checked += len(batch)
            if done:
                _finish(campaign=locked, now=now)
                return checked


def campaign_lists_check(now: datetime | None = None) -> int:
    """The scheduler's job: check every CHECKING campaign's list; how many rows it checked."""
    ids = list(Campaign.objects.filter(status=Campaign.Status.CHECKING).order_by("pk").values_list("pk", flat=True))
    return sum(campaign_list_check(campaign_id=campaign_id, now=now) for campaign_id in ids)


def _reading_from(*, campaign_id: int, content: bytes, skip: int) -> _Reading:
    rows = campaign_list_rows(content=content)
    for _ in islice(rows, skip):
        pass
    seen = set(
        CampaignEntry.objects.filter(campaign_id=campaign_id)
        .exclude(problem=Problem.INVALID)
        .values_list("nhs_number", flat=True)
    )
    return _Reading(rows=rows, position=skip, seen=seen)


def _entries(
    *,
    campaign: Campaign,
    batch: list[tuple[int, str]],
    seen: set[str],
    organisation_ids: list[int],
    now: datetime,
) -> list[CampaignEntry]:
    """The batch's rows with their problems; `seen` gains the batch's valid numbers. One query."""
    numbers = {number for _, number in batch if is_valid_nhs_number(number)}
    patients: dict[str, list[Patient]] = {}
    for registered in _patients(campaign=campaign, numbers=numbers, organisation_ids=organisation_ids, now=now):
        patients.setdefault(registered.nhs_number or "", []).append(registered)
    preferred = Channel(campaign.preferred_channel)
    entries = []
    for row_number, number in batch:
        patient: Patient | None = None
        problem: str
        if not is_valid_nhs_number(number):
            problem = Problem.INVALID
        elif number in seen:
            problem = Problem.DUPLICATE
        else:
            seen.add(number)
            holders = patients.get(number, [])
            ours = next((p for p in holders if p.organisation_id == campaign.organisation_id), None)
            if ours is None:
                problem = Problem.NOT_OURS if holders else Problem.NOT_FOUND
            else:
                patient = ours
                problem = _problem_of(patient=ours, preferred=preferred)
        entries.append(
            CampaignEntry(
                campaign_id=campaign.pk,
                row_number=row_number,
                nhs_number=number,
                problem=problem,
                patient=patient,
            )
        )
    return entries


def _problem_of(*, patient: Patient, preferred: Channel) -> str:
    """Why a patient of ours won't be invited, or "" (Problem.NONE) when they will."""
    if channel_reaching(patient, preferred=preferred) is None:
        # The same rule every message follows (messaging/channels.py); opting out is named
        # apart because the practice can ask the patient to text START.
        if preferred == Channel.SMS and patient.sms_opted_out:
            return Problem.OPTED_OUT
        return Problem.NO_CONTACT
    if patient.has_appointment:  # type: ignore[attr-defined]
        return Problem.HAS_APPOINTMENT
    if patient.has_link:  # type: ignore[attr-defined]
        return Problem.HAS_LINK
    return Problem.NONE


def patient_holds_type(
    *, appointment_type_id: int, now: datetime, patient: OuterRef | None = None
) -> tuple[Exists, Exists]:
    """Whether the patient (`patient`, or the outer query's row) already has a booked appointment
    of this type still to come, and whether they hold an active, unexpired link for it: the
    check's "has_appointment" and "has_link", and the same asked again when a row's turn to be
    invited comes (messaging/campaigns/invitations.py)."""
    patient = patient if patient is not None else OuterRef("pk")
    future_appointment = Appointment.objects.filter(
        patient=patient,
        status=Appointment.Status.BOOKED,
        slot__appointment_type_id=appointment_type_id,
        slot__start__gt=now,
    )
    active_link = BookingLink.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        patient=patient,
        appointment_type_id=appointment_type_id,
        status=BookingLink.Status.ACTIVE,
    )
    return Exists(future_appointment), Exists(active_link)


def _patients(*, campaign: Campaign, numbers: set[str], organisation_ids: list[int], now: datetime) -> list[Patient]:
    """The patients with these numbers in these organisations, with whether each already has
    a future appointment or an active link of the campaign's type. One query, over the
    (organisation, NHS number) unique index and the patient indexes of appointments and links."""
    if not numbers:
        return []
    has_appointment, has_link = patient_holds_type(appointment_type_id=campaign.appointment_type_id, now=now)
    return list(
        Patient.objects.filter(organisation_id__in=organisation_ids, nhs_number__in=numbers)
        .only(*PATIENT_FIELDS)
        .annotate(has_appointment=has_appointment, has_link=has_link)
        .order_by()
    )


def _finish(*, campaign: Campaign, now: datetime) -> None:
    """CHECKED, and the upload deleted: the rows hold what the check needed of it."""
    CampaignUpload.objects.filter(pk=campaign.pk).delete()
    Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.CHECKING).update(
        status=Campaign.Status.CHECKED, checked_at=now, status_changed_at=now
    )
