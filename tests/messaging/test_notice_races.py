"""Two workers writing the same notice at once (a task run twice, or a task and the sweep's) tell
the patient once: the database's unique key on the appointment decides, on real threads.

Both threads are held until each has passed the "already written?" check, so both really
insert; the control drops the unique key and shows the patient would then be told twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import override_settings

import messaging.confirmations
from booking.appointments import appointment_book, appointment_cancel
from booking.models import Appointment, CancellationSource, Slot
from messaging.confirmations import cancellation_send, confirmation_send
from messaging.models import Message
from tests.concurrency import race
from tests.factories import MessageFactory
from tests.scenarios import make_change, make_link, make_practice

pytestmark = pytest.mark.django_db(transaction=True)

NO_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def no_enqueue(**kwargs: object) -> None:
    """Delivery is not the point here: the message is only written."""


def cancelled() -> Appointment:
    """An appointment booked through a texted link and cancelled by the patient; nobody told yet."""
    practice = make_practice()
    link = make_link(practice)
    MessageFactory(patient=practice.patient, booking_link=link, channel="sms", to_address=practice.patient.mobile)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start").first()
    with override_settings(TASKS=NO_TASKS):
        appointment = appointment_book(link_id=link.pk, slot_id=slot.pk)
        appointment_cancel(appointment=appointment, actor=None, source=CancellationSource.PATIENT)
    return appointment


def changed() -> Appointment:
    """The new appointment of a change, not yet confirmed."""
    practice = make_practice()
    link = make_link(practice)
    MessageFactory(patient=practice.patient, booking_link=link, channel="sms", to_address=practice.patient.mobile)
    first, second = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start")[:2]
    with override_settings(TASKS=NO_TASKS):
        appointment = appointment_book(link_id=link.pk, slot_id=first.pk)
        return make_change(appointment, second)


KINDS = {
    "cancellation": (cancelled, cancellation_send, "cancellation_of_id"),
    "change confirmation": (changed, confirmation_send, "confirms_id"),
}


def both_past_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold each writer after its "already written?" check until the other has passed it too."""
    barrier = threading.Barrier(2, timeout=30)
    real = messaging.confirmations._channel_for

    def after_the_check(appointment: Appointment) -> object:
        barrier.wait()
        return real(appointment)

    monkeypatch.setattr(messaging.confirmations, "_channel_for", after_the_check)


def two_workers(send: Callable[..., Message | None], appointment: Appointment) -> list[object]:
    return race(lambda i: send(appointment_id=appointment.pk, enqueue=no_enqueue), threads=2)


def unique_key(field: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'messaging_message'::regclass AND contype = 'u' "
            "AND conkey = ARRAY[(SELECT attnum FROM pg_attribute WHERE attrelid = 'messaging_message'::regclass "
            "AND attname = %s)]",
            [field],
        )
        (name,) = cursor.fetchone()
    return name


@pytest.mark.parametrize("kind", KINDS)
def test_two_workers_at_once_write_it_once(kind, monkeypatch):
    make, send, field = KINDS[kind]
    appointment = make()
    both_past_the_check(monkeypatch)
    results = two_workers(send, appointment)
    assert sorted(type(result).__name__ for result in results) == ["Message", "NoneType"], results
    assert Message.objects.filter(**{field: appointment.pk}).count() == 1


@pytest.mark.parametrize("kind", KINDS)
def test_control_without_the_unique_key_the_patient_is_told_twice(kind, monkeypatch):
    make, send, field = KINDS[kind]
    appointment = make()
    name = unique_key(field)
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE messaging_message DROP CONSTRAINT "{name}"')
    try:
        both_past_the_check(monkeypatch)
        results = two_workers(send, appointment)
        assert all(isinstance(result, Message) for result in results), results
        assert Message.objects.filter(**{field: appointment.pk}).count() == 2
    finally:
        Message.objects.filter(**{field: appointment.pk}).delete()
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER TABLE messaging_message ADD CONSTRAINT "{name}" UNIQUE ("{field}")')
