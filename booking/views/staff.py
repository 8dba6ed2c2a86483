"""Staff pages about bookings: upcoming appointments, the audit trail, sharing agreements."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from booking.access import ANY_ROLE, MANAGING_ROLES, managed_organisation, organisation_ids_for
from booking.audit import audit_record_many
from booking.forms import SharingAgreementForm
from booking.http import client_ip
from booking.models import Appointment, AuditEvent, SharingAgreement
from booking.sharing import (
    sharing_agreement_accept,
    sharing_agreement_decline,
    sharing_agreement_end,
    sharing_agreement_offer,
)

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
def appointments(request: HttpRequest) -> HttpResponse:
    """Booked appointments the user's organisations need to know about.

    A host (say a PCN hub) sees those at its own locations, with the patient details it needs to
    run the clinic; a practice sees its own patients' bookings wherever they are. Showing them
    is recorded in the audit trail, one event per patient shown.
    """
    organisation_ids = organisation_ids_for(request.user, roles=ANY_ROLE)
    booked = (
        Appointment.objects.filter(
            status=Appointment.Status.BOOKED, slot__start__gte=timezone.now() - timedelta(hours=12)
        )
        .filter(
            Q(slot__location__organisation_id__in=organisation_ids) | Q(patient__organisation_id__in=organisation_ids)
        )
        .select_related(
            "patient", "patient__organisation", "slot", "slot__location", "slot__practitioner", "slot__appointment_type"
        )
        .order_by("slot__start", "pk")
    )
    page = Paginator(booked, PER_PAGE).get_page(request.GET.get("page"))
    audit_record_many(
        action=AuditEvent.Action.VIEWED,
        actor=request.user,
        patients=[appointment.patient for appointment in page.object_list],
        ip_address=client_ip(request),
        detail={"page": "appointments"},
    )
    return render(request, "booking/appointments.html", {"page": page})


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
