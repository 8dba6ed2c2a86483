"""Delivery, as a Django Task. Each message is claimed under a row lock, so it is sent once."""

from __future__ import annotations

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from messaging.models import Message
from messaging.transports import transport_for


@task()
def deliver_message(*, message_id: int) -> str:
    """Claim a queued message (queued -> sending), hand it to its channel's transport, record the result."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True)
            .filter(pk=message_id, status=Message.Status.QUEUED)
            .first()
        )
        if message is None:
            return "not queued"
        message.status = Message.Status.SENDING
        message.save(update_fields=["status"])
    provider_id = transport_for(message.channel).send(message)
    Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.SENT, provider_message_id=provider_id, sent_at=timezone.now()
    )
    return "sent"
