"""What a patient may do online with a booked appointment: the type's change-and-cancel policy.

Each appointment type says how many hours before the start patients may still change or cancel
online (`online_changes_until_hours`; empty: not online at all) and how many times one booking
may be changed (`max_changes`). The pages ask here what to offer; `booking/appointments.py`
asks again, inside the transaction, at the moment of the POST, whatever the page showed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from booking.models import Appointment


class NotOnline(enum.StrEnum):
    """Why a change or cancellation can't be made online."""

    NOT_BOOKED = "not_booked"  # cancelled already, or replaced by a change
    STARTED = "started"  # the appointment's time has come
    NOT_ONLINE = "not_online"  # the type's policy: always by phone
    TOO_LATE = "too_late"  # inside the type's cut-off before the start
    CHANGES_USED = "changes_used"  # changed as many times as the type allows (changes only)


@dataclass(frozen=True)
class OnlinePolicy:
    """What the patient may do now, and if not, why (for the page and the POST alike)."""

    cancel_refused: NotOnline | None
    change_refused: NotOnline | None
    # The last moment either is allowed online (None when the type never allows it).
    until: datetime | None
    cutoff_hours: int | None
    max_changes: int

    @property
    def can_cancel(self) -> bool:
        return self.cancel_refused is None

    @property
    def can_change(self) -> bool:
        return self.change_refused is None

    def explain(self, refused: NotOnline | None) -> str:
        """The plain-English reason a patient reads; "" when nothing was refused."""
        if refused is None:
            return ""
        if refused is NotOnline.NOT_BOOKED:
            return "This appointment has already been cancelled or changed."
        if refused is NotOnline.STARTED:
            return "This appointment's time has passed."
        if refused is NotOnline.NOT_ONLINE:
            return "This appointment can't be changed or cancelled online."
        if refused is NotOnline.TOO_LATE:
            hours = self.cutoff_hours or 0
            return (
                f"It is less than {hours} hour{'s' if hours != 1 else ''} before your appointment, "
                "so it can no longer be changed or cancelled online."
            )
        times = {1: "once", 2: "twice"}.get(self.max_changes, f"{self.max_changes} times")
        return f"This appointment has already been changed {times}, the most that can be done online."


def appointment_online_policy(*, appointment: Appointment, now: datetime | None = None) -> OnlinePolicy:
    """What the patient may do online with `appointment` at `now`. No query (reads the joined slot and type)."""
    now = now or timezone.now()
    slot = appointment.slot
    appointment_type = slot.appointment_type
    window = appointment_type.online_changes_until
    until = slot.start - window if window is not None else None
    refused: NotOnline | None = None
    if appointment.status != Appointment.Status.BOOKED:
        refused = NotOnline.NOT_BOOKED
    elif slot.start <= now:
        refused = NotOnline.STARTED
    elif until is None:
        refused = NotOnline.NOT_ONLINE
    elif now >= until:
        refused = NotOnline.TOO_LATE
    change_refused = refused
    if change_refused is None and appointment.change_count >= appointment_type.max_changes:
        change_refused = NotOnline.CHANGES_USED
    return OnlinePolicy(
        cancel_refused=refused,
        change_refused=change_refused,
        until=until,
        cutoff_hours=appointment_type.online_changes_until_hours,
        max_changes=appointment_type.max_changes,
    )
