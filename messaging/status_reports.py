"""A provider's report on a message (sent, delivered, bounced), applied the same way for every provider.

Statuses only move forward: queued < sending < sent < delivered | failed. Delivered and failed
are final, and the first to arrive wins: providers don't promise the order of their callbacks,
so a late "sent" after "delivered", or a "failed" after "delivered", changes nothing. The move
is one conditional UPDATE (WHERE the current status ranks lower), never a read and then a
write, so two callbacks that arrive at once can't undo each other.

A report may overtake our own worker: the provider can call back before the worker has
committed what the provider answered. The report still moves the message on (a message in
"sending" becomes "sent" or "delivered"), and the worker's own update is conditional on the
message still being "sending" (messaging/delivery.py, _record_sent), so it keeps the provider's
word.

Every report goes into the message's history. Providers repeat callbacks; a partial unique
index on (message, provider_status) makes the same report twice one event (INSERT ... ON
CONFLICT DO NOTHING, so a repeat never raises).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from booking.references import decode_reference
from messaging.models import Message, MessageStatusEvent

logger = logging.getLogger(__name__)

Status = Message.Status

RANK = {Status.QUEUED: 0, Status.SENDING: 1, Status.SENT: 2, Status.DELIVERED: 3, Status.FAILED: 3}


@dataclass(frozen=True)
class StatusReport:
    """What a provider said about one message, already in our words.

    status: what it means for the message. provider_status: the provider's own word
    ("undelivered", "bounced"), kept in the history. history_only: keep it in the history
    but don't move the message (an email deferred by the receiving server). failure_reason:
    for staff, when status is failed. provider_message_id: the provider's id for the message,
    stored when we don't have one yet (the report overtook our worker).
    """

    status: Status
    provider_status: str
    error_code: str = ""
    detail: str = ""
    failure_reason: str = ""
    occurred_at: datetime | None = None
    provider_message_id: str = ""
    history_only: bool = False


def statuses_ranked_below(status: Status) -> list[Status]:
    return [other for other, rank in RANK.items() if rank < RANK[status]]


def message_find_for_report(*, channel: str, reference: str = "", provider_message_id: str = "") -> Message | None:
    """The message a provider's report is about, or None when the report doesn't name exactly one of ours.

    A report names a message by our reference (Twilio's callback URL, the email's metadata), by
    the provider's id, or both. Both must agree: a reference for one message with the provider id
    of another (another organisation's message, say), or a provider id other than the one we
    stored, finds nothing. One query, with the patient.
    """
    pk = decode_reference(reference, namespace="message") if reference else None
    if reference and pk is None:
        return None
    conditions = Q()
    if pk is not None:
        conditions |= Q(pk=pk)
    if provider_message_id:
        conditions |= Q(provider_message_id=provider_message_id)
    if not conditions:
        return None
    found = list(Message.objects.filter(conditions).select_related("patient")[:3])
    if pk is None:
        message = found[0] if len(found) == 1 else None
    else:
        message = next((candidate for candidate in found if candidate.pk == pk), None)
        stored_id = message.provider_message_id if message is not None else ""
        if message is not None and (
            any(candidate.pk != pk for candidate in found)
            or (provider_message_id and stored_id and stored_id != provider_message_id)
        ):
            logger.warning(
                "A status report for message %s names provider id %r, which is not that message's.",
                reference,
                provider_message_id,
            )
            return None
    if message is None or message.channel != channel:
        return None
    return message


def message_status_report(*, message: Message, report: StatusReport) -> bool:
    """Record a provider's report on `message` and move its status on if the report is news.

    Returns True when the status moved. Writes one history event (none if the provider already
    sent the same report) and one conditional UPDATE of the message row, in one transaction;
    the UPDATE's row lock is what orders two reports about the same message.
    """
    now = timezone.now()
    with transaction.atomic():
        MessageStatusEvent.objects.bulk_create(
            [
                MessageStatusEvent(
                    message=message,
                    status=report.status,
                    source=MessageStatusEvent.Source.PROVIDER,
                    provider_status=report.provider_status[:40],
                    error_code=report.error_code[:20],
                    detail=report.detail,
                    occurred_at=report.occurred_at or now,
                )
            ],
            ignore_conflicts=True,
        )
        if report.history_only:
            return False
        changes: dict = {"status": report.status, "lease_expires_at": None}
        if report.status == Status.FAILED:
            changes["failure_reason"] = report.failure_reason
        else:
            # It went after all: a note from an earlier try ("Trying again at 10:15") is stale.
            changes["failure_reason"] = ""
            changes["sent_at"] = Coalesce(F("sent_at"), Value(now))
        if report.provider_message_id:
            changes["provider_message_id"] = Case(
                When(provider_message_id="", then=Value(report.provider_message_id)),
                default=F("provider_message_id"),
            )
        behind = Message.objects.filter(pk=message.pk, status__in=statuses_ranked_below(report.status))
        moved = behind.update(**changes)
    return bool(moved)
