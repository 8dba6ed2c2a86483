"""Which organisations' data a signed-in member of staff may see and act on."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import Http404

from booking.audit import audit_record
from booking.models import AuditEvent, Organisation, Patient, StaffMembership
from booking.references import decode_reference


def staff_organisation_ids(user) -> list[int]:
    """The organisations the user is a member of. Superusers act only where they are members too."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_staff_organisation_ids", None)
    if cached is None:
        cached = list(StaffMembership.objects.filter(user=user).values_list("organisation_id", flat=True))
        user._staff_organisation_ids = cached
    return cached


MANAGING_ROLES = (StaffMembership.Role.MANAGER, StaffMembership.Role.ADMIN)


def managed_organisation_ids(user) -> list[int]:
    """Organisations where the user is a manager or admin: unlocking links, the audit trail."""
    if not getattr(user, "is_authenticated", False):
        return []
    cached = getattr(user, "_managed_organisation_ids", None)
    if cached is None:
        cached = list(
            StaffMembership.objects.filter(user=user, role__in=MANAGING_ROLES).values_list("organisation_id", flat=True)
        )
        user._managed_organisation_ids = cached
    return cached


def staff_organisations(user) -> list[Organisation]:
    return list(Organisation.objects.filter(pk__in=staff_organisation_ids(user)).order_by("name"))


def get_patient_for_staff(*, user, reference: str, ip_address: str | None = None) -> Patient:
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
    if patient.organisation_id not in staff_organisation_ids(user):
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


def managed_organisation(user, *, what: str) -> Organisation:
    """The organisation this manager looks after (their first managed one); PermissionDenied if none.

    `what` names the page for the refusal: "Message templates are for managers."
    """
    ids = managed_organisation_ids(user)
    if not ids:
        raise PermissionDenied(f"{what} are for managers.")
    return Organisation.objects.get(pk=ids[0])
