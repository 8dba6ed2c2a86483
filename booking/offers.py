"""What an organisation can offer patients: its own self-bookable types and those shared with it.

Reads only. A type shared by a host (say a PCN hub) comes with the host's locations named in
the agreement; practitioners are those with an active rota for that type at that location. A
link for a host's type keeps working only while such an agreement is in force: accepted by the
partner's manager and not ended (an offer not yet accepted shares nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import OuterRef, Q, QuerySet
from django.utils import timezone

from booking.models import AppointmentType, BookingLink, Location, Organisation, Practitioner, SharingAgreement


@dataclass(frozen=True)
class OfferedType:
    appointment_type: AppointmentType
    host: Organisation | None  # None when the type is the organisation's own

    @property
    def label(self) -> str:
        if self.host is None:
            return self.appointment_type.name
        return f"{self.appointment_type.name} ({self.host.name})"


def _agreements_for(organisation: Organisation | int | OuterRef) -> QuerySet[SharingAgreement]:
    return SharingAgreement.objects.in_force().filter(partner=organisation)


def appointment_types_offered_to(*, organisation: Organisation) -> list[OfferedType]:
    """Self-bookable, active types: the organisation's own first, then shared ones by host. Two queries."""
    own = AppointmentType.objects.filter(organisation=organisation, self_bookable=True, is_active=True).order_by("name")
    shared = (
        AppointmentType.objects.filter(
            sharing_agreements__in=_agreements_for(organisation), self_bookable=True, is_active=True
        )
        .select_related("organisation")
        .distinct()
        .order_by("organisation__name", "name")
    )
    return [OfferedType(t, None) for t in own] + [OfferedType(t, t.organisation) for t in shared]


def appointment_type_offered_to(*, organisation: Organisation, appointment_type_id: int) -> OfferedType | None:
    for offered in appointment_types_offered_to(organisation=organisation):
        if offered.appointment_type.pk == appointment_type_id:
            return offered
    return None


def locations_offering(*, organisation: Organisation, appointment_type: AppointmentType) -> QuerySet[Location]:
    """Where `organisation` may book `appointment_type`: its own active locations, or the agreement's."""
    if appointment_type.organisation_id == organisation.pk:
        return Location.objects.filter(organisation=organisation, is_active=True).order_by("name")
    return (
        Location.objects.filter(
            is_active=True,
            organisation_id=appointment_type.organisation_id,
            sharing_agreements__in=_agreements_for(organisation).filter(appointment_types=appointment_type),
        )
        .distinct()
        .order_by("name")
    )


def practitioners_offering(*, appointment_type: AppointmentType, location: Location) -> QuerySet[Practitioner]:
    """Active practitioners with an active rota for this type at this location, today or later."""
    today = timezone.localdate()
    return (
        Practitioner.objects.filter(
            is_active=True,
            rotas__appointment_type=appointment_type,
            rotas__location=location,
            rotas__is_active=True,
        )
        .filter(Q(rotas__valid_until__isnull=True) | Q(rotas__valid_until__gte=today))
        .distinct()
        .order_by("name")
    )


def locations_offered_to(*, organisation: Organisation) -> QuerySet[Location]:
    """Every active location where the organisation may offer something: its own and its agreements'."""
    return (
        Location.objects.filter(is_active=True)
        .filter(Q(organisation=organisation) | Q(sharing_agreements__in=_agreements_for(organisation)))
        .distinct()
        .order_by("name")
    )


def agreements_sharing(
    *, partner: int | OuterRef, host: int | OuterRef, appointment_type: int | OuterRef, location: int | OuterRef
) -> QuerySet[SharingAgreement]:
    """The agreements in force by which `host` shares this type at this location with `partner`.

    Ids, or OuterRefs when the question is asked inside another query (booking/link_lookup.py
    asks it of the link it finds, in the same statement).
    """
    return _agreements_for(partner).filter(host_id=host, appointment_types=appointment_type, locations=location)


def booking_link_still_shared(*, link: BookingLink) -> bool:
    """Whether the link's type and location are still the sender's to offer.

    Always true for the sender's own types (no query). For a host's type, whether an agreement
    in force still shares that type at that location with the sender: the answer the link's
    lookup brought with it (`link.still_shared`, booking/link_lookup.py: no query), else one
    query. Reads `link.appointment_type`.
    """
    if link.appointment_type.organisation_id == link.organisation_id:
        return True
    known: bool | None = getattr(link, "still_shared", None)
    if known is not None:
        return known
    return agreements_sharing(
        partner=link.organisation_id,
        host=link.appointment_type.organisation_id,
        appointment_type=link.appointment_type_id,
        location=link.location_id,
    ).exists()
