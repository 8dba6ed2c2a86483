"""Sending a message: the link, the text and the delivery task, in one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import LinkNotAllowed
from booking.links import LinkExpiry, booking_link_issue
from booking.models import AppointmentType, AuditEvent, Location, Organisation, Patient, Practitioner
from messaging.channels import channel_options
from messaging.exceptions import MessageNotSent
from messaging.models import Channel, Message
from messaging.segments import MAX_SMS_SEGMENTS, sms_normalise
from messaging.tasks import delivery_enqueue
from messaging.tokens import (
    LINK_PLACEHOLDER,
    link_token_count,
    link_url_length,
    sms_length_of_body,
    tokens_normalise,
    tokens_render,
    tokens_unknown,
)

EMAIL_SUBJECT = "A message from {practice}"


@dataclass(frozen=True)
class LinkSettings:
    appointment_type: AppointmentType
    location: Location
    practitioner: Practitioner | None
    expiry: LinkExpiry


def message_body_normalise(body: str, *, channel: str) -> str:
    """The body as it is checked and stored for `channel`: line ends, SMS characters, tokens' spellings."""
    body = (body or "").replace("\r\n", "\n")
    if channel == Channel.SMS:
        # Before the token checks: normalising can join a token split by an invisible character.
        body = sms_normalise(body)
    return tokens_normalise(body).strip()


def message_body_stored(*, body: str, patient: Patient, has_link: bool) -> str:
    """The normalised `body` as the message row keeps it: tokens filled in, LINK_PLACEHOLDER for the link.

    The link itself is kept only encrypted on the BookingLink, and put back when the text goes
    to the provider (messaging/texts.py): a working link is never at rest in clear.
    Reads `patient.organisation`.
    """
    return tokens_render(
        body,
        patient_first_name=patient.first_name,
        practice_name=patient.organisation.name,
        link_url=LINK_PLACEHOLDER if has_link else None,
    )


def message_subject(*, channel: str, practice: Organisation) -> str:
    """An email's subject ("A message from ..."); a text has none."""
    return EMAIL_SUBJECT.format(practice=practice.name) if channel == Channel.EMAIL else ""


def message_check(*, patient: Patient, channel: str, body: str, link: LinkSettings | None) -> str:
    """Raise MessageNotSent for anything that stops this message going; return the normalised body."""
    body = message_text_check(body=body, channel=channel, with_link=link is not None)
    options = {option.channel: option for option in channel_options(patient)}
    if channel not in options:
        raise MessageNotSent("Choose SMS or Email.", field="channel")
    if not options[Channel(channel)].available:
        raise MessageNotSent(
            f"Can't send by {Channel(channel).label}: {options[Channel(channel)].reason_unavailable}.", field="channel"
        )
    if channel == Channel.SMS:
        message_length_check(body=body, patient_first_name=patient.first_name, practice_name=patient.organisation.name)
    return body


def message_text_check(*, body: str, channel: str, with_link: bool) -> str:
    """Raise MessageNotSent unless `body`'s tokens are right (known ones, the link exactly once
    when `with_link`, never otherwise); return it normalised. For a message (above) and a
    campaign's invitation (messaging/campaigns/creation.py) alike."""
    body = message_body_normalise(body, channel=channel)
    if not body:
        raise MessageNotSent("Enter a message.", field="body")
    unknown = tokens_unknown(body)
    if unknown:
        raise MessageNotSent(
            f"{', '.join(unknown)} {'is not a token' if len(unknown) == 1 else 'are not tokens'} we know. "
            "Use {{Patient First Name}}, {{Practice Name}} or {{Appointment Link}}.",
            field="body",
        )
    if LINK_PLACEHOLDER in body:
        # The stored text holds this where the link goes: typed by hand, it would be taken for the link.
        raise MessageNotSent(f"Remove “{LINK_PLACEHOLDER}”: use {{{{Appointment Link}}}} for the link.", field="body")
    links = link_token_count(body)
    if not with_link and links:
        raise MessageNotSent(
            "The message has {{Appointment Link}} but no link is set up. Use Invite to book, or remove the token.",
            field="body",
        )
    if with_link and links == 0:
        raise MessageNotSent(
            "A link is set up but the message doesn't include it. Add {{Appointment Link}} to the message, "
            "or remove the link.",
            field="body",
        )
    if links > 1:
        raise MessageNotSent("A message can carry one link: remove the extra {{Appointment Link}}.", field="body")
    return body


def message_length_check(*, body: str, patient_first_name: str, practice_name: str) -> None:
    """Raise MessageNotSent if `body`, as a text with these names, would take more than MAX_SMS_SEGMENTS."""
    length = sms_length_of_body(
        body,
        link_length=link_url_length(public_base_url=settings.PUBLIC_BASE_URL),
        patient_first_name=patient_first_name,
        practice_name=practice_name,
    )
    if length.segments > MAX_SMS_SEGMENTS:
        raise MessageNotSent(
            f"That text would be {length.segments} SMS messages; the most is {MAX_SMS_SEGMENTS}. Shorten it.",
            field="body",
        )


def message_send(
    *,
    sender: User,
    patient: Patient,
    channel: str,
    body: str,
    link: LinkSettings | None,
    idempotency_key: uuid.UUID,
    ip_address: str | None = None,
) -> tuple[Message, bool]:
    """Save the link (if any) and the message, and queue its delivery. Returns (message, created).

    One transaction: the link, the rendered text, the message row and its audit event are
    saved together or not at all, with the delivery task (messaging/tasks.py). A second
    submit with the same `idempotency_key` returns the first message instead of sending again, even when both
    arrive at once (the key is unique in the database).
    The text is stored with LINK_PLACEHOLDER where the link goes; the link's token is kept
    only encrypted on the link, and put back when the text goes (messaging/texts.py).
    Raises MessageNotSent (and never saves anything) when a rule is broken.
    """
    existing = Message.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    body = message_check(patient=patient, channel=channel, body=body, link=link)
    try:
        with transaction.atomic():
            booking_link = None
            if link is not None:
                try:
                    booking_link = booking_link_issue(
                        patient=patient,
                        appointment_type=link.appointment_type,
                        location=link.location,
                        practitioner=link.practitioner,
                        expiry=link.expiry,
                        created_by=sender,
                    )
                except LinkNotAllowed as error:
                    raise MessageNotSent(error.message, field=error.field) from error
            rendered = message_body_stored(body=body, patient=patient, has_link=booking_link is not None)
            options = {option.channel: option for option in channel_options(patient)}
            message = Message.objects.create(
                organisation=patient.organisation,
                patient=patient,
                channel=channel,
                to_address=options[Channel(channel)].address,
                subject=message_subject(channel=channel, practice=patient.organisation),
                template_body=body,
                body=rendered,
                booking_link=booking_link,
                sent_by=sender,
                idempotency_key=idempotency_key,
                created_at=timezone.now(),
            )
            audit_record(
                action=AuditEvent.Action.SENT,
                actor=sender,
                patient=patient,
                booking_link=booking_link,
                ip_address=ip_address,
                detail={"message": message.reference, "channel": channel},
            )
            delivery_enqueue(message=message)
    except IntegrityError:
        # The same form submitted twice at once: the other request's message won the key.
        existing = Message.objects.filter(idempotency_key=idempotency_key).first()
        if existing is None:
            raise
        return existing, False
    return message, True
