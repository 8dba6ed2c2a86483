"""A campaign's funnel: how far each invited patient got, from the invitation to a booking.

Counted over the list's found rows (CampaignEntry, problem ""), each joined to its link and its
invitation message, in ONE aggregate query whatever the campaign's size: each stage a
`COUNT(*) FILTER (WHERE ...)`, and the time to book (median and 90th percentile of the first
booking through the link minus the invitation) a `percentile_cont` in the same statement.

The stages, each a count and a percentage of Invited:
- Invited: rows with a link (the invitation was made).
- Sent: the invitation message was sent or delivered. Delivered: the provider said delivered.
- Opened: the link was opened at least once. Date of birth confirmed: a date of birth matched.
- Booked: an appointment was booked through the link, whatever happened to it after (changed,
  cancelled), or staff recorded "booked by phone" on the call list (shown as "of which by phone").
- Declined: the patient declined the invitation, or told staff so on the call list.
- Expired: the link's time ran out with nothing booked or declined.
- Failed: the invitation message could not be delivered.

`campaign_outcome_rows` gives the same story row by row, every row of the list, for the outcomes
CSV staff record in the clinical system: the furthest stage each reached, as one phrase.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
)

from booking.formats import date_and_time
from booking.models import Appointment, BookingLink, DeclineReason
from messaging.models import Campaign, CampaignEntry, Message

# The labels exactly as the page shows them: DESIGN.md's UI contract, which tests outside the repo read.
INVITED = "Invited"
SENT = "Sent"
DELIVERED = "Delivered"
OPENED = "Opened"
DOB_CONFIRMED = "Date of birth confirmed"
BOOKED = "Booked"
DECLINED = "Declined"
EXPIRED = "Expired"
FAILED = "Failed"
STAGES = (INVITED, SENT, DELIVERED, OPENED, DOB_CONFIRMED, BOOKED, DECLINED, EXPIRED, FAILED)

# How much earlier than the campaign's start its invitations are looked for (_invitation).
INVITATION_CLOCK_MARGIN = timedelta(hours=1)

# Links that can still book: what "Revoke all links" would revoke.
LIVE_LINK_STATUSES = (BookingLink.Status.ACTIVE, BookingLink.Status.LOCKED)


class PercentileCont(Aggregate):
    """PostgreSQL's `percentile_cont(fraction) WITHIN GROUP (ORDER BY expression)`: an interpolated
    percentile, for intervals too. Nulls are left out, as every aggregate does."""

    function = "percentile_cont"
    name = "PercentileCont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"

    def __init__(self, expression: Any, *, fraction: float, **extra: Any) -> None:
        if not 0 <= fraction <= 1:
            raise ValueError("A percentile's fraction is between 0 and 1.")
        # A literal, not a parameter: PostgreSQL must see the same fraction when it plans the
        # ordered-set aggregate, and this one is ours, never the user's.
        super().__init__(expression, fraction=repr(float(fraction)), **extra)


@dataclass(frozen=True)
class Stage:
    """One line of the funnel: its label, how many rows reached it, and what share of Invited that is."""

    label: str
    count: int
    invited: int

    @property
    def percentage(self) -> str:
        """ "45%" of Invited, rounded to a whole number; "–" before anyone is invited."""
        if not self.invited:
            return "–"
        return f"{round(100 * self.count / self.invited)}%"


@dataclass(frozen=True)
class Funnel:
    """A campaign's funnel at one moment (`campaign_funnel`)."""

    found: int  # rows of the list that will be (or were) invited
    to_invite: int  # found rows not invited yet
    stages: tuple[Stage, ...]
    booked_by_phone: int  # of Booked, those staff recorded as booked by phone
    live_links: int  # links that can still book: what "Revoke all links" would revoke
    time_to_book_median: timedelta | None
    time_to_book_90: timedelta | None

    def count(self, label: str) -> int:
        return next(stage.count for stage in self.stages if stage.label == label)

    @property
    def invited(self) -> int:
        return self.count(INVITED)

    @property
    def time_to_book_median_text(self) -> str:
        return duration_text(self.time_to_book_median)

    @property
    def time_to_book_90_text(self) -> str:
        return duration_text(self.time_to_book_90)


def duration_text(span: timedelta | None) -> str:
    """How long, as a person says it: "2 days 4 hours", "3 hours 10 minutes", "25 minutes"; "" for None.

    The two largest units, rounded down: a time to book reads at a glance, not to the second.
    """
    if span is None:
        return ""
    minutes = max(0, int(span.total_seconds() // 60))
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    shown = [part for part in parts[:2] if part[0]] or parts[:1]
    return " ".join(f"{number} {unit}{'s' if number != 1 else ''}" for number, unit in shown)


def _invitation(campaign: Campaign, relation: str) -> FilteredRelation:
    """The row's link or invitation message (`relation`), joined with what is true of every one.

    Every invitation a campaign makes is its organisation's and made after it started: said in
    the join, those let PostgreSQL read the links and messages through their (organisation,
    created) indexes, the practice's since the campaign began, instead of the whole table, whose
    rows are everyone's over the years (at bench scale 34 ms instead of 51 for the funnel). An
    hour's margin before the start, for a scheduler whose clock runs behind the web server's.
    """
    since = (campaign.started_at or campaign.created_at) - INVITATION_CLOCK_MARGIN
    return FilteredRelation(
        relation,
        condition=Q(
            **{f"{relation}__organisation_id": campaign.organisation_id, f"{relation}__created_at__gte": since}
        ),
    )


def _first_booking() -> FilteredRelation:
    """The row's link's first booking: its appointment that replaced none (a LEFT JOIN, one row at most).

    A link books once (appointment_book moves it from active to booked under its row's lock) and
    a change makes a new appointment that `replaces` the old, so the one replacing nothing is the
    first, whatever happened to it after. A join rather than a correlated subquery: PostgreSQL
    pulls a subquery in FROM up into every FILTER that reads it and runs it once for each.
    """
    return FilteredRelation(
        "invitation_link__appointments", condition=Q(invitation_link__appointments__replaces__isnull=True)
    )


def campaign_rows_found(*, campaign: Campaign) -> QuerySet[CampaignEntry]:
    """The rows of the campaign's list that are (or will be) invited."""
    return CampaignEntry.objects.filter(campaign_id=campaign.pk, problem=CampaignEntry.Problem.NONE)


def campaign_funnel(*, campaign: Campaign, now: datetime) -> Funnel:
    """The campaign's funnel as it stands at `now` (which decides what has expired). One query.

    Locks nothing: a funnel read while invitations go out is simply a moment earlier or later.
    """
    invited = Q(link__isnull=False)
    booked_online = Q(first_booking__isnull=False)
    by_phone = Q(call_outcome=CampaignEntry.CallOutcome.BOOKED_BY_PHONE)
    declined = Q(invitation_link__status=BookingLink.Status.DECLINED) | Q(
        call_outcome=CampaignEntry.CallOutcome.DECLINED
    )
    message_status = "invitation_message__status"
    time_to_book = ExpressionWrapper(F("first_booking__booked_at") - F("invited_at"), output_field=DurationField())
    counts = (
        campaign_rows_found(campaign=campaign)
        .annotate(invitation_link=_invitation(campaign, "link"), invitation_message=_invitation(campaign, "message"))
        .annotate(first_booking=_first_booking())
        .aggregate(
            found=Count("pk"),
            to_invite=Count("pk", filter=~invited),
            invited=Count("pk", filter=invited),
            sent=Count(
                "pk", filter=invited & Q(**{f"{message_status}__in": [Message.Status.SENT, Message.Status.DELIVERED]})
            ),
            delivered=Count("pk", filter=invited & Q(**{message_status: Message.Status.DELIVERED})),
            opened=Count("pk", filter=Q(invitation_link__first_opened_at__isnull=False)),
            verified=Count("pk", filter=Q(invitation_link__verified_at__isnull=False)),
            booked=Count("pk", filter=invited & (booked_online | by_phone)),
            booked_by_phone=Count("pk", filter=invited & by_phone & ~booked_online),
            declined=Count("pk", filter=invited & declined & ~booked_online & ~by_phone),
            expired=Count(
                "pk",
                filter=Q(invitation_link__expires_at__lte=now) & ~booked_online & ~by_phone & ~declined,
            ),
            failed=Count("pk", filter=invited & Q(**{message_status: Message.Status.FAILED})),
            live_links=Count(
                "pk",
                filter=Q(invitation_link__status__in=LIVE_LINK_STATUSES)
                & (Q(invitation_link__expires_at__isnull=True) | Q(invitation_link__expires_at__gt=now)),
            ),
            median=PercentileCont(time_to_book, fraction=0.5, output_field=DurationField()),
            ninetieth=PercentileCont(time_to_book, fraction=0.9, output_field=DurationField()),
        )
    )
    invited_count = counts["invited"]
    values = {
        INVITED: invited_count,
        SENT: counts["sent"],
        DELIVERED: counts["delivered"],
        OPENED: counts["opened"],
        DOB_CONFIRMED: counts["verified"],
        BOOKED: counts["booked"],
        DECLINED: counts["declined"],
        EXPIRED: counts["expired"],
        FAILED: counts["failed"],
    }
    return Funnel(
        found=counts["found"],
        to_invite=counts["to_invite"],
        stages=tuple(Stage(label, values[label], invited_count) for label in STAGES),
        booked_by_phone=counts["booked_by_phone"],
        live_links=counts["live_links"],
        time_to_book_median=counts["median"],
        time_to_book_90=counts["ninetieth"],
    )


OUTCOME_COLUMNS = ("Row", "NHS number", "Patient", "Outcome", "Call outcome")
# Rows the outcomes CSV reads from the database at a time: memory stays bounded whatever the list.
OUTCOME_CHUNK = 2000


def _latest_appointment(field: str) -> Subquery:
    """A field of the latest appointment booked through the row's link (after a change, the new one)."""
    return Subquery(
        Appointment.objects.filter(booking_link_id=OuterRef("link_id")).order_by("-booked_at").values(field)[:1]
    )


def campaign_outcome_rows(*, campaign: Campaign, now: datetime) -> Iterator[tuple[object, ...]]:
    """Every row of the campaign's list, in the list's order: OUTCOME_COLUMNS, the heading first.

    One query, read through a server-side cursor OUTCOME_CHUNK rows at a time. The outcome is the
    furthest the row got: "Not invited (reason)", "Not invited yet", "Booked (date and time)" (its
    latest appointment, ", cancelled" if it was), "Booked by phone", "Declined (reason)", "Failed",
    "Expired", "Revoked", "Date of birth confirmed", "Opened", "Delivered", "Sent" or "Invited".
    The cells are the caller's to pass through booking/spreadsheets.py.
    """
    yield OUTCOME_COLUMNS
    entries = (
        CampaignEntry.objects.filter(campaign_id=campaign.pk)
        .select_related("patient", "link", "message")
        .annotate(
            appointment_start=_latest_appointment("slot__start"), appointment_status=_latest_appointment("status")
        )
        .order_by("row_number")
    )
    stopped = campaign.status == Campaign.Status.STOPPED
    for entry in entries.iterator(chunk_size=OUTCOME_CHUNK):
        yield (
            entry.row_number,
            entry.nhs_number,
            entry.patient.full_name if entry.patient else "",
            _outcome(entry, now=now, stopped=stopped),
            entry.get_call_outcome_display() if entry.call_outcome else "",
        )


def _outcome(entry: CampaignEntry, *, now: datetime, stopped: bool) -> str:
    """The furthest stage one row reached, as `campaign_outcome_rows` words it."""
    if entry.problem:
        label = str(entry.get_problem_display())
        # "Invalid NHS number" reads "Not invited (invalid NHS number)": only its first letter lowered.
        return f"Not invited ({label[:1].lower()}{label[1:]})"
    link, message = entry.link, entry.message
    if link is None:
        return "Not invited (campaign stopped)" if stopped else "Not invited yet"
    start: datetime | None = getattr(entry, "appointment_start", None)
    if start is not None:
        cancelled = getattr(entry, "appointment_status", "") == Appointment.Status.CANCELLED
        return f"Booked ({date_and_time(start)}){', cancelled' if cancelled else ''}"
    if entry.call_outcome == CampaignEntry.CallOutcome.BOOKED_BY_PHONE:
        return "Booked by phone"
    if link.status == BookingLink.Status.DECLINED:
        reason = DeclineReason(link.decline_reason).label if link.decline_reason else "no reason given"
        return f"Declined ({reason})"
    if entry.call_outcome == CampaignEntry.CallOutcome.DECLINED:
        return "Declined (told staff by phone)"
    if message is not None and message.status == Message.Status.FAILED:
        return "Failed"
    if link.expires_at is not None and link.expires_at <= now:
        return "Expired"
    if link.status == BookingLink.Status.REVOKED:
        return "Revoked"
    if link.verified_at is not None:
        return "Date of birth confirmed"
    if link.first_opened_at is not None:
        return "Opened"
    if message is not None and message.status == Message.Status.DELIVERED:
        return "Delivered"
    if message is not None and message.status == Message.Status.SENT:
        return "Sent"
    return "Invited"
