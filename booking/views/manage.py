"""The patient's pages after booking: the appointment, and changing or cancelling it from the link.

The booked page (the link reopened after the date of birth lands there too) shows the
appointment with "Change appointment" and "Cancel appointment" while the type's policy allows
them (booking/policy.py), and otherwise why not and the practice's phone. Cancelling asks why
(four reasons, the patient's words for "Other reason") and ends on "Appointment cancelled".
Changing shows the same times pages as booking (booking/views/patient.py `render_times`, in the
change flow: the current time shown as current, never offered), then the old and new side by
side with "Change appointment", and ends on "Appointment changed".

What a booked link may do and until when (expiry, the cut-off, after a cancellation) is written
once, in booking/appointments.py's docstring. Every POST goes through
`appointment_change` or `appointment_cancel_by_patient`, which re-check everything under the
link's lock whatever the page showed; each answer they give has its own page and status here:
a lost race for the new time 409 with the times again, a stale tab or replayed form 409 (or the
result page, when the replay asked for what already happened), a forged reference 400, the
policy's refusal 403, a revoked or locked link its own page, a busy database 503.
Every form names the appointment it was shown for (its reference), so a tab left open on an
appointment since changed can't act on the new one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from booking.appointments import (
    appointment_cancel_by_patient,
    appointment_change,
    booking_link_booked_appointment,
    booking_link_last_appointment,
)
from booking.exceptions import (
    AppointmentNotCurrent,
    AppointmentNotFound,
    BookingBusy,
    ChangeNotAllowed,
    LinkNotBookable,
    SlotNotAllowed,
    SlotTaken,
)
from booking.formats import today_in_london
from booking.forms import PatientCancelForm, appointment_id_from_reference, slot_id_from_reference
from booking.http import client_ip
from booking.links import LinkState, booking_link_offer_withdrawn
from booking.models import Appointment, BookingLink, CancellationReason, CancellationSource, Slot
from booking.policy import appointment_online_policy
from booking.slots import FreeStart, slot_find_choice
from booking.views.patient import (
    STATE_PAGES,
    TimesFlow,
    _choice,
    _open_verified,
    _state_page,
    render_times,
    times_position,
)

# Why a change can't be made when the link can no longer book another time.
CHANGE_REFUSED_BY_LINK = "This appointment can no longer be moved to another time online."


@dataclass(frozen=True)
class Options:
    """What the booked page offers: change, cancel, and in plain English why not when refused."""

    can_change: bool
    can_cancel: bool
    why_not: str


def _options(link: BookingLink, appointment: Appointment, now: datetime) -> Options:
    policy = appointment_online_policy(appointment=appointment, now=now)
    can_change = policy.can_change
    why_not = policy.explain(policy.cancel_refused) or policy.explain(policy.change_refused)
    if can_change and booking_link_offer_withdrawn(link=link) is not None:
        can_change = False
        why_not = CHANGE_REFUSED_BY_LINK
    return Options(can_change=can_change, can_cancel=policy.can_cancel, why_not=why_not)


def _url(name: str, token: str) -> str:
    return reverse(f"booking:{name}", kwargs={"token": token})


def change_flow(token: str, appointment: Appointment) -> TimesFlow:
    """The times pages as the change journey uses them: they post to the change's confirm page."""
    return TimesFlow(times_url=_url("change", token), confirm_url=_url("change_confirm", token), current=appointment)


def _context(link: BookingLink, token: str, appointment: Appointment | None, **extra: object) -> dict[str, object]:
    return {
        "organisation": link.organisation,
        "link": link,
        "token": token,
        "appointment": appointment,
        "slot": appointment.slot if appointment else None,
        "appointment_type": appointment.slot.appointment_type if appointment else link.appointment_type,
        **extra,
    }


def _booked_link(request: HttpRequest, token: str) -> BookingLink | HttpResponse:
    return _open_verified(request, token, allow=LinkState.BOOKED)


def _no_appointment(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    """The link booked, and nothing is booked now: who ended it decides the page (410 either way)."""
    last = booking_link_last_appointment(link=link)
    if last is not None and last.cancellation_source == CancellationSource.PATIENT:
        return render(request, "booking/cancelled.html", _context(link, token, last), status=410)
    # Booked, then cancelled by the practice: the link has done its one booking.
    return render(request, "booking/link_used.html", {"organisation": link.organisation}, status=410)


def _refused(
    request: HttpRequest, link: BookingLink, *, token: str, appointment: Appointment, why: str
) -> HttpResponse:
    return render(request, "booking/manage_refused.html", _context(link, token, appointment, why=why), status=403)


def _refused_at_post(request: HttpRequest, link: BookingLink, *, token: str, error: ChangeNotAllowed) -> HttpResponse:
    """The policy said no at the POST (the cut-off passed since the page was shown, say)."""
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return _already_done(request, link, token=token)
    return _refused(request, link, token=token, appointment=appointment, why=error.message)


def _busy(request: HttpRequest, link: BookingLink, *, token: str, error: BookingBusy, again: str) -> HttpResponse:
    response = render(
        request, "booking/manage_busy.html", _context(link, token, None, message=error.message, again=again), status=503
    )
    response["Retry-After"] = "5"
    return response


def _not_found(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    return render(
        request,
        "booking/appointment_not_found.html",
        _context(link, token, None, message=AppointmentNotFound().message),
        status=400,
    )


def _already_done(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    """A form for an appointment since changed or cancelled (another tab, the practice): what is booked now."""
    current = booking_link_booked_appointment(link=link)
    return render(request, "booking/manage_conflict.html", _context(link, token, current), status=409)


def _link_refused(request: HttpRequest, link: BookingLink, *, token: str, error: LinkNotBookable) -> HttpResponse:
    if error.state in STATE_PAGES:
        return _state_page(request, link, error.state)
    return redirect(_url("booked", token))


# --- The appointment ------------------------------------------------------------------------


@never_cache
@require_safe
def booked(request: HttpRequest, token: str) -> HttpResponse:
    """The appointment, with what the patient may do about it; a cancelled one's own page."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return _no_appointment(request, link, token=token)
    options = _options(link, appointment, timezone.now())
    return render(request, "booking/booked.html", _context(link, token, appointment, options=options))


# --- Cancelling -----------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def cancel(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks why, with "Cancel appointment"; POST cancels."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    if request.method == "POST":
        return _cancel(request, link, token=token)
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return _no_appointment(request, link, token=token)
    policy = appointment_online_policy(appointment=appointment, now=timezone.now())
    if not policy.can_cancel:
        return _refused(request, link, token=token, appointment=appointment, why=policy.explain(policy.cancel_refused))
    return _render_cancel(request, link, token=token, appointment=appointment, form=PatientCancelForm())


def _render_cancel(
    request: HttpRequest,
    link: BookingLink,
    *,
    token: str,
    appointment: Appointment,
    form: PatientCancelForm,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "booking/cancel.html",
        _context(link, token, appointment, form=form, other=CancellationReason.OTHER.value),
        status=status,
    )


def _cancel(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    appointment_id = appointment_id_from_reference(request.POST.get("appointment"))
    if appointment_id is None:
        return _not_found(request, link, token=token)
    form = PatientCancelForm(request.POST)
    if not form.is_valid():
        appointment = booking_link_booked_appointment(link=link)
        if appointment is None or appointment.pk != appointment_id:
            return _cancel_not_current(request, link, token=token, appointment_id=appointment_id)
        return _render_cancel(request, link, token=token, appointment=appointment, form=form, status=400)
    try:
        appointment_cancel_by_patient(
            link_id=link.pk,
            appointment_id=appointment_id,
            reason=CancellationReason(form.cleaned_data["reason"]),
            detail=form.cleaned_data["detail"],
            ip_address=client_ip(request),
        )
    except LinkNotBookable as error:
        return _link_refused(request, link, token=token, error=error)
    except AppointmentNotFound:
        return _not_found(request, link, token=token)
    except AppointmentNotCurrent:
        return _cancel_not_current(request, link, token=token, appointment_id=appointment_id)
    except ChangeNotAllowed as error:
        return _refused_at_post(request, link, token=token, error=error)
    except BookingBusy as error:
        return _busy(request, link, token=token, error=error, again=_url("cancel", token))
    return redirect(_url("cancelled", token), permanent=False)


def _cancel_not_current(request: HttpRequest, link: BookingLink, *, token: str, appointment_id: int) -> HttpResponse:
    last = booking_link_last_appointment(link=link)
    if last is not None and last.pk == appointment_id and last.cancellation_source == CancellationSource.PATIENT:
        # A double submit: it is cancelled, as asked. Show that, not an error.
        return redirect(_url("cancelled", token))
    return _already_done(request, link, token=token)


@never_cache
@require_safe
def cancelled(request: HttpRequest, token: str) -> HttpResponse:
    """ "Appointment cancelled", with the practice's phone."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    last = booking_link_last_appointment(link=link)
    if last is not None and last.status == Appointment.Status.BOOKED:
        return redirect(_url("booked", token))
    if last is None or last.cancellation_source != CancellationSource.PATIENT:
        return _no_appointment(request, link, token=token)
    return render(request, "booking/cancelled.html", _context(link, token, last))


# --- Changing -------------------------------------------------------------------------------


def _changeable(request: HttpRequest, link: BookingLink, *, token: str) -> Appointment | HttpResponse:
    """The appointment to change, or the page saying why it can't be (nothing booked, policy, link)."""
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return _no_appointment(request, link, token=token)
    policy = appointment_online_policy(appointment=appointment, now=timezone.now())
    if not policy.can_change:
        return _refused(request, link, token=token, appointment=appointment, why=policy.explain(policy.change_refused))
    state = booking_link_offer_withdrawn(link=link)
    if state is not None:
        return _refused(request, link, token=token, appointment=appointment, why=CHANGE_REFUSED_BY_LINK)
    return appointment


@never_cache
@require_safe
def change(request: HttpRequest, token: str) -> HttpResponse:
    """The times pages, in the change flow."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    appointment = _changeable(request, link, token=token)
    if isinstance(appointment, HttpResponse):
        return appointment
    return render_times(request, link, token=token, flow=change_flow(token, appointment))


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def change_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the current and the new time side by side with "Change appointment"; POST changes."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    if request.method == "POST":
        return _change(request, link, token=token)
    appointment = _changeable(request, link, token=token)
    if isinstance(appointment, HttpResponse):
        return appointment
    flow = change_flow(token, appointment)
    slot_id = slot_id_from_reference(request.GET.get("slot"))
    if slot_id is None:
        return render_times(request, link, token=token, flow=flow, error="Choose a time")
    found = slot_find_choice(link=link, slot_id=slot_id)
    if found is None or found[0].start == appointment.slot.start:
        return render_times(
            request,
            link,
            token=token,
            flow=flow,
            error="Sorry, that time is no longer available. Choose another time.",
            status=409,
        )
    slot, clinicians = found
    choice = _choice(FreeStart(slot.pk, slot.start, clinicians, slot.practitioner.name), today_in_london())
    position = times_position(request)
    return render(
        request,
        "booking/change_confirm.html",
        _context(
            link,
            token,
            appointment,
            new=slot,
            choice=choice,
            # Several clinicians free at that start: the change takes whichever is still free.
            first_available=clinicians > 1,
            day=position.day.isoformat() if position.day else "",
        ),
    )


def _change(request: HttpRequest, link: BookingLink, *, token: str) -> HttpResponse:
    slot_id = slot_id_from_reference(request.POST.get("slot"))
    appointment_id = appointment_id_from_reference(request.POST.get("appointment"))
    if appointment_id is None:
        return _not_found(request, link, token=token)
    if slot_id is None:
        return _slot_not_allowed(request, link, token=token, message=SlotNotAllowed().message)
    try:
        appointment_change(
            link_id=link.pk, appointment_id=appointment_id, slot_id=slot_id, ip_address=client_ip(request)
        )
    except SlotTaken as error:
        # Nothing changed: the same times again, in the change flow, without the time just taken.
        current = booking_link_booked_appointment(link=link)
        if current is None:
            return _already_done(request, link, token=token)
        return render_times(
            request, link, token=token, flow=change_flow(token, current), error=error.message, status=409
        )
    except SlotNotAllowed as error:
        return _slot_not_allowed(request, link, token=token, message=error.message)
    except LinkNotBookable as error:
        return _link_refused(request, link, token=token, error=error)
    except AppointmentNotFound:
        return _not_found(request, link, token=token)
    except AppointmentNotCurrent:
        return _change_not_current(request, link, token=token, appointment_id=appointment_id, slot_id=slot_id)
    except ChangeNotAllowed as error:
        return _refused_at_post(request, link, token=token, error=error)
    except BookingBusy as error:
        return _busy(request, link, token=token, error=error, again=_url("change", token))
    return redirect(_url("changed", token))


def _slot_not_allowed(request: HttpRequest, link: BookingLink, *, token: str, message: str) -> HttpResponse:
    return render(
        request,
        "booking/slot_not_allowed.html",
        {"organisation": link.organisation, "token": token, "message": message, "times_url": _url("change", token)},
        status=400,
    )


def _change_not_current(
    request: HttpRequest, link: BookingLink, *, token: str, appointment_id: int, slot_id: int
) -> HttpResponse:
    current = booking_link_booked_appointment(link=link)
    if current is not None and current.replaces_id == appointment_id:
        chosen = Slot.objects.filter(pk=slot_id).values_list("start", flat=True).first()
        if chosen == current.slot.start:
            # A double submit: the change it asked for is made. Show that, not an error.
            return redirect(_url("changed", token))
    return _already_done(request, link, token=token)


@never_cache
@require_safe
def changed(request: HttpRequest, token: str) -> HttpResponse:
    """ "Appointment changed": the new time, with what the patient may still do about it."""
    link = _booked_link(request, token)
    if isinstance(link, HttpResponse):
        return link
    appointment = booking_link_booked_appointment(link=link)
    if appointment is None:
        return _no_appointment(request, link, token=token)
    if appointment.replaces_id is None:
        return redirect(_url("booked", token))
    options = _options(link, appointment, timezone.now())
    return render(request, "booking/changed.html", _context(link, token, appointment, options=options))
