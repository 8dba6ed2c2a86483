"""Sent messages: the staff home with the latest, the list, one message, and the link actions on them."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from booking.access import managed_organisation_ids, staff_organisation_ids
from booking.links import booking_link_revoke, booking_link_state, booking_link_unlock
from booking.models import Appointment, BookingLink
from booking.references import decode_reference
from messaging.models import Message

RECENT_ON_HOME = 10
PER_PAGE = 25


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
