"""Staff record attendance from the Appointments page: one appointment, or a whole session.

Both are POST forms that work without JavaScript; each redirects back to the page it came
from (at the row, so keyboard focus carries on from there) with a message, or shows why
nothing was recorded with a 400 (a bad form), 404 (not an appointment at the user's sites) or
409 (cancelled, or its time hasn't come).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from booking.exceptions import OutcomeRefused
from booking.models import Appointment, Outcome
from booking.outcomes import appointment_outcome_record, appointment_outcome_recorders, session_mark_attended
from booking.references import decode_reference
from booking.users import AnyUser


class OutcomeForm(forms.Form):
    outcome = forms.ChoiceField(
        choices=Outcome.choices,
        error_messages={
            "required": "Choose Attended or Did not attend.",
            "invalid_choice": "Choose Attended or Did not attend.",
        },
    )


def _get_appointment_at_users_sites(user: AnyUser, reference: str) -> Appointment:
    """The appointment with this reference at one of the user's organisations' sites, or 404."""
    pk = decode_reference(reference, namespace="appointment")
    appointment = (
        Appointment.objects.select_related("slot", "slot__location", "slot__location__organisation", "patient")
        .fetch_mode(models.FETCH_RAISE)
        .filter(pk=pk, slot__location__organisation_id__in=appointment_outcome_recorders(user))
        .first()
        if pk is not None
        else None
    )
    if appointment is None:
        raise Http404("No such appointment at your sites.")
    return appointment


def _back(request: HttpRequest, *, anchor: str = "") -> str:
    """Where the form came from: the Appointments page with its filters, never another site."""
    target = request.POST.get("next", "")
    appointments = reverse("booking:appointments")
    if not (
        target.startswith(appointments)
        and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False)
    ):
        target = appointments
    return f"{target}#{anchor}" if anchor else target


def _not_recorded(request: HttpRequest, message: str, *, status: int) -> HttpResponse:
    return render(
        request, "booking/outcome_not_recorded.html", {"message": message, "back": _back(request)}, status=status
    )


@never_cache
@login_required
@require_POST
def appointment_outcome(request: HttpRequest, reference: str) -> HttpResponse:
    """Record "Attended" or "Did not attend" for one appointment."""
    appointment = _get_appointment_at_users_sites(request.user, reference)
    form = OutcomeForm(request.POST)
    if not form.is_valid():
        return _not_recorded(request, str(form.errors["outcome"][0]), status=400)
    outcome = Outcome(form.cleaned_data["outcome"])
    try:
        appointment_outcome_record(appointment=appointment, outcome=outcome, actor=request.user)
    except OutcomeRefused as refusal:
        return _not_recorded(request, refusal.message, status=409)
    flash.success(request, f"{appointment.patient.full_name}: {outcome.label.lower()}.")
    return redirect(_back(request, anchor=f"outcome-{appointment.reference}"))


@never_cache
@login_required
@require_POST
def session_attended(request: HttpRequest, reference: str) -> HttpResponse:
    """Mark everyone in this appointment's session (its practitioner's list that day, there)
    without an outcome, whose time has come, as attended."""
    appointment = _get_appointment_at_users_sites(request.user, reference)
    try:
        marked = session_mark_attended(appointment=appointment, actor=request.user)
    except OutcomeRefused as refusal:
        return _not_recorded(request, refusal.message, status=409)
    if marked:
        flash.success(
            request,
            f"Marked {marked} appointment{'' if marked == 1 else 's'} as attended. "
            "Change any patient who didn't come to Did not attend.",
        )
    else:
        flash.info(request, "Everyone in this session whose time has come already has attendance recorded.")
    return redirect(_back(request))
