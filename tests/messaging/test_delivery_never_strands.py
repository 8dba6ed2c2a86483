"""Hostile: transports that raise anything, under real `manage.py db_worker` processes and the sweep.

Whatever a transport raises (a ValueError like Django's refused header, a KeyError, the Twilio
client's own error, a timeout) or however its worker dies, every message ends sent, or failed
with a reason staff can read, and no message is tried more than DELIVERY_MAX_ATTEMPTS times.
The workers are real processes on this test's database (tests/workers.py); the
test plays the scheduler, running the sweep and starting a worker when one died.

Every wait is for a condition with a generous deadline, never a fixed sleep, and nothing
asserts how long anything took: the machine is shared with the rest of the suite.
"""

from __future__ import annotations

import time
import uuid

import pytest
from django.test import override_settings

from messaging.models import Message
from messaging.sending import message_send
from messaging.tasks import messages_requeue
from tests.factories import PatientFactory
from tests.scenarios import make_practice
from tests.workers import DATABASE_TASKS, DEADLINE_SECONDS, LEASE_SECONDS, Workers, all_final

pytestmark = pytest.mark.django_db(transaction=True)

MAX_ATTEMPTS = 3
UNEXPECTED = "an unexpected error ({}) — the details are in the server log."

# The case written in each text (tests/fakes/sms.py), and how its message must end.
CASES = {
    "ok": ("sent", 1, ""),
    "keyerror-1": ("sent", 2, ""),
    "requeststimeout-2": ("sent", 3, ""),
    "valueerror": ("failed", 3, "Not sent after 3 tries. Last: " + UNEXPECTED.format("ValueError")),
    "keyerror": ("failed", 3, "Not sent after 3 tries. Last: " + UNEXPECTED.format("KeyError")),
    "clienterror": ("failed", 3, "Not sent after 3 tries. Last: " + UNEXPECTED.format("TwilioRestException")),
    "timeouterror": ("failed", 3, "Not sent after 3 tries. Last: " + UNEXPECTED.format("TimeoutError")),
    "crash": ("failed", 3, "Not sent after 3 tries. Last: the try didn't finish"),
}


@pytest.fixture
def unreliable_workers(fake_twilio, tmp_path):
    running = Workers(fake_twilio, tmp_path)
    running.environment |= {
        "SMS_BACKEND": "tests.fakes.sms.UnreliableSmsBackend",
        "DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }
    yield running
    running.stop()


def queue_cases() -> dict[str, Message]:
    practice = make_practice()
    messages = {}
    with override_settings(TASKS=DATABASE_TASKS):
        for i, case in enumerate(CASES):
            patient = PatientFactory(organisation=practice.organisation, mobile=f"+4474002{i:05d}")
            messages[case], _ = message_send(
                sender=practice.user,
                patient=patient,
                channel="sms",
                body=f"Hello {{{{Patient First Name}}}}, case {case}",
                link=None,
                idempotency_key=uuid.uuid4(),
            )
    return messages


def run_like_the_scheduler(workers: Workers) -> None:
    """Sweep and keep a worker alive until every message is final, or fail with what was going on."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    with override_settings(
        TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=MAX_ATTEMPTS, DELIVERY_LEASE_SECONDS=LEASE_SECONDS
    ):
        while not all_final():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for every message to end\n{workers.report()}")
            if all(process.poll() is not None for process in workers.processes):
                workers.start(1)  # the last one died (the "crash" case): as a supervisor would
            messages_requeue()
            time.sleep(0.2)


def test_whatever_a_transport_raises_every_message_ends_sent_or_failed_with_a_reason(unreliable_workers):
    messages = queue_cases()
    unreliable_workers.start(2)

    run_like_the_scheduler(unreliable_workers)

    for case, (status, attempts, reason) in CASES.items():
        message = Message.objects.get(pk=messages[case].pk)
        assert (case, message.status, message.attempts) == (case, status, attempts)
        assert message.failure_reason.startswith(reason), case
        assert message.attempts <= MAX_ATTEMPTS
    # Nothing is left for the sweep: a message that had all its tries is never queued again.
    with override_settings(TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=MAX_ATTEMPTS):
        assert messages_requeue() == 0
    # Each unexpected error is in a worker's log with its traceback.
    logs = "\n".join(log.read_text(errors="replace") for log in unreliable_workers.logs)
    assert "Traceback" in logs
    for error in ("ValueError", "KeyError", "TwilioRestException", "TimeoutError"):
        assert error in logs
