"""Recording attendance against a cancellation of the same appointment, on the real database.

An outcome belongs only to an appointment that stayed booked. Recording locks the appointment's
row and reads its status again under the lock; cancelling ends only an appointment without an
outcome, in a conditional UPDATE that waits for that lock. Each test makes one interleaving
certain (a pause inside one side while the other runs); the controls take the guard away and
show the race then reaches the database's check constraint, the last guard, as an error.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError
from django.utils import timezone

import booking.outcomes
from booking.appointments import appointment_cancel
from booking.exceptions import OutcomeRefused
from booking.models import Appointment, AuditEvent, Outcome
from booking.outcomes import NOT_BOOKED, appointment_outcome_record
from tests.concurrency import PauseAt, in_thread, lock_waiters, wait_until
from tests.scenarios import Practice, book_at, make_practice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def practice_and_appointment() -> tuple[Practice, Appointment]:
    practice = make_practice()
    appointment = book_at(practice, timezone.now() - timedelta(hours=1))
    return practice, Appointment.objects.select_related("slot__location", "patient").get(pk=appointment.pk)


def cancel_during_recording(practice: Practice, appointment: Appointment, monkeypatch) -> object:
    """Start recording, stop it after its check (the appointment was booked), cancel and commit,
    then let the recording go on. Returns what the recording returned or raised."""
    with PauseAt(monkeypatch, booking.outcomes, "appointment_outcome_lock") as pause:
        recorder, recorded = in_thread(
            lambda: appointment_outcome_record(appointment=appointment, outcome=Outcome.ATTENDED, actor=practice.user)
        )
        assert pause.reached.wait(timeout=30), "the recording never got past its check"
        assert appointment_cancel(appointment=appointment, actor=practice.user) is True
    recorder.join(timeout=30)
    return recorded[0]


def test_a_cancellation_after_the_check_is_seen_under_the_lock(practice_and_appointment, monkeypatch):
    practice, appointment = practice_and_appointment
    result = cancel_during_recording(practice, appointment, monkeypatch)
    assert isinstance(result, OutcomeRefused), result
    assert result.message == NOT_BOOKED
    assert Appointment.objects.filter(pk=appointment.pk, status="cancelled", outcome="").exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.OUTCOME_RECORDED).exists()


def test_control_without_the_locked_read_the_recording_writes_onto_a_cancelled_appointment(
    practice_and_appointment, monkeypatch
):
    practice, appointment = practice_and_appointment
    # The check before the lock is all there is: the row as it was read, booked.
    monkeypatch.setattr(
        booking.outcomes,
        "appointment_outcome_lock",
        lambda *, appointment_id: ("booked", "", ""),
    )
    result = cancel_during_recording(practice, appointment, monkeypatch)
    assert isinstance(result, IntegrityError), result  # only the check constraint stopped it
    assert "appointment_outcome_only_when_booked" in str(result)


def record_during_cancellation(practice: Practice, appointment: Appointment, monkeypatch, cancel) -> object:
    """Record an outcome and hold its transaction open (row locked, outcome written) while a
    cancellation starts and waits; then commit. Returns what the cancellation returned or raised."""
    with PauseAt(monkeypatch, booking.outcomes, "audit_record") as pause:
        recorder, recorded = in_thread(
            lambda: appointment_outcome_record(
                appointment=appointment, outcome=Outcome.DID_NOT_ATTEND, actor=practice.user
            )
        )
        assert pause.reached.wait(timeout=30), "the recording never wrote"
        canceller, cancelled = in_thread(cancel)
        assert wait_until(lambda: lock_waiters() >= 1), "the cancellation didn't wait for the recording"
    recorder.join(timeout=30)
    canceller.join(timeout=30)
    assert recorded == [None], recorded
    return cancelled[0]


def test_a_cancellation_waiting_for_a_recording_leaves_the_appointment_alone(practice_and_appointment, monkeypatch):
    practice, appointment = practice_and_appointment
    result = record_during_cancellation(
        practice, appointment, monkeypatch, lambda: appointment_cancel(appointment=appointment, actor=practice.user)
    )
    assert result is False
    assert Appointment.objects.filter(pk=appointment.pk, status="booked", outcome="did_not_attend").exists()


def test_control_a_cancellation_that_ignores_the_outcome_hits_the_check_constraint(
    practice_and_appointment, monkeypatch
):
    practice, appointment = practice_and_appointment

    def cancel_regardless() -> int:
        return Appointment.objects.filter(pk=appointment.pk, status="booked").update(
            status="cancelled", cancelled_at=timezone.now(), cancellation_source="practice", cancellation_reason="other"
        )

    result = record_during_cancellation(practice, appointment, monkeypatch, cancel_regardless)
    assert isinstance(result, IntegrityError), result
    assert "appointment_outcome_only_when_booked" in str(result)
