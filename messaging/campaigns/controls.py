"""What a manager does to a running campaign: pause, resume, stop, and revoke every link it sent.

Each is a conditional UPDATE from the statuses it may start from (`... WHERE status IN (...)`),
so a second click, a second tab or the scheduler moving the campaign at the same moment
changes nothing twice: the function says whether it changed anything, and only a change is
audited (AuditEvent.Action.CAMPAIGN, detail {"campaign": reference, "did": ...}), in the
transaction that made it.

Stopping doesn't revoke: links already sent keep working until they expire, so a patient who
was invited can still book. Revoking every link is the separate, explicit act.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from booking.audit import audit_record
from booking.models import AuditEvent, BookingLink
from booking.users import AnyUser
from messaging.models import Campaign, CampaignEntry

Status = Campaign.Status

# Where each control may start from. Pausing a campaign that paused itself for want of free
# times (WAITING) holds it paused when the times come back; resuming hands it back to the
# pacing, which moves it to WAITING again if there are still no free times.
PAUSABLE = (Status.SENDING, Status.WAITING)
RESUMABLE = (Status.PAUSED,)
STOPPABLE = (Status.SENDING, Status.WAITING, Status.PAUSED)
# Links that can still book; booked ones keep their appointments and aren't touched.
REVOCABLE_LINKS = (BookingLink.Status.ACTIVE, BookingLink.Status.LOCKED)


def _campaign_audit(*, campaign: Campaign, user: AnyUser, did: str, **detail: Any) -> None:
    audit_record(
        action=AuditEvent.Action.CAMPAIGN,
        actor=user,
        organisation=campaign.organisation,
        detail={"campaign": campaign.reference, "did": did, **detail},
    )


def _campaign_move(*, campaign: Campaign, user: AnyUser, allowed: tuple[str, ...], to: str, did: str) -> bool:
    """Move the campaign to `to` if it is in one of `allowed`; audit the change. Whether it changed."""
    now = timezone.now()
    extra = {"stopped_at": now} if to == Status.STOPPED else {}
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status__in=allowed).update(
            status=to, status_changed_at=now, **extra
        )
        if changed:
            _campaign_audit(campaign=campaign, user=user, did=did)
    campaign.refresh_from_db(fields=["status", "status_changed_at", "stopped_at"])
    return bool(changed)


def campaign_pause(*, campaign: Campaign, user: AnyUser) -> bool:
    """Pause a sending (or waiting) campaign: no invitation goes until it is resumed.

    One conditional UPDATE of the campaign's row (it waits for the pacing if that holds the row
    while it invites, then pauses). Returns False, changing nothing, if it wasn't sending or waiting.
    """
    return _campaign_move(campaign=campaign, user=user, allowed=PAUSABLE, to=Status.PAUSED, did="paused")


def campaign_resume(*, campaign: Campaign, user: AnyUser) -> bool:
    """Resume a paused campaign: the pacing invites again from its next run. False if it wasn't paused."""
    return _campaign_move(campaign=campaign, user=user, allowed=RESUMABLE, to=Status.SENDING, did="resumed")


def campaign_stop(*, campaign: Campaign, user: AnyUser) -> bool:
    """Stop the campaign for good: nothing more is sent. False if it was already stopped or finished.

    Links already sent keep working until they expire (`campaign_links_revoke` ends them).
    """
    return _campaign_move(campaign=campaign, user=user, allowed=STOPPABLE, to=Status.STOPPED, did="stopped")


@dataclass(frozen=True)
class LinksRevoked:
    """What `campaign_links_revoke` did: how many links it revoked, and whether it stopped the campaign."""

    links: int
    stopped: bool

    @property
    def changed(self) -> bool:
        return bool(self.links or self.stopped)


def campaign_links_revoke(*, campaign: Campaign, user: AnyUser) -> LinksRevoked:
    """Revoke every link the campaign sent that can still book, in ONE UPDATE; what it did.

    Active and locked links become revoked with their encrypted token wiped (a revoked link is
    never sent again, so no follow-up carries it). Booked links keep their appointments. A
    campaign still sending, waiting or paused is stopped in the same transaction: revoking
    every invitation while new ones go out would leave the list half revoked.

    Locks the campaign's row first (SELECT ... FOR UPDATE), so an invitation the pacing is making
    under that row's lock is committed, and then revoked, before this reads the links; each link's
    row lock is then taken by the UPDATE, which waits for a patient booking that link and then
    leaves it booked. Changes and audits nothing when no link was left to revoke and the campaign
    was already stopped or finished.
    """
    now = timezone.now()
    with transaction.atomic():
        Campaign.objects.select_for_update().filter(pk=campaign.pk).values_list("pk").get()
        stopped = Campaign.objects.filter(pk=campaign.pk, status__in=STOPPABLE).update(
            status=Status.STOPPED, status_changed_at=now, stopped_at=now
        )
        # The status condition must be on the UPDATE's own row, not inside a subquery: a link a
        # patient booked while this waited for its row is re-checked against its new version only
        # by the outer WHERE (READ COMMITTED's recheck reads a subquery with the old snapshot).
        campaign_links = CampaignEntry.objects.filter(campaign_id=campaign.pk, link__isnull=False).values("link_id")
        revoked = BookingLink.objects.filter(status__in=REVOCABLE_LINKS, pk__in=campaign_links).update(
            status=BookingLink.Status.REVOKED, revoked_at=now, token_encrypted=""
        )
        result = LinksRevoked(links=revoked, stopped=bool(stopped))
        if revoked:
            _links_revoked_audit(campaign=campaign, user=user, campaign_links=campaign_links, now=now)
        if result.changed:
            Campaign.objects.filter(pk=campaign.pk).update(links_revoked_at=now)
            _campaign_audit(campaign=campaign, user=user, did="revoked all links", links=revoked, stopped=bool(stopped))
    campaign.refresh_from_db(fields=["status", "status_changed_at", "stopped_at", "links_revoked_at"])
    return result


def _links_revoked_audit(*, campaign: Campaign, user: AnyUser, campaign_links: QuerySet[Any], now: datetime) -> None:
    """A "Link revoked" event on each patient's trail, as revoking one link by hand records it:
    the links this revoke ended (revoked at this very moment), in one INSERT after one SELECT."""
    ended = BookingLink.objects.filter(
        pk__in=campaign_links, status=BookingLink.Status.REVOKED, revoked_at=now
    ).values_list("pk", "patient_id", "organisation_id")
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                action=AuditEvent.Action.REVOKED,
                actor=user if user.is_authenticated else None,
                organisation_id=organisation_id,
                patient_id=patient_id,
                booking_link_id=link_id,
                detail={"campaign": campaign.reference},
                created_at=now,
            )
            for link_id, patient_id, organisation_id in ended
        ]
    )
