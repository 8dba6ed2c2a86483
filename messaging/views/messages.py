"""Sent messages: the staff home with the latest, the list, one message, and the link actions on them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from booking.access import ANY_ROLE, MANAGING_ROLES, organisation_ids_for
from booking.changes import patient_changes, patient_changes_last_seen
from booking.forms import ListedStatus
from booking.links import REVOCABLE, booking_link_revoke, booking_link_state, booking_link_unlock
from booking.models import Appointment, BookingLink
from booking.references import decode_reference
from booking.users import AnyUser
from messaging.models import Message

RECENT_ON_HOME = 10
PER_PAGE = 25


def _messages_for(user: AnyUser) -> QuerySet[Message]:
    booked = Appointment.objects.filter(status=Appointment.Status.BOOKED).select_related("slot")
    return (
        Message.objects.filter(organisation_id__in=organisation_ids_for(user, roles=ANY_ROLE))
        .select_related("patient", "booking_link", "confirms")
        .prefetch_related(Prefetch("booking_link__appointments", queryset=booked, to_attr="booked_appointments"))
        .order_by("-created_at", "-pk")
    )


@dataclass(frozen=True)
class MessageRow:
    """A sent message as the lists and the message page show it."""

    message: Message
    link_state: str  # "Active, expires in 3 days", "Booked for ...", "Booking confirmation" or ""
    can_unlock: bool  # the user manages the sending organisation
    can_revoke: bool  # the message's link can still be revoked (booking/links.py, REVOCABLE)


def message_rows(messages: Iterable[Message], *, user: AnyUser) -> list[MessageRow]:
    """Rows for messages from `_messages_for` (their link's booked appointment prefetched). No queries."""
    managed = organisation_ids_for(user, roles=MANAGING_ROLES)
    rows = []
    for message in messages:
        link = message.booking_link
        if link is not None:
            appointments = getattr(link, "booked_appointments", [])
            link_state = booking_link_state(link=link, appointment=appointments[0] if appointments else None)
        elif message.confirms is not None:
            link_state = "Change confirmation" if message.confirms.replaces_id else "Booking confirmation"
        else:
            link_state = "Cancellation notice" if message.cancellation_of_id else ""
        rows.append(
            MessageRow(
                message,
                link_state,
                can_unlock=message.organisation_id in managed,
                can_revoke=link is not None and link.status in REVOCABLE,
            )
        )
    return rows


@never_cache
@login_required
def home(request: HttpRequest) -> HttpResponse:
    recent = message_rows(_messages_for(request.user)[:RECENT_ON_HOME], user=request.user)
    # The count only: the user's look is recorded when they open the list, not here.
    last_seen = patient_changes_last_seen(user=request.user)
    changes = patient_changes(organisation_ids=organisation_ids_for(request.user, roles=ANY_ROLE), since=last_seen)
    query = {"status": ListedStatus.BY_PATIENTS.value}
    if last_seen is not None:
        query["since"] = last_seen.isoformat()
    appointments_url = reverse("booking:appointments")
    return render(
        request,
        "messaging/home.html",
        {
            "recent_rows": recent,
            "is_manager": bool(organisation_ids_for(request.user, roles=MANAGING_ROLES)),
            "changes_count": changes.count(),
            "changes_url": f"{appointments_url}?{urlencode(query)}",
            "all_changes_url": f"{appointments_url}?{urlencode({'status': ListedStatus.BY_PATIENTS.value})}",
        },
    )


@never_cache
@login_required
def message_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(_messages_for(request.user), PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "messaging/message_list.html",
        {"page": page, "rows": message_rows(page.object_list, user=request.user)},
    )


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
    (row,) = message_rows([message], user=request.user)
    history = list(message.status_events.all())
    in_outbox = settings.DEBUG  # nothing leaves a development install: /dev/outbox shows it
    return render(
        request,
        "messaging/message_detail.html",
        {"message": message, "row": row, "history": history, "in_outbox": in_outbox},
    )


def _get_link_for_staff(request: HttpRequest, reference: str) -> BookingLink:
    pk = decode_reference(reference, namespace="link")
    link = (
        BookingLink.objects.select_related("patient", "organisation")
        .filter(pk=pk, organisation_id__in=organisation_ids_for(request.user, roles=ANY_ROLE))
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
    was_booked = link.status == BookingLink.Status.BOOKED
    if booking_link_revoke(link=link, actor=request.user):
        if was_booked:
            flash.success(
                request,
                f"Link for {link.patient.full_name} revoked: it can no longer be used to change or cancel "
                "online. The appointment is still booked.",
            )
        else:
            flash.success(request, f"Link for {link.patient.full_name} revoked: it can no longer be used to book.")
    else:
        flash.info(request, "That link was already revoked, so nothing changed.")
    return redirect(_back(request))


@never_cache
@login_required
@require_POST
def link_unlock(request: HttpRequest, reference: str) -> HttpResponse:
    link = _get_link_for_staff(request, reference)
    if link.organisation_id not in organisation_ids_for(request.user, roles=MANAGING_ROLES):
        raise PermissionDenied("Only a manager can unlock a link.")
    if booking_link_unlock(link=link, actor=request.user):
        flash.success(request, f"Link for {link.patient.full_name} unlocked: they can try their date of birth again.")
    else:
        flash.info(request, "That link wasn't locked, so nothing changed.")
    return redirect(_back(request))
