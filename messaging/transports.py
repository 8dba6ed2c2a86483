"""How a message leaves: one transport per channel, chosen by settings.

Until real providers are wired in (Twilio for SMS, anymail for email), the development
outbox records the message as sent: the Message row already holds everything that was sent,
so the outbox only gives it a provider id.
"""

from __future__ import annotations

from messaging.models import Message


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool) -> None:
        self.permanent = permanent
        super().__init__(message)


class OutboxTransport:
    """Sends nothing: keeps the message for a person trying the product to read."""

    def send(self, message: Message) -> str:
        return f"outbox-{message.reference}"


def transport_for(channel: str) -> OutboxTransport:
    return OutboxTransport()
