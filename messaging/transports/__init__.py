"""Transports: one per channel, each hands a message to its provider and says what happened.

- sms.py: the SMS backends (outbox, console, twilio), one chosen by settings.SMS_BACKEND like
  Django's email backends, and Twilio's error codes in words staff can act on.
- email.py: email through Django's mailers (an anymail backend in production).
- errors.py: what a transport returns (SendResult) and the one error it raises
  (TransportError: permanent or worth another try), and which HTTP answers are transient.

A transport only talks to its provider: it changes no rows. Delivery (messaging/delivery.py)
claims the message, calls `transport_for(channel).send(message)` and records the outcome.
"""

from __future__ import annotations

from typing import Protocol

from messaging.models import Channel, Message
from messaging.transports.email import EmailTransport
from messaging.transports.errors import SendResult, TransportError
from messaging.transports.sms import sms_backend

__all__ = ["SendResult", "Transport", "TransportError", "transport_for"]


class Transport(Protocol):
    name: str

    def send(self, message: Message) -> SendResult:
        """Hand `message` to the provider; raises TransportError when it didn't take it."""
        ...


def transport_for(channel: str) -> Transport:
    """The transport for `channel`: the configured SMS backend (one per process), or email."""
    return sms_backend() if channel == Channel.SMS else EmailTransport()
