"""Make the campaign invitations due now, at each campaign's pace: what the scheduler does every minute.

Safe to run at any time, even beside the scheduler: each row of a campaign's list is invited
once (messaging/campaigns/pacing.py). Outside 08:00-20:00 London time it makes nothing.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from messaging.campaigns.pacing import campaigns_pace
from messaging.management.moments import now_argument_add, now_argument_read


class Command(BaseCommand):
    help = "Make the campaign invitations due now (each once; nothing outside 08:00-20:00 London time)."

    def add_arguments(self, parser: CommandParser) -> None:
        now_argument_add(parser)

    def handle(self, *args: object, now: str | None = None, **options: Any) -> None:
        moment = now_argument_read(now)
        run = campaigns_pace(now=moment)
        self.stdout.write(
            f"Made {run.invited} invitation{'s' if run.invited != 1 else ''} for {run.campaigns} "
            f"campaign{'s' if run.campaigns != 1 else ''}"
            + (f"; {run.unreachable} patients could no longer be reached." if run.unreachable else ".")
        )
