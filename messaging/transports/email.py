"""Email: through Django's mailers (an anymail backend in production), plain text and HTML.

The provider's click and open tracking is off for every message: tracking rewrites links
through the provider's servers, and a patient's booking link must reach no third party.
A confirmation (of a booking or a change) carries the appointment as an .ics attachment that
publishes the event, and a cancellation notice one that cancels it (METHOD:CANCEL, the same
UID: booking/calendar.py), so the patient's calendar moves or removes the one event.
"""

from __future__ import annotations

import smtplib
from email.utils import formataddr, make_msgid

from anymail.exceptions import AnymailAPIError, AnymailError, AnymailRecipientsRefused
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import mailers
from django.template.loader import render_to_string

from booking.calendar import CalendarMethod, appointment_calendar
from booking.calendar import calendar_host as message_id_domain
from messaging.models import Message, SenderProfile
from messaging.texts import message_text
from messaging.transports.errors import SendResult, TransportError, http_status_is_transient


def email_build(message: Message) -> AnymailMessage:
    organisation = message.organisation
    profile = SenderProfile.objects.filter(organisation=organisation).first()
    # The text with its link, rendered here and never saved (messaging/texts.py).
    context = {"message": message, "text": message_text(message=message), "organisation": organisation}
    email = AnymailMessage(
        subject=message.subject or f"A message from {organisation.name}",
        body=render_to_string("messaging/email/message.txt", context),
        from_email=formataddr((organisation.name, settings.DEFAULT_FROM_EMAIL)),
        to=[message.to_address],
        reply_to=[profile.email_reply_to] if profile and profile.email_reply_to else None,
        headers={"Message-ID": make_msgid(message.reference, domain=message_id_domain())},
        track_clicks=False,
        track_opens=False,
        metadata={"message": message.reference},
        tags=["confirmation" if message.confirms_id else "cancellation" if message.cancellation_of_id else "message"],
    )
    email.attach_alternative(render_to_string("messaging/email/message.html", context), "text/html")
    # Both select_related by the claim; None without a query when unset.
    if message.confirms is not None:
        email.attach(
            "appointment.ics",
            appointment_calendar(appointment=message.confirms, organisation=organisation),
            "text/calendar",
        )
    elif message.cancellation_of is not None:
        email.attach(
            "appointment.ics",
            appointment_calendar(
                appointment=message.cancellation_of, organisation=organisation, method=CalendarMethod.CANCEL
            ),
            "text/calendar",
        )
    return email


class EmailTransport:
    name = "email"

    def send(self, message: Message) -> SendResult:
        email = email_build(message)
        try:
            mailers.default.send_messages([email])
        except AnymailRecipientsRefused as error:
            raise TransportError(
                "The email service refused the address (it bounced before, or isn't valid).", permanent=True
            ) from error
        except AnymailAPIError as error:
            status = getattr(error, "status_code", None)
            if http_status_is_transient(status):
                raise TransportError(f"The email service answered {status or 'nothing'}.", permanent=False) from error
            raise TransportError(
                f"The email service refused the message: {error.describe_response() or error}", permanent=True
            ) from error
        except AnymailError as error:
            # Anything else anymail raises is a problem with our configuration or the message.
            raise TransportError(f"The email couldn't be sent: {error}", permanent=True) from error
        except smtplib.SMTPRecipientsRefused as error:
            raise TransportError("The mail server refused the address.", permanent=True) from error
        except (smtplib.SMTPException, OSError) as error:
            raise TransportError("Couldn't reach the mail server.", permanent=False) from error
        status = email.anymail_status
        if status.status and status.status <= {"rejected", "invalid"}:
            # Only when ANYMAIL_IGNORE_RECIPIENT_STATUS is on; otherwise anymail raised above.
            raise TransportError(
                "The email service refused the address (it bounced before, or isn't valid).", permanent=True
            )
        provider_id = status.message_id if isinstance(status.message_id, str) and status.message_id else ""
        return SendResult(
            provider_message_id=provider_id or email.extra_headers["Message-ID"],
            provider_status=next(iter(status.status), "sent") if status.status else "sent",
        )
