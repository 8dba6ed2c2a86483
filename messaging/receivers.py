"""What messaging does when booking announces something (booking/signals.py)."""

from __future__ import annotations

from django.dispatch import receiver

from booking.signals import appointment_booked
from messaging.confirmations import confirmation_send


@receiver(appointment_booked)
def send_booking_confirmation(sender, appointment, **kwargs) -> None:
    confirmation_send(appointment=appointment)
