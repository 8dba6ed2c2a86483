"""Follow-ups to the patients a campaign invited who haven't answered, and when they reach the call list.

The rules, each written here once:

- **Who.** An invited row (it has its link) whose campaign is not stopped or paused (a paused
  campaign holds its follow-ups until it resumes), whose link can still book (active and not
  expired: not booked, declined, revoked or locked) and that has no call outcome.
- **When.** Follow-up n (1, then 2; only as many as the campaign sets) is due
  `follow_up_<n>_days` London calendar days after the invitation, at the same London
  wall-clock time (across the clock changes, as reminders are: `LondonDaysAfter`), and never
  sooner than the days between the two follow-ups after the first one went (so a scheduler
  that was down doesn't send both in one minute). Texts go 08:00-20:00 London time
  (messaging/reminders.py, `reminders_in_sending_hours`): the run does nothing at night, and
  one due at night goes at 08:00.
- **What.** The campaign's `follow_up_body` written as the invitation was (messaging/sending.py:
  normalised for its channel, tokens filled in, the same subject), LINK_PLACEHOLDER where the
  link goes and `Message.link_carried` the row's link (the working URL is put back at send
  time by messaging/texts.py, as for reminders), on the channel the invitation went by, or the
  other when that one no longer reaches the patient (messaging/channels.py,
  `channel_reaching`). With neither, the follow-up is counted as dealt with and nothing is sent
  (staff call them instead). Queued behind hand-sent messages (messaging/tasks.py,
  CAMPAIGN_PRIORITY) and audited as sent.
- **Once.** Each row's follow-up is claimed with a conditional UPDATE (`follow_ups_sent = n
  WHERE follow_ups_sent = n - 1`) in the transaction that writes its message; a concurrent run
  that claimed it first (two schedulers, or a run by hand) wins, and this one writes nothing
  for it. The database holds `follow_ups_sent <= 2`.
- **The call list.** Rows that were invited, haven't booked or declined and have no call
  outcome appear on the campaign's call list 2 London days after the last follow-up the campaign
  sets was due (after the invitation, with none), and never sooner than 2 days after the last
  follow-up actually sent (`campaign_call_list`).

The run (`campaign_follow_ups_send`) reads the due rows by index in batches with a constant
number of queries a batch (tests/messaging/test_campaign_follow_ups.py counts them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import DateTimeField, F, Func, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from booking.formats import london_time
from booking.models import AuditEvent, BookingLink
from messaging.channels import channel_reaching
from messaging.models import Campaign, CampaignEntry, Channel, Message
from messaging.reminders import reminders_in_sending_hours
from messaging.sending import message_body_normalise, message_body_stored, message_subject
from messaging.tasks import CAMPAIGN_PRIORITY, deliveries_enqueue

BATCH_SIZE = 200
# Staff call a patient this many London days after the last follow-up (or the invitation).
CALL_AFTER_DAYS = 2
# The campaigns whose follow-ups go: not stopped (nothing more is sent), not paused (held).
FOLLOWING_UP = (Campaign.Status.SENDING, Campaign.Status.WAITING, Campaign.Status.FINISHED)


class LondonDaysAfter(Func):
    """SQL: the moment `days` (an expression: a column) London calendar days after a timestamp,
    at the same London wall-clock time. NULL when `days` is NULL.

    PostgreSQL's `AT TIME ZONE` does the wall-clock arithmetic, so the rule holds across the
    clock changes in SQL exactly as `campaign_follow_up_due` does in Python.
    """

    output_field = DateTimeField()

    def __init__(self, moment: Any, days: Any) -> None:
        super().__init__(moment, days)

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:  # type: ignore[override]
        moment_sql, moment_params = compiler.compile(self.source_expressions[0])
        days_sql, days_params = compiler.compile(self.source_expressions[1])
        zone = settings.TIME_ZONE
        return (
            f"((({moment_sql}) AT TIME ZONE %s) + make_interval(days => ({days_sql})::int)) AT TIME ZONE %s",
            (*moment_params, zone, *days_params, zone),
        )


def campaign_follow_up_due(*, invited_at: datetime, days: int) -> datetime:
    """`days` London calendar days after `invited_at`, at the same London wall-clock time.

    10am BST on the Friday before the October clock change, plus 5 days, is 10am GMT on the
    Wednesday after: 121 hours later, not 120.
    """
    return (london_time(invited_at) + timedelta(days=days)).astimezone(UTC)


def _following_up(*, now: datetime) -> QuerySet[CampaignEntry]:
    """Invited rows of running campaigns whose link can still book and that have no call outcome."""
    return CampaignEntry.objects.filter(
        link__isnull=False,
        call_outcome="",
        campaign__status__in=FOLLOWING_UP,
        link__status=BookingLink.Status.ACTIVE,
    ).filter(Q(link__expires_at__isnull=True) | Q(link__expires_at__gt=now))


def _due(*, number: int, now: datetime) -> QuerySet[CampaignEntry]:
    """Rows whose follow-up `number` (1 or 2) is due at `now` and not yet dealt with."""
    due: Func
    if number == 1:
        due = LondonDaysAfter(F("invited_at"), F("campaign__follow_up_1_days"))
        sets = Q(campaign__follow_up_1_days__isnull=False)
    else:
        # Never sooner than the gap between the two after the first went: a run late by days
        # sends the first, and the second that many days later, not a minute later.
        due = Greatest(
            LondonDaysAfter(F("invited_at"), F("campaign__follow_up_2_days")),
            LondonDaysAfter(F("last_follow_up_at"), F("campaign__follow_up_2_days") - F("campaign__follow_up_1_days")),
        )
        sets = Q(campaign__follow_up_2_days__isnull=False, campaign__follow_up_1_days__isnull=False)
    return (
        _following_up(now=now)
        .filter(sets, follow_ups_sent=number - 1)
        .annotate(follow_up_due=due)
        .filter(follow_up_due__lte=now)
    )


def campaign_follow_ups_send(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Queue every follow-up due at `now`, once each; returns how many messages it queued.

    Nothing outside sending hours. Follow-up 1 first, then 2, each in batches of `batch_size`;
    each batch is one transaction: select the due rows (joined with what the text needs), claim
    them (one conditional UPDATE, `... WHERE follow_ups_sent = n - 1`, returning the rows this
    run won), write their messages and audit events, and queue their delivery with
    CAMPAIGN_PRIORITY. Locks only the rows it claims, until the batch commits; raises only
    database errors.
    """
    now = now or timezone.now()
    if not reminders_in_sending_hours(now):
        return 0
    queued = 0
    for number in (1, 2):
        while True:
            with transaction.atomic():
                looked_at, sent = _batch_send(number=number, now=now, batch_size=batch_size)
            queued += sent
            if looked_at < batch_size:
                break
    return queued


def _batch_send(*, number: int, now: datetime, batch_size: int) -> tuple[int, int]:
    """One batch of follow-up `number`: (rows looked at, messages queued)."""
    entries = list(
        _due(number=number, now=now)
        .select_related("campaign__organisation", "patient__organisation", "link", "message")
        .order_by("invited_at", "pk")[:batch_size]
    )
    if not entries:
        return 0, 0
    won = _claim([entry.pk for entry in entries], number=number, now=now)
    sent: list[tuple[CampaignEntry, Message]] = []
    for entry in entries:
        if entry.pk not in won:
            continue
        message = _follow_up_message(entry)
        if message is not None:
            sent.append((entry, message))
    if sent:
        messages = [message for _, message in sent]
        Message.objects.bulk_create(messages)
        AuditEvent.objects.bulk_create(
            AuditEvent(
                action=AuditEvent.Action.SENT,
                organisation_id=message.organisation_id,
                patient_id=message.patient_id,
                booking_link_id=entry.link_id,
                detail={
                    "message": message.reference,
                    "channel": message.channel,
                    "campaign": entry.campaign.reference,
                    "follow_up": number,
                },
            )
            for entry, message in sent
        )
        deliveries_enqueue(messages=messages, priority=CAMPAIGN_PRIORITY)
    return len(entries), len(sent)


def _claim(entry_ids: list[int], *, number: int, now: datetime) -> set[int]:
    """Claim follow-up `number` of these rows; the ids this call won.

    A conditional UPDATE: a row a concurrent run claimed first no longer has
    `follow_ups_sent = number - 1` once that run commits (PostgreSQL waits for it and reads the
    row again), so it is not returned here. Django's update() can't say which rows it changed.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE messaging_campaignentry
            SET follow_ups_sent = %s, last_follow_up_at = %s
            WHERE id = ANY(%s::bigint[]) AND follow_ups_sent = %s
            RETURNING id
            """,
            [number, now, entry_ids, number - 1],
        )
        return {row[0] for row in cursor.fetchall()}


def _follow_up_message(entry: CampaignEntry) -> Message | None:
    """The unsaved follow-up for `entry`, or None when no channel reaches the patient.

    Written as an invitation is (messaging/sending.py: the body normalised for its channel, the
    tokens filled in, LINK_PLACEHOLDER for the link, the same subject), carrying the row's link.
    """
    campaign = entry.campaign
    patient = entry.patient
    # For the type checker: an invited row is a found row, which has its patient (the database says so).
    assert patient is not None
    invitation = entry.message
    option = channel_reaching(patient, preferred=Channel(invitation.channel) if invitation else None)
    if option is None:
        return None
    body = message_body_normalise(campaign.follow_up_body, channel=option.channel)
    return Message(
        organisation=campaign.organisation,
        patient=patient,
        channel=option.channel,
        to_address=option.address,
        subject=message_subject(channel=option.channel, practice=campaign.organisation),
        template_body=body,
        body=message_body_stored(body=body, patient=patient, has_link=True),
        link_carried=entry.link,
    )


# --- The call list ---------------------------------------------------------------------------


def campaign_call_list(*, campaign: Campaign, now: datetime | None = None) -> QuerySet[CampaignEntry]:
    """The rows of `campaign` staff should phone now, in the list's order.

    Invited, not booked, not declined, no call outcome yet, and due: CALL_AFTER_DAYS London days
    after the last follow-up the campaign sets was due (after the invitation, with none), and
    never sooner than that after the last follow-up actually sent. A link that expired, was
    revoked or locked stays on it: the patient still hasn't booked. One query; the rows come
    with their patient and link.
    """
    now = now or timezone.now()
    last_days = campaign.follow_up_2_days or campaign.follow_up_1_days or 0
    due = Greatest(
        LondonDaysAfter(F("invited_at"), Value(last_days + CALL_AFTER_DAYS)),
        Coalesce(
            LondonDaysAfter(F("last_follow_up_at"), Value(CALL_AFTER_DAYS)),
            F("invited_at"),
            output_field=DateTimeField(),
        ),
    )
    return (
        CampaignEntry.objects.filter(campaign=campaign, link__isnull=False, call_outcome="")
        .exclude(link__status__in=[BookingLink.Status.BOOKED, BookingLink.Status.DECLINED])
        .annotate(call_due=due)
        .filter(call_due__lte=now)
        .select_related("patient", "link")
        .order_by("row_number")
    )
