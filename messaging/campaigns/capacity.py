"""The free times a campaign's invitations can book: the one count its check and its pacing read."""

from __future__ import annotations

from datetime import datetime

from booking.models import Slot
from messaging.models import Campaign


def campaign_free_times(*, campaign: Campaign, now: datetime) -> int:
    """How many free times a link with the campaign's settings would offer if opened at `now`.

    The same rule as a link's times page (`Slot.objects.offered`): the type's booking window,
    the location, the practitioner if one is set. One COUNT over the free-slot index. Reads
    `campaign.appointment_type` (join it to save a query).
    """
    return Slot.objects.offered(
        appointment_type=campaign.appointment_type,
        location_id=campaign.location_id,
        practitioner_id=campaign.practitioner_id,
        now=now,
    ).count()
