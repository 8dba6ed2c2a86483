"""Slots: generating them from rotas, the changes staff make to them, and reading the free times.

Which times a link offers is one rule, `Slot.objects.offered` (booking/models.py); the
readers here shape its rows for the pages that show them. The patient's times pages read
start times, not slots (`slot_starts_available`, `slot_starts_on_day`, `slot_days_available`):
for a link without a practitioner one start offered by 20 clinicians is one choice, and
`slot_claim` books any free slot the link offers at the chosen start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from django.db import connection, models
from django.db.models import Count, Min, QuerySet
from django.utils import timezone

from booking.bank_holidays import is_bank_holiday, known_until
from booking.formats import LONDON
from booking.models import AppointmentType, BookingLink, Location, Practitioner, Rota, Slot

UTC = ZoneInfo("UTC")


@dataclass
class SlotGenerationResult:
    created: int = 0
    already_there: int = 0
    bank_holidays_skipped: list[date] = field(default_factory=list)
    beyond_bank_holiday_data: bool = False

    def __add__(self, other: SlotGenerationResult) -> SlotGenerationResult:
        return SlotGenerationResult(
            created=self.created + other.created,
            already_there=self.already_there + other.already_there,
            bank_holidays_skipped=sorted(set(self.bank_holidays_skipped) | set(other.bank_holidays_skipped)),
            beyond_bank_holiday_data=self.beyond_bank_holiday_data or other.beyond_bank_holiday_data,
        )


def london_datetime(day: date, wall_time: time) -> datetime | None:
    """The aware instant for a London wall-clock time, or None if that time doesn't exist.

    On the spring change 01:00–01:59 never happens; on the autumn change 01:00–01:59 happens
    twice and we take the first (fold=0), so a slot is never made twice.
    """
    local = datetime.combine(day, wall_time, tzinfo=LONDON)
    round_trip = local.astimezone(UTC).astimezone(LONDON)
    if round_trip.replace(tzinfo=None) != local.replace(tzinfo=None):
        return None
    return local


def rota_slot_times(
    *, rota: Rota, start_date: date, end_date: date
) -> tuple[list[tuple[datetime, datetime]], list[date]]:
    """The (start, end) instants a rota makes between two dates inclusive, and the bank holidays skipped."""
    first = max(start_date, rota.valid_from)
    last = min(end_date, rota.valid_until) if rota.valid_until else end_date
    length = timedelta(minutes=rota.slot_minutes)
    times: list[tuple[datetime, datetime]] = []
    skipped: list[date] = []
    day = first
    while day <= last:
        if day.weekday() in rota.weekdays:
            if is_bank_holiday(day):
                skipped.append(day)
            else:
                # Step in wall-clock time, not elapsed time, so a 09:00 rota starts at 09:00
                # London time whether the clocks are on GMT or BST.
                wall = datetime.combine(day, rota.start_time)
                day_end = datetime.combine(day, rota.end_time)
                while wall + length <= day_end:
                    # Starts step in wall-clock time; each slot lasts its length in real time
                    # (aware + timedelta in Python is wall-clock arithmetic, hence UTC here), so
                    # the night the clocks go back no slot is an hour longer than it should be.
                    start = london_datetime(day, wall.time())
                    if start is not None:
                        start = start.astimezone(UTC)
                        times.append((start, start + length))
                    wall += length
        day += timedelta(days=1)
    return times, skipped


def slots_generate_from_rota(*, rota: Rota, start_date: date, end_date: date) -> SlotGenerationResult:
    """Create a rota's free slots between two dates (inclusive); idempotent.

    Existing slots are left alone: a slot that overlaps one the practitioner already has
    (from this rota or another) is skipped by the database's exclusion constraint through
    ON CONFLICT DO NOTHING, so a second run, or two admins running it at once, create nothing.
    """
    result = SlotGenerationResult(beyond_bank_holiday_data=end_date > known_until())
    if not rota.is_active:
        return result
    times, result.bank_holidays_skipped = rota_slot_times(rota=rota, start_date=start_date, end_date=end_date)
    if not times:
        return result
    # One INSERT ... ON CONFLICT DO NOTHING RETURNING: the count is what *this* call inserted,
    # even while another admin generates the same rota (a before/after count would include
    # their rows too). A concurrent inserter of the same slot waits for us, then skips it.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO booking_slot
                (practitioner_id, location_id, appointment_type_id, rota_id, start, "end", status)
            SELECT %s, %s, %s, %s, slot.start, slot.finish, %s
            FROM unnest(%s::timestamptz[], %s::timestamptz[]) AS slot(start, finish)
            ON CONFLICT DO NOTHING
            RETURNING id
            """,
            [
                rota.practitioner_id,
                rota.location_id,
                rota.appointment_type_id,
                rota.pk,
                Slot.Status.FREE,
                [start for start, _ in times],
                [end for _, end in times],
            ],
        )
        result.created = len(cursor.fetchall())
    result.already_there = len(times) - result.created
    return result


def slots_generate_from_rotas(
    *, rotas: QuerySet[Rota] | list[Rota], start_date: date, end_date: date
) -> SlotGenerationResult:
    total = SlotGenerationResult(beyond_bank_holiday_data=end_date > known_until())
    for rota in rotas:
        total = total + slots_generate_from_rota(rota=rota, start_date=start_date, end_date=end_date)
    return total


def slots_block(*, slots: QuerySet[Slot]) -> int:
    """Block free slots so no one can book them; booked slots are left as they are. Returns the count."""
    return slots.filter(status=Slot.Status.FREE).update(status=Slot.Status.BLOCKED)


def slots_unblock(*, slots: QuerySet[Slot]) -> int:
    """Make blocked slots bookable again. Returns the count."""
    return slots.filter(status=Slot.Status.BLOCKED).update(status=Slot.Status.FREE)


def slot_count_available(
    *,
    appointment_type: AppointmentType,
    location: Location,
    practitioner: Practitioner | None = None,
    now: datetime | None = None,
) -> int:
    """How many free times a link with these settings would offer if opened `now`. One query."""
    return Slot.objects.offered(
        appointment_type=appointment_type,
        location_id=location.pk,
        practitioner_id=practitioner.pk if practitioner is not None else None,
        now=now or timezone.now(),
    ).count()


def slot_list_available(*, link: BookingLink, now: datetime | None = None, limit: int = 2000) -> list[Slot]:
    """Free times a link offers now: its type, at its location (and practitioner), in the window.

    One query, with the practitioner and location joined, ordered by start.
    """
    return list(
        Slot.objects.offered_by(link, now=now or timezone.now())
        .select_related("practitioner", "location")
        .fetch_mode(models.FETCH_RAISE)
        .order_by("start", "pk")[:limit]
    )


class FreeTime(NamedTuple):
    pk: int
    start: datetime
    practitioner_name: str


def slot_times_available(*, link: BookingLink, now: datetime | None = None, limit: int = 2000) -> list[FreeTime]:
    """The same free times as `slot_list_available`, as (id, start, practitioner's name) only.

    What the patient's times page lists. At a busy practice a link offers hundreds of times;
    building a Slot, a Practitioner and a Location for each cost several times the query
    itself (docs/benchmarks.md), so this reads the three columns the page shows. One query.
    """
    rows = (
        Slot.objects.offered_by(link, now=now or timezone.now())
        .order_by("start", "pk")
        .values_list("pk", "start", "practitioner__name")
    )
    return [FreeTime(*row) for row in rows[:limit]]


class FreeStart(NamedTuple):
    """One start time the link offers: a slot to name it by, and how many clinicians are free then.

    `pk` is the lowest-numbered free slot at that start (the choice's reference; `slot_claim`
    tries it first), `practitioner_name` the alphabetically first of those free then, which is
    the only one when `clinicians` is 1.
    """

    pk: int
    start: datetime
    clinicians: int
    practitioner_name: str


class FreeDay(NamedTuple):
    day: date  # a London date
    times: int  # how many different start times are free that day


def london_midnight(day: date) -> datetime:
    """The aware instant a London date begins (midnight always exists: the clocks change at 1am)."""
    return datetime.combine(day, time(0), tzinfo=LONDON)


def _starts_query(slots: QuerySet[Slot]) -> QuerySet:
    # GROUP BY start over the rows in start order: with a LIMIT, PostgreSQL walks the
    # slot_free_by_type_location index and stops after enough starts (docs/benchmarks.md).
    return (
        slots.order_by()
        .values("start")
        .annotate(first_pk=Min("pk"), clinicians=Count("pk"), name=Min("practitioner__name"))
        .order_by("start")
        .values_list("first_pk", "start", "clinicians", "name")
    )


def _starts(slots: QuerySet[Slot], limit: int | None = None) -> list[FreeStart]:
    rows = _starts_query(slots)
    return [FreeStart(*row) for row in (rows[:limit] if limit is not None else rows)]


def slot_starts_available(*, link: BookingLink, now: datetime | None = None, limit: int = 31) -> list[FreeStart]:
    """The link's first `limit` free start times, each once, earliest first. One query.

    The times page asks for one more than fits on one page: fewer, and it lists them all;
    that many, and it shows the first as "Next available" and the rest day by day.
    """
    return _starts(Slot.objects.offered_by(link, now=now or timezone.now()), limit)


def slot_starts_on_day(*, link: BookingLink, day: date, now: datetime | None = None) -> list[FreeStart]:
    """The link's free start times on one London date, each once, earliest first. One query."""
    slots = Slot.objects.offered_by(link, now=now or timezone.now()).filter(
        start__gte=london_midnight(day), start__lt=london_midnight(day + timedelta(days=1))
    )
    return _starts(slots)


def _starts_between(*, link: BookingLink, first: date, last: date, now: datetime) -> QuerySet:
    """The link's free start times from London date `first` up to (not including) `last`, once each."""
    return (
        Slot.objects.offered_by(link, now=now)
        .filter(start__gte=london_midnight(first), start__lt=london_midnight(last))
        .order_by()
        .values("start")
        .annotate(slots=Count("pk"))
        .values("start")
    )


# The days' counts from the start times: the inner query walks the partial index in start order
# and groups as it goes (no sort), the outer one counts a few hundred starts per London date.
_DAYS_SQL = (
    "SELECT (start AT TIME ZONE 'Europe/London')::date AS day, count(*) AS times FROM ({starts}) AS starts GROUP BY 1"
)


def slot_days_available(*, link: BookingLink, first: date, last: date, now: datetime | None = None) -> list[FreeDay]:
    """The London dates in [first, last) on which the link has free times, with how many. One query.

    Bounded by the dates asked for, so its cost is a week's rows of the partial index whatever
    the booking window; a time offered by several clinicians counts once.
    """
    sql, params = _starts_between(link=link, first=first, last=last, now=now or timezone.now()).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(_DAYS_SQL.format(starts=sql), params)
        return sorted(FreeDay(*row) for row in cursor.fetchall())


def slot_starts_and_days(
    *, link: BookingLink, week_of: date | None, last: date, now: datetime | None = None, limit: int = 31
) -> tuple[list[FreeStart], list[FreeDay]]:
    """The link's first `limit` start times, and the days of one week with how many times each
    has: the week (Monday to Sunday, London) of `week_of` or of the first free time, whichever
    is later, ending by London date `last`. One query.

    The first times page needs both: the first times tell "all on one page" from "days first"
    and give the next available; the week's days are the choices under it. Both halves are the
    readers above, built from `Slot.objects.offered_by`; the week's bounds are worked out in
    the statement from the first free time, so PostgreSQL walks the partial index twice, for
    the first times and for that week's rows, whatever the booking window (docs/benchmarks.md).
    """
    now = now or timezone.now()
    offered = Slot.objects.offered_by(link, now=now)
    first_sql, first_params = _starts_query(offered)[:limit].query.sql_with_params()
    starts_sql, starts_params = (
        (offered.filter(start__lt=london_midnight(last)).order_by().values("start").annotate(slots=Count("pk")))
        .values("start")
        .query.sql_with_params()
    )
    sql = f"""
        WITH firsts AS ({first_sql}),
        monday AS (
            SELECT day - (extract(isodow FROM day)::int - 1) AS day FROM (
                SELECT GREATEST(%s::date, (SELECT (min(start) AT TIME ZONE 'Europe/London')::date FROM firsts)) AS day
            ) AS anchor
        )
        SELECT first_pk, start, clinicians, name, NULL::date, NULL::bigint FROM firsts
        UNION ALL
        SELECT NULL, NULL, NULL, NULL, (start AT TIME ZONE 'Europe/London')::date, count(*)
        FROM ({starts_sql}) AS starts
        WHERE start >= (SELECT day::timestamp AT TIME ZONE 'Europe/London' FROM monday)
          AND start < (SELECT (day + 7)::timestamp AT TIME ZONE 'Europe/London' FROM monday)
        GROUP BY 5
    """  # noqa: S608 -- the two halves are the ORM's own SQL; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, [*first_params, week_of, *starts_params])
        rows = cursor.fetchall()
    starts = sorted((FreeStart(*row[:4]) for row in rows if row[4] is None), key=lambda start: start.start)
    days = sorted(FreeDay(row[4], row[5]) for row in rows if row[4] is not None)
    return starts, days


def slot_find_choice(*, link: BookingLink, slot_id: int, now: datetime | None = None) -> tuple[Slot, int] | None:
    """One of the link's free times with its practitioner and location, and how many clinicians
    are free at its start (it among them); or None. One query.

    The confirm page names the chosen slot's practitioner when they are the only one free then,
    and "the first available clinician" when several are: `slot_claim` may book any of them.
    """
    now = now or timezone.now()
    same_start = (
        Slot.objects.offered_by(link, now=now)
        .filter(start=models.OuterRef("start"))
        .order_by()
        .values("start")
        .annotate(count=Count("pk"))
        .values("count")
    )
    slot = (
        Slot.objects.offered_by(link, now=now)
        .select_related("practitioner", "location")
        .fetch_mode(models.FETCH_RAISE)
        .annotate(clinicians=models.Subquery(same_start))
        .filter(pk=slot_id)
        .first()
    )
    if slot is None:
        return None
    return slot, slot.clinicians


def slot_find_available(*, link: BookingLink, slot_id: int, now: datetime | None = None) -> Slot | None:
    """One of the link's free times, with its practitioner and location, or None. One query."""
    return (
        Slot.objects.offered_by(link, now=now or timezone.now())
        .select_related("practitioner", "location")
        .fetch_mode(models.FETCH_RAISE)
        .filter(pk=slot_id)
        .first()
    )


def slot_claim(*, link: BookingLink, slot_id: int, now: datetime | None = None) -> int | None:
    """Mark one of the link's free times at the chosen slot's start as booked; its id, or None.

    The patient chose a start time (for a link without a practitioner, one time may stand for
    several clinicians' slots; the choice names one of them). One statement claims a free slot
    the link offers (`Slot.objects.offered_by`) at that start, the chosen one first:
    `UPDATE ... WHERE id = (SELECT ... FOR UPDATE SKIP LOCKED LIMIT 1) AND status = 'free'
    RETURNING id`. A slot another booking is claiming is skipped, not waited for, so 50
    patients choosing 2:30pm when 20 clinicians are free get 20 different slots and 30 None;
    the `status = 'free'` on the UPDATE and the partial unique index on booked appointments
    stand behind it. Call inside the booking's transaction (the row lock lasts until commit).
    """
    now = now or timezone.now()
    chosen_start = Slot.objects.filter(pk=slot_id).values("start")[:1]
    candidates = (
        Slot.objects.offered_by(link, now=now)
        .filter(start=models.Subquery(chosen_start))
        .order_by(models.Case(models.When(pk=slot_id, then=0), default=1), "pk")
        .select_for_update(skip_locked=True, of=("self",))
        .values("pk")[:1]
    )
    sql, params = candidates.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE booking_slot SET status = %s WHERE id = ({sql}) AND status = %s RETURNING id",  # noqa: S608
            [Slot.Status.BOOKED, *params, Slot.Status.FREE],
        )
        row = cursor.fetchone()
    return row[0] if row else None
