"""What booking announces. `messaging` listens; `booking` never imports `messaging`.

Each is sent after the transaction that made the change commits, so a listener never sees
(or acts on) a change that was rolled back.

- `appointment_booked(sender=Appointment, appointment=...)`: a patient booked through a link.
- `appointment_cancelled(sender=Appointment, appointment=...)`: a booked appointment was
  cancelled by the patient or the practice (`appointment.cancellation_source`, `.cancellation_reason`,
  `.cancellation_detail`, `.cancelled_at`, `.cancelled_by` say who, why and when). A change
  doesn't send it: the old appointment ends as part of `appointment_changed`.
- `appointment_changed(sender=Appointment, appointment=..., previous=...)`: a booked
  appointment was moved to another time; `appointment` is the new one (its `replaces` is
  `previous`), `previous` is the old one, now cancelled with source "changed".
"""

from django.dispatch import Signal

appointment_booked = Signal()
appointment_cancelled = Signal()
appointment_changed = Signal()
