"""Real `manage.py db_worker` processes against the test database and the fake Twilio API.

Several workers at once send each message once; a worker killed mid-send loses nothing (the
message is claimed again after its lease); the provider down for a while, then back: every
message sent once, none lost. The one duplicate the design allows is shown too: a worker that
dies after Twilio accepted a message, before it could record that, means the same text (same
link) goes twice.

The workers share a busy machine with the rest of the suite, so every wait is for a condition
with a generous deadline, never a fixed sleep, and nothing asserts how long anything took.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from django.test import override_settings
from django.utils import timezone

from booking.links import LinkExpiry
from messaging.models import Message
from messaging.sending import LinkSettings, message_send
from messaging.tasks import messages_requeue
from tests.factories import PatientFactory
from tests.fakes.twilio import AcceptThenHang, Answer, Hang, Slow
from tests.scenarios import make_practice
from tests.workers import DATABASE_TASKS, DEADLINE_SECONDS, LEASE_SECONDS, Workers, all_final

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def workers(fake_twilio, tmp_path):
    running = Workers(fake_twilio, tmp_path)
    yield running
    fake_twilio.release()
    running.stop()


def queue_messages(count: int) -> list[Message]:
    """`count` messages to different patients, each with its link, on the database queue."""
    practice = make_practice()
    patients = [practice.patient] + [
        PatientFactory(organisation=practice.organisation, mobile=f"+4474001{i:05d}") for i in range(1, count)
    ]
    messages = []
    with override_settings(TASKS=DATABASE_TASKS):
        for patient in patients:
            message, _ = message_send(
                sender=practice.user,
                patient=patient,
                channel="sms",
                body="Hello {{Patient First Name}}, book here: {{Appointment Link}}",
                link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14),
                idempotency_key=uuid.uuid4(),
            )
            messages.append(message)
    return messages


def wait_until(
    condition: Callable[[], bool], *, what: str, explain: Callable[[], str] = str, timeout: float = DEADLINE_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")


def wait_for_the_lease_to_lapse(message: Message) -> None:
    """Until our clock (the one the sweep reads) is past the lease the dead worker's claim set."""
    message.refresh_from_db()
    lease_expires_at = message.lease_expires_at
    assert lease_expires_at is not None
    wait_until(lambda: timezone.now() > lease_expires_at, what="the dead worker's lease to lapse")


def references_accepted(fake_twilio) -> list[str]:
    return [request.form["StatusCallback"].rstrip("/").rpartition("/")[2] for request in fake_twilio.accepted()]


def test_three_workers_at_once_send_each_message_once(fake_twilio, workers):
    fake_twilio.always(Slow(0.02))
    messages = queue_messages(24)
    workers.start(3)

    wait_until(all_final, what="every message to be sent", explain=workers.report)

    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    accepted = references_accepted(fake_twilio)
    assert sorted(accepted) == sorted(message.reference for message in messages)
    assert len(fake_twilio.requests) == 24


def test_the_provider_down_for_a_while_then_back_every_message_sent_once_none_lost(fake_twilio, workers):
    fake_twilio.then(*[Answer(503)] * 20, *[Answer(429)] * 4)
    messages = queue_messages(12)
    workers.start(2)

    wait_until(all_final, what="every message to be sent after the outage", explain=workers.report)

    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    assert sorted(references_accepted(fake_twilio)) == sorted(message.reference for message in messages)
    assert len(fake_twilio.requests) == 36  # 24 refused, 12 accepted
    assert Message.objects.filter(attempts__gt=1).exists()


def test_a_worker_killed_mid_send_loses_nothing(fake_twilio, workers):
    fake_twilio.then(Hang())
    (message,) = queue_messages(1)
    (first,) = workers.start(1)
    fake_twilio.wait_for_requests(1, timeout=DEADLINE_SECONDS)

    first.kill()  # SIGKILL: no chance to tidy up
    first.wait()
    message.refresh_from_db()
    assert message.status == Message.Status.SENDING

    # Nothing picks it up while the dead worker's lease lasts, up to its last moment (a time
    # given, not read from the clock: a busy machine may take longer than the lease to get
    # here); after it, the sweep queues it again.
    with override_settings(TASKS=DATABASE_TASKS, DELIVERY_LEASE_SECONDS=LEASE_SECONDS):
        assert messages_requeue(now=message.lease_expires_at) == 0
        wait_for_the_lease_to_lapse(message)
        assert messages_requeue() == 1
    workers.start(1)

    wait_until(all_final, what="the message to be sent by the second worker", explain=workers.report)
    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert message.attempts == 2
    assert len(fake_twilio.accepted()) == 1


def test_the_at_least_once_window_a_worker_dying_after_twilio_accepted_sends_the_same_text_twice(fake_twilio, workers):
    fake_twilio.then(AcceptThenHang())
    (message,) = queue_messages(1)
    (first,) = workers.start(1)
    fake_twilio.wait_for_requests(1, timeout=DEADLINE_SECONDS)
    first.kill()
    first.wait()

    with override_settings(TASKS=DATABASE_TASKS, DELIVERY_LEASE_SECONDS=LEASE_SECONDS):
        wait_for_the_lease_to_lapse(message)
        assert messages_requeue() == 1
    workers.start(1)
    wait_until(all_final, what="the message to be sent again", explain=workers.report)

    first_copy, second_copy = fake_twilio.accepted()
    assert first_copy.form["Body"] == second_copy.form["Body"]  # same text, same link
    message.refresh_from_db()
    assert message.provider_message_id == second_copy.sid
