"""SMS backends, like Django's email backends: one interface, chosen by settings.SMS_BACKEND.

- outbox: development. Sends nothing; the Message row already holds what was sent, and
  /dev/outbox shows it (DEBUG only), so a person trying the demo can open their link.
- console: prints each text to the log.
- twilio: the Twilio SDK. Each organisation sends from its own Messaging Service or
  alphanumeric sender (SenderProfile), else the deployment's default; Twilio reports delivery
  to our status callback.
"""

from __future__ import annotations

import logging
from functools import cache

import requests
from django.conf import settings
from django.urls import reverse
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from messaging.delivery_errors import DeliveryError, SendResult
from messaging.models import Message, SenderProfile
from messaging.provider_errors import TWILIO_OPTED_OUT, http_status_is_transient, twilio_reason

logger = logging.getLogger(__name__)


class OutboxSmsBackend:
    name = "outbox"

    def send(self, message: Message) -> SendResult:
        return SendResult(provider_message_id=f"outbox-{message.reference}", provider_status="outbox")


class ConsoleSmsBackend:
    name = "console"

    def send(self, message: Message) -> SendResult:
        logger.info("SMS to %s (%s):\n%s", message.to_address, message.reference, message.body)
        return SendResult(provider_message_id=f"console-{message.reference}", provider_status="console")


class TwilioSmsBackend:
    name = "twilio"

    def __init__(self) -> None:
        self.client = Client(
            settings.TWILIO_ACCOUNT_SID,
            settings.TWILIO_AUTH_TOKEN,
            http_client=TwilioHttpClient(timeout=settings.TWILIO_TIMEOUT_SECONDS),
        )
        if settings.TWILIO_API_BASE_URL:
            self.client.api.base_url = settings.TWILIO_API_BASE_URL

    def send(self, message: Message) -> SendResult:
        sender = _twilio_sender(message.organisation_id)
        if not sender:
            raise DeliveryError(
                f"No SMS sender is set up for {message.organisation}. Ask an administrator to add a "
                "Twilio Messaging Service SID or sender ID (Admin → Sender profiles).",
                permanent=True,
            )
        try:
            created = self.client.messages.create(
                to=message.to_address,
                body=message.body,
                status_callback=settings.PUBLIC_BASE_URL
                + reverse("webhooks:twilio_status", kwargs={"reference": message.reference}),
                **sender,
            )
        except TwilioRestException as error:
            if http_status_is_transient(error.status):
                raise DeliveryError(f"Twilio answered {error.status}.", permanent=False) from error
            raise DeliveryError(
                twilio_reason(error.code, error.msg),
                permanent=True,
                code=str(error.code or error.status),
                opted_out=error.code == TWILIO_OPTED_OUT,
            ) from error
        except requests.Timeout as error:
            raise DeliveryError("Twilio didn't answer in time.", permanent=False) from error
        except requests.RequestException as error:
            raise DeliveryError("Couldn't reach Twilio.", permanent=False) from error
        return SendResult(provider_message_id=created.sid, provider_status=created.status or "queued")


def _twilio_sender(organisation_id: int) -> dict[str, str]:
    profile = SenderProfile.objects.filter(organisation_id=organisation_id).first()
    service = (profile and profile.twilio_messaging_service_sid) or settings.TWILIO_MESSAGING_SERVICE_SID
    if service:
        return {"messaging_service_sid": service}
    sender_id = (profile and profile.sms_sender_id) or settings.TWILIO_SENDER_ID
    return {"from_": sender_id} if sender_id else {}


BACKENDS = {"outbox": OutboxSmsBackend, "console": ConsoleSmsBackend, "twilio": TwilioSmsBackend}


@cache
def _backend(name: str, *configuration) -> OutboxSmsBackend | ConsoleSmsBackend | TwilioSmsBackend:
    return BACKENDS[name]()


def sms_backend():
    """The configured backend; one per process (the Twilio client keeps its connections)."""
    # Keyed by the settings it is built from, so a changed setting (in tests) builds a new one.
    return _backend(
        settings.SMS_BACKEND,
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
        settings.TWILIO_TIMEOUT_SECONDS,
    )
