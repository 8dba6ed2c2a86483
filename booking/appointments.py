"""Appointments: cancelling one (booking comes with the patient journey)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.models import Appointment, AuditEvent, Slot
from booking.signals import appointment_cancelled


def appointment_cancel(*, appointment: Appointment, actor) -> bool:
    """Cancel a booked appointment and free its slot. Returns whether it changed.

    Locks the slot row first, the same order booking takes, so a cancel and a booking of the
    same slot can't deadlock. Sends `appointment_cancelled` after the commit.
    """
    with transaction.atomic():
        Slot.objects.select_for_update().filter(pk=appointment.slot_id).first()
        changed = Appointment.objects.filter(pk=appointment.pk, status=Appointment.Status.BOOKED).update(
            status=Appointment.Status.CANCELLED, cancelled_at=timezone.now()
        )
        if not changed:
            return False
        Slot.objects.filter(pk=appointment.slot_id, status=Slot.Status.BOOKED).update(status=Slot.Status.FREE)
        appointment.refresh_from_db()
        audit_record(
            action=AuditEvent.Action.CANCELLED,
            actor=actor,
            patient=appointment.patient,
            booking_link=appointment.booking_link,
            appointment=appointment,
        )
        transaction.on_commit(lambda: appointment_cancelled.send(sender=Appointment, appointment=appointment))
    return True
