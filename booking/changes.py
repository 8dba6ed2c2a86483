"""Changes by patients: the appointments patients cancelled or moved, as staff home counts them.

A change is an appointment that ended with `cancellation_source` "patient" (cancelled from the
link) or "changed" (moved to another time); its `cancelled_at` is when. Each member of staff
has a "last looked" moment (`PatientChangesSeen`): home counts the changes since then, and
opening the list of them moves it on.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q, QuerySet
from django.utils import timezone

from booking.models import Appointment, CancellationSource, PatientChangesSeen
from booking.users import AnyUser

PATIENT_SOURCES = (CancellationSource.PATIENT, CancellationSource.CHANGED)


def appointments_in_scope(*, organisation_ids: list[int]) -> QuerySet[Appointment]:
    """Appointments staff of these organisations see: at their locations (the host running the
    clinic) or of their patients (the patient's practice), whatever the status."""
    return Appointment.objects.filter(
        Q(slot__location__organisation_id__in=organisation_ids) | Q(patient__organisation_id__in=organisation_ids)
    )


def patient_changes(*, organisation_ids: list[int], since: datetime | None) -> QuerySet[Appointment]:
    """Appointments patients cancelled or changed, in these organisations' scope, after `since` (all if None)."""
    changes = appointments_in_scope(organisation_ids=organisation_ids).filter(cancellation_source__in=PATIENT_SOURCES)
    return changes if since is None else changes.filter(cancelled_at__gt=since)


def patient_changes_last_seen(*, user: AnyUser) -> datetime | None:
    """When `user` last opened the list of changes by patients; when their account was made if
    never (a new member of staff isn't greeted by every change ever made). One query."""
    if not user.is_authenticated:
        return None
    seen = PatientChangesSeen.objects.filter(user_id=user.pk).values_list("seen_at", flat=True).first()
    return seen if seen is not None else getattr(user, "date_joined", None)


def patient_changes_seen(*, user: AnyUser, now: datetime | None = None) -> None:
    """Record that `user` opened the list of changes by patients at `now`.

    One INSERT ... ON CONFLICT DO UPDATE, no lock: two tabs opening the list at once both mean
    "seen", whichever writes last.
    """
    if not user.is_authenticated:
        return
    PatientChangesSeen.objects.bulk_create(
        [PatientChangesSeen(user_id=user.pk, seen_at=now or timezone.now())],
        update_conflicts=True,
        unique_fields=["user"],
        update_fields=["seen_at"],
    )
