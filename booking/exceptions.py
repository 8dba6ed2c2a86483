"""Domain errors, each with a message fit to show the person who caused it."""

from __future__ import annotations


class BookingError(Exception):
    """Base class; `message` is plain English for staff or patients."""

    default_message = "Something went wrong with this booking."

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class LinkNotChangeable(BookingError):
    default_message = "This link can't be changed in that way."


class LinkNotAllowed(BookingError):
    """The link's settings break a rule: a type not offered, a location or practitioner that doesn't fit."""

    default_message = "This link can't be made with those settings."

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
