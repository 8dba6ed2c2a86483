"""Appointments: booking one through a link, changing it to another time, and cancelling it.

Locking policy, the same everywhere: take the link's row lock first (so one link books once,
whatever number of tabs or double submits), then, for a host's type, its sharing agreement's
row `FOR SHARE` (so ending the agreement and booking through it serialise), then claim the
slot with a conditional UPDATE (`... WHERE status = 'free'`), which is the guard two patients
racing for one slot meet. The partial unique index on booked appointments per slot is the last
line behind it. Changing and cancelling take the same link lock first (a practice's cancel of
an appointment booked through a link too), so a change, a cancellation, a second tab and a
double submit on one booking queue behind each other and each re-reads what the one before it
left; the old appointment ends with a conditional UPDATE (`... WHERE status = 'booked'`), and
`Appointment.replaces` (one replacement per appointment) and the one-booked-appointment-per-link
index stand behind it in the database.

What a booked link may do, and until when (the patient's side, booking/views/manage.py):
- It shows its appointment (after the date of birth, as before) for as long as the link is
  neither revoked nor locked, whatever its `expires_at`: the confirmation and reminders carry
  the link, and a patient who booked on the link's last day must still be able to cancel next
  week. Expiry limits *booking*; a booked link is limited by its appointment instead.
- It may change or cancel online while the type's policy allows (`booking/policy.py`: the
  cut-off before the start, the number of changes), checked again inside the transaction at
  the moment of the POST with the same `now`, whatever the page showed. The appointment's start
  ends it in any case.
- A change books another of the link's times (its type, location, practitioner and booking
  window, as when booking), so it also needs the type still offered (not withdrawn, and for a
  host's type the sharing agreement in force); a cancellation needs neither: freeing a slot is
  always welcome.
- Once the patient cancels, the link has done its one booking: reopening it (after the date of
  birth) shows "Appointment cancelled" with the practice's phone, 410 Gone. A practice's
  cancellation shows "This link has already been used", as before. Revoked and locked links
  show their own pages, as before the booking.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime

from django.db import IntegrityError, OperationalError, models, transaction
from django.utils import timezone

from booking.audit import audit_record
from booking.exceptions import (
    AppointmentNotCurrent,
    AppointmentNotFound,
    BookingBusy,
    ChangeNotAllowed,
    LinkNotBookable,
    SlotNotAllowed,
    SlotTaken,
)
from booking.links import LinkState, booking_link_patient_state
from booking.models import (
    PATIENT_CANCELLATION_REASONS,
    Appointment,
    AuditEvent,
    BookingLink,
    CancellationReason,
    CancellationSource,
    Slot,
)
from booking.policy import appointment_online_policy
from booking.sharing import sharing_agreement_hold
from booking.signals import appointment_booked, appointment_cancelled, appointment_changed
from booking.slots import slot_claim
from booking.users import AnyUser

LOCK_NOT_AVAILABLE = "55P03"
CANCELLATION_FIELDS = (
    "status",
    "cancelled_at",
    "cancellation_source",
    "cancellation_reason",
    "cancellation_detail",
    "cancelled_by",
)


@contextlib.contextmanager
def _busy_on_lock_timeout() -> Iterator[None]:
    """Turn PostgreSQL's lock timeout (settings: DATABASE_LOCK_TIMEOUT_MS) into BookingBusy."""
    try:
        yield
    except OperationalError as error:
        if getattr(getattr(error, "__cause__", None), "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise BookingBusy() from error
        raise


def _link_locked(*, link_id: int) -> BookingLink:
    """The link's row, locked until commit (with its type, patient and organisation); raises
    LinkNotBookable(NOT_FOUND) when there is none. The first lock every booking, change and
    patient's cancellation through a link takes."""
    link = (
        BookingLink.objects.select_for_update(of=("self",))
        .select_related("appointment_type", "patient", "organisation")
        .fetch_mode(models.FETCH_RAISE)
        .filter(pk=link_id)
        .first()
    )
    if link is None:
        raise LinkNotBookable(LinkState.NOT_FOUND)
    return link


def appointment_book(
    *, link_id: int, slot_id: int, ip_address: str | None = None, now: datetime | None = None
) -> Appointment:
    """Book `slot_id` through the link, in one transaction. Returns the appointment.

    Locks the link row, re-checks the link (`booking_link_patient_state`: gone, expiry,
    revocation, lock, already booked, a type since deactivated or made not self-bookable and, for
    a host's type, that the sharing agreement is still in force, holding the agreement row
    `FOR SHARE` with `sharing_agreement_hold` so that an end waits for this booking or is seen
    by it); then claims a free slot at the chosen slot's start with `slot_claim` (one UPDATE
    over the times the link offers, `FOR UPDATE SKIP LOCKED`: the link's type, location and
    practitioner, in the booking window). Sends `appointment_booked` after the commit.
    Raises LinkNotBookable (with its LinkState), SlotNotAllowed, SlotTaken, or BookingBusy on a
    lock timeout.
    """
    now = now or timezone.now()
    with _busy_on_lock_timeout(), transaction.atomic():
        link = _link_locked(link_id=link_id)
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
    actor: AnyUser | None,
    source: CancellationSource = CancellationSource.PRACTICE,
    reason: CancellationReason = CancellationReason.OTHER,
    detail: str = "",
    ip_address: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Cancel a booked appointment and free its slot. Returns whether it changed (not when it was
    already cancelled, or its attendance has been recorded).

    Locks the link's row first (for an appointment booked through a link: the order every
    booking, change and cancellation through the link takes, so a practice's cancel can't
    deadlock with a patient's change), then the slot's, so a cancel can't interleave with a
    booking of the same slot. Records who ended it (`source`), why (`reason`, a code, and
    `detail`, their words) and the staff member (`actor`, when signed in). Sends
    `appointment_cancelled` after the commit.
    """
    with transaction.atomic():
        if appointment.booking_link_id is not None:
            BookingLink.objects.select_for_update().filter(pk=appointment.booking_link_id).values("pk").first()
        Slot.objects.select_for_update().filter(pk=appointment.slot_id).first()
        # Not one whose attendance is recorded (booking/outcomes.py): it happened, or was missed.
        changed = Appointment.objects.filter(pk=appointment.pk, status=Appointment.Status.BOOKED, outcome="").update(
            status=Appointment.Status.CANCELLED,
            cancelled_at=now or timezone.now(),
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
        # Only what the UPDATE wrote: relations already read (the patient, the link) stay loaded.
        appointment.refresh_from_db(fields=[*CANCELLATION_FIELDS])
        audit_record(
            action=AuditEvent.Action.CANCELLED,
            actor=actor,
            patient=appointment.patient,
            booking_link=appointment.booking_link,
            appointment=appointment,
            ip_address=ip_address,
            # The reason's words as chosen, so the trail reads the same if the labels change later.
            detail={
                "source": str(source),
                "reason": str(reason),
                "reason_label": CancellationReason(reason).label,
                "detail": detail,
            },
        )
        transaction.on_commit(lambda: appointment_cancelled.send(sender=Appointment, appointment=appointment))
    return True


# --- The patient changes or cancels through the link -----------------------------------------


def _booked_link_locked(*, link_id: int) -> BookingLink:
    """The link's row, locked until commit; raises LinkNotBookable if it is gone, revoked or locked."""
    link = _link_locked(link_id=link_id)
    state = booking_link_patient_state(link=link)
    # Expired, withdrawn or unshared don't stop a booked link here: see the module's docstring.
    if state in (LinkState.REVOKED, LinkState.LOCKED):
        raise LinkNotBookable(state)
    return link


def _current_appointment(*, link: BookingLink, appointment_id: int | None) -> Appointment:
    """The link's booked appointment, which must be `appointment_id` when the form named one.

    Raises AppointmentNotCurrent when nothing is booked or another appointment of this link is
    (changed or cancelled meanwhile), AppointmentNotFound when the link never booked that one.
    """
    current = booking_link_booked_appointment(link=link)
    if appointment_id is not None and (current is None or current.pk != appointment_id):
        if not Appointment.objects.filter(pk=appointment_id, booking_link=link).exists():
            raise AppointmentNotFound()
        raise AppointmentNotCurrent()
    if current is None:
        raise AppointmentNotCurrent()
    return current


def _appointment_end_for_change(*, appointment: Appointment, now: datetime) -> bool:
    """End `appointment` as changed, if it is still booked: the conditional UPDATE. Whether it did."""
    return bool(
        # Never one whose attendance is recorded (booking/outcomes.py), as appointment_cancel.
        Appointment.objects.filter(pk=appointment.pk, status=Appointment.Status.BOOKED, outcome="").update(
            status=Appointment.Status.CANCELLED,
            cancelled_at=now,
            cancellation_source=CancellationSource.CHANGED,
            cancellation_reason=CancellationReason.CHANGED,
        )
    )


def appointment_change(
    *,
    link_id: int,
    appointment_id: int | None = None,
    slot_id: int,
    ip_address: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Move the link's booked appointment to `slot_id`, in one transaction. Returns the new one.

    Locks the link row (the order `appointment_book` takes), re-reads the link (gone, revoked,
    locked) and its booked appointment (which must be `appointment_id` when given), asks the
    type's policy at `now` (`appointment_online_policy(...).can_change`), checks the type is
    still offered (holding a host's sharing agreement `FOR SHARE` with
    `sharing_agreement_hold`), then claims the new slot with `slot_claim` (free, offered by the
    link, at the chosen start; never the start already booked), ends the old appointment with a
    conditional UPDATE (status cancelled, source and reason "changed"), frees its slot and
    creates the new appointment (`replaces` the old, same `original` chain, one more change).
    If anything fails nothing changes: the patient keeps the old appointment, never none and
    never two. Sends `appointment_changed` after the commit.
    Raises LinkNotBookable (its LinkState: not found, revoked, locked, type withdrawn,
    agreement ended), AppointmentNotCurrent, AppointmentNotFound, ChangeNotAllowed, SlotTaken,
    SlotNotAllowed, or BookingBusy on a lock timeout.
    """
    now = now or timezone.now()
    with _busy_on_lock_timeout(), transaction.atomic():
        link = _booked_link_locked(link_id=link_id)
        previous = _current_appointment(link=link, appointment_id=appointment_id)
        policy = appointment_online_policy(appointment=previous, now=now)
        if not policy.can_change:
            raise ChangeNotAllowed(str(policy.change_refused), policy.explain(policy.change_refused))
        if not (link.appointment_type.is_active and link.appointment_type.self_bookable):
            raise LinkNotBookable(LinkState.TYPE_WITHDRAWN)
        if not sharing_agreement_hold(link=link):
            raise LinkNotBookable(LinkState.AGREEMENT_ENDED)

        chosen_start = Slot.objects.filter(pk=slot_id).values_list("start", flat=True).first()
        if chosen_start is None:
            raise SlotNotAllowed()
        if chosen_start == previous.slot.start:
            # Another clinician's slot at the same time would be a change that changes nothing.
            raise SlotNotAllowed("That is the time you already have. Please choose another.")
        claimed = slot_claim(link=link, slot_id=slot_id, now=now)
        if claimed is None:
            if Slot.objects.offered_by(link, now=now, taken_too=True).filter(pk=slot_id).exists():
                raise SlotTaken()
            raise SlotNotAllowed()

        if not _appointment_end_for_change(appointment=previous, now=now):
            # Cancelled meanwhile by someone who didn't take the link's lock: the rollback
            # gives the new slot back.
            raise AppointmentNotCurrent()
        Slot.objects.filter(pk=previous.slot_id, status=Slot.Status.BOOKED).update(status=Slot.Status.FREE)
        try:
            with transaction.atomic():
                appointment = Appointment.objects.create(
                    slot_id=claimed,
                    patient=link.patient,
                    booking_link=link,
                    booked_at=now,
                    replaces=previous,
                    original_id=previous.original_id or previous.pk,
                    change_count=previous.change_count + 1,
                )
        except IntegrityError as error:
            # The database's last guard: this appointment was already replaced, or the link
            # already has another booked appointment.
            raise AppointmentNotCurrent() from error
        previous.status = Appointment.Status.CANCELLED
        previous.cancelled_at = now
        previous.cancellation_source = CancellationSource.CHANGED
        previous.cancellation_reason = CancellationReason.CHANGED
        audit_record(
            action=AuditEvent.Action.APPOINTMENT_CHANGED,
            patient=link.patient,
            booking_link=link,
            appointment=appointment,
            ip_address=ip_address,
            detail={"previous": previous.reference, "change": appointment.change_count},
        )
        transaction.on_commit(
            lambda: appointment_changed.send(sender=Appointment, appointment=appointment, previous=previous)
        )
    return appointment


def appointment_cancel_by_patient(
    *,
    link_id: int,
    appointment_id: int | None = None,
    reason: CancellationReason,
    detail: str = "",
    ip_address: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """The patient cancels the link's booked appointment. Returns it, cancelled.

    Locks the link row, re-reads the link and its booked appointment (which must be
    `appointment_id` when given), asks the type's policy at `now` (`can_cancel`), then
    `appointment_cancel` with source "patient", the reason (one of
    PATIENT_CANCELLATION_REASONS) and the patient's words, freeing the slot in the same
    transaction. Sends `appointment_cancelled` after the commit.
    Raises ValueError for a reason patients can't give, LinkNotBookable (not found, revoked,
    locked), AppointmentNotCurrent, AppointmentNotFound, ChangeNotAllowed, or BookingBusy.
    """
    if reason not in PATIENT_CANCELLATION_REASONS:
        raise ValueError(f"{reason!r} is not a reason a patient gives")
    now = now or timezone.now()
    with _busy_on_lock_timeout(), transaction.atomic():
        link = _booked_link_locked(link_id=link_id)
        appointment = _current_appointment(link=link, appointment_id=appointment_id)
        policy = appointment_online_policy(appointment=appointment, now=now)
        if not policy.can_cancel:
            raise ChangeNotAllowed(str(policy.cancel_refused), policy.explain(policy.cancel_refused))
        # Already read with the link; appointment_cancel's audit needs them.
        appointment.patient = link.patient
        appointment.booking_link = link
        if not appointment_cancel(
            appointment=appointment,
            actor=None,
            source=CancellationSource.PATIENT,
            reason=reason,
            detail=detail,
            ip_address=ip_address,
            now=now,
        ):
            raise AppointmentNotCurrent()
    return appointment


def booking_link_last_appointment(*, link: BookingLink) -> Appointment | None:
    """The link's latest appointment, booked or not, with its slot's details. One query.

    What a link reopened after a cancellation shows: who cancelled it decides the page.
    """
    return (
        Appointment.objects.filter(booking_link=link)
        .select_related("slot", "slot__practitioner", "slot__location", "slot__appointment_type")
        .fetch_mode(models.FETCH_RAISE)
        .order_by("-booked_at", "-pk")
        .first()
    )
