"""The `--now MOMENT` option of the commands that run a scheduler job once by hand.

send_reminders, pace_campaigns and send_campaign_follow_ups can act as if it were another
moment, for tests and rehearsals on a copy of the data: one option, read one way.
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import CommandError, CommandParser


def now_argument_add(parser: CommandParser) -> None:
    parser.add_argument(
        "--now",
        metavar="MOMENT",
        help="Act as if it were this moment (ISO 8601 with its offset, like 2026-12-07T10:00+00:00): "
        "for tests and rehearsals on a copy of the data, never to send early.",
    )


def now_argument_read(now: str | None) -> datetime | None:
    """The moment `--now` gave, or None for the real time. Raises CommandError for one that isn't a moment."""
    if not now:
        return None
    try:
        moment = datetime.fromisoformat(now)
    except ValueError:
        raise CommandError(f"{now!r} is not a moment: use ISO 8601, like 2026-12-07T10:00+00:00.") from None
    if moment.tzinfo is None:
        raise CommandError("Give --now with its offset (like +00:00), so the moment is not ambiguous.")
    return moment
