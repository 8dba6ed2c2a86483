"""Delivering a message: claim it, hand it to its provider, record what happened.

Each message is sent once. A worker claims a message with one conditional UPDATE (queued and
due, or sending with a lapsed lease → sending, attempts + 1, a new lease), so two workers, or
the same task run twice, can't both hold it. The only duplicate possible is a worker dying
after the provider accepted the message and before we recorded it: once the lease lapses the
message is claimed again and the same text, with the same link, goes a second time (the
at-least-once window, docs/deployment.md).

Every claim counts as an attempt, and the claim itself refuses a message that has had
DELIVERY_MAX_ATTEMPTS of them. Transient failures (timeouts, connection errors, 5xx, 429) are
tried again with exponential backoff and jitter up to that limit, then the message fails;
permanent ones fail at once. A reminder whose appointment was cancelled or changed since it was
queued fails before the provider is called, with the reason (messaging/reminders.py). An error
the transport didn't expect (anything but TransportError: a bug, a provider client raising
something new, a header Django refused) is logged with its traceback and treated as transient,
so it can't leave the message "sending". A message whose last claim never finished (its worker
died or hung past the lease) is failed by the sweep (`messages_fail_exhausted`) rather than
claimed again. The reason is kept on the message for staff to read.

This module queues nothing itself: messaging/tasks.py is the one module that enqueues, and it
passes its enqueue function in (`enqueue`), so the retry's task row is written inside the same
transaction that puts the message back in the queue (see `DeliveryEnqueue`). The provider is
reached through messaging/transports/.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Literal, Protocol

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from booking.formats import time_of_day
from booking.models import BookingLink, Organisation
from booking.patients import patients_opt_out
from messaging.channels import channel_options
from messaging.models import Channel, Message, MessageStatusEvent, Reminder
from messaging.reminders import reminder_stale_reason
from messaging.texts import message_not_current
from messaging.transports import SendResult, TransportError, transport_for

logger = logging.getLogger(__name__)

# What one run of the delivery task did, for the task's result and the logs.
type DeliveryOutcome = Literal["not due", "sent", "retrying", "failed", "superseded"]


class DeliveryEnqueue(Protocol):
    """Queues delivery of `message` (at `run_after`, for a retry) in the caller's transaction.

    It is messaging/tasks.py's `delivery_enqueue`, passed in by the task rather than imported:
    the task module imports this one, and one import direction keeps the two apart. Delivery
    calls it inside the transaction that writes the message's new state, so with the database
    task backend the retry's task row commits with that state or not at all: a committed
    "queued again" always has its task. (A backend that can't defer leaves the retry to the
    requeue sweep.)
    """

    def __call__(self, *, message: Message, run_after: datetime | None = None) -> None: ...


def retry_delay(attempt: int, *, rng: random.Random | None = None) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1, 2, ...).

    Doubling from DELIVERY_RETRY_BASE_SECONDS up to DELIVERY_RETRY_MAX_SECONDS, with "equal
    jitter": half the step fixed, half random, so messages that failed together (the provider
    was down) don't all come back at the same moment.
    """
    step = min(settings.DELIVERY_RETRY_MAX_SECONDS, settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** (attempt - 1))
    return timedelta(seconds=step / 2 + (rng or random).uniform(0, step / 2))


def message_claim(message_id: int, *, now: datetime | None = None) -> Message | None:
    """Take a message for sending, or None when it isn't ours to send (not due, held, done, out of tries).

    One conditional UPDATE, no lock held: it counts the attempt and refuses a message that has
    had DELIVERY_MAX_ATTEMPTS already, so no worker or sweep can try one more time than that.
    """
    now = now or timezone.now()
    claimed = (
        Message.objects.filter(pk=message_id, attempts__lt=settings.DELIVERY_MAX_ATTEMPTS)
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
        "booking_link",
        "link_carried",
        "confirms__slot__appointment_type",
        "confirms__slot__practitioner",
        "confirms__slot__location",
        "cancellation_of__slot__appointment_type",
        "cancellation_of__slot__practitioner",
        "cancellation_of__slot__location",
        "reminder__appointment__slot",
    ).get(pk=message_id)


def message_deliver(*, message_id: int, enqueue: DeliveryEnqueue) -> DeliveryOutcome:
    """Send one message if it is due; returns what happened, for the task result and the logs.

    Claims the message with a conditional UPDATE (no lock held while the provider is called).
    A transient failure puts it back in the queue and calls `enqueue` for the retry inside the
    same transaction, so the retry's task row and the "queued again" status commit together;
    if writing the task fails, that status rolls back too and the message stays "sending"
    until its lease lapses and the requeue sweep takes it (messages_stalled). Raises nothing
    for a provider's failure (TransportError is recorded on the message) nor for any other
    error the transport raises (logged with its traceback, then retried like a transient
    failure); a database error propagates and fails the task, and the sweep takes over.
    """
    message = message_claim(message_id)
    if message is None:
        return "not due"
    stopped = _why_not_deliverable_now(message)
    if stopped:
        return _record_failure(message, TransportError(stopped, permanent=True), enqueue=enqueue)
    try:
        result = transport_for(message.channel).send(message)
    except TransportError as error:
        return _record_failure(message, error, enqueue=enqueue)
    except Exception as error:
        # Not a failure the transport knows how to describe: a bug, a provider client raising
        # something new, a header Django refused. Left to propagate, the task would fail with
        # the message "sending" until the sweep claimed it again, for ever; recorded as a
        # transient failure it is tried again and then fails with a reason staff can read.
        logger.exception(
            "Message %s try %s: the transport raised an unexpected error.", message.reference, message.attempts
        )
        return _record_failure(message, unexpected_error(error), enqueue=enqueue)
    _record_sent(message, result)
    return "sent"


def unexpected_error(error: BaseException) -> TransportError:
    """The transient failure recorded for an error the transport didn't expect (its traceback is in the log)."""
    return TransportError(
        f"an unexpected error ({type(error).__name__}) — the details are in the server log.", permanent=False
    )


def _why_not_deliverable_now(message: Message) -> str:
    """A retry can come an hour after the message was written: check the patient still wants it
    there, and that it is still true (messaging/texts.py, message_not_current).

    And a reminder only while its appointment is still booked and still to come: it may have
    been queued (or be waiting for a retry) when the appointment was cancelled or changed.
    """
    try:
        reminder = message.reminder
    except Reminder.DoesNotExist:
        reminder = None
    if reminder is not None and (stale := reminder_stale_reason(reminder=reminder, now=timezone.now())):
        return stale
    if _answered_invitation(message, reminder=reminder):
        return "Not sent: the patient has answered the invitation since (booked or declined), or its link was revoked."
    option = next(option for option in channel_options(message.patient) if option.channel == message.channel)
    if not option.available:
        return f"Not sent: {option.reason_unavailable[0].lower()}{option.reason_unavailable[1:]}."
    if option.address != message.to_address:
        what = "mobile number" if message.channel == Channel.SMS else "email address"
        return f"Not sent: the patient's {what} changed after the message was written. Send it again."
    return message_not_current(message=message)


def _answered_invitation(message: Message, *, reminder: Reminder | None) -> bool:
    """Whether `message` asks the patient to book through a link that can't book any more.

    A message that carries a link (link_carried) but confirms nothing, notices no cancellation
    and reminds of nothing is a campaign's follow-up (messaging/campaigns/follow_ups.py): an
    invitation to book. One queued just before the patient booked, or declined, would otherwise
    still go, since a booked link keeps its token for its confirmation and reminders. Reads the
    link the delivery claim joined.
    """
    if message.link_carried is None or reminder is not None:
        return False
    if message.confirms_id is not None or message.cancellation_of_id is not None:
        return False
    return message.link_carried.status != BookingLink.Status.ACTIVE


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


def _record_failure(message: Message, error: TransportError, *, enqueue: DeliveryEnqueue) -> DeliveryOutcome:
    now = timezone.now()
    attempt = message.attempts
    final = error.permanent or attempt >= settings.DELIVERY_MAX_ATTEMPTS
    next_attempt_at: datetime | None = None
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
            # The patient opted out of the sender this message went from: this organisation's.
            patients_opt_out(
                mobile=message.to_address,
                organisations=Organisation.objects.filter(pk=message.organisation_id),
                why="The SMS provider says the number opted out.",
            )
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
        if next_attempt_at is not None:
            # Here, not after the block: the task row commits with the "queued again" status.
            enqueue(message=message, run_after=next_attempt_at)
    logger.info("Message %s try %s: %s", message.reference, attempt, reason)
    return "failed" if final else "retrying"


def _left_behind(*, now: datetime, grace: timedelta) -> Q:
    """Sending with a lapsed lease (the worker died or hung), or queued and due for longer than `grace`."""
    return Q(status=Message.Status.SENDING, lease_expires_at__lt=now) | Q(
        status=Message.Status.QUEUED, next_attempt_at__lt=now - grace
    )


def messages_stalled(*, now: datetime, grace: timedelta, limit: int = 500) -> list[int]:
    """Messages left behind with tries to spare, oldest first: their delivery must be queued again.

    Two kinds: sending with a lapsed lease (their worker died), and queued but due for longer
    than `grace` (a retry the backend couldn't defer, or a task lost with its queue). A message
    that still has its task is harmless to queue twice: only one claim can succeed. One left
    behind with no tries to spare is `messages_fail_exhausted`'s (messaging/tasks.py calls both).
    """
    return list(
        Message.objects.filter(_left_behind(now=now, grace=grace), attempts__lt=settings.DELIVERY_MAX_ATTEMPTS)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def messages_fail_exhausted(*, now: datetime, grace: timedelta, limit: int = 500) -> int:
    """Fail the messages left behind after their last try, with a reason; how many.

    The claim refuses them (DELIVERY_MAX_ATTEMPTS), so without this they would stay "sending"
    for ever. Their last try never finished: the worker died or hung past its lease, maybe
    after the provider took the text, so the reason says we don't know. One conditional UPDATE
    per message (the same status and attempt it was read with), so a worker that records its
    late outcome first wins and this changes nothing. Locks nothing else; raises nothing of
    its own.
    """
    exhausted = list(
        Message.objects.filter(_left_behind(now=now, grace=grace), attempts__gte=settings.DELIVERY_MAX_ATTEMPTS)
        .order_by("next_attempt_at")
        .values_list("pk", "status", "attempts")[:limit]
    )
    failed = 0
    for message_id, status, attempts in exhausted:
        reason = (
            f"Not sent after {attempts} tries. Last: the try didn't finish (the worker stopped), "
            "so the text may or may not have gone — the details are in the server log."
            if status == Message.Status.SENDING
            else f"Not sent after {attempts} tries."
        )
        with transaction.atomic():
            ours = Message.objects.filter(pk=message_id, status=status, attempts=attempts)
            if not ours.update(status=Message.Status.FAILED, failure_reason=reason, lease_expires_at=None):
                continue
            MessageStatusEvent.objects.create(
                message_id=message_id,
                status=Message.Status.FAILED,
                source=MessageStatusEvent.Source.WORKER,
                provider_status="failed",
                detail=reason,
                occurred_at=now,
            )
        logger.warning("Message %s failed: %s", Message(pk=message_id).reference, reason)
        failed += 1
    return failed
