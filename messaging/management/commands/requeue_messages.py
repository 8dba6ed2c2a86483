"""Queue delivery again for messages a dead worker left behind, or retries nobody picked up.

Run it next to the workers, once (`manage.py requeue_messages`, from cron or a timer) or as a
process of its own (`--every 60`). Queuing a message twice is harmless: only one claim wins.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from messaging.tasks import messages_requeue


class Command(BaseCommand):
    help = "Queue delivery again for messages whose worker died or whose retry was not picked up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--every", type=float, default=0, metavar="SECONDS", help="Keep running, sweeping every SECONDS."
        )

    def handle(self, *args: object, every: float, **options: Any) -> None:
        while True:
            close_old_connections()
            count = messages_requeue()
            if count or options["verbosity"] > 1:
                self.stdout.write(f"Queued {count} message{'s' if count != 1 else ''} again.")
            if not every:
                return
            time.sleep(every)
