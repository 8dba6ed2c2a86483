"""Pacing: when a campaign's invitations are made, how many at a time, and each exactly once.

The rules, each written here once:

- **Only when it may send.** Invitations (SMS or email) are made only for a campaign SENDING
  or WAITING whose `starts_at` has come, and only between 08:00 and 20:00 London time
  (messaging/reminders.py, reminders_in_sending_hours: the hours texts go). A campaign
  CHECKING, CHECKED, PAUSED, STOPPED or FINISHED makes nothing; outside those hours nothing
  happens at all, not even a change of status.
- **How many now.** The least of: the campaign's `per_day` less the invitations made this
  London calendar day (from London midnight to the next, so a day is 23 or 25 hours across
  a clock change); `per_free_time` × the free times (capacity.py, campaign_free_times: what a
  link with the campaign's settings offers) less the invitations still open (invited rows
  whose link is active and unexpired, with no call outcome recorded); and the rows left to
  invite.
- **Waiting and resuming by itself.** No free times: a SENDING campaign becomes WAITING
  (audited "Campaign changed", did="waiting"). A WAITING one whose free times are back (new
  rota weeks, cancellations) becomes SENDING again (did="resumed_by_itself"). No rows left:
  FINISHED (did="finished"); its follow-ups may still go.
- **In the list's order, in batches, each in one transaction.** The rows are taken by
  row_number, BATCH_SIZE at a time. Each batch's transaction locks the campaign row first
  (SELECT ... FOR UPDATE) and re-reads its status and the counts above under that lock, so a
  campaign stopped or paused by staff (even while the previous batch was being made) makes
  nothing more, and two workers pacing it at once can't both spend the same allowance. It
  then claims the rows (SELECT ... FOR UPDATE SKIP LOCKED, found and not yet invited) and
  makes their invitations (invitations.py): links, messages, audit events, the rows'
  link/message/invited_at and the delivery tasks, saved together or not at all.
- **Exactly once.** A claimed row is invited by the transaction that locked it; another
  worker skips it while it is locked and, once committed, finds it invited. A constant number
  of queries a batch, whatever its size (tests/messaging/test_campaign_pacing_queries.py).

The scheduler runs `campaigns_pace` every minute (hero/scheduler.py, "pace_campaigns"); the
`pace_campaigns` command runs it once by hand. Both are safe beside each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, OuterRef, Q
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import LinkNotAllowed
from booking.formats import london_time
from booking.models import AuditEvent, BookingLink
from booking.slots import london_midnight
from messaging.campaigns.capacity import campaign_free_times
from messaging.campaigns.checks import patient_holds_type
from messaging.campaigns.invitations import campaign_invitations_make
from messaging.models import Campaign, CampaignEntry
from messaging.reminders import reminders_in_sending_hours

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
# The statuses pacing acts on; every other one makes nothing.
PACED = (Campaign.Status.SENDING, Campaign.Status.WAITING)


@dataclass(frozen=True)
class Allowance:
    """What a campaign may still make now, and the counts that say so."""

    invited_today: int
    still_open: int
    rows_left: int
    free_times: int
    per_day: int
    per_free_time: int

    @property
    def now(self) -> int:
        return max(
            0,
            min(
                self.per_day - self.invited_today,
                self.per_free_time * self.free_times - self.still_open,
                self.rows_left,
            ),
        )


@dataclass(frozen=True)
class CampaignPacing:
    """One campaign's run: invitations made, rows found unreachable, batches, and its status after."""

    status: str
    invited: int = 0
    unreachable: int = 0
    batches: int = 0


@dataclass(frozen=True)
class PacingRun:
    """A run over every campaign due: how many it looked at, invited and found unreachable."""

    campaigns: int = 0
    invited: int = 0
    unreachable: int = 0


def campaigns_pace(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> PacingRun:
    """Make the invitations due at `now` for every campaign SENDING or WAITING whose start has come.

    Nothing outside sending hours. Each campaign is paced by `campaign_pace` (its own locks
    and transactions, one a batch); one whose link settings no longer hold (LinkNotAllowed:
    the type withdrawn from the location, say) is logged and skipped, and the others go on.
    Raises only database errors.
    """
    now = now or timezone.now()
    if not reminders_in_sending_hours(now):
        return PacingRun()
    due = list(
        Campaign.objects.filter(status__in=PACED)
        .filter(Q(starts_at__isnull=True) | Q(starts_at__lte=now))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    invited = unreachable = 0
    for campaign_id in due:
        try:
            pacing = campaign_pace(campaign_id=campaign_id, now=now, batch_size=batch_size)
        except LinkNotAllowed as error:
            # Its batch wrote nothing; the other campaigns go on, and this one is tried again
            # next minute (its settings may be put right, or staff pause or stop it).
            logger.warning("Campaign %s can't make its links: %s", campaign_id, error)
            continue
        invited += pacing.invited
        unreachable += pacing.unreachable
    return PacingRun(campaigns=len(due), invited=invited, unreachable=unreachable)


def campaign_pace(*, campaign_id: int, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> CampaignPacing:
    """Make as many of one campaign's invitations as its pace allows at `now`, a batch a transaction.

    Each batch locks the campaign row (FOR UPDATE), re-reads its status and allowance, moves
    it to WAITING, SENDING or FINISHED when the counts say so (audited), claims up to
    `batch_size` rows (FOR UPDATE SKIP LOCKED) and invites them (invitations.py). Stops when
    the allowance is spent, the rows run out or are taken by another worker, or the campaign
    is no longer paced (stopped, paused). Raises LinkNotAllowed (booking.exceptions) when the
    campaign's link settings no longer hold; that batch writes nothing.
    """
    now = now or timezone.now()
    invited = unreachable = batches = 0
    status = ""
    while True:
        with transaction.atomic():
            campaign = (
                Campaign.objects.select_for_update(of=("self",))
                .select_related("organisation", "appointment_type", "location", "practitioner", "started_by")
                .get(pk=campaign_id)
            )
            status = campaign.status
            if not _may_send(campaign=campaign, now=now):
                break
            allowance = campaign_allowance(campaign=campaign, now=now)
            status = _status_follow(campaign=campaign, allowance=allowance, now=now)
            # Nothing for one just moved to WAITING or FINISHED: no free times, or no rows left.
            limit = min(allowance.now, batch_size)
            if limit == 0:
                break
            entries = _rows_claim(campaign=campaign, limit=limit, now=now)
            if entries:
                batch = campaign_invitations_make(campaign=campaign, entries=entries, now=now)
                invited += batch.invited
                unreachable += batch.unreachable
                batches += 1
        # Fewer than asked: the rest are being invited by another worker (locked) or there are none.
        if len(entries) < limit:
            break
    return CampaignPacing(status=status, invited=invited, unreachable=unreachable, batches=batches)


def campaign_allowance(*, campaign: Campaign, now: datetime) -> Allowance:
    """The counts that say how many invitations `campaign` may make at `now` (see the module docstring).

    Two queries: one pass over the campaign's rows (with their links) for the day's, the open
    and the remaining counts, and the free times. Reads `campaign.appointment_type`.
    """
    today = london_time(now).date()
    day_starts, day_ends = london_midnight(today), london_midnight(today + timedelta(days=1))
    open_link = Q(link__status=BookingLink.Status.ACTIVE, call_outcome="") & (
        Q(link__expires_at__isnull=True) | Q(link__expires_at__gt=now)
    )
    counts = CampaignEntry.objects.filter(campaign=campaign).aggregate(
        invited_today=Count("pk", filter=Q(invited_at__gte=day_starts, invited_at__lt=day_ends)),
        still_open=Count("pk", filter=Q(link__isnull=False) & open_link),
        rows_left=Count("pk", filter=Q(problem=CampaignEntry.Problem.NONE, link__isnull=True)),
    )
    return Allowance(
        invited_today=counts["invited_today"],
        still_open=counts["still_open"],
        rows_left=counts["rows_left"],
        free_times=campaign_free_times(campaign=campaign, now=now),
        per_day=campaign.per_day,
        per_free_time=campaign.per_free_time,
    )


def _may_send(*, campaign: Campaign, now: datetime) -> bool:
    return (
        campaign.status in PACED
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and reminders_in_sending_hours(now)
    )


def _status_follow(*, campaign: Campaign, allowance: Allowance, now: datetime) -> str:
    """Move the locked `campaign` to FINISHED, WAITING or SENDING as its counts say; its status after."""
    if allowance.rows_left == 0:
        return _status_move(campaign=campaign, to=Campaign.Status.FINISHED, did="finished", now=now)
    if allowance.free_times == 0 and campaign.status == Campaign.Status.SENDING:
        return _status_move(campaign=campaign, to=Campaign.Status.WAITING, did="waiting", now=now)
    if allowance.free_times > 0 and campaign.status == Campaign.Status.WAITING:
        return _status_move(campaign=campaign, to=Campaign.Status.SENDING, did="resumed_by_itself", now=now)
    return campaign.status


def _status_move(*, campaign: Campaign, to: str, did: str, now: datetime) -> str:
    """Pacing's own moves (never staff's), on the row the caller locked, each audited."""
    Campaign.objects.filter(pk=campaign.pk).update(status=to, status_changed_at=now)
    campaign.status = to
    audit_record(
        action=AuditEvent.Action.CAMPAIGN,
        organisation=campaign.organisation,
        detail={"campaign": campaign.reference, "did": did},
    )
    return to


def _rows_claim(*, campaign: Campaign, limit: int, now: datetime) -> list[CampaignEntry]:
    """The next `limit` rows to invite in the list's order, locked; rows another worker holds are skipped.

    SKIP LOCKED rather than waiting: a row locked elsewhere is being invited there. A row that
    worker committed meanwhile is read again under its lock (PostgreSQL re-checks the WHERE),
    so it no longer matches "not yet invited" and is never claimed twice.
    """
    # Asked again now, not only at the check: the patient may have booked, or been sent a link
    # by hand, since (a row that has gets that problem instead of an invitation).
    has_appointment, has_link = patient_holds_type(
        appointment_type_id=campaign.appointment_type_id, now=now, patient=OuterRef("patient_id")
    )
    return list(
        CampaignEntry.objects.filter(campaign=campaign, problem=CampaignEntry.Problem.NONE, link__isnull=True)
        .annotate(has_appointment=has_appointment, has_link=has_link)
        .select_related("patient__organisation")
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("row_number")[:limit]
    )
