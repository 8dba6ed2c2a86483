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
