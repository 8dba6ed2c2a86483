"""Confirmations: telling a patient their appointment is booked, changed or cancelled.

When a patient books through a link, changes that booking to another time, or the booking is
cancelled (by the patient or the practice), they are told on the channel the link came by.
The request that made the change only queues a task (messaging/receivers.py →
messaging/tasks.py); the worker writes the message and queues its delivery, so the patient's
answer doesn't wait for it. Each is written once: the database holds one confirmation per
appointment (`Message.confirms`; a change makes a new appointment, so it gets its own) and one
cancellation notice per appointment (`Message.cancellation_of`). One a dead process never
queued is found here (`confirmations_missing`, `cancellations_missing`) for the requeue sweep
(messaging/tasks.py, messages_requeue).

A confirmation carries the link, so the patient can open the appointment to change or cancel
it: its stored body holds LINK_PLACEHOLDER and `link_carried` names the link, which
messaging/texts.py puts back at send time only while it can still manage this appointment. A
cancellation notice carries no link: nothing is left to manage, and cancelling wiped it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.utils import timezone

from booking.models import Appointment, BookingLink, CancellationReason, CancellationSource
from messaging.channels import ChannelOption, channel_reaching
from messaging.delivery import DeliveryEnqueue
from messaging.models import Channel, Message
from messaging.segments import MAX_SMS_SEGMENTS, sms_length, sms_normalise
from messaging.tokens import LINK_PLACEHOLDER, link_url_length

# How much a text says, most first: an SMS that would take more than MAX_SMS_SEGMENTS with a
# long address or names drops the address, then the practice's name and number (the link and
# the reference are always kept). Emails say everything.
FULL, SHORTER, SHORTEST = 2, 1, 0

SUBJECTS = {
    "booked": "Your appointment is booked",
    "changed": "Your appointment has been changed",
    "cancelled": "Your appointment is cancelled",
}


def _appointment(appointment_id: int) -> Appointment | None:
    return (
        Appointment.objects.select_related(
            "patient__organisation",
            "booking_link",
            "slot__location",
            "slot__practitioner",
            "slot__appointment_type",
            "replaces__slot",
        )
        .filter(pk=appointment_id)
        .first()
    )


def _channel_for(appointment: Appointment) -> ChannelOption | None:
    """The channel the link's message went by; the other if the patient can't get that one now; or None.

    None too for an appointment not booked through a link's message: nothing says how to reach them.
    """
    if appointment.booking_link_id is None:
        return None
    invitation = Message.objects.filter(booking_link_id=appointment.booking_link_id).only("channel").first()
    if invitation is None:
        return None
    return channel_reaching(appointment.patient, preferred=Channel(invitation.channel))


def _body(template: str, *, channel: Channel, context: dict[str, object]) -> str:
    """The text from `template`, as much of it as fits in MAX_SMS_SEGMENTS for an SMS.

    The link counts at its real length (messaging/tokens.py, link_url_length), as in the builder.
    """
    if channel == Channel.EMAIL:
        return render_to_string(template, {**context, "detail": FULL}).strip()
    link_length = link_url_length(public_base_url=settings.PUBLIC_BASE_URL)
    for detail in (FULL, SHORTER, SHORTEST):
        body = sms_normalise(render_to_string(template, {**context, "detail": detail}).strip())
        if sms_length(body.replace(LINK_PLACEHOLDER, "a" * link_length)).segments <= MAX_SMS_SEGMENTS:
            return body
    return body  # the shortest: a type name alone can't make it longer than the limit


def _link_still_held(link: BookingLink | None) -> bool:
    """Whether the confirmation can carry the link: it still has its (encrypted) token and isn't revoked."""
    return link is not None and bool(link.token_encrypted) and link.status != BookingLink.Status.REVOKED


def _write(
    *,
    appointment: Appointment,
    option: ChannelOption,
    subject: str,
    body: str,
    enqueue: DeliveryEnqueue,
    confirms: Appointment | None = None,
    cancellation_of: Appointment | None = None,
    link_carried: BookingLink | None = None,
) -> Message | None:
    """Save the message and queue its delivery in one transaction; None if the unique key says it exists."""
    try:
        with transaction.atomic():
            message = Message.objects.create(
                organisation=appointment.patient.organisation,
                patient=appointment.patient,
                channel=option.channel,
                to_address=option.address,
                subject=subject if option.channel == Channel.EMAIL else "",
                template_body=body,
                body=body,
                confirms=confirms,
                cancellation_of=cancellation_of,
                link_carried=link_carried,
            )
            enqueue(message=message)
    except IntegrityError:
        return None  # another worker (or the sweep's second task) wrote it first
    return message


def confirmation_send(*, appointment_id: int, enqueue: DeliveryEnqueue) -> Message | None:
    """Write and queue the confirmation of a booked appointment, or None when there is none to send.

    A booking's, or a change's (the new appointment: its `replaces` is the old one, and the text
    says from which time to which). Once only: the database holds one confirmation per
    appointment (a unique key; a second writer's IntegrityError means it was confirmed already).
    None for an appointment no longer booked (cancelled, or changed again, before the worker got
    to it: the later message says what is true). Goes by the channel the link's message went by;
    if the patient can no longer receive it (opted out of texts since, say), by the other
    channel; if neither, nothing is sent. It carries the link (`link_carried`, LINK_PLACEHOLDER
    in the stored body) while the link still holds its token and isn't revoked. The message and
    its delivery task (`enqueue`, messaging/tasks.py's delivery_enqueue) are written in one
    transaction.
    """
    appointment = _appointment(appointment_id)
    if appointment is None or appointment.status != Appointment.Status.BOOKED:
        return None
    if Message.objects.filter(confirms=appointment).exists():
        return None  # confirmed already: spare building the text
    option = _channel_for(appointment)
    if option is None:
        return None
    link = appointment.booking_link if _link_still_held(appointment.booking_link) else None
    changed = appointment.replaces is not None
    body = _body(
        "messaging/change_confirmation.txt" if changed else "messaging/confirmation.txt",
        channel=option.channel,
        context={
            "appointment": appointment,
            "previous": appointment.replaces,
            "practice": appointment.patient.organisation,
            "link": LINK_PLACEHOLDER if link is not None else "",
            "online": appointment.slot.appointment_type.online_changes_until_hours is not None,
        },
    )
    return _write(
        appointment=appointment,
        option=option,
        subject=SUBJECTS["changed" if changed else "booked"],
        body=body,
        enqueue=enqueue,
        confirms=appointment,
        link_carried=link,
    )


# Who ended it, for the sources that get a notice: a change is told by the new appointment's confirmation.
NOTIFIED_SOURCES = (CancellationSource.PATIENT, CancellationSource.PRACTICE)


def cancellation_send(*, appointment_id: int, enqueue: DeliveryEnqueue, now: datetime | None = None) -> Message | None:
    """Write and queue the message that tells a patient their appointment was cancelled, or None.

    For an appointment cancelled by the patient or by the practice (a change is told by the new
    appointment's confirmation instead), not yet started (a notice about a time gone by tells
    nobody anything). Once only: the database holds one per appointment (`cancellation_of`, a
    unique key; a second writer's IntegrityError means it was written already). The channel
    is chosen as for a confirmation; if neither reaches the patient, nothing is sent. No link:
    nothing is left to manage. A practice's cancellation says so, with the reason's label
    unless it is "other" (staff's own words stay with the record), and asks the patient to call
    to book another time. The message and its delivery task are written in one transaction.
    """
    now = now or timezone.now()
    appointment = _appointment(appointment_id)
    if (
        appointment is None
        or appointment.status != Appointment.Status.CANCELLED
        or appointment.cancellation_source not in NOTIFIED_SOURCES
        or appointment.slot.start <= now
    ):
        return None
    if Message.objects.filter(cancellation_of=appointment).exists():
        return None
    option = _channel_for(appointment)
    if option is None:
        return None
    reason = appointment.cancellation_reason
    body = _body(
        "messaging/cancellation.txt",
        channel=option.channel,
        context={
            "appointment": appointment,
            "practice": appointment.patient.organisation,
            "by_practice": appointment.cancellation_source == CancellationSource.PRACTICE,
            "reason": "" if reason == CancellationReason.OTHER else appointment.get_cancellation_reason_display(),
        },
    )
    return _write(
        appointment=appointment,
        option=option,
        subject=SUBJECTS["cancelled"],
        body=body,
        enqueue=enqueue,
        cancellation_of=appointment,
    )


def confirmations_missing(
    *, now: datetime | None = None, within: timedelta = timedelta(days=1), grace: timedelta
) -> list[int]:
    """Appointments booked (or changed to) through a link in the last day, older than `grace`, with no confirmation."""
    now = now or timezone.now()
    return list(
        Appointment.objects.filter(
            booking_link__isnull=False,
            booking_link__message__isnull=False,
            status=Appointment.Status.BOOKED,
            booked_at__gte=now - within,
            booked_at__lt=now - grace,
            confirmation__isnull=True,
        ).values_list("pk", flat=True)[:500]
    )


def cancellations_missing(
    *, now: datetime | None = None, within: timedelta = timedelta(days=1), grace: timedelta
) -> list[int]:
    """Appointments booked through a link, cancelled by the patient or practice in the last day,
    longer than `grace` ago, still to come, with no cancellation notice."""
    now = now or timezone.now()
    return list(cancellations_unnoticed(now=now, within=within, grace=grace).values_list("pk", flat=True)[:500])


def cancellations_unnoticed(*, now: datetime, within: timedelta, grace: timedelta) -> QuerySet[Appointment]:
    """The query behind `cancellations_missing`: a range of the appointment_link_cancelled_at index."""
    return Appointment.objects.filter(
        booking_link__isnull=False,
        booking_link__message__isnull=False,
        status=Appointment.Status.CANCELLED,
        cancellation_source__in=NOTIFIED_SOURCES,
        cancelled_at__gte=now - within,
        cancelled_at__lt=now - grace,
        slot__start__gt=now,
        cancellation_notice__isnull=True,
    )
