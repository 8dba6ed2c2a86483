"""Attendance outcomes: staff record whether a patient came to a booked appointment.

The rule, written once here: an outcome ("Attended" or "Did not attend") is recorded only for
an appointment that is still booked and whose start time has come, by staff of the
organisation whose site it is at (they ran the clinic, so they know who came; the patient's own
practice, when that is another organisation, sees the outcome but doesn't record it). It may be
changed (a session marked attended, then the few who didn't come flipped); each recording is
on the audit trail. A cancelled or changed appointment never has one: the database's check
constraint `appointment_outcome_only_when_booked` is the last guard behind the row lock here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from booking.access import ANY_ROLE, organisation_ids_for
from booking.audit import audit_record, audit_record_for_appointments
from booking.exceptions import OutcomeRefused
from booking.formats import LONDON, london_time
from booking.models import Appointment, AuditEvent, CancellationSource, Outcome
from booking.users import AnyUser

NOT_BOOKED = "This appointment was cancelled, so there is no attendance to record."
CHANGED = "This appointment was moved to another time: record attendance on the new one."
NOT_STARTED = "This appointment hasn't started yet. Record whether the patient came once its time has come."
SESSION_NOT_STARTED = "This session hasn't started yet. Mark attendance once its first appointment has begun."


def appointment_outcome_refusal(*, appointment: Appointment, now: datetime) -> str | None:
    """Why attendance can't be recorded for this appointment now, in plain English; None if it can.

    Reads `appointment.slot` (select it with the appointment). Says nothing about who asks:
    that is `appointment_outcome_recorders`.
    """
    if appointment.status != Appointment.Status.BOOKED:
        return CHANGED if appointment.cancellation_source == CancellationSource.CHANGED else NOT_BOOKED
    if appointment.slot.start > now:
        return NOT_STARTED
    return None


def appointment_outcome_recorders(user: AnyUser) -> list[int]:
    """The organisations whose sites' appointments `user` may record attendance for: any role."""
    return organisation_ids_for(user, roles=ANY_ROLE)


def appointment_outcome_lock(*, appointment_id: int) -> tuple[str, str, str]:
    """Lock one appointment's row (`FOR UPDATE OF` it alone) until the transaction ends; its
    (status, cancellation source, outcome) as they are under the lock."""
    return (
        Appointment.objects.select_for_update(of=("self",))
        .filter(pk=appointment_id)
        .values_list("status", "cancellation_source", "outcome")
        .get()
    )


def appointment_outcome_record(
    *, appointment: Appointment, outcome: Outcome, actor: AnyUser, now: datetime | None = None
) -> Outcome | None:
    """Record `outcome` for one appointment (already checked to be at the actor's sites).

    Locks the appointment's row (`SELECT ... FOR UPDATE`) and re-reads its status under the
    lock: a cancellation at the same moment either goes first, and this refuses, or waits for
    this and then leaves the appointment alone (appointment_cancel ends only an appointment
    without an outcome). Audited with the outcome it replaced. Returns that previous outcome
    (None when there was none). Raises OutcomeRefused with the reason.
    """
    now = now or timezone.now()
    refusal = appointment_outcome_refusal(appointment=appointment, now=now)
    if refusal:
        raise OutcomeRefused(refusal)
    with transaction.atomic():
        status, cancellation_source, current = appointment_outcome_lock(appointment_id=appointment.pk)
        if status != Appointment.Status.BOOKED:
            raise OutcomeRefused(CHANGED if cancellation_source == CancellationSource.CHANGED else NOT_BOOKED)
        Appointment.objects.filter(pk=appointment.pk).update(
            outcome=outcome, outcome_recorded_at=now, outcome_recorded_by=actor
        )
        previous = Outcome(current) if current else None
        audit_record(
            action=AuditEvent.Action.OUTCOME_RECORDED,
            actor=actor,
            organisation=appointment.slot.location.organisation,
            patient=appointment.patient,
            appointment=appointment,
            detail={"outcome": outcome.value, "previous": previous.value if previous else ""},
        )
    appointment.outcome, appointment.outcome_recorded_at = outcome, now
    return previous


@dataclass(frozen=True)
class Session:
    """A practitioner's list on one London day at one location."""

    practitioner_id: int
    location_id: int
    day: date

    @classmethod
    def of(cls, appointment: Appointment) -> Session:
        slot = appointment.slot
        return cls(slot.practitioner_id, slot.location_id, london_time(slot.start).date())

    @property
    def starts_from(self) -> datetime:
        # Midnight London time, whichever offset is in force that day (the clocks change at 1am or 2am).
        return datetime.combine(self.day, time.min, tzinfo=LONDON)

    @property
    def starts_before(self) -> datetime:
        return datetime.combine(self.day + timedelta(days=1), time.min, tzinfo=LONDON)


def session_mark_attended(*, appointment: Appointment, actor: AnyUser, now: datetime | None = None) -> int:
    """Mark every booked appointment without an outcome in `appointment`'s session, whose start has
    come, as attended. Returns how many were marked (0 when everyone already has an outcome).

    `appointment` names the session (its practitioner, location and London day) and has been
    checked to be at the actor's sites, so the whole session is. Locks the appointments it marks
    (`FOR UPDATE OF` the appointment rows only: the slots stay free for bookings) and re-reads
    them under the lock, so one cancelled meanwhile is left out; one transaction, so either all
    are marked and audited or none. Raises OutcomeRefused when the session hasn't begun.
    """
    now = now or timezone.now()
    session = Session.of(appointment)
    if (
        session.starts_from > now
        or not Appointment.objects.filter(
            slot__practitioner_id=session.practitioner_id,
            slot__location_id=session.location_id,
            slot__start__gte=session.starts_from,
            slot__start__lt=session.starts_before,
            slot__start__lte=now,
        ).exists()
    ):
        raise OutcomeRefused(SESSION_NOT_STARTED)
    with transaction.atomic():
        rows = list(
            Appointment.objects.select_for_update(of=("self",))
            .filter(
                status=Appointment.Status.BOOKED,
                outcome="",
                slot__practitioner_id=session.practitioner_id,
                slot__location_id=session.location_id,
                slot__start__gte=session.starts_from,
                slot__start__lt=session.starts_before,
                slot__start__lte=now,
            )
            .order_by("pk")
            .values_list("pk", "patient_id")
        )
        if not rows:
            return 0
        Appointment.objects.filter(pk__in=[pk for pk, _ in rows]).update(
            outcome=Outcome.ATTENDED, outcome_recorded_at=now, outcome_recorded_by=actor
        )
        audit_record_for_appointments(
            action=AuditEvent.Action.OUTCOME_RECORDED,
            actor=actor,
            organisation_id=appointment.slot.location.organisation_id,
            appointments=rows,
            detail={"outcome": Outcome.ATTENDED.value, "previous": "", "session": True},
        )
    return len(rows)
