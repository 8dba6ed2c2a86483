"""Delivery as Django Tasks, and the one module that enqueues them.

The database backend with `manage.py db_worker` in production; the immediate one in
development and tests. Everything that queues work comes through here: sending
(messaging/sending.py), confirmations of bookings and changes and cancellation notices
(messaging/receivers.py), retries (passed to messaging/delivery.py as its `enqueue`), the
requeue sweep (`messages_requeue`, the requeue_messages command, which also wipes expired
links' encrypted tokens), the reminder sweep (`reminders_send`, the send_reminders command;
a batch's deliveries are queued with one INSERT, `deliveries_enqueue`) and a campaign's
invitations (messaging/campaigns/invitations.py, `deliveries_enqueue` at CAMPAIGN_PRIORITY). Delivery and
confirmations import nothing from this module, so the imports run one way: tasks →
confirmations and reminders → delivery → transports.

The task names (messaging.tasks.deliver_message, messaging.tasks.send_confirmation,
messaging.tasks.send_cancellation) are stored in task rows: renaming them strands the tasks
already queued.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.tasks import task
from django.tasks.backends.base import BaseTaskBackend
from django.utils import timezone
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.compat import normalize_json
from django_tasks_db.models import DBTaskResult, get_date_max

from booking.links import booking_links_wipe_unusable
from messaging.confirmations import cancellation_send, cancellations_missing, confirmation_send, confirmations_missing
from messaging.delivery import message_deliver, messages_fail_exhausted, messages_stalled
from messaging.models import CAMPAIGN_MESSAGE, Message
from messaging.reminders import ReminderRun, reminders_queue


@task()
def deliver_message(*, message_id: int) -> str:
    """Send one message if it is due (messaging/delivery.py); safe to run twice or on two workers."""
    return message_deliver(message_id=message_id, enqueue=delivery_enqueue)


@task()
def send_confirmation(*, appointment_id: int) -> str:
    """Write and queue the confirmation of a booked or changed appointment (once: one per appointment)."""
    confirmation = confirmation_send(appointment_id=appointment_id, enqueue=delivery_enqueue)
    return "queued" if confirmation is not None else "none"


@task()
def send_cancellation(*, appointment_id: int) -> str:
    """Write and queue the notice of a cancelled appointment (once: one per appointment)."""
    notice = cancellation_send(appointment_id=appointment_id, enqueue=delivery_enqueue)
    return "queued" if notice is not None else "none"


# Campaign messages (invitations and follow-ups) queue behind everything else: db_worker takes the
# highest priority first, so a text a receptionist sends by hand never waits behind a campaign.
CAMPAIGN_PRIORITY = -10


def delivery_enqueue(*, message: Message, run_after: datetime | None = None, priority: int | None = None) -> None:
    """Queue delivery with the message's own transaction.

    The database task backend writes the task row in the caller's transaction, so the message
    and its task commit together or not at all (nothing is sent for a rolled-back message, and
    nothing committed is left without its task). A backend outside the database (the immediate
    one, in development) runs the task when the transaction commits.

    A retry (`run_after`) that a backend can't defer (the immediate backend) is left to the
    requeue sweep. Call it inside the transaction that writes the message: delivery does, for
    its retries (messaging/delivery.py, DeliveryEnqueue).
    """
    backend = deliver_message.get_backend()  # the backend itself, not django.tasks' proxy to it
    deliver = deliver_message if priority is None else deliver_message.using(priority=priority)
    if run_after is not None:
        if backend.supports_defer:
            deliver.using(run_after=run_after).enqueue(message_id=message.pk)
        return
    if _task_rows_live_in_our_database(backend):
        deliver.enqueue(message_id=message.pk)
    else:
        message_id = message.pk
        transaction.on_commit(lambda: deliver.enqueue(message_id=message_id))


def _task_rows_live_in_our_database(backend: BaseTaskBackend) -> bool:
    return isinstance(backend, DatabaseBackend)


def deliveries_enqueue(*, messages: list[Message], priority: int | None = None) -> None:
    """Queue delivery of each of `messages` with their transaction: delivery_enqueue for a batch.

    With the database backend, one INSERT of the task rows for the whole batch (the reminder
    sweep's constant queries a batch): each row is the one the backend's own enqueue writes
    (django_tasks_db's DatabaseBackend._task_to_db_task), so db_worker runs it the same way.
    The task_enqueued signal is not sent for these; nothing here listens to it. `priority`
    (CAMPAIGN_PRIORITY for a campaign's messages) replaces the task's own.
    """
    backend = deliver_message.get_backend()
    if not _task_rows_live_in_our_database(backend):
        for message in messages:
            delivery_enqueue(message=message, priority=priority)
        return
    DBTaskResult.objects.bulk_create(
        [
            DBTaskResult(
                args_kwargs=normalize_json({"args": [], "kwargs": {"message_id": message.pk}}),
                priority=deliver_message.priority if priority is None else priority,
                task_path=deliver_message.module_path,
                queue_name=deliver_message.queue_name,
                # What the backend's pre_save handler puts for "no time": bulk_create sends no signals.
                run_after=deliver_message.run_after or get_date_max(),
                backend_name=backend.alias,
            )
            for message in messages
        ]
    )


def reminders_send(*, now: datetime | None = None) -> ReminderRun:
    """Queue the reminders due now, once each (messaging/reminders.py); the send_reminders command and the scheduler."""
    return reminders_queue(enqueue=deliveries_enqueue, now=now)


def confirmation_enqueue(*, appointment_id: int) -> None:
    """Queue writing the confirmation of a booked or changed appointment (booking signals after commit)."""
    send_confirmation.enqueue(appointment_id=appointment_id)


def cancellation_enqueue(*, appointment_id: int) -> None:
    """Queue writing the notice of a cancelled appointment (booking signals after commit)."""
    send_cancellation.enqueue(appointment_id=appointment_id)


def messages_requeue(*, now: datetime | None = None, limit: int = 500) -> int:
    """Queue delivery again for messages left behind; returns how many tasks were queued.

    The stalled messages (messaging/delivery.py, messages_stalled: a lapsed lease, or due for
    longer than a lease, with tries to spare; those without are failed with a reason instead,
    messages_fail_exhausted, and queue nothing); appointments booked or changed through a link in
    the last day whose confirmation was never written (messaging/confirmations.py,
    confirmations_missing: the process died between the booking's commit and queuing the
    confirmation); and those cancelled in the last day whose notice was never written
    (cancellations_missing). Queuing one that still has its task is harmless: only one claim
    can succeed, and a confirmation or notice is written once. It also wipes the encrypted
    token of links that can do nothing more (booking/links.py, booking_links_wipe_unusable:
    expired, or their appointment has passed): no message will carry them again.
    """
    now = now or timezone.now()
    booking_links_wipe_unusable(now=now)
    grace = timedelta(seconds=settings.DELIVERY_LEASE_SECONDS)
    messages_fail_exhausted(now=now, grace=grace, limit=limit)
    stalled = messages_stalled(now=now, grace=grace, limit=limit)
    # A campaign's message queues behind hand-sent ones again, as it did the first time.
    campaign = (
        set(Message.objects.filter(CAMPAIGN_MESSAGE, pk__in=stalled).values_list("pk", flat=True)) if stalled else set()
    )
    for message_id in stalled:
        deliver = deliver_message.using(priority=CAMPAIGN_PRIORITY) if message_id in campaign else deliver_message
        deliver.enqueue(message_id=message_id)
    unconfirmed = confirmations_missing(now=now, grace=grace)
    for appointment_id in unconfirmed:
        send_confirmation.enqueue(appointment_id=appointment_id)
    untold = cancellations_missing(now=now, grace=grace)
    for appointment_id in untold:
        send_cancellation.enqueue(appointment_id=appointment_id)
    return len(stalled) + len(unconfirmed) + len(untold)
