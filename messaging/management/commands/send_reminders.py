"""Queue the reminders due now, once each: what the scheduler does every minute, run by hand.

Safe to run at any time and as often as you like, even beside the scheduler: a reminder that
was queued already is never queued again (messaging/reminders.py). Outside 08:00-20:00 London
time it queues nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from messaging.management.moments import now_argument_add, now_argument_read
from messaging.reminders import reminders_in_sending_hours
from messaging.tasks import reminders_send


class Command(BaseCommand):
    help = "Queue the reminders due now (once each; nothing outside 08:00-20:00 London time)."

    def add_arguments(self, parser: CommandParser) -> None:
        now_argument_add(parser)

    def handle(self, *args: object, now: str | None = None, **options: Any) -> None:
        moment = now_argument_read(now)
        run = reminders_send(now=moment)
        if not reminders_in_sending_hours(moment or timezone.now()):
            self.stdout.write("Queued 0 reminders: none go outside 08:00-20:00 London time (those due wait for 08:00).")
            return
        self.stdout.write(
            f"Queued {run.queued} reminder{'s' if run.queued != 1 else ''}"
            + (f"; {run.not_sent} could reach nobody and were not sent." if run.not_sent else ".")
        )
