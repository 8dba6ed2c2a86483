"""Which organisations' data a signed-in member of staff may see and act on."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from booking.audit import audit_record
from booking.models import AuditEvent, Organisation, Patient, StaffMembership
from booking.references import decode_reference
from booking.users import AnyUser

# Named sets of roles, for `organisation_ids_for`.
ANY_ROLE = frozenset(StaffMembership.Role)
# Unlocking links, the audit trail, message templates, sharing agreements.
MANAGING_ROLES = frozenset({StaffMembership.Role.MANAGER, StaffMembership.Role.ADMIN})
# The organisation's records in Django admin (booking/admin_scope.py).
ADMIN_ROLES = frozenset({StaffMembership.Role.ADMIN})


def organisation_ids_for(user: AnyUser, *, roles: frozenset[str]) -> list[int]:
    """The organisations where `user` has one of `roles`, by organisation name; [] for anonymous users.

    Superusers act only where they are members too. The user's memberships are read once per
    user object (one query per request, however many checks the request makes) and kept on
    it, so a membership changed mid-request shows from the next request.
    """
    if not user.is_authenticated:
        return []
    memberships: list[tuple[int, str]] | None = getattr(user, "_memberships", None)
    if memberships is None:
        memberships = list(StaffMembership.objects.filter(user_id=user.pk).values_list("organisation_id", "role"))
        # On the user object, which lives for one request: no stale roles in the next one.
        user._memberships = memberships  # type: ignore[attr-defined]
    return [organisation_id for organisation_id, role in memberships if role in roles]


def get_patient_for_staff(*, user: AnyUser, reference: str, ip_address: str | None = None) -> Patient:
    """The patient with this reference in one of the user's organisations, or 404.

    Asking for another organisation's patient is recorded: it is either a bug or someone
    trying references, and either way someone should be able to see it.
    """
    pk = decode_reference(reference, namespace="patient")
    patient = (
        Patient.objects.select_related("organisation").fetch_mode(models.FETCH_RAISE).filter(pk=pk).first()
        if pk is not None
        else None
    )
    if patient is None:
        raise Http404("No such patient.")
    if patient.organisation_id not in organisation_ids_for(user, roles=ANY_ROLE):
        audit_record(
            action=AuditEvent.Action.DENIED,
            actor=user,
            organisation=None,
            patient=patient,
            ip_address=ip_address,
            detail={"what": "patient outside the user's organisations"},
        )
        raise Http404("No such patient.")
    return patient


def managed_organisation(user: AnyUser, *, what: str) -> Organisation:
    """The organisation this manager looks after (their first managed one); PermissionDenied if none.

    `what` names the page for the refusal: "Message templates are for managers."
    """
    ids = organisation_ids_for(user, roles=MANAGING_ROLES)
    if not ids:
        raise PermissionDenied(f"{what} are for managers.")
    return Organisation.objects.get(pk=ids[0])
