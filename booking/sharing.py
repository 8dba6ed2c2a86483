"""Sharing agreements: a host (say a PCN hub) offers a partner practice some of its appointment
types at some of its locations; the partner's manager accepts or declines; either side ends it.

Nothing is shared before the partner accepts: once the partner's patients book, the host sees
their date of birth, NHS number, mobile and email, so the partner decides. Each step is one
conditional UPDATE (so two managers acting at once record one change) and is audited on both
organisations' trails. What a partner may offer while an agreement is in force is read in
booking/offers.py; booking holds the agreement row under `FOR SHARE` at the moment of booking
(`sharing_agreement_hold`), so an end that commits first stops the booking, and an end that
comes while a booking is under way waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from booking.audit import audit_record
from booking.models import AppointmentType, AuditEvent, BookingLink, Location, Organisation, SharingAgreement
from booking.users import AnyUser


def _audit_both(*, agreement: SharingAgreement, step: str, actor: AnyUser) -> None:
    # One event on each side's trail: the host's managers and the partner's both see who did it.
    for organisation in (agreement.host, agreement.partner):
        audit_record(
            action=AuditEvent.Action.CHANGED,
            actor=actor,
            organisation=organisation,
            detail={
                "sharing": step,
                "agreement": agreement.pk,
                "host": agreement.host.name,
                "partner": agreement.partner.name,
            },
        )


def sharing_agreement_offer(
    *,
    host: Organisation,
    partner: Organisation,
    appointment_types: Iterable[AppointmentType],
    locations: Iterable[Location],
    actor: AnyUser,
) -> SharingAgreement:
    """Offer `partner` `appointment_types` at `locations`; shares nothing until it accepts. Audited.

    The database allows one open agreement (offered or accepted) per host and partner (a
    partial unique constraint): a second raises IntegrityError, which the form checks for first.
    """
    with transaction.atomic():
        agreement = SharingAgreement.objects.create(
            host=host, partner=partner, offered_by=actor if actor.is_authenticated else None
        )
        agreement.appointment_types.set(appointment_types)
        agreement.locations.set(locations)
        _audit_both(agreement=agreement, step="offered", actor=actor)
    return agreement


def sharing_agreement_accept(*, partner: Organisation, agreement_id: int, actor: AnyUser) -> bool:
    """The partner's manager accepts an offer: from now on the partner may offer it. Audited.

    False when it isn't an offer to `partner` still waiting (accepted, declined or withdrawn
    already): one conditional UPDATE, so two managers accepting at once record one acceptance.
    """
    with transaction.atomic():
        accepted = (
            SharingAgreement.objects.pending()
            .filter(pk=agreement_id, partner=partner)
            .update(accepted_at=timezone.now(), accepted_by=actor if actor.is_authenticated else None)
        )
        if accepted:
            agreement = SharingAgreement.objects.select_related("host", "partner").get(pk=agreement_id)
            _audit_both(agreement=agreement, step="accepted", actor=actor)
    return bool(accepted)


def sharing_agreement_decline(*, partner: Organisation, agreement_id: int, actor: AnyUser) -> bool:
    """The partner's manager declines an offer waiting for it: it ends, never accepted. Audited.

    False when it isn't an offer to `partner` still waiting. One conditional UPDATE.
    """
    with transaction.atomic():
        declined = (
            SharingAgreement.objects.pending()
            .filter(pk=agreement_id, partner=partner)
            .update(ended_at=timezone.now(), ended_by=actor if actor.is_authenticated else None)
        )
        if declined:
            agreement = SharingAgreement.objects.select_related("host", "partner").get(pk=agreement_id)
            _audit_both(agreement=agreement, step="declined", actor=actor)
    return bool(declined)


def sharing_agreement_end(*, organisation: Organisation, agreement_id: int, actor: AnyUser) -> bool:
    """End an agreement now, from either side: the host (also withdrawing an offer) or the partner.

    Audited on both trails. False when it isn't an open agreement of `organisation`'s (a
    partner declines an offer rather than ending it). One conditional UPDATE, which takes the
    agreement's row lock: it waits for a booking holding the row `FOR SHARE`
    (`sharing_agreement_hold`), and a booking that comes after it sees it ended.
    """
    scope = Q(host=organisation) | Q(partner=organisation, accepted_at__isnull=False)
    with transaction.atomic():
        ended = (
            SharingAgreement.objects.open()
            .filter(scope, pk=agreement_id)
            .update(ended_at=timezone.now(), ended_by=actor if actor.is_authenticated else None)
        )
        if ended:
            agreement = SharingAgreement.objects.select_related("host", "partner").get(pk=agreement_id)
            _audit_both(agreement=agreement, step="ended", actor=actor)
    return bool(ended)


# Django's ORM has FOR UPDATE and FOR NO KEY UPDATE but no FOR SHARE: written out here.
# FOR SHARE, because bookings through one agreement must not queue behind each other (FOR
# SHARE doesn't conflict with itself), while the end's UPDATE (FOR NO KEY UPDATE) conflicts
# with it both ways.
_HOLD_AGREEMENT = """
    SELECT agreement.id
    FROM booking_sharingagreement AS agreement
    JOIN booking_sharingagreement_appointment_types AS shared_type
        ON shared_type.sharingagreement_id = agreement.id AND shared_type.appointmenttype_id = %(type)s
    JOIN booking_sharingagreement_locations AS shared_location
        ON shared_location.sharingagreement_id = agreement.id AND shared_location.location_id = %(location)s
    WHERE agreement.host_id = %(host)s
        AND agreement.partner_id = %(partner)s
        AND agreement.accepted_at IS NOT NULL
        AND agreement.ended_at IS NULL
    FOR SHARE OF agreement
"""


def sharing_agreement_hold(*, link: BookingLink) -> bool:
    """Whether an agreement in force still shares the link's type and location with its sender,
    holding that agreement's row `FOR SHARE` until the surrounding transaction ends.

    Call it inside the booking's transaction. An end that commits first is seen here (the row
    no longer matches); one that starts later waits for the booking to commit. True without a
    query for the sender's own types. Reads `link.appointment_type`.
    """
    if link.appointment_type.organisation_id == link.organisation_id:
        return True
    with connection.cursor() as cursor:
        cursor.execute(
            _HOLD_AGREEMENT,
            {
                "type": link.appointment_type_id,
                "location": link.location_id,
                "host": link.appointment_type.organisation_id,
                "partner": link.organisation_id,
            },
        )
        return cursor.fetchone() is not None
