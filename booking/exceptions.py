"""Domain errors, each with a message fit to show the person who caused it."""

from __future__ import annotations


class BookingError(Exception):
    """Base class; `message` is plain English for staff or patients."""

    default_message = "Something went wrong with this booking."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class LinkNotAllowed(BookingError):
    """The link's settings break a rule: a type not offered, a location or practitioner that doesn't fit."""

    default_message = "This link can't be made with those settings."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class SlotTaken(BookingError):
    default_message = "Sorry, that time has just been taken. Please choose another."


class SlotNotAllowed(BookingError):
    default_message = "That time can't be booked with this link. Please choose one of the times shown."


class LinkNotBookable(BookingError):
    """The link can't book now; `state`, a booking.links.LinkState, says why (and which page to show)."""

    default_message = "This link can't be used to book now."

    def __init__(self, state: str) -> None:
        # Typed as str, which LinkState is: booking.links imports this module, not the reverse.
        self.state = state
        super().__init__(f"{self.default_message} ({state})")


class BookingBusy(BookingError):
    default_message = "We're very busy right now. Please wait a moment and try again."


class OutcomeRefused(BookingError):
    """Attendance can't be recorded for this appointment (yet); the message says why."""

    default_message = "Attendance can't be recorded for this appointment."
