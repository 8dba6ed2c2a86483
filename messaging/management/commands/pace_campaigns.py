"""Make the campaign invitations due now, at each campaign's pace: what the scheduler does every minute.

Safe to run at any time, even beside the scheduler: each row of a campaign's list is invited
once (messaging/campaigns/pacing.py). Outside 08:00-20:00 London time it makes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from messaging.campaigns.pacing import campaigns_pace


class Command(BaseCommand):
    help = "Make the campaign invitations due now (each once; nothing outside 08:00-20:00 London time)."

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
        run = campaigns_pace(now=moment)
        self.stdout.write(
            f"Made {run.invited} invitation{'s' if run.invited != 1 else ''} for {run.campaigns} "
            f"campaign{'s' if run.campaigns != 1 else ''}"
            + (f"; {run.unreachable} patients could no longer be reached." if run.unreachable else ".")
        )
