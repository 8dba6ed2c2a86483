"""The message builder: choose a patient, write, Invite to book, send.

Every step works without JavaScript: the builder's buttons submit the form with an `action`,
and the Invite to book dialog is a section of the form. htmx and a little script only make
the same steps quicker (live counts, the dialog, inserting the token at the cursor).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.access import ANY_ROLE, get_patient_for_staff, organisation_ids_for
from booking.audit import audit_record
from booking.http import client_ip
from booking.links import DEFAULT_EXPIRY, LinkExpiry
from booking.models import AuditEvent
from booking.patients import patient_search
from booking.slots import slot_count_available
from messaging.exceptions import MessageNotSent
from messaging.forms import ComposeForm
from messaging.models import Channel
from messaging.segments import MAX_SMS_SEGMENTS
from messaging.sending import message_send
from messaging.tokens import APPOINTMENT_LINK, link_url_length, sms_length_of_body


@never_cache
@login_required
@require_GET
def patient_results(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    patients = list(patient_search(organisation_ids=organisation_ids_for(request.user, roles=ANY_ROLE), query=query))
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
        "patient_ref": patient.reference,
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
        "link_added": bool(getattr(form, "cleaned_data", {}).get("link_added")),
    }
    context.update(_link_context(form))
    template = "messaging/_link_summary.html" if request.GET.get("part") == "summary" else "messaging/_link_fields.html"
    return render(request, template, context)
