"""The attendance report for managers: what happened to the appointments in a date range.

Appointments are counted by their start, in London days, among those an organisation sees (at
its sites, and its patients' anywhere: `Appointment.objects.seen_by`). Each ended one way:
attended, did not attend, not recorded yet (its time has passed), to come, cancelled by the
patient, cancelled by the practice, or changed to another time (the new appointment counts on
its own). The did-not-attend rate is of those with an outcome recorded: did not attend ÷
(attended + did not attend).

They are grouped three ways: booked through a link or by staff; how far ahead it was booked,
in London calendar days between booking and start (so a booking at 11pm for 9am the next day
is "1-2 days", and the hours the clocks gain or lose don't move a booking between groups);
and whether a reminder for it was delivered. All of it comes from one aggregate query, however
many appointments there are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django.db.models import Case, Count, DurationField, Exists, ExpressionWrapper, IntegerField, OuterRef, Q, Value
from django.db.models import When as WhenClause
from django.db.models.functions import TruncDate
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from booking.formats import LONDON
from booking.models import Appointment, CancellationSource, Outcome
from messaging.models import Message, Reminder

# (label, the longest lead time in days the group holds; None for no limit)
LEAD_TIMES = (("Same day", 0), ("1 to 2 days", 2), ("3 to 7 days", 7), ("8 to 14 days", 14), ("15 days or more", None))
SOURCES = ("Through a link", "By staff")
REMINDED = ("Reminder delivered", "No reminder delivered")

COUNTS = (
    ("booked", "Appointments"),
    ("attended", "Attended"),
    ("did_not_attend", "Did not attend"),
    ("not_recorded", "Not recorded"),
    ("to_come", "To come"),
    ("cancelled_by_patient", "Cancelled by patient"),
    ("cancelled_by_practice", "Cancelled by practice"),
    ("changed", "Changed"),
)


@dataclass
class Tally:
    """The counts for one group of appointments."""

    label: str
    booked: int = 0
    attended: int = 0
    did_not_attend: int = 0
    not_recorded: int = 0
    to_come: int = 0
    cancelled_by_patient: int = 0
    cancelled_by_practice: int = 0
    changed: int = 0

    def add(self, row: dict[str, int]) -> None:
        for name, _ in COUNTS:
            setattr(self, name, getattr(self, name) + row[name])

    @property
    def with_outcome(self) -> int:
        return self.attended + self.did_not_attend

    @property
    def did_not_attend_rate(self) -> float | None:
        """Did not attend as a percentage of those with an outcome; None when none has one."""
        return 100 * self.did_not_attend / self.with_outcome if self.with_outcome else None

    @property
    def rate_text(self) -> str:
        rate = self.did_not_attend_rate
        return "No outcomes recorded" if rate is None else f"{rate:.1f}%"

    def counts(self) -> list[int]:
        return [getattr(self, name) for name, _ in COUNTS]


@dataclass
class AttendanceReport:
    first_day: date
    last_day: date
    by_source: list[Tally] = field(default_factory=list)
    by_lead_time: list[Tally] = field(default_factory=list)
    by_reminder: list[Tally] = field(default_factory=list)
    total: Tally = field(default_factory=lambda: Tally("All appointments"))

    def sections(self) -> list[tuple[str, list[Tally]]]:
        return [
            ("Booked", [*self.by_source, self.total]),
            ("Booked ahead", self.by_lead_time),
            ("Reminder", self.by_reminder),
        ]


def _london_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=LONDON)


def _lead_time_group() -> Case:
    """The index in LEAD_TIMES of an appointment's lead time: London dates, start minus booking."""
    lead = ExpressionWrapper(
        TruncDate("slot__start", tzinfo=LONDON) - TruncDate("booked_at", tzinfo=LONDON), output_field=DurationField()
    )
    return Case(
        *(
            WhenClause(LessThanOrEqual(lead, timedelta(days=days)), then=Value(index))
            for index, (_, days) in enumerate(LEAD_TIMES)
            if days is not None
        ),
        default=Value(len(LEAD_TIMES) - 1),
        output_field=IntegerField(),
    )


def attendance_report(
    *, organisation_ids: list[int], first_day: date, last_day: date, now: datetime | None = None
) -> AttendanceReport:
    """The report for appointments starting from `first_day` to `last_day` (London days, both
    included) that these organisations see. One query, an aggregate grouped in the database."""
    now = now or timezone.now()
    booked = Q(status=Appointment.Status.BOOKED)
    cancelled = Q(status=Appointment.Status.CANCELLED)
    rows = (
        Appointment.objects.seen_by(organisation_ids)
        .filter(slot__start__gte=_london_midnight(first_day), slot__start__lt=_london_midnight(last_day + timedelta(1)))
        .annotate(
            through_link=Case(
                WhenClause(booking_link__isnull=False, then=Value(0)), default=Value(1), output_field=IntegerField()
            ),
            lead_group=_lead_time_group(),
            reminded=Case(
                WhenClause(
                    Exists(
                        Reminder.objects.filter(appointment=OuterRef("pk"), message__status=Message.Status.DELIVERED)
                    ),
                    then=Value(0),
                ),
                default=Value(1),
                output_field=IntegerField(),
            ),
        )
        .values("through_link", "lead_group", "reminded")
        .annotate(
            booked=Count("pk"),
            attended=Count("pk", filter=booked & Q(outcome=Outcome.ATTENDED)),
            did_not_attend=Count("pk", filter=booked & Q(outcome=Outcome.DID_NOT_ATTEND)),
            not_recorded=Count("pk", filter=booked & Q(outcome="", slot__start__lte=now)),
            to_come=Count("pk", filter=booked & Q(slot__start__gt=now)),
            cancelled_by_patient=Count("pk", filter=cancelled & Q(cancellation_source=CancellationSource.PATIENT)),
            cancelled_by_practice=Count("pk", filter=cancelled & Q(cancellation_source=CancellationSource.PRACTICE)),
            changed=Count("pk", filter=cancelled & Q(cancellation_source=CancellationSource.CHANGED)),
        )
        .order_by()
    )
    report = AttendanceReport(
        first_day=first_day,
        last_day=last_day,
        by_source=[Tally(label) for label in SOURCES],
        by_lead_time=[Tally(label) for label, _ in LEAD_TIMES],
        by_reminder=[Tally(label) for label in REMINDED],
    )
    for row in rows:
        report.by_source[row["through_link"]].add(row)
        report.by_lead_time[row["lead_group"]].add(row)
        report.by_reminder[row["reminded"]].add(row)
        report.total.add(row)
    return report
