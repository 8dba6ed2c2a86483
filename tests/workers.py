"""Real `manage.py db_worker` processes on the test's own database, for the tests that need them.

tests/messaging/test_workers.py (several workers, killed workers, an outage) and
tests/messaging/test_delivery_never_strands.py (transports that raise anything) start them
with `Workers`, pointed at the fake Twilio API. They share a busy machine with the rest of the
suite: wait for conditions with generous deadlines, never a fixed sleep.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from django.db import connection

from messaging.models import Message
from tests.fakes.twilio import ACCOUNT_SID, AUTH_TOKEN

ROOT = Path(__file__).resolve().parents[1]
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
LEASE_SECONDS = 2
# How long a wait may take before the test fails. Only a failing test waits this long; a
# passing one goes on as soon as its condition holds.
DEADLINE_SECONDS = 180


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


def all_final() -> bool:
    return not Message.objects.exclude(status__in=["sent", "delivered", "failed"]).exists()
