"""What messaging does when booking announces something (booking/signals.py), or the email service reports."""

from __future__ import annotations

from anymail.signals import tracking
from django.dispatch import receiver

from booking.signals import appointment_booked
from messaging.confirmations import confirmation_send
from messaging.tracking import email_tracking_record


@receiver(appointment_booked)
def send_booking_confirmation(sender, appointment, **kwargs) -> None:
    confirmation_send(appointment=appointment)


@receiver(tracking)
def record_email_tracking(sender, event, esp_name, **kwargs) -> None:
    email_tracking_record(event=event, esp_name=esp_name)
