"""Check the uploaded lists of campaigns still being checked: what the scheduler does every 5 seconds, run by hand.

Safe at any time and beside the scheduler: each batch of rows is checked under a lock on its
campaign's row, once (messaging/campaigns/checks.py).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from messaging.campaigns.checks import campaign_lists_check


class Command(BaseCommand):
    help = "Check the rows of every campaign list still being checked (the scheduler does this every 5 seconds)."

    def handle(self, *args: object, **options: Any) -> None:
        rows = campaign_lists_check()
        self.stdout.write(f"Checked {rows} row{'s' if rows != 1 else ''} of campaign lists.")
