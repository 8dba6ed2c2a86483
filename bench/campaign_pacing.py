"""A campaign's invitations at bench scale: 10,000 patients of one practice, all invited in one pacing run.

Runs on the bench data set inside one transaction that is rolled back at the end, so the data
set stays as it was built. In that transaction: a campaign of the practice with the most
patients a message can reach, for its appointment type and location with the most free
times (its booking window widened to the data set's six months), started, with a day's cap
and a per-free-time allowance high enough for every row (the result says how many free times
there were: 5 invitations each at most);
CAMPAIGN_ROWS found rows of its list (one per patient, written in SQL as the list check
leaves them). Then one pacing run of that campaign (messaging/campaigns/pacing.py,
campaign_pace) at noon London time on the next weekday is timed: every invitation's link
(token made, digested, encrypted), message, audit event, the row's update and its delivery
task row (the database task backend's one INSERT a batch), with its queries counted a batch.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from booking.formats import LONDON, today_in_london
from booking.models import AppointmentType, Organisation, Patient, Slot, StaffMembership
from messaging.campaigns.capacity import campaign_free_times
from messaging.campaigns.pacing import BATCH_SIZE, campaign_pace
from messaging.models import Campaign, Message

CAMPAIGN_ROWS = 10_000


class _RolledBack(Exception):
    """Raised to leave the transaction without committing what the scenario wrote."""


def campaign_pacing_bench(*, scale: float) -> dict[str, Any]:
    """Time one pacing run that invites CAMPAIGN_ROWS patients (times `scale`, at most all of a practice's)."""
    rows = max(100, round(CAMPAIGN_ROWS * min(scale, 1.0)))
    day = today_in_london() + timedelta(days=1)
    while day.weekday() > 4:
        day += timedelta(days=1)
    now = datetime(day.year, day.month, day.day, 12, 0, tzinfo=LONDON)
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            campaign = _campaign(now=now, rows=rows)
            rows = campaign.entries.count()
            free_times = campaign_free_times(campaign=campaign, now=now)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE messaging_campaignentry")
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                pacing = campaign_pace(campaign_id=campaign.pk, now=now)
            seconds = time.perf_counter() - started
            result.update(
                rows=rows,
                free_times=free_times,
                invited=pacing.invited,
                unreachable=pacing.unreachable,
                status=pacing.status,
                messages=Message.objects.filter(pk__in=campaign.entries.values("message_id")).count(),
                batches=pacing.batches,
                batch_size=BATCH_SIZE,
                seconds=round(seconds, 3),
                database_seconds=round(sum(float(query["time"]) for query in queries.captured_queries), 3),
                queries=len(queries),
                queries_per_batch=_queries_per_full_batch(queries.captured_queries),
            )
            raise _RolledBack
    except _RolledBack:
        pass
    return result


def _campaign(*, now: datetime, rows: int) -> Campaign:
    """The campaign and its `rows` found rows, for the practice with the most patients a message reaches."""
    reachable = Q(mobile__gt="", sms_opted_out=False) | Q(email__gt="", email_undeliverable_reason="")
    organisation = (
        Organisation.objects.filter(kind=Organisation.Kind.PRACTICE)
        .annotate(reachable=Count("patients", filter=Q(patients__in=Patient.objects.filter(reachable))))
        .order_by("-reachable", "pk")
        .first()
    )
    assert organisation is not None, "the bench data set has practices"
    # Its own type and location with the most free times from `now` (a practice offers its own
    # types at each of its active locations).
    busiest = (
        Slot.objects.filter(
            appointment_type__organisation=organisation,
            location__organisation=organisation,
            location__is_active=True,
            status=Slot.Status.FREE,
            start__gte=now,
            start__lt=now + timedelta(days=28),
        )
        .values("appointment_type_id", "location_id")
        .annotate(free=Count("pk"))
        .order_by("-free")
        .first()
    )
    assert busiest is not None, "the practice has free times"
    # The whole data set's six months bookable, so its free times allow every row (5 a free
    # time): the bench times making the invitations, not waiting for capacity.
    AppointmentType.objects.filter(pk=busiest["appointment_type_id"]).update(maximum_days_ahead=366)
    manager = StaffMembership.objects.filter(organisation=organisation).select_related("user").first()
    assert manager is not None, "the practice has staff"
    campaign = Campaign.objects.create(
        organisation=organisation,
        name="Bench flu campaign",
        appointment_type_id=busiest["appointment_type_id"],
        location_id=busiest["location_id"],
        link_expiry="14d",
        body="{{Patient First Name}}, {{Practice Name}} invites you to book your flu vaccination: {{Appointment Link}}",
        status=Campaign.Status.SENDING,
        starts_at=now - timedelta(hours=1),
        started_at=now - timedelta(hours=1),
        started_by=manager.user,
        created_by=manager.user,
        # High enough for every row in one run: the bench times making them, not the pace.
        per_day=rows,
        per_free_time=5,
        list_rows=rows,
        list_rows_checked=rows,
        checked_at=timezone.now(),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO messaging_campaignentry (campaign_id, row_number, nhs_number, problem, patient_id,
                follow_ups_sent, call_outcome)
            SELECT %(campaign)s, 1 + row_number() OVER (ORDER BY p.id), p.nhs_number, '', p.id, 0, ''
            FROM booking_patient p
            WHERE p.organisation_id = %(organisation)s
              AND ((p.mobile <> '' AND NOT p.sms_opted_out) OR (p.email <> '' AND p.email_undeliverable_reason = ''))
            ORDER BY p.id
            LIMIT %(rows)s
            """,
            {"campaign": campaign.pk, "organisation": organisation.pk, "rows": rows},
        )
    return campaign


def _queries_per_full_batch(captured: list[dict[str, Any]]) -> int:
    """Queries from the first savepoint to its release: one batch, as every full batch is."""
    count = 0
    for query in captured:
        count += 1
        if query["sql"].startswith("RELEASE SAVEPOINT"):
            return count
    return count
