"""Run the periodic jobs until stopped (hero/scheduler.py): one process beside the web and the workers.

`--once` runs each job once now and exits, for cron or a timer instead of a long-running
process. Two schedulers at once are safe: a job runs in one of them at a time.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from hero.scheduler import JOBS, scheduler_build, scheduler_job_run


class Command(BaseCommand):
    help = (
        "Run the periodic jobs until stopped: reminders and the delivery sweep every minute, slot "
        "generation and pruning old task results daily. --once runs each once and exits."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Run each job once now, then exit.")

    def handle(self, *args: object, once: bool, **options: Any) -> None:
        if once:
            for job in JOBS:
                self.stdout.write(f"{job.name}: {scheduler_job_run(job)}")
            return
        scheduler = scheduler_build()

        def stop(signum: int, frame: FrameType | None) -> None:
            # Let a job that is running finish (its transaction commits or rolls back whole).
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.stdout.write(
            "Scheduler running: " + ", ".join(job.name for job in JOBS) + ". Ctrl-C or SIGTERM stops it.",
        )
        self.stdout.flush()
        scheduler.start()
