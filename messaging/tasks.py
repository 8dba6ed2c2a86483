"""Delivery as a Django Task: the database backend with `manage.py db_worker` in production."""

from __future__ import annotations

from django.tasks import task

from messaging.confirmations import confirmation_send_for
from messaging.delivery import message_deliver


@task()
def deliver_message(*, message_id: int) -> str:
    """Send one message if it is due (messaging/delivery.py); safe to run twice or on two workers."""
    return message_deliver(message_id)


@task()
def send_confirmation(*, appointment_id: int) -> str:
    """Write and queue the confirmation of a booked appointment (once: the database holds one per appointment)."""
    return "queued" if confirmation_send_for(appointment_id) is not None else "none"
