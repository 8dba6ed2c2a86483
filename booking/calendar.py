"""The "Add to calendar" file: one appointment as an iCalendar (RFC 5545) event.

It holds what a calendar needs and nothing about the patient: no name, date of birth or NHS
number, because calendars sync to other services and show on lock screens.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone

from booking.models import Appointment, Organisation

_LINE_LIMIT = 75  # octets, before the line break (RFC 5545 3.1)


def _escape(text: str) -> str:
    """TEXT values: backslash, semicolon, comma and line breaks escaped (RFC 5545 3.3.11)."""
    return (
        text.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def _fold(line: str) -> str:
    """Split a content line into 75-octet pieces, never inside a UTF-8 character."""
    pieces: list[str] = []
    current = ""
    limit = _LINE_LIMIT
    for character in line:
        if len((current + character).encode()) > limit:
            pieces.append(current)
            current = character
            limit = _LINE_LIMIT - 1  # continuation lines start with a space
        else:
            current += character
    pieces.append(current)
    return "\r\n ".join(pieces)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar_host() -> str:
    """The domain in event UIDs: the public site's, so UIDs stay the same whichever server answers."""
    return urlsplit(settings.PUBLIC_BASE_URL).hostname or "localhost"


def appointment_calendar(*, appointment: Appointment, organisation: Organisation, now: datetime | None = None) -> str:
    """The .ics text for an appointment (slot, practitioner, location and type selected).

    `organisation` is the one the patient contacts: the practice that sent the link, which for
    a hub's appointment is not the location's owner.
    """
    slot = appointment.slot
    appointment_type = slot.appointment_type
    practitioner = slot.practitioner
    location = slot.location
    description = [f"Booking reference: {appointment.reference}", f"With {practitioner.name}"]
    if appointment_type.is_video:
        where = "Video appointment"
        description.append(f"{organisation.name} will send you how to join the video call.")
    elif appointment_type.is_telephone:
        where = "Telephone appointment"
        description.append(f"{organisation.name} will phone you.")
    else:
        where = ", ".join([location.name, *location.address_lines])
    if organisation.phone:
        description.append(f"To change or cancel, call {organisation.name} on {organisation.phone_for_display}.")
    else:
        description.append(f"To change or cancel, contact {organisation.name}.")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Self-booking links//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{appointment.reference}@{calendar_host()}",
        f"DTSTAMP:{_utc(now or timezone.now())}",
        f"DTSTART:{_utc(slot.start)}",
        f"DTEND:{_utc(slot.end)}",
        f"SUMMARY:{_escape(f'{appointment_type.name} at {organisation.name}')}",
        f"LOCATION:{_escape(where)}",
        f"DESCRIPTION:{_escape(chr(10).join(description))}",
        "STATUS:CONFIRMED",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(_fold(line) + "\r\n" for line in lines)
