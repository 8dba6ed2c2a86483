"""What messaging does when booking announces something (booking/signals.py), or the email service reports."""

from __future__ import annotations

from anymail.signals import AnymailTrackingEvent, tracking
from django.dispatch import receiver

from booking.models import Appointment
from booking.signals import appointment_booked, appointment_cancelled, appointment_changed
from messaging.tasks import cancellation_enqueue, confirmation_enqueue
from messaging.tracking import email_tracking_record


@receiver(appointment_booked)
def send_booking_confirmation(sender: object, appointment: Appointment, **kwargs: object) -> None:
    # Sent after the booking commits; the confirmation is written by the task, not the request.
    confirmation_enqueue(appointment_id=appointment.pk)


@receiver(appointment_changed)
def send_change_confirmation(sender: object, appointment: Appointment, **kwargs: object) -> None:
    # The new appointment's confirmation says it moved (from `appointment.replaces`' time).
    confirmation_enqueue(appointment_id=appointment.pk)


@receiver(appointment_cancelled)
def send_cancellation(sender: object, appointment: Appointment, **kwargs: object) -> None:
    # The task decides whether there is anything to tell (who cancelled, the time, the channels).
    cancellation_enqueue(appointment_id=appointment.pk)


@receiver(tracking)
def record_email_tracking(sender: object, event: AnymailTrackingEvent, esp_name: str, **kwargs: object) -> None:
    email_tracking_record(event=event, esp_name=esp_name)
