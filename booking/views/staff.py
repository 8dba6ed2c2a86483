"""Staff pages about bookings: appointments (and cancelling one for the patient), the audit trail,
sharing agreements."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from booking.access import ANY_ROLE, MANAGING_ROLES, managed_organisation, organisation_ids_for
from booking.appointments import appointment_cancel
from booking.audit import audit_record, audit_record_many
from booking.changes import appointments_in_scope, patient_changes, patient_changes_seen
from booking.formats import date_and_time
from booking.forms import AppointmentFilterForm, ListedStatus, PracticeCancellationForm, SharingAgreementForm
from booking.http import client_ip
from booking.models import Appointment, AuditEvent, CancellationSource, SharingAgreement
from booking.references import decode_reference
from booking.sharing import (
    sharing_agreement_accept,
    sharing_agreement_decline,
    sharing_agreement_end,
    sharing_agreement_offer,
)
from booking.users import SignedInRequest

PER_PAGE = 25


@never_cache
@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    """The organisation's audit trail, for its managers: who did what to whose record, when."""
    organisation_ids = organisation_ids_for(request.user, roles=MANAGING_ROLES)
    if not organisation_ids:
        raise PermissionDenied("The audit trail is for managers.")
    events = (
        AuditEvent.objects.filter(organisation_id__in=organisation_ids)
        .select_related("actor", "patient", "organisation")
        .order_by("-created_at", "-pk")
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "booking/audit_trail.html", {"page": page})


@never_cache
@login_required
def appointments(request: SignedInRequest) -> HttpResponse:
    """Appointments the user's organisations need to know about, as they stand, with filters.

    A host (say a PCN hub) sees those at its own locations, with the patient details it needs to
    run the clinic; a practice sees its own patients' bookings wherever they are. Each shows how
    it stands (booked, cancelled by the patient or the practice, changed to another time), why
    and when. Without filters: from 12 hours ago on, by time. Showing them is recorded in the
    audit trail, one event per patient shown; opening the changes by patients records the
    user's look at them, which home counts from.
    """
    form = AppointmentFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "booking/appointments.html", {"form": form, "page": None}, status=400)
    status = form.cleaned_data["status"]
    since = form.cleaned_data["since"]
    start, end = form.time_range()
    now = timezone.now()
    if start is None and end is None and since is None:
        start = now - timedelta(hours=12)

    organisation_ids = organisation_ids_for(request.user, roles=ANY_ROLE)
    listed = appointments_in_scope(organisation_ids=organisation_ids)
    match status:
        case ListedStatus.BOOKED:
            listed = listed.filter(status=Appointment.Status.BOOKED)
        case ListedStatus.CANCELLED_BY_PATIENT:
            listed = listed.filter(cancellation_source=CancellationSource.PATIENT)
        case ListedStatus.CANCELLED_BY_PRACTICE:
            listed = listed.filter(cancellation_source=CancellationSource.PRACTICE)
        case ListedStatus.CHANGED:
            listed = listed.filter(cancellation_source=CancellationSource.CHANGED)
        case ListedStatus.BY_PATIENTS:
            listed = patient_changes(organisation_ids=organisation_ids, since=None)
    if since is not None:
        listed = listed.filter(cancelled_at__gt=since)
    if start is not None:
        listed = listed.filter(slot__start__gte=start)
    if end is not None:
        listed = listed.filter(slot__start__lt=end)
    # Patients' changes newest first (what happened since the last look); the rest by time.
    ordering = ("-cancelled_at", "-pk") if status == ListedStatus.BY_PATIENTS else ("slot__start", "pk")
    listed = (
        listed.select_related(
            "patient",
            "patient__organisation",
            "slot",
            "slot__location",
            "slot__practitioner",
            "slot__appointment_type",
            "cancelled_by",
            "replaced_by",
            "replaced_by__slot",
            "replaces",
            "replaces__slot",
        )
        .fetch_mode(models.FETCH_RAISE)
        .order_by(*ordering)
    )
    page = Paginator(listed, PER_PAGE).get_page(request.GET.get("page"))
    audit_record_many(
        action=AuditEvent.Action.VIEWED,
        actor=request.user,
        patients=[appointment.patient for appointment in page.object_list],
        ip_address=client_ip(request),
        detail={"page": "appointments"},
    )
    if status == ListedStatus.BY_PATIENTS:
        patient_changes_seen(user=request.user, now=now)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "booking/appointments.html",
        {"form": form, "page": page, "now": now, "since": since, "query": query.urlencode()},
    )


def _get_appointment_for_staff(request: SignedInRequest, reference: str) -> Appointment:
    """The appointment with this reference in the user's organisations' scope (the Appointments
    page's), or 404. Asking for one outside it is recorded, as for patients (booking/access.py)."""
    pk = decode_reference(reference, namespace="appointment")
    if pk is None:
        raise Http404("No such appointment.")
    scope = appointments_in_scope(organisation_ids=organisation_ids_for(request.user, roles=ANY_ROLE))
    appointment = (
        scope.filter(pk=pk)
        .select_related(
            "patient",
            "patient__organisation",
            "slot",
            "slot__location",
            "slot__practitioner",
            "slot__appointment_type",
            "booking_link",
            "cancelled_by",
        )
        .first()
    )
    if appointment is None:
        outside = Appointment.objects.select_related("patient").filter(pk=pk).first()
        if outside is not None:
            audit_record(
                action=AuditEvent.Action.DENIED,
                actor=request.user,
                patient=outside.patient,
                ip_address=client_ip(request),
                detail={"what": "appointment outside the user's organisations"},
            )
        raise Http404("No such appointment.")
    return appointment


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def cancel_appointment(request: SignedInRequest, reference: str) -> HttpResponse:
    """The practice cancels a patient's booked appointment, with a reason: the page, and its POST.

    appointment_cancel frees the slot and tells the patient (its signal); its conditional
    UPDATE makes a second POST (a replayed form, another tab, the patient cancelling at the
    same moment) change nothing and get the "no longer booked" page instead.
    """
    appointment = _get_appointment_for_staff(request, reference)
    now = timezone.now()
    is_post = request.method == "POST"
    if appointment.status != Appointment.Status.BOOKED or appointment.slot.start <= now:
        return _cancel_refused(request, appointment, now=now, status=409 if is_post else 200)
    form = PracticeCancellationForm(request.POST if is_post else None)
    if is_post and form.is_valid():
        if not appointment_cancel(
            appointment=appointment,
            actor=request.user,
            source=CancellationSource.PRACTICE,
            reason=form.cleaned_data["reason"],
            detail=form.cleaned_data["detail"],
        ):
            appointment.refresh_from_db()
            return _cancel_refused(request, appointment, now=now, status=409)
        flash.success(
            request,
            f"Cancelled {appointment.patient.full_name}'s appointment on {date_and_time(appointment.slot.start)}."
            " The time is free again, and the patient will be told.",
        )
        return redirect("booking:appointments")
    return render(
        request,
        "booking/cancel_appointment.html",
        {"appointment": appointment, "form": form},
        status=400 if is_post else 200,
    )


def _cancel_refused(request: SignedInRequest, appointment: Appointment, *, now: datetime, status: int) -> HttpResponse:
    """Why this appointment can't be cancelled now: it isn't booked any more, or its time has passed."""
    return render(
        request,
        "booking/cancel_appointment.html",
        {"appointment": appointment, "refused": True, "now": now},
        status=status,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def sharing(request: HttpRequest) -> HttpResponse:
    """A manager offers a partner appointment types and locations, answers offers made to their
    organisation, and sees and ends the agreements on either side."""
    organisation = managed_organisation(request.user, what="Sharing agreements")
    form = SharingAgreementForm(request.POST or None, host=organisation)
    if request.method == "POST" and form.is_valid():
        agreement = sharing_agreement_offer(
            host=organisation,
            partner=form.cleaned_data["partner"],
            appointment_types=form.cleaned_data["appointment_types"],
            locations=form.cleaned_data["locations"],
            actor=request.user,
        )
        flash.success(
            request, f"Offer sent: {agreement.partner.name} can offer what you chose once their manager accepts."
        )
        return redirect("booking:sharing")
    agreements = list(
        SharingAgreement.objects.filter(Q(host=organisation) | Q(partner=organisation))
        .select_related("host", "partner")
        .prefetch_related("appointment_types", "locations")
        .order_by("-ended_at", "host__name", "partner__name")
    )
    offers_to_us = [a for a in agreements if a.partner_id == organisation.pk and a.is_pending]
    return render(
        request,
        "booking/sharing.html",
        {
            "form": form,
            "host": organisation,
            "offers_to_us": offers_to_us,
            "agreements": [a for a in agreements if a not in offers_to_us],
        },
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@login_required
@require_POST
def sharing_accept(request: HttpRequest, pk: int) -> HttpResponse:
    """The partner's manager accepts an offer made to their organisation."""
    organisation = managed_organisation(request.user, what="Sharing agreements")
    if not sharing_agreement_accept(partner=organisation, agreement_id=pk, actor=request.user):
        raise Http404("No such offer waiting.")
    flash.success(request, "Offer accepted: your staff can now send links for what it shares.")
    return redirect("booking:sharing")


@never_cache
@login_required
@require_POST
def sharing_decline(request: HttpRequest, pk: int) -> HttpResponse:
    """The partner's manager declines an offer made to their organisation."""
    organisation = managed_organisation(request.user, what="Sharing agreements")
    if not sharing_agreement_decline(partner=organisation, agreement_id=pk, actor=request.user):
        raise Http404("No such offer waiting.")
    flash.success(request, "Offer declined: nothing is shared.")
    return redirect("booking:sharing")


@never_cache
@login_required
@require_POST
def sharing_end(request: HttpRequest, pk: int) -> HttpResponse:
    """End an agreement now, from either side (the host also withdraws an offer this way).

    Links already sent stop booking too: booking re-checks the agreement under its row lock.
    """
    organisation = managed_organisation(request.user, what="Sharing agreements")
    if not sharing_agreement_end(organisation=organisation, agreement_id=pk, actor=request.user):
        raise Http404("No such agreement in force.")
    flash.success(
        request, "Agreement ended: the partner can no longer send links for it, and links already sent stop booking."
    )
    return redirect("booking:sharing")
