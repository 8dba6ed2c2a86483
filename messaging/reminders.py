"""Reminders before an appointment: which are due, their text, and queuing them once.

The rules, each written here once:

- **When.** A reminder of N days (1, 3 or 7; each appointment type says which it sends) is
  due N London calendar days before the start, at the same London wall-clock time: a 1-day
  reminder of a 10am appointment goes at 10am the day before, GMT or BST, across the clock
  changes (`reminder_due`, and the same rule in SQL, `LondonDaysBefore`).
- **Only in sending hours.** Texts go between 08:00 and 20:00 London time; one due at night
  waits for 08:00 (`reminder_sending_time`). The sweep does nothing outside those hours.
- **Only if the booking came first.** Not sent when the appointment was booked after the
  reminder's due time: a booking made 20 hours ahead gets no 1-day reminder (its confirmation
  did that job). A changed appointment is a new appointment with its own booked_at, so its
  reminders follow from the change.
- **Only while useful.** A reminder is useful until the next nearer reminder's due time (a
  7-day one until 3 days before, a 3-day one until 1 day before, whether or not the type
  sends those: past that point it would arrive as late as they do) and a 1-day one until an
  hour before the start (LAST_USEFUL_BEFORE_START: later than that the patient is on their
  way or can no longer act on it). So a late reminder (the scheduler was down) still goes
  when it is back, if it is still useful; one that isn't is never sent.
- **Only for a booked appointment made through a link**: the reminder goes on the channel the
  link's invitation went by (the patient's contact preference for a link never sent), or the
  other when that one can no longer reach the patient (messaging/channels.py,
  channel_reaching); with neither, it is recorded as dealt with and not sent. It carries the
  link to change or cancel (Message.link_carried, put back at send time by
  messaging/texts.py), or, if the link's token is no longer held, the practice's phone number.
- **Once.** The database holds one Reminder per appointment and kind; the sweep claims each with
  INSERT ... ON CONFLICT DO NOTHING, and only the claims it won become messages, so two sweeps
  at once (two schedulers, or a run by hand) send each reminder once. A reminder queued before
  the appointment was cancelled or changed is stopped by delivery (`reminder_stale_reason`).

The sweep (`reminders_queue`) selects the due appointments by index (slot start, booked slots
only) in batches, with a constant number of queries a batch (tests/messaging/test_reminders.py
counts them), and hands each batch's messages to `enqueue` in the same transaction:
messaging/tasks.py's deliveries_enqueue, one task row each (the transactional outbox).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, Protocol

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, Exists, F, Func, OuterRef, Q, QuerySet
from django.utils import timezone

from booking.formats import LONDON, day_label, london_time, time_of_day
from booking.models import Appointment, AppointmentType, CancellationSource, Organisation
from messaging.channels import channel_reaching
from messaging.models import REMINDER_DEFAULT_BODY, Channel, Message, Reminder, ReminderTemplate
from messaging.segments import MAX_SMS_SEGMENTS, sms_length, sms_normalise
from messaging.tokens import (
    APPOINTMENT_DATE,
    APPOINTMENT_LINK,
    APPOINTMENT_TIME,
    LINK_PLACEHOLDER,
    LOCATION,
    PATIENT_FIRST_NAME,
    PRACTICE_NAME,
    REMINDER_TOKENS,
    link_url_length,
    tokens_fill,
    tokens_normalise,
    tokens_unknown,
)

SENDING_FROM = time(8)
SENDING_UNTIL = time(20)
LAST_USEFUL_BEFORE_START = timedelta(hours=1)
BATCH_SIZE = 200

REMINDER_DAYS: dict[str, int] = {Reminder.Kind.ONE_DAY: 1, Reminder.Kind.THREE_DAYS: 3, Reminder.Kind.SEVEN_DAYS: 7}
# Nearest first: a kind is useful until the one before it in this list is due.
KINDS_NEAREST_FIRST = [Reminder.Kind.ONE_DAY, Reminder.Kind.THREE_DAYS, Reminder.Kind.SEVEN_DAYS]
# Which appointment type setting turns each kind on.
REMINDER_SETTING: dict[str, str] = {
    Reminder.Kind.ONE_DAY: "remind_1_day",
    Reminder.Kind.THREE_DAYS: "remind_3_days",
    Reminder.Kind.SEVEN_DAYS: "remind_7_days",
}

EMAIL_SUBJECT = "Reminder: your appointment on {day}"


class DeliveriesEnqueue(Protocol):
    """Queues delivery of each of `messages` in the caller's transaction (messaging/tasks.py, deliveries_enqueue)."""

    def __call__(self, *, messages: list[Message]) -> None: ...


class LondonDaysBefore(Func):
    """SQL: the moment `days` London calendar days before a timestamp, at the same London wall-clock time.

    PostgreSQL's `AT TIME ZONE` does the wall-clock arithmetic, so the rule holds across the
    clock changes in SQL exactly as `reminder_due` does in Python.
    """

    output_field = DateTimeField()

    def __init__(self, expression: Any, *, days: int) -> None:
        super().__init__(expression)
        self.days = int(days)

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:  # type: ignore[override]
        sql, params = compiler.compile(self.source_expressions[0])
        zone = settings.TIME_ZONE
        return (
            f"((({sql}) AT TIME ZONE %s) - make_interval(days => {self.days})) AT TIME ZONE %s",
            (*params, zone, zone),
        )


def reminder_due(*, start: datetime, days: int) -> datetime:
    """`days` London calendar days before `start`, at the same London wall-clock time.

    Python's arithmetic on an aware datetime keeps the wall-clock time, so 10am BST on the
    Monday after the October change, less one day, is 10am BST on the Sunday before: 25 hours
    earlier, not 24.
    """
    local = london_time(start)
    return (local - timedelta(days=days)).astimezone(UTC)


def _wall_clock_after(moment: datetime, *, days: int) -> datetime:
    """The latest start whose reminder of `days` is due at `moment` (the inverse of reminder_due)."""
    return (london_time(moment) + timedelta(days=days)).astimezone(UTC)


def reminders_in_sending_hours(moment: datetime) -> bool:
    """Whether a reminder may go at `moment`: 08:00 to 20:00 London time."""
    return SENDING_FROM <= london_time(moment).time() < SENDING_UNTIL


def reminder_sending_time(*, due: datetime) -> datetime:
    """When a reminder due at `due` goes: then, or at the next 08:00 London time if it falls at night."""
    local = london_time(due)
    if reminders_in_sending_hours(due):
        return due
    day = local.date() if local.time() < SENDING_FROM else local.date() + timedelta(days=1)
    return datetime.combine(day, SENDING_FROM, tzinfo=LONDON).astimezone(UTC)


def reminder_useful_until(*, start: datetime, kind: str) -> datetime:
    """The moment a reminder of `kind` stops being worth sending (see the module docstring)."""
    nearer = KINDS_NEAREST_FIRST.index(Reminder.Kind(kind)) - 1
    if nearer < 0:
        return start - LAST_USEFUL_BEFORE_START
    return reminder_due(start=start, days=REMINDER_DAYS[KINDS_NEAREST_FIRST[nearer]])


def reminder_location_text(*, appointment_type: AppointmentType, location_name: str, address: str) -> str:
    """What {{Location}} says: where to go, or that the practice will phone, or how a video appointment works."""
    if appointment_type.is_telephone:
        return "It is a telephone appointment: we will phone you, so please keep your phone with you."
    if appointment_type.is_video:
        return (
            "It is a video appointment: we will send you a link to join by text or email shortly before, "
            "so please be somewhere quiet with your phone or computer."
        )
    return f"At {location_name}, {address}."


def reminder_text(
    *, template_body: str, appointment: Appointment, channel: str, link_url: str, practice: Organisation
) -> str:
    """The reminder's text for `appointment`, with `link_url` (LINK_PLACEHOLDER, when stored) for the link."""
    slot = appointment.slot
    text = tokens_fill(
        template_body,
        values={
            PATIENT_FIRST_NAME: appointment.patient.first_name,
            PRACTICE_NAME: practice.name,
            APPOINTMENT_DATE: day_label(slot.start, with_year=True),
            APPOINTMENT_TIME: time_of_day(slot.start),
            LOCATION: reminder_location_text(
                appointment_type=slot.appointment_type, location_name=slot.location.name, address=slot.location.address
            ),
            APPOINTMENT_LINK: link_url,
        },
    )
    return sms_normalise(text) if channel == Channel.SMS else text


def reminder_template_check(*, body: str, organisation: Organisation | None) -> list[str]:
    """What is wrong with a reminder template, in plain English (empty when nothing is).

    Only the tokens a reminder knows; as a text no longer than MAX_SMS_SEGMENTS messages with
    long values (the organisation's longest location, a long date, a link).
    """
    problems = []
    body = tokens_normalise(body, known=REMINDER_TOKENS).strip()
    unknown = tokens_unknown(body, known=REMINDER_TOKENS)
    if unknown:
        problems.append(
            f"{', '.join(unknown)} {'is not a token' if len(unknown) == 1 else 'are not tokens'} a reminder knows. "
            "Use " + ", ".join(REMINDER_TOKENS) + "."
        )
        return problems
    if LINK_PLACEHOLDER in body:
        problems.append(f"Remove “{LINK_PLACEHOLDER}”: use {APPOINTMENT_LINK} for the link.")
    addresses = [location.address for location in organisation.locations.all()] if organisation is not None else []
    longest_place = max(addresses, key=len, default="A Health Centre, 1 High Street, Newtown, AB1 2CD")
    sample = sms_normalise(
        tokens_fill(
            body,
            values={
                PATIENT_FIRST_NAME: "Alexandrina",
                PRACTICE_NAME: organisation.name if organisation is not None else "A Medical Practice",
                APPOINTMENT_DATE: "Wednesday 30 September 2026",
                APPOINTMENT_TIME: "12:45pm",
                LOCATION: f"At {longest_place}.",
                APPOINTMENT_LINK: "a" * link_url_length(public_base_url=settings.PUBLIC_BASE_URL),
            },
        )
    )
    segments = sms_length(sample).segments
    if segments > MAX_SMS_SEGMENTS:
        problems.append(f"As a text this could be {segments} SMS messages; the most is {MAX_SMS_SEGMENTS}. Shorten it.")
    return problems


def reminder_stale_reason(*, reminder: Reminder, now: datetime) -> str:
    """Why a queued reminder must not go now, for staff to read; empty when it still may.

    Checked by delivery just before the provider is called (messaging/delivery.py), because a
    reminder can be queued, or waiting for a retry, when the appointment is cancelled or changed.
    Reads `reminder.appointment` and its slot (joined by the delivery claim).
    """
    appointment = reminder.appointment
    if appointment.status != Appointment.Status.BOOKED:
        if appointment.cancellation_source == CancellationSource.CHANGED:
            return "Not sent: the appointment was changed to another time before this reminder went."
        return "Not sent: the appointment was cancelled before this reminder went."
    if now >= appointment.slot.start - LAST_USEFUL_BEFORE_START:
        return "Not sent: it was too close to the appointment's start to be of use."
    return ""


@dataclass(frozen=True)
class ReminderRun:
    """What one sweep did: reminders queued, and those dealt with but not sent (nobody to send to)."""

    queued: int = 0
    not_sent: int = 0
    batches: int = 0


def _due_appointments(*, kind: str, now: datetime) -> QuerySet[Appointment]:
    """Booked appointments whose reminder of `kind` is due at `now`, still useful, and not yet dealt with.

    The exact rules are the SQL expressions (LondonDaysBefore); the start range around them is
    what lets PostgreSQL read only the due appointments through the index on booked slots'
    starts (booking/models.py, slot_booked_start), padded an hour for the clock changes.
    """
    days = REMINDER_DAYS[kind]
    position = KINDS_NEAREST_FIRST.index(Reminder.Kind(kind))
    pad = timedelta(hours=1)
    if position == 0:
        earliest = now + LAST_USEFUL_BEFORE_START
        useful = Q(slot__start__gt=earliest)
    else:
        nearer_days = REMINDER_DAYS[KINDS_NEAREST_FIRST[position - 1]]
        earliest = _wall_clock_after(now, days=nearer_days) - pad
        useful = Q(nearer_due__gt=now)
    latest = _wall_clock_after(now, days=days) + pad
    queryset = (
        Appointment.objects.filter(
            status=Appointment.Status.BOOKED,
            slot__status="booked",
            slot__start__gt=earliest,
            slot__start__lte=latest,
            booking_link__isnull=False,
            **{f"slot__appointment_type__{REMINDER_SETTING[kind]}": True},
        )
        .annotate(reminder_due=LondonDaysBefore(F("slot__start"), days=days))
        .filter(reminder_due__lte=now, booked_at__lte=F("reminder_due"))
        .exclude(Exists(Reminder.objects.filter(appointment=OuterRef("pk"), kind=kind)))
    )
    if position > 0:
        queryset = queryset.annotate(
            nearer_due=LondonDaysBefore(F("slot__start"), days=REMINDER_DAYS[KINDS_NEAREST_FIRST[position - 1]])
        )
    return queryset.filter(useful)


def reminders_queue(
    *, enqueue: DeliveriesEnqueue, now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> ReminderRun:
    """Queue every reminder due at `now` that is still useful, once; returns what it did.

    Nothing outside sending hours. Each batch is one transaction: select the due appointments
    (joined with what the text needs), claim their reminders (INSERT ... ON CONFLICT DO NOTHING,
    so a concurrent sweep's claim wins and this one writes nothing for it), write the messages,
    link them to their reminders and queue their delivery (`enqueue`). A reminder with no
    channel that can reach the patient is claimed with no message: dealt with, not sent.
    Locks nothing beyond the rows it inserts; raises only database errors.
    """
    now = now or timezone.now()
    if not reminders_in_sending_hours(now):
        return ReminderRun()
    queued = not_sent = batches = 0
    for kind in KINDS_NEAREST_FIRST:
        while True:
            with transaction.atomic():
                done, sent, skipped = _batch_queue(kind=kind, now=now, batch_size=batch_size, enqueue=enqueue)
            batches += 1
            queued += sent
            not_sent += skipped
            if done < batch_size:
                break
    return ReminderRun(queued=queued, not_sent=not_sent, batches=batches)


def _batch_queue(*, kind: str, now: datetime, batch_size: int, enqueue: DeliveriesEnqueue) -> tuple[int, int, int]:
    """One batch: (appointments looked at, reminders queued, reminders dealt with and not sent)."""
    appointments = list(
        _due_appointments(kind=kind, now=now)
        .select_related(
            "patient__organisation__reminder_template",
            "slot__location",
            "slot__appointment_type",
            "booking_link__message",
        )
        .order_by("slot__start", "pk")[:batch_size]
    )
    if not appointments:
        return 0, 0, 0
    won = _reminders_claim(
        [(appointment.pk, reminder_sending_time(due=appointment.reminder_due)) for appointment in appointments],  # type: ignore[attr-defined]
        kind=kind,
        now=now,
    )
    messages: dict[int, Message] = {}
    for appointment in appointments:
        if appointment.pk not in won:
            continue
        message = _reminder_message(appointment)
        if message is not None:
            messages[appointment.pk] = message
    if messages:
        Message.objects.bulk_create(messages.values())
        reminders = [Reminder(pk=won[appointment_id], message=message) for appointment_id, message in messages.items()]
        Reminder.objects.bulk_update(reminders, ["message"])
        enqueue(messages=list(messages.values()))
    return len(appointments), len(messages), len(won) - len(messages)


def _reminders_claim(claims: list[tuple[int, datetime]], *, kind: str, now: datetime) -> dict[int, int]:
    """Insert the reminder rows we can; {appointment id: reminder id} for the ones this call won.

    ON CONFLICT DO NOTHING on the unique (appointment, kind): a concurrent sweep that inserted
    the same row first (or is inserting it: PostgreSQL waits for its transaction) wins, and it
    is not returned here. Django's bulk_create can't say which rows it skipped, hence the SQL.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO messaging_reminder (appointment_id, kind, due_at, created_at)
            SELECT claim.appointment_id, %s, claim.due_at, %s
            FROM unnest(%s::bigint[], %s::timestamptz[]) AS claim (appointment_id, due_at)
            ON CONFLICT (appointment_id, kind) DO NOTHING
            RETURNING appointment_id, id
            """,
            [kind, now, [appointment_id for appointment_id, _ in claims], [due for _, due in claims]],
        )
        return dict(cursor.fetchall())


def _reminder_message(appointment: Appointment) -> Message | None:
    """The unsaved reminder message for `appointment`, or None when no channel reaches the patient."""
    invitation = getattr(appointment.booking_link, "message", None) if appointment.booking_link else None
    patient = appointment.patient
    option = channel_reaching(patient, preferred=Channel(invitation.channel) if invitation else None)
    if option is None:
        return None
    practice = patient.organisation
    try:
        template_body = practice.reminder_template.body
    except ReminderTemplate.DoesNotExist:
        template_body = REMINDER_DEFAULT_BODY
    link = appointment.booking_link
    carries_link = link is not None and bool(link.token_encrypted)
    if carries_link:
        link_url = LINK_PLACEHOLDER
    elif practice.phone:
        link_url = f"call {practice.name} on {practice.phone_for_display}"
    else:
        link_url = f"contact {practice.name}"
    body = reminder_text(
        template_body=template_body,
        appointment=appointment,
        channel=option.channel,
        link_url=link_url,
        practice=practice,
    )
    return Message(
        organisation=practice,
        patient=patient,
        channel=option.channel,
        to_address=option.address,
        subject=EMAIL_SUBJECT.format(day=day_label(appointment.slot.start)) if option.channel == Channel.EMAIL else "",
        template_body=template_body,
        body=body,
        link_carried=link if carries_link else None,
    )
