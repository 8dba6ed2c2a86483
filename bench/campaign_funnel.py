"""A campaign's page at bench scale: 10,000 rows of a list in every state of the funnel.

Runs on the bench data set inside one transaction that is rolled back at the end, so the data
set stays as it was built. In that transaction: a campaign of the largest organisation, and
10,000 rows of its list made in SQL (`campaign_funnel_rows_make`): not yet invited, rejected,
invited with the message queued, sent, delivered or failed, opened, date of birth confirmed,
booked through the link (each with its appointment in a free slot), booked by phone, declined
(online and by phone), expired, no answer on the call list. Then the campaign's page is asked
for ~50 times through Django's test client as a signed-in manager (after warm-up requests,
unrecorded), each answer timed and its SQL queries counted, and the funnel query's plan kept
(EXPLAIN ANALYZE) for docs/benchmarks.md.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.load import percentile
from booking.models import Organisation, StaffMembership
from messaging.campaigns.funnel import campaign_funnel
from messaging.models import Campaign

ROWS = 10_000
REQUESTS = 50
WARMUP = 5
HOST: dict[str, Any] = {"HTTP_HOST": "127.0.0.1"}

# Each row's state is its number modulo STATES (n % 20): a fixed share of the list in each.
STATES = 20
# (first state, last state) of each kind; the comments say what the row gets.
NOT_INVITED = (0, 1)  # found, not invited yet
REJECTED = 2  # not found: no patient, no link
QUEUED = 3  # invited, the message still queued
SENT = (4, 18)  # the message sent (18: on the call list, no answer)
FAILED = 6  # the message failed
OPENED = (7, 8)  # delivered and opened
VERIFIED = 9  # and the date of birth confirmed
BOOKED = (10, 13)  # booked through the link
BY_PHONE = 14  # booked by phone (call list)
DECLINED = 15  # declined online
DECLINED_BY_PHONE = 16  # declined by phone (call list)
EXPIRED = 17  # the link expired unbooked
# 5 and 19: delivered, nothing more.


class _RolledBack(Exception):
    """Raised to leave the transaction without committing what the scenario wrote."""


def campaign_funnel_rows_make(*, campaign: Campaign, rows: int, now: datetime) -> None:
    """Add `rows` rows to `campaign`'s list in every funnel state (the module's STATES), in SQL.

    The patients are the campaign's organisation's first `rows` with a mobile (it must have that
    many); the booked rows take free slots of the campaign's type at its location, else any free
    slots (the funnel doesn't read the slot). Invited rows were invited 1 to 10 days before `now`
    and booked 1 to 48 hours after; expired ones 20 days before, with 14-day links.
    """
    params: dict[str, int | datetime] = {
        "campaign": campaign.pk,
        "organisation": campaign.organisation_id,
        "rows": rows,
        "now": now,
        "type": campaign.appointment_type_id,
        "location": campaign.location_id,
    }
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE bench_campaign_row ON COMMIT DROP AS
            SELECT row_number() OVER (ORDER BY p.id) - 1 AS n, p.id AS patient_id, p.nhs_number, p.mobile,
                   NULL::bigint AS link_id, NULL::bigint AS message_id, NULL::bigint AS slot_id,
                   NULL::timestamptz AS invited_at
            FROM booking_patient p WHERE p.organisation_id = %(organisation)s AND p.mobile <> ''
            ORDER BY p.id LIMIT %(rows)s
            """,
            params,
        )
        cursor.execute("SELECT count(*) FROM bench_campaign_row")
        (found,) = cursor.fetchone()
        if found < rows:
            raise ValueError(f"The organisation has {found} patients with a mobile; {rows} rows need as many.")
        cursor.execute(
            f"""
            UPDATE bench_campaign_row SET invited_at = CASE
                WHEN mod(n, {STATES}) = {EXPIRED} THEN %(now)s - interval '20 days'
                WHEN mod(n, {STATES}) IN ({BY_PHONE}, {DECLINED_BY_PHONE}, 18) THEN %(now)s - interval '12 days'
                ELSE %(now)s - (1 + mod(n, 10)) * interval '1 day' - mod(n, 7) * interval '1 hour' END
            WHERE mod(n, {STATES}) > {REJECTED}
            """,
            params,
        )
        # The links, in the state each row reached.
        cursor.execute(
            f"""
            WITH links AS (
                INSERT INTO booking_bookinglink (token_digest, token_encrypted, organisation_id, patient_id,
                    appointment_type_id, location_id, expires_at, status, failed_attempts, created_at,
                    first_opened_at, last_opened_at, open_count, verified_at, declinable, declined_at,
                    decline_reason, decline_detail)
                SELECT md5('bench-campaign-' || %(campaign)s || '-' || b.n) || md5('link' || b.n), '',
                       %(organisation)s, b.patient_id,
                       %(type)s, %(location)s, b.invited_at + interval '14 days',
                       CASE WHEN mod(b.n, {STATES}) BETWEEN {BOOKED[0]} AND {BOOKED[1]} THEN 'booked'
                            WHEN mod(b.n, {STATES}) = {DECLINED} THEN 'declined' ELSE 'active' END,
                       0, b.invited_at,
                       CASE WHEN mod(b.n, {STATES}) BETWEEN {OPENED[0]} AND {DECLINED}
                            THEN b.invited_at + interval '30 minutes' END,
                       CASE WHEN mod(b.n, {STATES}) BETWEEN {OPENED[0]} AND {DECLINED}
                            THEN b.invited_at + interval '30 minutes' END,
                       CASE WHEN mod(b.n, {STATES}) BETWEEN {OPENED[0]} AND {DECLINED} THEN 1 ELSE 0 END,
                       CASE WHEN mod(b.n, {STATES}) BETWEEN {VERIFIED} AND {DECLINED}
                             AND mod(b.n, {STATES}) <> {BY_PHONE} THEN b.invited_at + interval '31 minutes' END,
                       true,
                       CASE WHEN mod(b.n, {STATES}) = {DECLINED} THEN b.invited_at + interval '32 minutes' END,
                       CASE WHEN mod(b.n, {STATES}) = {DECLINED} THEN 'not_now' ELSE '' END, ''
                FROM bench_campaign_row b WHERE b.invited_at IS NOT NULL
                ORDER BY b.n
                RETURNING id, patient_id
            )
            UPDATE bench_campaign_row b SET link_id = links.id FROM links WHERE links.patient_id = b.patient_id
            """,
            params,
        )
        cursor.execute(
            f"""
            WITH messages AS (
                INSERT INTO messaging_message (organisation_id, patient_id, channel, to_address, subject,
                    template_body, body, booking_link_id, status, failure_reason, attempts, next_attempt_at,
                    provider_message_id, idempotency_key, created_at, sent_at)
                SELECT %(organisation)s, b.patient_id, 'sms', b.mobile, '', 'Book: {{{{Appointment Link}}}}',
                       'Book: [link to book: hidden]', b.link_id,
                       CASE WHEN mod(b.n, {STATES}) = {QUEUED} THEN 'queued'
                            WHEN mod(b.n, {STATES}) = {FAILED} THEN 'failed'
                            WHEN mod(b.n, {STATES}) IN ({SENT[0]}, {SENT[1]}) THEN 'sent' ELSE 'delivered' END,
                       CASE WHEN mod(b.n, {STATES}) = {FAILED} THEN 'Unreachable handset' ELSE '' END,
                       1, b.invited_at, 'bench-campaign-' || %(campaign)s || '-' || b.n, gen_random_uuid(),
                       b.invited_at,
                       CASE WHEN mod(b.n, {STATES}) <> {QUEUED} THEN b.invited_at END
                FROM bench_campaign_row b WHERE b.link_id IS NOT NULL
                RETURNING id, booking_link_id
            )
            UPDATE bench_campaign_row b SET message_id = messages.id FROM messages
            WHERE messages.booking_link_id = b.link_id
            """,
            params,
        )
        # A free slot for each booked row: the campaign's own first, then any.
        cursor.execute(
            f"""
            WITH booked AS (
                SELECT n, row_number() OVER (ORDER BY n) AS k FROM bench_campaign_row
                WHERE mod(n, {STATES}) BETWEEN {BOOKED[0]} AND {BOOKED[1]}
            ), free AS (
                SELECT id, row_number() OVER (ORDER BY (appointment_type_id = %(type)s AND location_id = %(location)s)
                                              DESC, start, id) AS k
                FROM booking_slot WHERE status = 'free' AND start > %(now)s
                ORDER BY k LIMIT (SELECT count(*) FROM booked)
            )
            UPDATE bench_campaign_row b SET slot_id = free.id FROM booked JOIN free USING (k) WHERE booked.n = b.n
            """,
            params,
        )
        cursor.execute("UPDATE booking_slot SET status = 'booked' WHERE id IN (SELECT slot_id FROM bench_campaign_row)")
        cursor.execute(
            """
            INSERT INTO booking_appointment (slot_id, patient_id, booking_link_id, status, booked_at,
                cancellation_source, cancellation_reason, cancellation_detail, change_count)
            SELECT slot_id, patient_id, link_id, 'booked', invited_at + (1 + mod(n, 48)) * interval '1 hour',
                   '', '', '', 0
            FROM bench_campaign_row WHERE slot_id IS NOT NULL
            """
        )
        cursor.execute(
            f"""
            INSERT INTO messaging_campaignentry (campaign_id, row_number, nhs_number, problem, patient_id, link_id,
                message_id, invited_at, follow_ups_sent, call_outcome)
            SELECT %(campaign)s, n + 2, nhs_number,
                   CASE WHEN mod(n, {STATES}) = {REJECTED} THEN 'not_found' ELSE '' END,
                   CASE WHEN mod(n, {STATES}) = {REJECTED} THEN NULL ELSE patient_id END,
                   link_id, message_id, invited_at,
                   CASE WHEN mod(n, {STATES}) IN ({BY_PHONE}, {DECLINED_BY_PHONE}, 18) THEN 2 ELSE 0 END,
                   CASE WHEN mod(n, {STATES}) = {BY_PHONE} THEN 'booked_by_phone'
                        WHEN mod(n, {STATES}) = {DECLINED_BY_PHONE} THEN 'declined'
                        WHEN mod(n, {STATES}) = 18 THEN 'no_answer' ELSE '' END
            FROM bench_campaign_row
            """,
            params,
        )
        cursor.execute("DROP TABLE bench_campaign_row")
        # The rows say they were invited up to 20 days before `now`: the campaign began before them
        # (the funnel looks for its invitations from its start: messaging/campaigns/funnel.py).
        cursor.execute(
            """
            UPDATE messaging_campaign
            SET created_at = LEAST(created_at, %(now)s - interval '21 days'),
                started_at = LEAST(started_at, %(now)s - interval '21 days')
            WHERE id = %(campaign)s
            RETURNING created_at, started_at
            """,
            params,
        )
        campaign.created_at, campaign.started_at = cursor.fetchone()


def campaign_funnel_bench(*, scale: float, requests: int = REQUESTS) -> dict[str, Any]:
    """Time the campaign page of a campaign of ROWS rows (times `scale`, at least 200): p50/p99 ms,
    queries, and the funnel query's plan. Everything it makes is rolled back."""
    rows = max(200, round(ROWS * scale))
    now = timezone.now()
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            campaign = _campaign(rows=rows, now=now)
            campaign_funnel_rows_make(campaign=campaign, rows=rows, now=now)
            with connection.cursor() as cursor:
                cursor.execute(
                    "ANALYZE messaging_campaignentry; ANALYZE booking_bookinglink; ANALYZE messaging_message; "
                    "ANALYZE booking_appointment"
                )
            result.update(rows=rows, **_page_timings(campaign=campaign, requests=requests))
            result["funnel"] = {
                stage.label: stage.count for stage in campaign_funnel(campaign=campaign, now=now).stages
            }
            result["plan"] = _funnel_plan(campaign=campaign, now=now)
            raise _RolledBack
    except _RolledBack:
        pass
    return result


def _campaign(*, rows: int, now: datetime) -> Campaign:
    """A sending campaign, with a manager, of the organisation with the most patients."""
    organisation = Organisation.objects.annotate(patient_count=Count("patients")).order_by("-patient_count").first()
    if organisation is None:
        raise ValueError("No organisation: build the bench data set first.")
    user = get_user_model().objects.create_user(username="bench-campaign-manager", password=None)
    StaffMembership.objects.create(user=user, organisation=organisation, role=StaffMembership.Role.MANAGER)
    return Campaign.objects.create(
        organisation=organisation,
        name="Bench flu campaign",
        appointment_type=organisation.appointment_types.order_by("pk")[0],
        location=organisation.locations.order_by("pk")[0],
        link_expiry="14d",
        body="{{Patient First Name}}, book your flu vaccination: {{Appointment Link}}",
        status=Campaign.Status.SENDING,
        list_name="bench.csv",
        list_rows=rows,
        list_rows_checked=rows,
        checked_at=now - timedelta(days=21),
        created_by=user,
        started_by=user,
        started_at=now - timedelta(days=21),
    )


def _page_timings(*, campaign: Campaign, requests: int) -> dict[str, Any]:
    """The campaign page asked `requests` times by its manager (after WARMUP unrecorded): ms and queries."""
    client = Client(**HOST)
    client.force_login(campaign.created_by)
    path = f"/campaigns/{campaign.reference}/"
    timings: list[float] = []
    cpu: list[float] = []
    database: list[float] = []
    queries: list[int] = []
    for n in range(WARMUP + requests):
        with CaptureQueriesContext(connection) as captured:
            started, started_cpu = time.perf_counter(), time.thread_time()
            response = client.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            elapsed_cpu = (time.thread_time() - started_cpu) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {response.status_code}")
        if n >= WARMUP:
            timings.append(elapsed)
            # This thread's CPU: the request's Python (waiting on PostgreSQL costs it none).
            cpu.append(elapsed_cpu)
            database.append(sum(float(query["time"]) for query in captured.captured_queries) * 1000)
            queries.append(len(captured))
    # The funnel query alone, as the database spends it.
    with CaptureQueriesContext(connection) as captured:
        campaign_funnel(campaign=campaign, now=timezone.now())
    return {
        "requests": len(timings),
        "p50": round(percentile(timings, 50), 2),
        "p99": round(percentile(timings, 99), 2),
        "max": round(max(timings), 2),
        "cpu_p50": round(percentile(cpu, 50), 2),
        "database_p50": round(percentile(database, 50), 2),
        "queries_min": min(queries),
        "queries_max": max(queries),
        "funnel_query_ms": round(float(_funnel_query(captured.captured_queries)["time"]) * 1000, 2),
    }


def _funnel_query(captured: list[dict[str, Any]]) -> dict[str, Any]:
    """The funnel's aggregate among what `campaign_funnel` sent (its SET and any savepoint aside)."""
    return next(query for query in captured if query["sql"].startswith("SELECT"))


def _funnel_plan(*, campaign: Campaign, now: datetime) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the funnel's one query, as PostgreSQL ran it."""
    with CaptureQueriesContext(connection) as captured:
        campaign_funnel(campaign=campaign, now=now)
    sql = _funnel_query(captured.captured_queries)["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
        return "\n".join(line for (line,) in cursor.fetchall())
