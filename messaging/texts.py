"""The text a patient receives: the stored body with its link put back, at the moment it is sent.

A message is stored with LINK_PLACEHOLDER where its link goes (messaging/sending.py,
messaging/confirmations.py), which is also what staff read on its page and in admin. The
link's token is held only encrypted on the BookingLink (booking/encryption.py) while the link
can still book or manage its booked appointment; the transport asks for the text here just
before it hands it to the provider, and nothing saves it. `message_not_current` says, before
a try, why a message written earlier is no longer true to send. The development
outbox (DEBUG only) shows it the same way, so a person trying the demo can open the link.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from booking.encryption import token_decrypt
from booking.models import Appointment, BookingLink, CancellationSource
from messaging.exceptions import MessageLinkGone
from messaging.models import Message
from messaging.tokens import LINK_PLACEHOLDER


def message_link_url(*, message: Message) -> str | None:
    """The message's working link, or None: no link, or one that can't be used any more.

    An invitation (`booking_link`) carries its link while the link can still book: once it has
    booked, a late retry of the invitation would ask the patient to book again, so it has none.
    A later message about a booked appointment (`link_carried`: a confirmation, a reminder)
    carries it while the link can still manage that appointment: for a confirmation, while the
    appointment it confirms is still booked (after a change the link manages the new one, and a
    retry of the old confirmation must not send the patient there as if nothing had moved).
    Either way the token must still be held (revoking, cancelling and
    booking_links_wipe_unusable wipe it once the link can do nothing).
    """
    if message.booking_link_id is not None:
        link = message.booking_link
        if link is None or link.status == BookingLink.Status.BOOKED:
            return None
    elif message.link_carried_id is not None:
        link = message.link_carried
        if message.confirms_id is not None and _confirms_what_is_gone(message):
            return None
    else:
        return None
    if link is None:
        return None
    token = token_decrypt(link.token_encrypted)
    if token is None:
        return None
    return settings.PUBLIC_BASE_URL + reverse("booking:link", kwargs={"token": token})


def _confirms_what_is_gone(message: Message) -> bool:
    confirmed = message.confirms  # joined by the delivery claim
    return confirmed is not None and confirmed.status != Appointment.Status.BOOKED


def message_not_current(*, message: Message) -> str:
    """Why a message written earlier must not go now (for staff to read), or "" when it may.

    A confirmation of an appointment that is no longer booked is not sent: cancelled, the
    cancellation notice says so; changed, the new appointment's confirmation says so. Sending
    it late would tell the patient to come at a time that is no longer theirs. A message whose
    link can't be put back (booked, revoked, expired, or the appointment cancelled or passed)
    isn't sent either: never a text with a hidden link in it. Uses what the delivery claim
    joined, so no query.
    """
    if message.confirms_id is not None and _confirms_what_is_gone(message):
        confirmed = message.confirms
        assert confirmed is not None  # for the type checker: _confirms_what_is_gone said so
        if confirmed.cancellation_source == CancellationSource.CHANGED:
            return "Not sent: the appointment was changed to another time before this confirmation went."
        return "Not sent: the appointment was cancelled before this confirmation went."
    if message.booking_link_id is not None and message_link_url(message=message) is None:
        # Wiped when the link was booked, revoked or expired (or no configured key opens it).
        return "Not sent: its link can't be used any more (booked, revoked or expired). Send a new one."
    carried = message.link_carried_id is not None and LINK_PLACEHOLDER in message.body
    if carried and message_link_url(message=message) is None:
        return "Not sent: its link can't be used any more (revoked, or the appointment has passed)."
    return ""


def message_text(*, message: Message) -> str:
    """The text as the patient receives it. Raises MessageLinkGone when its link can't be put back.

    Uses `message.booking_link` or `message.link_carried` (joined by the delivery claim, so no
    query there).
    """
    if (message.booking_link_id is None and message.link_carried_id is None) or LINK_PLACEHOLDER not in message.body:
        return message.body
    link_url = message_link_url(message=message)
    if link_url is None:
        raise MessageLinkGone()
    # The first one: the builder refuses a typed placeholder, so it is the only one staff wrote.
    return message.body.replace(LINK_PLACEHOLDER, link_url, 1)


def message_text_or_stored(*, message: Message) -> str:
    """The text with its link when it can still be put back, else the stored text (the outbox's view)."""
    try:
        return message_text(message=message)
    except MessageLinkGone:
        return message.body
