"""Booking links: the state changes staff make to them.

Status changes are conditional UPDATEs (`... WHERE status IN (...)`), so two staff acting at
once, or staff acting while the patient books, can't leave a link in a mixed state.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.models import AuditEvent, BookingLink

# Which statuses each change may start from.
REVOCABLE = (BookingLink.Status.ACTIVE, BookingLink.Status.LOCKED)
UNLOCKABLE = (BookingLink.Status.LOCKED,)


def booking_link_revoke(*, link: BookingLink, actor) -> bool:
    """Revoke an active or locked link so it can no longer book. Returns whether it changed.

    A booked link keeps its appointment: cancelling that is a separate act.
    """
    with transaction.atomic():
        changed = BookingLink.objects.filter(pk=link.pk, status__in=REVOCABLE).update(
            status=BookingLink.Status.REVOKED, revoked_at=timezone.now()
        )
        if changed:
            audit_record(action=AuditEvent.Action.REVOKED, actor=actor, patient=link.patient, booking_link=link)
    if changed:
        link.refresh_from_db(fields=["status", "revoked_at"])
    return bool(changed)


def booking_link_unlock(*, link: BookingLink, actor) -> bool:
    """Unlock a link locked by wrong dates of birth, resetting its count. Returns whether it changed."""
    with transaction.atomic():
        changed = BookingLink.objects.filter(pk=link.pk, status__in=UNLOCKABLE).update(
            status=BookingLink.Status.ACTIVE, failed_attempts=0
        )
        if changed:
            audit_record(action=AuditEvent.Action.UNLOCKED, actor=actor, patient=link.patient, booking_link=link)
    if changed:
        link.refresh_from_db(fields=["status", "failed_attempts"])
    return bool(changed)
