"""What booking announces. `messaging` listens; `booking` never imports `messaging`.

- `appointment_booked(sender=Appointment, appointment=...)`: sent after the transaction that
  booked the appointment commits.
- `appointment_cancelled(sender=Appointment, appointment=...)`: sent after the transaction
  that cancelled it commits.
"""

from django.dispatch import Signal

appointment_booked = Signal()
appointment_cancelled = Signal()
