"""Delivery as a Django Task: the database backend with `manage.py db_worker` in production."""

from __future__ import annotations

from django.tasks import task

from messaging.delivery import message_deliver


@task()
def deliver_message(*, message_id: int) -> str:
    """Send one message if it is due (messaging/delivery.py); safe to run twice or on two workers."""
    return message_deliver(message_id)
