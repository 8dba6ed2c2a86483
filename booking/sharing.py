"""Sharing agreements: a host (say a PCN hub) lets a partner practice book some of its
appointment types at some of its locations, until a manager ends it.

What a partner may offer while an agreement is in force is read in booking/offers.py; booking
checks the agreement again at the moment of booking, so ending one stops links already sent.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.models import AppointmentType, AuditEvent, Location, Organisation, SharingAgreement
from booking.users import AnyUser


def sharing_agreement_start(
    *,
    host: Organisation,
    partner: Organisation,
    appointment_types: Iterable[AppointmentType],
    locations: Iterable[Location],
    actor: AnyUser,
) -> SharingAgreement:
    """Start sharing `appointment_types` at `locations` with `partner`; audited.

    The database allows one agreement in force per host and partner (a partial unique
    constraint): a second raises IntegrityError, which the form checks for first.
    """
    with transaction.atomic():
        agreement = SharingAgreement.objects.create(host=host, partner=partner)
        agreement.appointment_types.set(appointment_types)
        agreement.locations.set(locations)
        audit_record(
            action=AuditEvent.Action.CHANGED,
            actor=actor,
            organisation=host,
            detail={"sharing": f"started with {partner.name}"},
        )
    return agreement


def sharing_agreement_end(*, host: Organisation, agreement_id: int, actor: AnyUser) -> bool:
    """End one of `host`'s agreements now; audited. False when it isn't one of host's in force.

    One conditional UPDATE, so two managers ending it at once record one end.
    """
    with transaction.atomic():
        ended = SharingAgreement.objects.in_force().filter(pk=agreement_id, host=host).update(ended_at=timezone.now())
        if ended:
            audit_record(
                action=AuditEvent.Action.CHANGED,
                actor=actor,
                organisation=host,
                detail={"sharing": f"ended {agreement_id}"},
            )
    return bool(ended)
