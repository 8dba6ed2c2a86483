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

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from booking.links import LinkExpiry
from messaging.models import Message
from messaging.sending import LinkSettings, message_send
from messaging.tasks import messages_requeue
from tests.factories import PatientFactory
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN, AcceptThenHang, Answer, Hang, Slow
from tests.scenarios import make_practice

ROOT = Path(__file__).resolve().parents[2]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LEASE_SECONDS = 2
# How long a wait may take before the test fails. Only a failing test waits this long; a
# passing one goes on as soon as its condition holds.
DEADLINE_SECONDS = 180

pytestmark = pytest.mark.django_db(transaction=True)


def worker_environment(fake_twilio) -> dict[str, str]:
    environment = {
        **os.environ,
        "TASKS_BACKEND": "django_tasks_db.DatabaseBackend",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_twilio.url,
        "TWILIO_SENDER_ID": "RIVERSIDE",
        # Longer than the fake ever takes, however busy the machine: a client that gave up on an
        # answer the fake had already decided (accepted) would send the text a second time.
        "TWILIO_TIMEOUT_SECONDS": "60",
        "DELIVERY_RETRY_BASE_SECONDS": "0.1",
        "DELIVERY_RETRY_MAX_SECONDS": "0.5",
        "DELIVERY_MAX_ATTEMPTS": "50",
        "DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS),
    }
    # The workers use this test's database, on the same server.
    if os.environ.get("DATABASE_URL"):
        base, _, _ = os.environ["DATABASE_URL"].rpartition("/")
        environment["DATABASE_URL"] = f"{base}/{connection.settings_dict['NAME']}"
    else:
        environment["EMBEDDED_DATABASE_NAME"] = connection.settings_dict["NAME"]
    return environment


class Workers:
    def __init__(self, fake_twilio, log_folder: Path) -> None:
        self.environment = worker_environment(fake_twilio)
        self.log_folder = log_folder
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def start(self, count: int = 1) -> list[subprocess.Popen]:
        started = []
        for _ in range(count):
            # A file, not a pipe nobody reads: a worker that filled the pipe would block on its
            # next log line (the twilio SDK logs every request).
            log = self.log_folder / f"worker-{len(self.logs) + 1}.log"
            self.logs.append(log)
            with log.open("wb") as output:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "manage.py", "db_worker", "--interval", "0.05", "--no-startup-delay"],
                        cwd=ROOT,
                        env=self.environment,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                    )
                )
        self.processes.extend(started)
        return started

    def report(self) -> str:
        """What the messages and the workers were doing, for a wait that timed out."""
        statuses = sorted(Message.objects.values_list("status", "attempts"))
        lines = [f"messages (status, attempts): {statuses}"]
        for log in self.logs:
            lines += [f"--- {log.name}", *log.read_text(errors="replace").splitlines()[-15:]]
        return "\n".join(lines)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


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


def all_final() -> bool:
    return not Message.objects.exclude(status__in=["sent", "delivered", "failed"]).exists()


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
