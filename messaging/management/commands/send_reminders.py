"""Queue the reminders due now, once each: what the scheduler does every minute, run by hand.

Safe to run at any time and as often as you like, even beside the scheduler: a reminder that
was queued already is never queued again (messaging/reminders.py). Outside 08:00-20:00 London
time it queues nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from messaging.reminders import reminders_in_sending_hours
from messaging.tasks import reminders_send


class Command(BaseCommand):
    help = "Queue the reminders due now (once each; nothing outside 08:00-20:00 London time)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--now",
            metavar="MOMENT",
            help="Act as if it were this moment (ISO 8601 with its offset, like 2026-12-07T10:00+00:00): "
            "for tests and rehearsals on a copy of the data, never to send early.",
        )

    def handle(self, *args: object, now: str | None = None, **options: Any) -> None:
        moment = None
        if now:
            try:
                moment = datetime.fromisoformat(now)
            except ValueError:
                raise CommandError(f"{now!r} is not a moment: use ISO 8601, like 2026-12-07T10:00+00:00.") from None
            if moment.tzinfo is None:
                raise CommandError("Give --now with its offset (like +00:00), so the moment is not ambiguous.")
        run = reminders_send(now=moment)
        if not reminders_in_sending_hours(moment or timezone.now()):
            self.stdout.write("Queued 0 reminders: none go outside 08:00-20:00 London time (those due wait for 08:00).")
            return
        self.stdout.write(
            f"Queued {run.queued} reminder{'s' if run.queued != 1 else ''}"
            + (f"; {run.not_sent} could reach nobody and were not sent." if run.not_sent else ".")
        )
