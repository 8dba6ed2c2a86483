"""Appointments: booking one through a link, and cancelling one.

Locking policy, the same everywhere: take the link's row lock first (so one link books once,
whatever number of tabs or double submits), then, for a host's type, its sharing agreement's
row `FOR SHARE` (so ending the agreement and booking through it serialise), then claim the
slot with a conditional UPDATE (`... WHERE status = 'free'`), which is the guard two patients
racing for one slot meet. The partial unique index on booked appointments per slot is the last
line behind it.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, OperationalError, models, transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import BookingBusy, LinkNotBookable, SlotNotAllowed, SlotTaken
from booking.links import LinkState, booking_link_patient_state
from booking.models import Appointment, AuditEvent, BookingLink, CancellationReason, CancellationSource, Slot
from booking.sharing import sharing_agreement_hold
from booking.signals import appointment_booked, appointment_cancelled
from booking.slots import slot_claim
from booking.users import AnyUser

LOCK_NOT_AVAILABLE = "55P03"


def appointment_book(
    *, link_id: int, slot_id: int, ip_address: str | None = None, now: datetime | None = None
) -> Appointment:
    """Book `slot_id` through the link, in one transaction. Returns the appointment.

    Locks the link row, re-checks the link (`booking_link_patient_state`: gone, expiry,
    revocation, lock, already booked, a type since deactivated or made not self-bookable and, for
    a host's type, that the sharing agreement is still in force, holding the agreement row
    `FOR SHARE` with `sharing_agreement_hold` so that an end waits for this booking or is seen
    by it); then claims the slot with one conditional UPDATE over the times the link offers
    (`Slot.objects.offered_by`: still free, the link's type, location and practitioner, in the
    booking window). Sends `appointment_booked` after the commit.
    Raises LinkNotBookable (with its LinkState), SlotNotAllowed, SlotTaken, or BookingBusy on a
    lock timeout.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            link = (
                BookingLink.objects.select_for_update(of=("self",))
                .select_related("appointment_type", "patient", "organisation")
                .fetch_mode(models.FETCH_RAISE)
                .filter(pk=link_id)
                .first()
            )
            if link is None:
                raise LinkNotBookable(LinkState.NOT_FOUND)
            state = booking_link_patient_state(link=link, now=now)
            if state != LinkState.ACTIVE:
                raise LinkNotBookable(state)
            # The check above read the agreement without a lock; this one holds it FOR SHARE
            # until commit, so an end can't slip in between the check and the booking.
            if not sharing_agreement_hold(link=link):
                raise LinkNotBookable(LinkState.AGREEMENT_ENDED)

            claimed = slot_claim(link=link, slot_id=slot_id, now=now)
            if claimed is None:
                if Slot.objects.offered_by(link, now=now, taken_too=True).filter(pk=slot_id).exists():
                    raise SlotTaken()
                raise SlotNotAllowed()

            try:
                with transaction.atomic():
                    appointment = Appointment.objects.create(
                        slot_id=claimed, patient=link.patient, booking_link=link, booked_at=now
                    )
            except IntegrityError as error:
                # The database's last guard: the link already has a booked appointment
                # (say it was locked after booking and then unlocked as active).
                raise LinkNotBookable(LinkState.BOOKED) from error
            link.status = BookingLink.Status.BOOKED
            # The link keeps its encrypted token: the confirmation (and later reminders) carry it
            # so the patient can change or cancel. It is wiped once the appointment is cancelled
            # or its time has passed (appointment_cancel, booking_links_wipe_unusable).
            link.save(update_fields=["status"])
            audit_record(
                action=AuditEvent.Action.BOOKED,
                patient=link.patient,
                booking_link=link,
                appointment=appointment,
                ip_address=ip_address,
            )
            transaction.on_commit(lambda: appointment_booked.send(sender=Appointment, appointment=appointment))
    except OperationalError as error:
        if getattr(getattr(error, "__cause__", None), "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise BookingBusy() from error
        raise
    return appointment


def booking_link_booked_appointment(*, link: BookingLink) -> Appointment | None:
    """The appointment a link booked (if still booked), with its slot's details."""
    return (
        Appointment.objects.filter(booking_link=link, status=Appointment.Status.BOOKED)
        .select_related("slot", "slot__practitioner", "slot__location", "slot__appointment_type")
        .fetch_mode(models.FETCH_RAISE)
        .first()
    )


def appointment_cancel(
    *,
    appointment: Appointment,
    actor: AnyUser,
    source: CancellationSource = CancellationSource.PRACTICE,
    reason: CancellationReason = CancellationReason.OTHER,
    detail: str = "",
) -> bool:
    """Cancel a booked appointment and free its slot. Returns whether it changed (not when it was
    already cancelled, or its attendance has been recorded).

    Locks the slot row first so a cancel can't interleave with a booking of the same slot.
    Records who ended it (`source`), why (`reason`, a code, and `detail`, their words) and the
    staff member (`actor`, when signed in). Sends `appointment_cancelled` after the commit.
    """
    with transaction.atomic():
        Slot.objects.select_for_update().filter(pk=appointment.slot_id).first()
        # Not one whose attendance is recorded (booking/outcomes.py): it happened, or was missed.
        changed = Appointment.objects.filter(pk=appointment.pk, status=Appointment.Status.BOOKED, outcome="").update(
            status=Appointment.Status.CANCELLED,
            cancelled_at=timezone.now(),
            cancellation_source=source,
            cancellation_reason=reason,
            cancellation_detail=detail,
            cancelled_by=actor if actor is not None and actor.is_authenticated else None,
        )
        if not changed:
            return False
        Slot.objects.filter(pk=appointment.slot_id, status=Slot.Status.BOOKED).update(status=Slot.Status.FREE)
        if appointment.booking_link_id is not None:
            # Nothing is left for the link to do: no later message carries it again.
            BookingLink.objects.filter(pk=appointment.booking_link_id).update(token_encrypted="")
        appointment.refresh_from_db()
        audit_record(
            action=AuditEvent.Action.CANCELLED,
            actor=actor,
            patient=appointment.patient,
            booking_link=appointment.booking_link,
            appointment=appointment,
        )
        transaction.on_commit(lambda: appointment_cancelled.send(sender=Appointment, appointment=appointment))
    return True
