"""Texts: the SMS backends, like Django's email backends, one of them chosen by settings.SMS_BACKEND
(by name, or a class's dotted path like EMAIL_BACKEND).

- outbox: development. Sends nothing; the Message row already holds what was sent, and
  /dev/outbox shows it (DEBUG only), so a person trying the demo can open their link.
- console: prints each text to the log.
- twilio: the Twilio SDK. Each organisation sends from its own Messaging Service or
  alphanumeric sender (SenderProfile), else the deployment's default; Twilio reports delivery
  to our status callback.

Which organisations a patient's STOP or START to one of our numbers covers is decided here too
(`organisations_sending_through`), next to the rule it inverts (which sender an organisation
texts from). Twilio's error codes are turned into words staff can act on here, for the backend's own
errors and for the status callbacks that report later failures (messaging/webhooks.py).
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Protocol

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.module_loading import import_string
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from booking.models import Organisation
from booking.phones import normalise_phone_number
from messaging.models import Message, SenderProfile
from messaging.transports.errors import SendResult, TransportError, http_status_is_transient

logger = logging.getLogger(__name__)

# Twilio's error codes (https://www.twilio.com/docs/api/errors). The 21xxx ones come back when
# a message is created; the 30xxx ones arrive later, in status callbacks.
TWILIO_REASONS = {
    21211: "The mobile number isn't a valid phone number. Check it on the patient's record.",
    21214: "The mobile number can't be reached. Check it on the patient's record.",
    21408: "Our Twilio account can't send texts to that country.",
    21606: "The practice's sending number can't send texts. Ask an administrator to check the SMS sender.",
    21610: "The patient has opted out of texts from us (they replied STOP).",
    21612: "Twilio can't send texts to this number from our sender.",
    21614: "The number isn't a mobile, so it can't receive texts. Check it on the patient's record.",
    21617: "The text is too long for Twilio.",
    20003: "Twilio refused our credentials. Ask an administrator to check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
    30003: "The phone is switched off or out of signal, and the network gave up.",
    30004: "The patient's network blocked the text (the number may have blocked us).",
    30005: "The number doesn't exist any more, or the network doesn't know it.",
    30006: "The number is a landline or can't receive texts.",
    30007: "The patient's network filtered the text as spam.",
    30008: "The patient's network couldn't deliver the text (no reason given).",
}

# Opted out at the provider: the patient's record should say so too.
TWILIO_OPTED_OUT = 21610


def twilio_reason(code: int | None, fallback: str = "") -> str:
    if code in TWILIO_REASONS:
        return TWILIO_REASONS[code]
    if code:
        return f"Twilio refused the text (error {code}){': ' + fallback if fallback else ''}."
    return fallback or "Twilio refused the text."


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
            raise TransportError(
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
                raise TransportError(f"Twilio answered {error.status}.", permanent=False) from error
            raise TransportError(
                twilio_reason(error.code, error.msg),
                permanent=True,
                code=str(error.code or error.status),
                opted_out=error.code == TWILIO_OPTED_OUT,
            ) from error
        except requests.Timeout as error:
            raise TransportError("Twilio didn't answer in time.", permanent=False) from error
        except requests.RequestException as error:
            raise TransportError("Couldn't reach Twilio.", permanent=False) from error
        return SendResult(provider_message_id=created.sid, provider_status=created.status or "queued")


def _twilio_sender(organisation_id: int) -> dict[str, str]:
    profile = SenderProfile.objects.filter(organisation_id=organisation_id).first()
    service = (profile and profile.twilio_messaging_service_sid) or settings.TWILIO_MESSAGING_SERVICE_SID
    if service:
        return {"messaging_service_sid": service}
    sender_id = (profile and profile.sms_sender_id) or settings.TWILIO_SENDER_ID
    return {"from_": sender_id} if sender_id else {}


def organisations_sending_through(*, messaging_service_sid: str, number: str) -> QuerySet[Organisation]:
    """The organisations whose texts go out through this Messaging Service or from this number.

    The inverse of `_twilio_sender`, for a text a patient sent back (Twilio's inbound webhook
    gives the Messaging Service the text reached, MessagingServiceSid, and the number, To):
    an organisation's own Messaging Service; else the deployment's default one; else a sender
    ID of its own (an alphanumeric name, which can't receive texts, so no reply matches it);
    else the deployment's default sender ID, which matches when it is a phone number. A text
    that reached none of these covers no organisation. Lazy: a subquery in the caller's UPDATE.
    """
    no_own_service = Q(sender_profile__isnull=True) | Q(sender_profile__twilio_messaging_service_sid="")
    no_own_sender_id = Q(sender_profile__isnull=True) | Q(sender_profile__sms_sender_id="")
    covered: list[Q] = []
    if messaging_service_sid:
        covered.append(Q(sender_profile__twilio_messaging_service_sid=messaging_service_sid))
        if messaging_service_sid == settings.TWILIO_MESSAGING_SERVICE_SID:
            covered.append(no_own_service)
    if number and not settings.TWILIO_MESSAGING_SERVICE_SID and _same_number(number, settings.TWILIO_SENDER_ID):
        covered.append(no_own_service & no_own_sender_id)
    if not covered:
        return Organisation.objects.none()
    either = covered[0]
    for another in covered[1:]:
        either |= another
    return Organisation.objects.filter(either)


def _same_number(number: str, sender: str) -> bool:
    # Digits only: phonenumbers reads letters as a keypad's, so a sender ID could pass for a number.
    if not sender or not sender.lstrip("+").replace(" ", "").isdigit():
        return False
    return _number_key(number) == _number_key(sender)


def _number_key(number: str) -> str:
    try:
        return normalise_phone_number(number)
    except ValidationError:
        return number.replace(" ", "")  # a number phonenumbers doesn't know (a test range): as written


class SmsBackend(Protocol):
    name: str

    def send(self, message: Message) -> SendResult:
        """Hand `message` to the provider; raises TransportError when it didn't take it."""
        ...


BACKENDS: dict[str, type[SmsBackend]] = {
    "outbox": OutboxSmsBackend,
    "console": ConsoleSmsBackend,
    "twilio": TwilioSmsBackend,
}


@cache
def _backend(name: str, *configuration: object) -> SmsBackend:
    backend_class: type[SmsBackend] = BACKENDS[name] if name in BACKENDS else import_string(name)
    return backend_class()


def sms_backend() -> SmsBackend:
    """The configured backend; one per process (the Twilio client keeps its connections)."""
    # Keyed by the settings it is built from, so a changed setting (in tests) builds a new one.
    return _backend(
        settings.SMS_BACKEND,
        settings.TWILIO_ACCOUNT_SID,
        settings.TWILIO_AUTH_TOKEN,
        settings.TWILIO_API_BASE_URL,
        settings.TWILIO_TIMEOUT_SECONDS,
    )
