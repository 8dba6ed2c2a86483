"""Writing the audit trail: who did what to whose record, when."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.models import User

from booking.models import Appointment, AuditEvent, BookingLink, Organisation, Patient, StaffMembership
from booking.users import AnyUser


def audit_record(
    *,
    action: str,
    actor: AnyUser | None = None,
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
        actor=actor if actor is not None and actor.is_authenticated else None,
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


def audit_record_many(
    *,
    action: str,
    actor: AnyUser | None,
    patients: list[Patient],
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One event per patient, in one INSERT (a page listing 25 patients records 25 views)."""
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=action,
            actor=actor if actor is not None and actor.is_authenticated else None,
            organisation_id=patient.organisation_id,
            patient=patient,
            ip_address=ip_address,
            detail=detail or {},
        )
        for patient in {patient.pk: patient for patient in patients}.values()
    )


def audit_record_for_accounts(
    *,
    action: str,
    users: Iterable[User],
    ip_address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Something happened to these staff accounts (a failed sign-in, a lockout, a reset asked for).

    One event per account and organisation it belongs to, so each organisation's managers see
    it on their audit trail; one without an organisation for an account with no membership (a
    superuser), seen in Django admin. Nobody acted as a signed-in user, so the account is named
    in the detail, not as the actor. Two queries: the memberships, one INSERT.
    """
    accounts = {user.pk: user for user in users}
    if not accounts:
        return
    organisations: dict[int, list[int | None]] = {pk: [] for pk in accounts}
    for user_id, organisation_id in StaffMembership.objects.filter(user_id__in=accounts).values_list(
        "user_id", "organisation_id"
    ):
        organisations[user_id].append(organisation_id)
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=action,
            organisation_id=organisation_id,
            ip_address=ip_address,
            detail={**(detail or {}), "account": user.get_username()},
        )
        for pk, user in accounts.items()
        for organisation_id in organisations[pk] or [None]
    )


def audit_record_for_appointments(
    *,
    action: str,
    actor: AnyUser | None,
    organisation_id: int,
    appointments: Iterable[tuple[int, int]],
    detail: dict[str, Any] | None = None,
) -> None:
    """One event per appointment, given as (appointment id, patient id) pairs, in one INSERT.

    For a change made to many appointments at once (a session marked attended); `organisation_id`
    is the organisation whose staff made it, so its managers see it on their audit trail.
    """
    AuditEvent.objects.bulk_create(
        AuditEvent(
            action=action,
            actor=actor if actor is not None and actor.is_authenticated else None,
            organisation_id=organisation_id,
            patient_id=patient_id,
            appointment_id=appointment_id,
            detail=detail or {},
        )
        for appointment_id, patient_id in appointments
    )
