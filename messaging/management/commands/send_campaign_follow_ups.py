"""Queue the campaigns' follow-ups due now, once each: what the scheduler does every minute, run by hand.

Safe to run at any time and as often as you like, even beside the scheduler: a follow-up that
was queued already is never queued again (messaging/campaigns/follow_ups.py). Outside
08:00-20:00 London time it queues nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from messaging.campaigns.follow_ups import campaign_follow_ups_send
from messaging.management.moments import now_argument_add, now_argument_read
from messaging.reminders import reminders_in_sending_hours


class Command(BaseCommand):
    help = "Queue the campaigns' follow-ups due now (once each; nothing outside 08:00-20:00 London time)."

    def add_arguments(self, parser: CommandParser) -> None:
        now_argument_add(parser)

    def handle(self, *args: object, now: str | None = None, **options: Any) -> None:
        moment = now_argument_read(now)
        queued = campaign_follow_ups_send(now=moment)
        if not reminders_in_sending_hours(moment or timezone.now()):
            self.stdout.write("Queued 0 follow-ups: none go outside 08:00-20:00 London time (due ones wait for 08:00).")
            return
        self.stdout.write(f"Queued {queued} follow-up{'s' if queued != 1 else ''}.")
