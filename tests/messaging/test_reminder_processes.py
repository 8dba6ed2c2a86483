"""Two `manage.py send_reminders` processes at once, on the test's own database, send each reminder once."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connections, transaction
from django_tasks_db.models import DBTaskResult

from messaging.models import Message, Reminder
from messaging.reminders import _due_appointments
from tests.concurrency import lock_waiters, race, wait_until
from tests.factories import PractitionerFactory
from tests.scenarios import make_booked_appointment
from tests.workers import DEADLINE_SECONDS, ROOT, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2026, 12, 7, 19, 0, tzinfo=LONDON)
DUE = 250  # more than one batch each


@pytest.fixture
def due_appointments(practice):
    start = datetime(2026, 12, 8, 8, 0, tzinfo=LONDON)
    practitioners = PractitionerFactory.create_batch(10, organisation=practice.organisation)
    return [
        make_booked_appointment(
            practice,
            start=start + timedelta(minutes=10 * (i // 10)),
            booked_at=NOW - timedelta(days=7),
            practitioner=practitioners[i % 10],
        )
        for i in range(DUE)
    ]


class ReminderInsertsHeld:
    """Hold back inserts into the reminder table (a SHARE ROW EXCLUSIVE lock) from a second connection.

    Reads go on, so both runs select the same due appointments and then wait at their claim:
    released together, they really do claim the same reminders at once.
    """

    def __init__(self) -> None:
        self.holding, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._hold)

    def _hold(self) -> None:
        try:
            with transaction.atomic(), connections["default"].cursor() as cursor:
                cursor.execute(f"LOCK TABLE {Reminder._meta.db_table} IN SHARE ROW EXCLUSIVE MODE")
                self.holding.set()
                self.release.wait(timeout=DEADLINE_SECONDS)
        finally:
            connections.close_all()

    def __enter__(self) -> ReminderInsertsHeld:
        self.thread.start()
        assert self.holding.wait(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(timeout=60)


def test_two_runs_at_once_queue_each_reminder_once(due_appointments, fake_twilio):
    environment = worker_environment(fake_twilio)
    command = [sys.executable, "manage.py", "send_reminders", "--now", NOW.isoformat()]
    with ReminderInsertsHeld():
        processes = [
            subprocess.Popen(
                command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
            for _ in range(2)
        ]
        # Both have read the same due appointments and wait to claim them.
        assert wait_until(lambda: lock_waiters() == 2, timeout=DEADLINE_SECONDS)
    outputs = [process.communicate(timeout=DEADLINE_SECONDS)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    queued = [int(re.search(r"Queued (\d+) reminder", output).group(1)) for output in outputs]
    assert sum(queued) == DUE, outputs
    assert Reminder.objects.count() == DUE
    assert Message.objects.filter(reminder__isnull=False).count() == DUE
    assert Reminder.objects.filter(message__isnull=True).count() == 0
    # One delivery task per message, none twice.
    message_ids = [row.args_kwargs["kwargs"]["message_id"] for row in DBTaskResult.objects.all()]
    assert sorted(message_ids) == sorted(Message.objects.filter(reminder__isnull=False).values_list("pk", flat=True))


def test_control_both_runs_select_the_same_due_appointments_so_the_claim_is_what_keeps_it_once(due_appointments):
    # Without the claim (INSERT ... ON CONFLICT DO NOTHING), two sweeps at once would each write
    # a message for every one of these: they read the same due appointments.
    def select(_: int) -> list[int]:
        with transaction.atomic():
            return list(_due_appointments(kind="1d", now=NOW).order_by("pk").values_list("pk", flat=True)[:200])

    first, second = race(select, threads=2)
    assert len(first) == 200
    assert first == second
