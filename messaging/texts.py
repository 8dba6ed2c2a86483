"""The text a patient receives: the stored body with its link put back, at the moment it is sent.

A message is stored with LINK_PLACEHOLDER where its link goes (messaging/sending.py), which is
also what staff read on its page and in admin. The link's token is held only encrypted on the
BookingLink (booking/encryption.py) while the link can still book; the transport asks for the
text here just before it hands it to the provider, and nothing saves it. The development
outbox (DEBUG only) shows it the same way, so a person trying the demo can open the link.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from booking.encryption import token_decrypt
from booking.models import BookingLink
from messaging.exceptions import MessageLinkGone
from messaging.models import Message
from messaging.tokens import LINK_PLACEHOLDER


def message_link_url(*, message: Message) -> str | None:
    """The message's working link, or None: no link, or one that can't be used any more.

    An invitation (`booking_link`) carries its link while the link can still book: once it has
    booked, a late retry of the invitation would ask the patient to book again, so it has none.
    A later message about a booked appointment (`link_carried`: a confirmation, a reminder)
    carries it while the link can still manage that appointment. Either way the token must
    still be held (booking_links_wipe_unusable wipes it once the link can do nothing).
    """
    if message.booking_link_id is not None:
        link = message.booking_link
        if link is None or link.status == BookingLink.Status.BOOKED:
            return None
    elif message.link_carried_id is not None:
        link = message.link_carried
    else:
        return None
    if link is None:
        return None
    token = token_decrypt(link.token_encrypted)
    if token is None:
        return None
    return settings.PUBLIC_BASE_URL + reverse("booking:link", kwargs={"token": token})


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
