"""What the email service tells us about an email: delivered, bounced, reported as spam.

anymail normalises every service's webhook into one AnymailTrackingEvent; messaging/webhooks.py
authenticates the webhook and messaging/receivers.py passes each event here. A bounce, a spam
complaint, a refusal or an unsubscribe also marks the patient's address as not working, so
staff are told before they try it again (messaging/channels.py).
"""

from __future__ import annotations

import logging

from anymail.signals import AnymailTrackingEvent, EventType, RejectReason
from django.db import transaction

from booking.audit import audit_record_many
from booking.models import AuditEvent, Patient
from messaging.models import Channel, Message
from messaging.status_reports import StatusReport, message_find_for_report, message_status_report

logger = logging.getLogger(__name__)

Status = Message.Status

EVENT_STATUSES = {
    EventType.QUEUED: Status.SENT,
    EventType.SENT: Status.SENT,
    EventType.DELIVERED: Status.DELIVERED,
    EventType.REJECTED: Status.FAILED,
    EventType.FAILED: Status.FAILED,
    EventType.BOUNCED: Status.FAILED,
    EventType.COMPLAINED: Status.FAILED,
    EventType.UNSUBSCRIBED: Status.FAILED,
    # The receiving server said "later"; the service tries again and reports again.
    EventType.DEFERRED: Status.SENT,
}
HISTORY_ONLY = frozenset({EventType.DEFERRED})

# Why the address stopped working, as staff read it after "Emails to this address stopped: ".
# "failed" is left out: that is the service failing to send (a template error, say), not the address.
BOUNCED = "it bounced (the address doesn't exist, or its mail server refused our email)"
COMPLAINED = "the patient reported an email from us as spam"
UNSUBSCRIBED = "the patient unsubscribed, so the email service won't send to it"
REJECTED_BECAUSE = {
    RejectReason.INVALID: "the email service says it isn't a valid address",
    RejectReason.BOUNCED: "it bounced before, so the email service won't send to it",
    RejectReason.SPAM: "the patient reported an email as spam, so the email service won't send to it",
    RejectReason.UNSUBSCRIBED: UNSUBSCRIBED,
}
REJECTED = "the email service refused to send to it"


def address_problem(event: AnymailTrackingEvent) -> str:
    """Why this event means the address doesn't work, or "" when it doesn't mean that."""
    match event.event_type:
        case EventType.BOUNCED:
            return BOUNCED
        case EventType.COMPLAINED:
            return COMPLAINED
        case EventType.UNSUBSCRIBED:
            return UNSUBSCRIBED
        case EventType.REJECTED:
            return REJECTED_BECAUSE.get(event.reject_reason, REJECTED)
    return ""


def email_tracking_record(*, event: AnymailTrackingEvent, esp_name: str) -> bool:
    """Apply one tracking event to its message (and its patient's address); True when the status moved.

    The message is found by our reference in the email's metadata and the service's message id
    (they must agree), and the event must be about the address we sent to; otherwise nothing
    changes. Opens and clicks (tracking is off, so they shouldn't come) and anything else are ignored.
    """
    status = EVENT_STATUSES.get(event.event_type)
    if status is None:
        return False
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    reference = str(metadata.get("message") or "")
    message = message_find_for_report(
        channel=Channel.EMAIL, reference=reference, provider_message_id=str(event.message_id or "")
    )
    if message is None:
        logger.info("Ignored an email %s event from %s: not a message of ours.", event.event_type, esp_name)
        return False
    if event.recipient and event.recipient.casefold() != message.to_address.casefold():
        logger.warning("Ignored an email %s event for %s: another recipient.", event.event_type, message.reference)
        return False
    problem = address_problem(event)
    detail = " ".join(part for part in (event.description, event.mta_response) if part)[:1000]
    with transaction.atomic():
        moved = message_status_report(
            message=message,
            report=StatusReport(
                status=status,
                provider_status=event.event_type,
                error_code=str(event.reject_reason or ""),
                detail=detail,
                failure_reason=_sentence(problem) if problem else _failure_reason(event, detail),
                occurred_at=event.timestamp,
                history_only=event.event_type in HISTORY_ONLY,
            ),
        )
        if problem:
            patient_email_flag(message=message, reason=problem, esp_name=esp_name)
    return moved


def patient_email_flag(*, message: Message, reason: str, esp_name: str) -> bool:
    """Mark the message's patient's address as not working, if it is still the address on record.

    Only that patient: another record with the same address (a family's shared inbox) belongs to
    someone else, and a report about one email is no reason to change their record. The first
    reason stays; a repeated report changes nothing and isn't audited twice.
    """
    flagged = Patient.objects.filter(
        pk=message.patient_id, email__iexact=message.to_address, email_undeliverable_reason=""
    ).update(email_undeliverable_reason=reason[:200])
    if flagged:
        audit_record_many(
            action=AuditEvent.Action.EMAIL_UNDELIVERABLE,
            actor=None,
            patients=[message.patient],
            detail={"why": reason, "message": message.reference, "email_service": esp_name},
        )
    return bool(flagged)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def _failure_reason(event: AnymailTrackingEvent, detail: str) -> str:
    if event.event_type != EventType.FAILED:
        return ""
    return "The email service couldn't send it" + (f": {detail}" if detail else ".")
