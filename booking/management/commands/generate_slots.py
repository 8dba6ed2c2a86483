from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from booking.models import Rota
from booking.slots import slots_generate_from_rotas


def _parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: use YYYY-MM-DD, like 2026-12-01.") from None


class Command(BaseCommand):
    help = (
        "Generate free slots from active rotas for a date range (inclusive), skipping England and "
        "Wales bank holidays. Idempotent: a second run creates nothing. Run it daily from cron to "
        "keep slots ahead of the booking window."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from", dest="start", help="First date, YYYY-MM-DD (default: today).")
        parser.add_argument("--to", dest="end", help="Last date, YYYY-MM-DD (default: --days after --from).")
        parser.add_argument(
            "--days", type=int, default=28, help="Days to generate when --to is not given (default 28)."
        )
        parser.add_argument("--rota", type=int, action="append", help="Only this rota id (repeatable).")

    def handle(
        self,
        *args: Any,
        start: str | None = None,
        end: str | None = None,
        days: int = 28,
        rota: list[int] | None = None,
        **options: Any,
    ) -> None:
        start_date = _parse_date(start) if start else timezone.localdate()
        if end:
            end_date = _parse_date(end)
        else:
            if days < 1:
                raise CommandError("--days must be at least 1.")
            end_date = start_date + timedelta(days=days - 1)
        if end_date < start_date:
            raise CommandError("--to must be on or after --from.")
        rotas = Rota.objects.filter(is_active=True).order_by("pk")
        if rota:
            rotas = rotas.filter(pk__in=rota)
            missing = set(rota) - set(rotas.values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No active rota with id {', '.join(map(str, sorted(missing)))}.")
        result = slots_generate_from_rotas(rotas=rotas, start_date=start_date, end_date=end_date)
        self.stdout.write(
            f"Created {result.created} slots from {start_date} to {end_date}; "
            f"{result.already_there} already there; {len(result.bank_holidays_skipped)} bank holiday days skipped."
        )
        if result.beyond_bank_holiday_data:
            self.stderr.write("Warning: the range goes past the bundled bank holiday data; check those dates.")
