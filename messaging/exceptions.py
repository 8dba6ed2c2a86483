"""Why a message can't be sent, in words staff can act on."""

from __future__ import annotations


class MessageNotSent(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(message)


class MessageLinkGone(Exception):
    """The message's link can't be put back in its text: it can't book any more, or no key opens it."""
