"""`{% load outcomes %}`: the Appointments page's attendance controls (booking/outcomes.py's rule).

    {% outcome_sessions page.object_list %}   a "mark all as attended" form per session on the page
    {% outcome_controls appointment %}        the outcome and its Attended / Did not attend forms

Both read only what the page already selected (each appointment's slot, location, practitioner
and patient) and the user's memberships, which organisation_ids_for keeps on the user object:
no queries per row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone

from booking.models import Appointment
from booking.outcomes import Session, appointment_outcome_recorders, appointment_outcome_refusal

register = template.Library()


def _may_record(appointment: Appointment, *, organisation_ids: list[int], now: datetime) -> bool:
    return appointment.slot.location.organisation_id in organisation_ids and not appointment_outcome_refusal(
        appointment=appointment, now=now
    )


@register.inclusion_tag("booking/_outcome_controls.html", takes_context=True)
def outcome_controls(context: template.Context, appointment: Appointment) -> dict[str, Any]:
    request = context["request"]
    now = timezone.now()
    return {
        "appointment": appointment,
        "may_record": _may_record(appointment, organisation_ids=appointment_outcome_recorders(request.user), now=now),
        "to_come": appointment.status == Appointment.Status.BOOKED and appointment.slot.start > now,
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }


@dataclass(frozen=True)
class SessionRow:
    appointment: Appointment  # the session's first appointment on the page: it names the session
    unmarked: int  # on this page


@register.inclusion_tag("booking/_outcome_sessions.html", takes_context=True)
def outcome_sessions(context: template.Context, appointments: Iterable[Appointment]) -> dict[str, Any]:
    request = context["request"]
    now = timezone.now()
    organisation_ids = appointment_outcome_recorders(request.user)
    sessions: dict[Session, SessionRow] = {}
    for appointment in appointments:
        if appointment.outcome or not _may_record(appointment, organisation_ids=organisation_ids, now=now):
            continue
        session = Session.of(appointment)
        row = sessions.get(session)
        sessions[session] = SessionRow(row.appointment if row else appointment, (row.unmarked if row else 0) + 1)
    return {
        "sessions": list(sessions.values()),
        "next": request.get_full_path(),
        "csrf_token": context.get("csrf_token"),
    }
