from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from hero import embedded_postgres


class Command(BaseCommand):
    help = "Start, stop or show the project's embedded PostgreSQL (used when DATABASE_URL is unset)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "stop", "status", "url"])

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "hero.db_backend":
            raise CommandError("DATABASE_URL is set, so the embedded PostgreSQL is not in use.")
        name = settings.DATABASES["default"]["NAME"]
        if action == "stop":
            stopped = embedded_postgres.stop()
            self.stdout.write("Stopped." if stopped else "It was not running.")
        elif action == "status":
            running = embedded_postgres.is_running()
            self.stdout.write(f"{'Running' if running else 'Not running'}; data in {embedded_postgres.DATA_DIR}")
        else:
            socket_dir = embedded_postgres.ensure_running(database=name)
            if action == "url":
                self.stdout.write(f"postgresql://{embedded_postgres.SUPERUSER}@/{name}?host={socket_dir}")
            else:
                self.stdout.write(f"Running; socket in {socket_dir}; data in {embedded_postgres.DATA_DIR}")
