"""Writing the audit trail: who did what to whose record, when."""

from __future__ import annotations

from typing import Any

from booking.models import Appointment, AuditEvent, BookingLink, Organisation, Patient


def audit_record(
    *,
    action: str,
    actor=None,
    organisation: Organisation | None = None,
    patient: Patient | None = None,
    booking_link: BookingLink | None = None,
    appointment: Appointment | None = None,
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call it inside the transaction that makes the change it records."""
    if organisation is None:
        organisation = _organisation_of(patient=patient, booking_link=booking_link)
    return AuditEvent.objects.create(
        action=action,
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        organisation=organisation,
        patient=patient,
        booking_link=booking_link,
        appointment=appointment,
        ip_address=ip_address,
        detail=detail or {},
    )


def _organisation_of(*, patient: Patient | None, booking_link: BookingLink | None) -> Organisation | None:
    if booking_link is not None:
        return booking_link.organisation
    if patient is not None:
        return patient.organisation
    return None
