"""The message builder: choose a patient, write, Invite to book, send.

Every step works without JavaScript: the builder's buttons submit the form with an `action`,
and the Invite to book dialog is a section of the form. The view parses the form, then sends
or takes the step the action names (`COMPOSE_STEPS` in messaging/forms.py), and renders.
htmx and a little script only make the same steps quicker (live counts, the dialog,
inserting the token at the cursor). A request too large to hold a message the form would
accept is refused (413) before it is read, and a body over the limit is never measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import wraps
from typing import cast

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.forms import CharField
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from booking.access import ANY_ROLE, get_patient_for_staff, organisation_ids_for
from booking.audit import audit_record
from booking.http import client_ip
from booking.links import LinkExpiry
from booking.models import AuditEvent, Patient
from booking.offers import OfferedType
from booking.patients import patient_search
from booking.slots import slot_count_available
from booking.users import SignedInRequest
from messaging.exceptions import MessageNotSent
from messaging.forms import COMPOSE_STEPS, ComposeForm, ComposeState
from messaging.models import Channel
from messaging.segments import MAX_SMS_SEGMENTS
from messaging.sending import message_send
from messaging.tokens import link_url_length, sms_length_of_body

# The fields inside Invite to book: an error in one opens the section so it shows.
LINK_FIELDS = ("appointment_type", "location", "practitioner", "link_expiry")
# The longest message the builder sends, in characters (the form's own limit).
MAX_BODY_CHARACTERS: int = cast(CharField, ComposeForm.base_fields["body"]).max_length or 0
# The largest builder request read at all: a full-length body of four-byte characters,
# percent-encoded (12 bytes each), plus the other fields, fits; half a megabyte doesn't.
MAX_REQUEST_BYTES = 100_000


def _refuse_oversized(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """413 for a builder request larger than MAX_REQUEST_BYTES, before its form is read or measured."""

    @wraps(view)
    def refusing(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            size = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            size = 0
        if size > MAX_REQUEST_BYTES:
            return HttpResponse(
                f"The message is too long: it can be at most {MAX_BODY_CHARACTERS} characters.",
                status=413,
                content_type="text/plain",
            )
        return view(request, *args, **kwargs)

    return refusing


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


def _count_context(*, patient: Patient, channel: str, body: str) -> dict[str, object]:
    if len(body) > MAX_BODY_CHARACTERS:
        # Measuring SMS segments costs per character: a body the form will refuse isn't measured.
        return {"count_over_limit": True, "max_characters": MAX_BODY_CHARACTERS}
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


def _link_context(*, state: ComposeState, offered_types: list[OfferedType]) -> dict[str, object]:
    """What the dialog and the summary show about the link as currently set up."""
    appointment_type, location = state.appointment_type, state.location
    if appointment_type is None or location is None:
        return {"link_ready": False}
    return {
        "link_ready": True,
        "free_count": slot_count_available(
            appointment_type=appointment_type, location=location, practitioner=state.practitioner
        ),
        "link_type": next((o for o in offered_types if o.appointment_type.pk == appointment_type.pk), None),
        "link_location": location,
        "link_practitioner": state.practitioner,
        "link_expiry_label": LinkExpiry(state.link_expiry).label,
        "link_window_days": appointment_type.maximum_days_ahead,
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
@_refuse_oversized
def compose(request: SignedInRequest) -> HttpResponse:
    reference = request.GET.get("patient") or request.POST.get("patient") or ""
    if not reference:
        return render(request, "messaging/choose_patient.html", {"patients": [], "query": ""})
    patient = get_patient_for_staff(user=request.user, reference=reference, ip_address=client_ip(request))
    if request.method == "GET":
        audit_record(
            action=AuditEvent.Action.VIEWED, actor=request.user, patient=patient, ip_address=client_ip(request)
        )
        form = ComposeForm(patient=patient)
        return _render_compose(request, form=form, state=form.state())

    form = ComposeForm(request.POST, patient=patient)
    if not form.is_valid():
        state = replace(form.state(), invite_open=any(name in form.errors for name in LINK_FIELDS))
        return _render_compose(request, form=form, state=state, status=400 if form.chosen_action == "send" else 200)

    step = COMPOSE_STEPS.get(form.chosen_action)
    if step is not None:
        state = step(form.state())
        return _render_compose(request, form=ComposeForm(patient=patient, initial=state.initial()), state=state)

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
        state = replace(form.state(), invite_open=error.field in LINK_FIELDS)
        return _render_compose(request, form=form, state=state, status=400)
    if created:
        flash.success(request, "Message sent.")
    return redirect("messaging:detail", reference=message.reference)


def _render_compose(request: HttpRequest, *, form: ComposeForm, state: ComposeState, status: int = 200) -> HttpResponse:
    """The builder page: `form` for its fields and errors, `state` for the counts, the link and the dialog."""
    context = {
        "patient": form.patient,
        "patient_ref": form.patient.reference,
        "form": form,
        "show_invite": state.invite_open,
        "link_added": state.link_added,
        **_link_context(state=state, offered_types=form.offered_types),
        **_count_context(patient=form.patient, channel=state.channel, body=state.body),
    }
    return render(request, "messaging/compose.html", context, status=status)


@never_cache
@login_required
@require_POST
@_refuse_oversized
def message_count(request: HttpRequest) -> HttpResponse:
    patient = get_patient_for_staff(user=request.user, reference=request.POST.get("patient", ""))
    context = _count_context(
        patient=patient, channel=request.POST.get("channel", ""), body=request.POST.get("body", "")
    )
    return render(request, "messaging/_count.html", context)


@never_cache
@login_required
@require_GET
def link_fields(request: HttpRequest) -> HttpResponse:
    """The dialog's fields again, with locations and practitioners for what is chosen, and the free count."""
    patient = get_patient_for_staff(user=request.user, reference=request.GET.get("patient", ""))
    form = ComposeForm(request.GET, patient=patient)
    form.is_valid()
    state = form.state()
    context = {
        "form": form,
        "patient": patient,
        "link_added": state.link_added,
        **_link_context(state=state, offered_types=form.offered_types),
    }
    template = "messaging/_link_summary.html" if request.GET.get("part") == "summary" else "messaging/_link_fields.html"
    return render(request, template, context)
