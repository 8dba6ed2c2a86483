"""Staff pages: home, the message builder (with Invite to book), and sent messages.

Every page works without JavaScript: the builder's buttons submit the form with an `action`,
and the Invite to book dialog is a section of the form. htmx and a little script only make
the same steps quicker (live counts, the dialog, inserting the token at the cursor).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.audit import audit_record, audit_record_many
from booking.links import DEFAULT_EXPIRY, LinkExpiry, booking_link_revoke, booking_link_state, booking_link_unlock
from booking.models import Appointment, AuditEvent, BookingLink, Organisation, SharingAgreement
from booking.patients import patient_search
from booking.references import decode_reference, encode_reference
from booking.slots import slot_count_available
from hero.http import client_ip
from messaging.access import get_patient_for_staff, managed_organisation_ids, staff_organisation_ids
from messaging.exceptions import MessageNotSent
from messaging.forms import ComposeForm, MessageTemplateForm, SharingAgreementForm
from messaging.models import Channel, Message, MessageTemplate
from messaging.segments import MAX_SMS_SEGMENTS
from messaging.sending import message_send
from messaging.tokens import APPOINTMENT_LINK, link_url_length, sms_length_of_body

RECENT_ON_HOME = 10
PER_PAGE = 25


def patient_reference(patient) -> str:
    return encode_reference(patient.pk, namespace="patient")


def _messages_for(user):
    booked = Appointment.objects.filter(status=Appointment.Status.BOOKED).select_related("slot")
    return (
        Message.objects.filter(organisation_id__in=staff_organisation_ids(user))
        .select_related("patient", "booking_link")
        .prefetch_related(Prefetch("booking_link__appointments", queryset=booked, to_attr="booked_appointments"))
        .order_by("-created_at", "-pk")
    )


def _with_link_states(messages_list, *, managed_ids=()):
    for message in messages_list:
        message.can_unlock = message.organisation_id in managed_ids
        link = message.booking_link
        if link is not None:
            appointments = getattr(link, "booked_appointments", [])
            message.link_state = booking_link_state(link=link, appointment=appointments[0] if appointments else None)
        else:
            message.link_state = "Booking confirmation" if message.confirms_id else ""
    return messages_list


@never_cache
@login_required
def home(request: HttpRequest) -> HttpResponse:
    recent = _with_link_states(
        list(_messages_for(request.user)[:RECENT_ON_HOME]), managed_ids=managed_organisation_ids(request.user)
    )
    return render(
        request,
        "messaging/home.html",
        {"recent_messages": recent, "is_manager": bool(managed_organisation_ids(request.user))},
    )


@never_cache
@login_required
@require_GET
def patient_results(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    patients = list(patient_search(organisation_ids=staff_organisation_ids(request.user), query=query))
    for patient in patients:
        patient.reference = patient_reference(patient)
    context = {"patients": patients, "query": query.strip()}
    if request.headers.get("HX-Request"):
        return render(request, "messaging/_patient_results.html", context)
    return render(request, "messaging/choose_patient.html", context)


def _count_context(*, patient, channel: str, body: str) -> dict:
    if channel != Channel.SMS:
        return {"count_channel": "email", "count_characters": len(body)}
    length = sms_length_of_body(
        body,
        link_length=link_url_length(public_base_url=settings.PUBLIC_BASE_URL),
        patient_first_name=patient.first_name,
        practice_name=patient.organisation.name,
    )
    return {
        "count_channel": "sms",
        "count_characters": length.characters,
        "count_segments": length.segments,
        "count_encoding": length.encoding,
        "count_too_long": length.segments > MAX_SMS_SEGMENTS,
        "max_segments": MAX_SMS_SEGMENTS,
    }


def _link_context(form: ComposeForm) -> dict:
    """What the dialog and the summary show about the link as currently set up."""
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    appointment_type = data.get("appointment_type")
    location = data.get("location")
    practitioner = data.get("practitioner")
    context = {"link_ready": bool(appointment_type and location)}
    if appointment_type and location:
        context["free_count"] = slot_count_available(
            appointment_type=appointment_type, location=location, practitioner=practitioner
        )
        context["link_type"] = next(
            (o for o in form.offered_types if o.appointment_type.pk == appointment_type.pk), None
        )
        context["link_location"] = location
        context["link_practitioner"] = practitioner
        context["link_expiry_label"] = LinkExpiry(data.get("link_expiry") or DEFAULT_EXPIRY).label
        context["link_window_days"] = appointment_type.maximum_days_ahead
    return context


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def compose(request: HttpRequest) -> HttpResponse:
    reference = request.GET.get("patient") or request.POST.get("patient") or ""
    if not reference:
        return render(request, "messaging/choose_patient.html", {"patients": [], "query": ""})
    patient = get_patient_for_staff(user=request.user, reference=reference, ip_address=client_ip(request))
    show_invite = False
    if request.method == "GET":
        audit_record(
            action=AuditEvent.Action.VIEWED, actor=request.user, patient=patient, ip_address=client_ip(request)
        )
        form = ComposeForm(patient=patient, initial={"idempotency_key": uuid.uuid4(), "link_expiry": DEFAULT_EXPIRY})
        form.is_valid()  # unbound: no errors, no cleaned_data; keeps the template simple
        return _render_compose(request, patient, form, show_invite=False)

    form = ComposeForm(request.POST, patient=patient)
    if not form.is_valid():
        show_invite = any(
            name in form.errors for name in ("appointment_type", "location", "practitioner", "link_expiry")
        )
        return _render_compose(
            request, patient, form, show_invite=show_invite, status=400 if form.chosen_action == "send" else 200
        )

    action = form.chosen_action
    if action in ("invite", "refresh", "use_template", "add_link", "remove_link"):
        data = form.data.copy()
        if action == "invite":
            show_invite = True
        elif action == "use_template" and form.cleaned_data.get("template"):
            data["body"] = form.cleaned_data["template"].body
        elif action == "add_link":
            body = data.get("body", "")
            if APPOINTMENT_LINK not in body:
                data["body"] = f"{body.rstrip()} {APPOINTMENT_LINK}".strip()
            data["link_added"] = "True"
        elif action == "remove_link":
            data["body"] = data.get("body", "").replace(APPOINTMENT_LINK, "").strip()
            for field in ("appointment_type", "location", "practitioner", "link_added"):
                data[field] = ""
            data["link_expiry"] = DEFAULT_EXPIRY
        data["action"] = ""
        form = ComposeForm(data, patient=patient)
        form.is_valid()
        return _render_compose(request, patient, form, show_invite=show_invite)

    try:
        message, created = message_send(
            sender=request.user,
            patient=patient,
            channel=form.cleaned_data["channel"],
            body=form.cleaned_data["body"],
            link=form.link_settings(),
            idempotency_key=form.cleaned_data["idempotency_key"],
            ip_address=client_ip(request),
        )
    except MessageNotSent as error:
        form.add_error(error.field if error.field in form.fields else None, error.message)
        show_invite = error.field in ("appointment_type", "location", "practitioner")
        return _render_compose(request, patient, form, show_invite=show_invite, status=400)
    if created:
        flash.success(request, "Message sent.")
    return redirect("messaging:detail", reference=message.reference)


def _render_compose(request, patient, form: ComposeForm, *, show_invite: bool, status: int = 200) -> HttpResponse:
    data = form.cleaned_data if hasattr(form, "cleaned_data") else {}
    channel = data.get("channel") or form["channel"].value() or ""
    body = data.get("body") if data.get("body") is not None else (form["body"].value() or "")
    context = {
        "patient": patient,
        "patient_ref": patient_reference(patient),
        "form": form,
        "show_invite": show_invite,
        "link_added": bool(data.get("link_added")),
        **_link_context(form),
        **_count_context(patient=patient, channel=str(channel), body=str(body)),
    }
    return render(request, "messaging/compose.html", context, status=status)


@never_cache
@login_required
@require_POST
def message_count(request: HttpRequest) -> HttpResponse:
    patient = get_patient_for_staff(user=request.user, reference=request.POST.get("patient", ""))
    context = _count_context(
        patient=patient, channel=request.POST.get("channel", ""), body=request.POST.get("body", "")[:5000]
    )
    return render(request, "messaging/_count.html", context)


@never_cache
@login_required
@require_GET
def link_fields(request: HttpRequest) -> HttpResponse:
    """The dialog's fields again, with locations and practitioners for what is chosen, and the free count."""
    patient = get_patient_for_staff(user=request.user, reference=request.GET.get("patient", ""))
    data = request.GET.copy()
    form = ComposeForm(data, patient=patient)
    form.is_valid()
    context = {
        "form": form,
        "patient": patient,
        "appointment_type_is_video": form.appointment_type_is_video,
        "link_added": bool(getattr(form, "cleaned_data", {}).get("link_added")),
    }
    context.update(_link_context(form))
    template = "messaging/_link_summary.html" if request.GET.get("part") == "summary" else "messaging/_link_fields.html"
    return render(request, template, context)


@never_cache
@login_required
def message_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(_messages_for(request.user), PER_PAGE).get_page(request.GET.get("page"))
    _with_link_states(page.object_list, managed_ids=managed_organisation_ids(request.user))
    return render(request, "messaging/message_list.html", {"page": page})


def _get_message_for_staff(request: HttpRequest, reference: str) -> Message:
    pk = decode_reference(reference, namespace="message")
    message = _messages_for(request.user).filter(pk=pk).first() if pk is not None else None
    if message is None:
        raise Http404("No such message.")
    return message


@never_cache
@login_required
def message_detail(request: HttpRequest, reference: str) -> HttpResponse:
    message = _get_message_for_staff(request, reference)
    _with_link_states([message], managed_ids=managed_organisation_ids(request.user))
    history = list(message.status_events.all())
    in_outbox = settings.DEBUG  # nothing leaves a development install: /dev/outbox shows it
    return render(
        request, "messaging/message_detail.html", {"message": message, "history": history, "in_outbox": in_outbox}
    )


def _get_link_for_staff(request: HttpRequest, reference: str) -> BookingLink:
    pk = decode_reference(reference, namespace="link")
    link = (
        BookingLink.objects.select_related("patient", "organisation")
        .filter(pk=pk, organisation_id__in=staff_organisation_ids(request.user))
        .first()
        if pk is not None
        else None
    )
    if link is None:
        raise Http404("No such link.")
    return link


def _back(request: HttpRequest) -> str:
    target = request.POST.get("next", "")
    return target if target.startswith("/messages/") and "//" not in target else reverse("messaging:list")


@never_cache
@login_required
@require_POST
def link_revoke(request: HttpRequest, reference: str) -> HttpResponse:
    link = _get_link_for_staff(request, reference)
    if booking_link_revoke(link=link, actor=request.user):
        flash.success(request, f"Link for {link.patient.full_name} revoked: it can no longer be used to book.")
    else:
        flash.info(request, "That link was already booked or revoked, so nothing changed.")
    return redirect(_back(request))


@never_cache
@login_required
@require_POST
def link_unlock(request: HttpRequest, reference: str) -> HttpResponse:
    link = _get_link_for_staff(request, reference)
    if link.organisation_id not in managed_organisation_ids(request.user):
        raise PermissionDenied("Only a manager can unlock a link.")
    if booking_link_unlock(link=link, actor=request.user):
        flash.success(request, f"Link for {link.patient.full_name} unlocked: they can try their date of birth again.")
    else:
        flash.info(request, "That link wasn't locked, so nothing changed.")
    return redirect(_back(request))


@never_cache
@login_required
def audit_trail(request: HttpRequest) -> HttpResponse:
    """The organisation's audit trail, for its managers: who did what to whose record, when."""
    organisation_ids = managed_organisation_ids(request.user)
    if not organisation_ids:
        raise PermissionDenied("The audit trail is for managers.")
    events = (
        AuditEvent.objects.filter(organisation_id__in=organisation_ids)
        .select_related("actor", "patient", "organisation")
        .order_by("-created_at", "-pk")
    )
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "messaging/audit_trail.html", {"page": page})


@never_cache
@login_required
def appointments(request: HttpRequest) -> HttpResponse:
    """Booked appointments the user's organisations need to know about.

    A host (say a PCN hub) sees those at its own locations, with the patient details it needs to
    run the clinic; a practice sees its own patients' bookings wherever they are. Showing them
    is recorded in the audit trail, one event per patient shown.
    """
    organisation_ids = staff_organisation_ids(request.user)
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
    return render(request, "messaging/appointments.html", {"page": page})


def _managed_organisation(request: HttpRequest):
    """The organisation whose templates this manager looks after (their first managed one), or 403."""
    ids = managed_organisation_ids(request.user)
    if not ids:
        raise PermissionDenied("Message templates are for managers.")
    return Organisation.objects.get(pk=ids[0])


@never_cache
@login_required
def template_list(request: HttpRequest) -> HttpResponse:
    organisation = _managed_organisation(request)
    templates = MessageTemplate.objects.filter(organisation=organisation).order_by("name")
    return render(
        request, "messaging/template_list.html", {"templates": templates, "organisation_name": organisation.name}
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    organisation = _managed_organisation(request)
    template = None
    if pk is not None:
        template = MessageTemplate.objects.filter(pk=pk, organisation=organisation).first()
        if template is None:
            raise Http404("No such template.")
    form = MessageTemplateForm(request.POST or None, instance=template, organisation=organisation)
    if request.method == "POST" and form.is_valid():
        form.save()
        flash.success(request, f"Template “{form.instance.name}” saved.")
        return redirect("messaging:templates")
    return render(
        request,
        "messaging/template_form.html",
        {"form": form, "template": template},
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def sharing(request: HttpRequest) -> HttpResponse:
    """A host's managers share appointment types and locations with partners, and end agreements."""
    host = _managed_organisation(request)
    form = SharingAgreementForm(request.POST or None, host=host)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            agreement = SharingAgreement.objects.create(host=host, partner=form.cleaned_data["partner"])
            agreement.appointment_types.set(form.cleaned_data["appointment_types"])
            agreement.locations.set(form.cleaned_data["locations"])
            audit_record(
                action=AuditEvent.Action.CHANGED,
                actor=request.user,
                organisation=host,
                detail={"sharing": f"started with {agreement.partner.name}"},
            )
        flash.success(request, f"{agreement.partner.name} can now offer what you chose.")
        return redirect("messaging:sharing")
    agreements = (
        SharingAgreement.objects.filter(Q(host=host) | Q(partner=host))
        .select_related("host", "partner")
        .prefetch_related("appointment_types", "locations")
        .order_by("-ended_at", "host__name", "partner__name")
    )
    return render(
        request,
        "messaging/sharing.html",
        {"form": form, "host": host, "agreements": agreements},
        status=400 if request.method == "POST" else 200,
    )


@never_cache
@login_required
@require_POST
def sharing_end(request: HttpRequest, pk: int) -> HttpResponse:
    """End an agreement now. Links already sent stop booking too: booking re-checks the agreement."""
    host = _managed_organisation(request)
    ended = SharingAgreement.objects.in_force().filter(pk=pk, host=host).update(ended_at=timezone.now())
    if not ended:
        raise Http404("No such agreement in force.")
    audit_record(
        action=AuditEvent.Action.CHANGED, actor=request.user, organisation=host, detail={"sharing": f"ended {pk}"}
    )
    flash.success(
        request, "Agreement ended: the partner can no longer send links for it, and links already sent stop booking."
    )
    return redirect("messaging:sharing")
