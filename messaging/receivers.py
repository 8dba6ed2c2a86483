"""What messaging does when booking announces something (booking/signals.py), or the email service reports."""

from __future__ import annotations

from anymail.signals import tracking
from django.dispatch import receiver

from booking.signals import appointment_booked
from messaging.tasks import send_confirmation
from messaging.tracking import email_tracking_record


@receiver(appointment_booked)
def send_booking_confirmation(sender, appointment, **kwargs) -> None:
    # Sent after the booking commits; the confirmation is written by the task, not the request.
    send_confirmation.enqueue(appointment_id=appointment.pk)


@receiver(tracking)
def record_email_tracking(sender, event, esp_name, **kwargs) -> None:
    email_tracking_record(event=event, esp_name=esp_name)
