"""Booking confirmations: when a patient books through a link, tell them on the channel it came by.

The booking request only queues a task (messaging/receivers.py → messaging/tasks.py); the
worker writes the confirmation and queues its delivery, so the patient's "Book" answer doesn't
wait for it. A confirmation a dead process never queued is found here (`confirmations_missing`)
for the requeue sweep (messaging/tasks.py, messages_requeue).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from booking.models import Appointment
from messaging.channels import channel_reaching
from messaging.delivery import DeliveryEnqueue
from messaging.models import Channel, Message
from messaging.segments import sms_normalise


def confirmation_send(*, appointment_id: int, enqueue: DeliveryEnqueue) -> Message | None:
    """Write and queue the confirmation of a booked appointment, or None when there is none to send.

    Once only: the database holds one confirmation per appointment (a unique key; a second
    writer's IntegrityError means it was confirmed already). Goes by the channel the link's
    message went by; if the patient can no longer receive it (opted out of texts since, say),
    by the other channel; if neither, nothing is sent. The message and its delivery task
    (`enqueue`, messaging/tasks.py's delivery_enqueue) are written in one transaction.
    """
    appointment = (
        Appointment.objects.select_related(
            "patient__organisation", "slot__location", "slot__practitioner", "slot__appointment_type"
        )
        .filter(pk=appointment_id, status=Appointment.Status.BOOKED)
        .first()
    )
    if appointment is None or Message.objects.filter(confirms=appointment).exists():
        return None  # cancelled before the worker got to it, or already confirmed
    invitation = Message.objects.filter(booking_link_id=appointment.booking_link_id).first()
    if invitation is None:
        return None
    option = channel_reaching(appointment.patient, preferred=Channel(invitation.channel))
    if option is None:
        return None
    channel = option.channel
    body = render_to_string(
        "messaging/confirmation.txt",
        {"appointment": appointment, "practice": appointment.patient.organisation},
    ).strip()
    if channel == Channel.SMS:
        body = sms_normalise(body)
    try:
        with transaction.atomic():
            message = Message.objects.create(
                organisation=appointment.patient.organisation,
                patient=appointment.patient,
                channel=channel,
                to_address=option.address,
                subject="Your appointment is booked" if channel == Channel.EMAIL else "",
                template_body=body,
                body=body,
                confirms=appointment,
            )
            enqueue(message=message)
    except IntegrityError:
        return None  # already confirmed
    return message


def confirmations_missing(
    *, now: datetime | None = None, within: timedelta = timedelta(days=1), grace: timedelta
) -> list[int]:
    """Appointments booked through a link in the last day, older than `grace`, with no confirmation yet."""
    now = now or timezone.now()
    return list(
        Appointment.objects.filter(
            booking_link__isnull=False,
            booking_link__message__isnull=False,
            status=Appointment.Status.BOOKED,
            booked_at__gte=now - within,
            booked_at__lt=now - grace,
            confirmation__isnull=True,
        ).values_list("pk", flat=True)[:500]
    )
