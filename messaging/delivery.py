"""Delivering a message: claim it, hand it to its provider, record what happened.

Each message is sent once. A worker claims a message with one conditional UPDATE (queued and
due, or sending with a lapsed lease → sending, attempts + 1, a new lease), so two workers, or
the same task run twice, can't both hold it. The only duplicate possible is a worker dying
after the provider accepted the message and before we recorded it: once the lease lapses the
message is claimed again and the same text, with the same link, goes a second time (the
at-least-once window, docs/deployment.md).

Transient failures (timeouts, connection errors, 5xx, 429) are tried again with exponential
backoff and jitter up to DELIVERY_MAX_ATTEMPTS, then the message fails; permanent ones fail at
once. The reason is kept on the message for staff to read.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from booking.audit import audit_record_many
from booking.formats import time_of_day
from booking.models import AuditEvent, Patient
from messaging.channels import channel_options
from messaging.delivery_errors import DeliveryError, SendResult
from messaging.email_delivery import EmailBackend
from messaging.models import Channel, Message, MessageStatusEvent
from messaging.sms_backends import sms_backend

logger = logging.getLogger(__name__)


def backend_for(channel: str):
    return sms_backend() if channel == Channel.SMS else EmailBackend()


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1, 2, ...).

    Doubling from DELIVERY_RETRY_BASE_SECONDS up to DELIVERY_RETRY_MAX_SECONDS, with "equal
    jitter": half the step fixed, half random, so messages that failed together (the provider
    was down) don't all come back at the same moment.
    """
    step = min(settings.DELIVERY_RETRY_MAX_SECONDS, settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return timedelta(seconds=step / 2 + (rng or random).uniform(0, step / 2))


def message_claim(message_id: int, *, now: datetime | None = None) -> Message | None:
    """Take a message for sending, or None when it isn't ours to send (not due, held, done)."""
    now = now or timezone.now()
    claimed = (
        Message.objects.filter(pk=message_id)
        .filter(
            Q(status=Message.Status.QUEUED, next_attempt_at__lte=now)
            | Q(status=Message.Status.SENDING, lease_expires_at__lt=now)
        )
        .update(
            status=Message.Status.SENDING,
            attempts=F("attempts") + 1,
            lease_expires_at=now + timedelta(seconds=settings.DELIVERY_LEASE_SECONDS),
        )
    )
    if not claimed:
        return None
    return Message.objects.select_related(
        "organisation",
        "patient",
        "confirms__slot__appointment_type",
        "confirms__slot__practitioner",
        "confirms__slot__location",
    ).get(pk=message_id)


def message_deliver(message_id: int) -> str:
    """Send one message if it is due; returns what happened, for the task result and the logs."""
    message = message_claim(message_id)
    if message is None:
        return "not due"
    stopped = _why_not_deliverable_now(message)
    if stopped:
        return _record_failure(message, DeliveryError(stopped, permanent=True))
    try:
        result = backend_for(message.channel).send(message)
    except DeliveryError as error:
        return _record_failure(message, error)
    _record_sent(message, result)
    return "sent"


def _why_not_deliverable_now(message: Message) -> str:
    """A retry can come an hour after the message was written: check the patient still wants it there."""
    option = next(option for option in channel_options(message.patient) if option.channel == message.channel)
    if not option.available:
        return f"Not sent: {option.reason_unavailable[0].lower()}{option.reason_unavailable[1:]}."
    if option.address != message.to_address:
        what = "mobile number" if message.channel == Channel.SMS else "email address"
        return f"Not sent: the patient's {what} changed after the message was written. Send it again."
    return ""


def _record_sent(message: Message, result: SendResult) -> None:
    now = timezone.now()
    with transaction.atomic():
        # Only our own claim: if the lease lapsed and another worker took the message over,
        # its attempt number is higher and this changes nothing.
        ours = Message.objects.filter(pk=message.pk, attempts=message.attempts)
        moved_on = not ours.filter(status=Message.Status.SENDING).update(
            status=Message.Status.SENT,
            provider_message_id=result.provider_message_id,
            sent_at=now,
            lease_expires_at=None,
            failure_reason="",
        )
        if moved_on:
            # The provider's callback overtook us (it said "delivered" already): keep its status.
            ours.filter(provider_message_id="").update(
                provider_message_id=result.provider_message_id,
                sent_at=Coalesce(F("sent_at"), now),
                lease_expires_at=None,
            )
        MessageStatusEvent.objects.create(
            message=message,
            status=Message.Status.SENT,
            source=MessageStatusEvent.Source.WORKER,
            provider_status=result.provider_status,
            detail=f"Accepted by the provider (try {message.attempts}).",
            occurred_at=now,
        )


def _record_failure(message: Message, error: DeliveryError) -> str:
    now = timezone.now()
    attempt = message.attempts
    final = error.permanent or attempt >= settings.DELIVERY_MAX_ATTEMPTS
    if final:
        status = Message.Status.FAILED
        reason = error.reason if error.permanent else f"Not sent after {attempt} tries. Last: {error.reason}"
        changes = {}
    else:
        status = Message.Status.QUEUED
        next_attempt_at = now + retry_delay(attempt)
        reason = f"Not sent yet: {error.reason} Trying again at {time_of_day(next_attempt_at)}."
        changes = {"next_attempt_at": next_attempt_at}
    with transaction.atomic():
        if error.opted_out:
            patients_opt_out(mobile=message.to_address, why="The SMS provider says the number opted out.")
        # Only our own claim: a worker whose lease lapsed while it waited (another worker took
        # the message over) records nothing and queues no retry.
        ours = Message.objects.filter(pk=message.pk, attempts=attempt, status=Message.Status.SENDING)
        if not ours.update(status=status, failure_reason=reason, lease_expires_at=None, **changes):
            return "superseded"
        MessageStatusEvent.objects.create(
            message=message,
            status=status,
            source=MessageStatusEvent.Source.WORKER,
            provider_status="failed" if final else "retrying",
            error_code=error.code,
            detail=reason,
            occurred_at=now,
        )
        if not final:
            delivery_enqueue(message, run_after=next_attempt_at)
    logger.info("Message %s try %s: %s", message.reference, attempt, reason)
    return "failed" if final else "retrying"


def delivery_enqueue(message: Message, *, run_after: datetime | None = None) -> None:
    """Queue delivery with the message's own transaction.

    The database task backend writes the task row in the caller's transaction, so the message
    and its task commit together or not at all (nothing is sent for a rolled-back message, and
    nothing committed is left without its task). A backend outside the database (the immediate
    one, in development) runs the task when the transaction commits.

    A retry that a backend can't defer (the immediate backend) is left to the requeue sweep.
    """
    from messaging.tasks import deliver_message

    backend = deliver_message.get_backend()  # the backend itself, not django.tasks' proxy to it
    if run_after is not None:
        if backend.supports_defer:
            deliver_message.using(run_after=run_after).enqueue(message_id=message.pk)
        return
    if _task_rows_live_in_our_database(backend):
        deliver_message.enqueue(message_id=message.pk)
    else:
        message_id = message.pk
        transaction.on_commit(lambda: deliver_message.enqueue(message_id=message_id))


def _task_rows_live_in_our_database(backend) -> bool:
    from django_tasks_db.backend import DatabaseBackend

    return isinstance(backend, DatabaseBackend)


def messages_requeue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Queue delivery again for messages left behind; returns how many.

    Two kinds: sending with a lapsed lease (their worker died), and queued but due for longer
    than a lease (a retry the backend couldn't defer, or a task lost with its queue). A message
    that still has its task is harmless to queue twice: only one claim can succeed. Also
    appointments booked through a link in the last day whose confirmation was never written
    (the process died between the booking's commit and queuing the confirmation).
    """
    now = now or timezone.now()
    grace = timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    stalled = list(
        Message.objects.filter(
            Q(status=Message.Status.SENDING, lease_expires_at__lt=now)
            | Q(status=Message.Status.QUEUED, next_attempt_at__lt=now - grace)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    from messaging.confirmations import confirmations_missing
    from messaging.tasks import deliver_message, send_confirmation

    for message_id in stalled:
        deliver_message.enqueue(message_id=message_id)
    unconfirmed = confirmations_missing(now=now, grace=grace)
    for appointment_id in unconfirmed:
        send_confirmation.enqueue(appointment_id=appointment_id)
    return len(stalled) + len(unconfirmed)


def patients_opt_out(*, mobile: str, why: str, opted_out: bool = True, ip_address: str | None = None) -> int:
    """Mark every patient record with this mobile as opted out of texts (or back in); audited."""
    with transaction.atomic():
        patients = list(Patient.objects.select_for_update().filter(mobile=mobile).exclude(sms_opted_out=opted_out))
        if not patients:
            return 0
        Patient.objects.filter(pk__in=[patient.pk for patient in patients]).update(sms_opted_out=opted_out)
        audit_record_many(
            action=AuditEvent.Action.OPTED_OUT if opted_out else AuditEvent.Action.OPTED_IN,
            actor=None,
            patients=patients,
            ip_address=ip_address,
            detail={"why": why},
        )
    return len(patients)
