"""Calendar files: one appointment as an iCalendar (RFC 5545) event, written by `icalendar`.

It holds what a calendar needs and nothing about the patient: no name, date of birth or NHS
number, because calendars sync to other services and show on lock screens. No link either:
a working link must not sit in someone's calendar service.

One appointment is one event however often it moves: the UID is the chain's first
appointment's reference (`appointment.original`, or the appointment itself before any change)
at `calendar_host()`, and SEQUENCE counts the changes (`change_count`), so a calendar that has
the event replaces it when a later file with a higher SEQUENCE arrives (RFC 5546 2.1.4).
The "Add to calendar" file and the booking and change confirmations publish it
(`METHOD:PUBLISH`); a cancellation cancels it (`METHOD:CANCEL`, `STATUS:CANCELLED`, the same
UID). RFC 5545 3.8.7.4 has STATUS among the properties whose change MUST increment SEQUENCE,
and a calendar ignores a CANCEL whose SEQUENCE is below the one it holds, so a cancellation
carries one more than the last version published: `change_count + 1`.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from email.utils import parseaddr
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from booking.models import Appointment, Organisation
from booking.references import encode_reference

PRODUCT_ID = "-//Self-booking links//EN"


class CalendarMethod(enum.StrEnum):
    """The iTIP method (RFC 5546) a calendar file says: publish the event, or cancel it."""

    PUBLISH = "PUBLISH"
    CANCEL = "CANCEL"


def calendar_host() -> str:
    """The domain in event UIDs: the public site's, so UIDs stay the same whichever server answers."""
    return urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost"


def calendar_uid(*, appointment: Appointment) -> str:
    """The event's UID: the reference of the chain's first appointment, the same after every change.

    Read from `original_id`, so it costs no query.
    """
    first = appointment.original_id or appointment.pk
    return f"{encode_reference(first, namespace='appointment')}@{calendar_host()}"


def calendar_sequence(*, appointment: Appointment, method: CalendarMethod) -> int:
    """SEQUENCE: the number of changes that led here, one more for a cancellation (see the module)."""
    return appointment.change_count + (1 if method == CalendarMethod.CANCEL else 0)


def _organizer(organisation: Organisation) -> vCalAddress:
    # RFC 5546 requires ORGANIZER in PUBLISH and CANCEL. The address the emails come from:
    # calendars apply an update or a cancellation only from the event's organizer.
    organizer = vCalAddress(f"mailto:{parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or 'appointments@localhost'}")
    organizer.params["CN"] = vText(organisation.name)
    return organizer


def _where_and_description(
    *, appointment: Appointment, organisation: Organisation, method: CalendarMethod
) -> tuple[str, list[str]]:
    slot = appointment.slot
    appointment_type = slot.appointment_type
    location = slot.location
    description = [f"Booking reference: {appointment.reference}"]
    if method == CalendarMethod.CANCEL:
        description.insert(0, "This appointment is cancelled.")
    else:
        description.append(f"With {slot.practitioner.name}")
    if appointment_type.is_video:
        where = "Video appointment"
        if method == CalendarMethod.PUBLISH:
            description.append(f"{organisation.name} will send you how to join the video call.")
    elif appointment_type.is_telephone:
        where = "Telephone appointment"
        if method == CalendarMethod.PUBLISH:
            description.append(f"{organisation.name} will phone you.")
    else:
        where = ", ".join([location.name, *location.address_lines])
    what_next = "To book again" if method == CalendarMethod.CANCEL else "To change or cancel"
    if organisation.phone:
        description.append(f"{what_next}, call {organisation.name} on {organisation.phone_for_display}.")
    else:
        description.append(f"{what_next}, contact {organisation.name}.")
    return where, description


def appointment_calendar(
    *,
    appointment: Appointment,
    organisation: Organisation,
    method: CalendarMethod = CalendarMethod.PUBLISH,
    now: datetime | None = None,
) -> str:
    """The .ics text for an appointment (slot, practitioner, location and type selected).

    `organisation` is the one the patient contacts: the practice that sent the link, which for
    a hub's appointment is not the location's owner. PUBLISH (the default) is the booked
    event, for "Add to calendar" and the booking and change confirmations; CANCEL is the
    cancellation of that same event (same UID, SEQUENCE one higher). Times are in UTC, so the
    file needs no time zone definition and reads the same across the clock changes. Raises
    nothing; makes no query when the slot's relations are selected.
    """
    slot = appointment.slot
    where, description = _where_and_description(appointment=appointment, organisation=organisation, method=method)
    summary = f"{slot.appointment_type.name} at {organisation.name}"
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", str(method))
    event = Event()
    event.add("uid", calendar_uid(appointment=appointment))
    event.add("sequence", calendar_sequence(appointment=appointment, method=method))
    event.add("dtstamp", (now or timezone.now()).astimezone(UTC))
    event.add("dtstart", slot.start.astimezone(UTC))
    event.add("dtend", slot.end.astimezone(UTC))
    event.add("organizer", _organizer(organisation))
    event.add("summary", f"Cancelled: {summary}" if method == CalendarMethod.CANCEL else summary)
    event.add("location", where)
    event.add("description", "\n".join(description))
    event.add("status", "CANCELLED" if method == CalendarMethod.CANCEL else "CONFIRMED")
    event.add("transp", "TRANSPARENT" if method == CalendarMethod.CANCEL else "OPAQUE")
    calendar.add_component(event)
    return calendar.to_ical().decode()
