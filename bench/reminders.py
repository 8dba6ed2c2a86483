"""The reminder sweep at bench scale: 100,000 booked appointments over six months, 1,000 of them due.

Runs on the bench data set inside one transaction that is rolled back at the end, so the data
set stays as it was built (and as the HTTP scenarios see it). In that transaction: 100,000 free
slots become booked appointments through links (each link booked, its token held encrypted,
its invitation an SMS message): enough of them starting within the next day that, with the
data set's own bookings, 1,000 reminders are due at the moment the sweep runs (noon London
time on a weekday three weeks on), booked a week before; the rest spread over the six months
after, not yet due. Then one sweep (messaging/reminders.py, reminders_queue, with the
database task backend's one INSERT a batch) is timed, its queries counted per batch, and the
plan of its selection checked to read the booked slots' start index.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from booking.encryption import token_encrypt
from booking.formats import LONDON, today_in_london
from messaging.reminders import BATCH_SIZE, KINDS_NEAREST_FIRST, _due_appointments, reminders_queue
from messaging.tasks import deliveries_enqueue

APPOINTMENTS = 100_000
DUE = 1_000


class _RolledBack(Exception):
    """Raised to leave the transaction without committing what the scenario wrote."""


def reminder_sweep_bench(*, scale: float, days_ahead: int = 21) -> dict[str, Any]:
    """Time one sweep that queues the due reminders among APPOINTMENTS booked ones (times `scale`).

    The sweep runs at noon on the first Monday to Thursday `days_ahead` days on (a tiny data
    set's slots end sooner than a full one's).
    """
    appointments = max(100, round(APPOINTMENTS * scale))
    due = max(10, round(DUE * min(scale, 1.0)))
    # Noon on a Monday to Thursday three weeks on: clear of the data set's own link bookings
    # (patients book the soonest times), with clinics on the day after.
    day = today_in_london() + timedelta(days=days_ahead)
    while day.weekday() > 3:
        day += timedelta(days=1)
    now = datetime(day.year, day.month, day.day, 12, 0, tzinfo=LONDON)
    result: dict[str, Any] = {}
    try:
        with transaction.atomic():
            # The data set's own bookings through links have reminders due too: add only the rest.
            already = _due_count(now=now)
            _book(now=now, appointments=appointments, due=max(0, due - already))
            due = _due_count(now=now)
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE booking_slot; ANALYZE booking_appointment; ANALYZE booking_bookinglink")
            result["plan_uses_index"] = _plan_uses_index(now=now)
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                run = reminders_queue(enqueue=deliveries_enqueue, now=now)
            seconds = time.perf_counter() - started
            result.update(
                appointments=appointments,
                due=due,
                queued=run.queued,
                # Due, but no channel reaches the patient (no mobile or email): dealt with, not sent.
                not_sent=run.not_sent,
                database_seconds=round(sum(float(query["time"]) for query in queries.captured_queries), 3),
                batches=run.batches,
                batch_size=BATCH_SIZE,
                seconds=round(seconds, 3),
                queries=len(queries),
                queries_per_batch=_queries_per_full_batch(queries.captured_queries),
            )
            raise _RolledBack
    except _RolledBack:
        pass
    return result


def _book(*, now: datetime, appointments: int, due: int) -> None:
    """Turn free slots into booked appointments through links, in SQL: `due` of them due at `now`."""
    token = token_encrypt("bench-reminder-token-00")
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE TEMP TABLE bench_reminder_slot ON COMMIT DROP AS
            (SELECT s.id AS slot_id, s.appointment_type_id, s.location_id, t.organisation_id, %(week_ago)s AS booked_at
             FROM booking_slot s JOIN booking_appointmenttype t ON t.id = s.appointment_type_id
             WHERE s.status = 'free' AND s.start > %(earliest)s AND s.start <= %(due_until)s
             ORDER BY s.start LIMIT %(due)s)
            UNION ALL
            (SELECT s.id, s.appointment_type_id, s.location_id, t.organisation_id, %(now)s - interval '1 hour'
             FROM booking_slot s JOIN booking_appointmenttype t ON t.id = s.appointment_type_id
             WHERE s.status = 'free' AND s.start > %(due_until)s
             ORDER BY md5(s.id::text) LIMIT %(rest)s)
            """,
            {
                "now": now,
                "week_ago": now - timedelta(days=7),
                "earliest": now + timedelta(hours=2),
                "due_until": now + timedelta(days=1),
                "due": due,
                "rest": appointments - due,
            },
        )
        cursor.execute(
            """
            ALTER TABLE bench_reminder_slot ADD COLUMN n bigserial;
            ALTER TABLE bench_reminder_slot ADD COLUMN link_id bigint;
            ALTER TABLE bench_reminder_slot ADD COLUMN patient_id bigint;
            """
        )
        # The patients: any of the slot's organisation's (a hub's slots: any patient at all).
        cursor.execute(
            """
            WITH own AS (SELECT organisation_id, array_agg(id ORDER BY id) AS ids FROM booking_patient
                         GROUP BY organisation_id)
            UPDATE bench_reminder_slot b SET patient_id = own.ids[1 + mod(b.n, array_length(own.ids, 1))]
            FROM own WHERE own.organisation_id = b.organisation_id
            """
        )
        cursor.execute(
            """
            WITH everyone AS (SELECT array_agg(id ORDER BY id) AS ids FROM booking_patient)
            UPDATE bench_reminder_slot b SET patient_id = everyone.ids[1 + mod(b.n, array_length(everyone.ids, 1))]
            FROM everyone WHERE b.patient_id IS NULL
            """
        )
        cursor.execute(
            """
            WITH links AS (
                INSERT INTO booking_bookinglink (token_digest, token_encrypted, organisation_id, patient_id,
                    appointment_type_id, location_id, expires_at, status, failed_attempts, created_at, open_count)
                SELECT md5('bench-reminder' || b.n) || md5('link' || b.n), %(token)s, p.organisation_id, b.patient_id,
                       b.appointment_type_id, b.location_id, NULL, 'booked', 0, b.booked_at - interval '1 day', 1
                FROM bench_reminder_slot b JOIN booking_patient p ON p.id = b.patient_id
                ORDER BY b.n
                RETURNING id, patient_id
            )
            UPDATE bench_reminder_slot b SET link_id = links.id
            FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM links) links WHERE links.n = b.n
            """,
            {"token": token},
        )
        cursor.execute(
            """
            INSERT INTO messaging_message (organisation_id, patient_id, channel, to_address, subject, template_body,
                body, booking_link_id, status, failure_reason, attempts, next_attempt_at, provider_message_id,
                idempotency_key, created_at)
            SELECT p.organisation_id, p.id, 'sms', '+447400' || lpad(mod(b.n, 1000000)::text, 6, '0'), '',
                   'Book: {{Appointment Link}}', 'Book: [link to book: hidden]', b.link_id, 'delivered', '', 1,
                   b.booked_at, 'bench-reminder-' || b.n, gen_random_uuid(), b.booked_at - interval '1 day'
            FROM bench_reminder_slot b JOIN booking_patient p ON p.id = b.patient_id
            """
        )
        cursor.execute(
            "UPDATE booking_slot SET status = 'booked' WHERE id IN (SELECT slot_id FROM bench_reminder_slot)"
        )
        cursor.execute(
            """
            INSERT INTO booking_appointment (slot_id, patient_id, booking_link_id, status, booked_at,
                cancellation_source, cancellation_reason, cancellation_detail, change_count)
            SELECT slot_id, patient_id, link_id, 'booked', booked_at, '', '', '', 0 FROM bench_reminder_slot
            """
        )


def _due_count(*, now: datetime) -> int:
    return sum(_due_appointments(kind=kind, now=now).count() for kind in KINDS_NEAREST_FIRST)


def _plan_uses_index(*, now: datetime) -> bool:
    """Whether PostgreSQL reads the due appointments through the booked slots' start index."""
    queryset = _due_appointments(kind="1d", now=now).order_by("slot__start", "pk")[:BATCH_SIZE]
    return "slot_booked_start" in queryset.explain()


def _queries_per_full_batch(captured: list[dict[str, Any]]) -> int:
    """Queries from the first savepoint to its release: one batch, as every full batch is."""
    count = 0
    for query in captured:
        count += 1
        if query["sql"].startswith("RELEASE SAVEPOINT"):
            return count
    return count
