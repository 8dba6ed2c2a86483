from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hero.demo import seed_demo


class Command(BaseCommand):
    help = (
        "Load demo data: two practices and a PCN hub, their locations, practitioners, appointment "
        "types, rotas and four weeks of slots, 50 patients and one staff login per organisation. "
        "Safe to run again: it changes nothing the second time (demo passwords are reset)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--allow-without-debug",
            action="store_true",
            help="Run even with DEBUG off (a demo or staging server). Never on a live practice's database.",
        )

    def handle(self, *args: Any, allow_without_debug: bool = False, **options: Any) -> None:
        if not settings.DEBUG and not allow_without_debug:
            raise CommandError(
                "seed_demo adds demo logins with a published password, so it runs only with DEBUG on. "
                "For a demo server, pass --allow-without-debug."
            )
        result = seed_demo()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready: {result.slots.created} new slots ({result.slots.already_there} already there)."
            )
        )
        self.stdout.write("\nStaff logins (password for each shown beside it):")
        for username, password, purpose in result.logins:
            self.stdout.write(f"  {username:<10} {password:<20} {purpose}")
