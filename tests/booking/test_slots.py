"""Rotas make slots: idempotently, skipping bank holidays, at the right London time all year."""

from __future__ import annotations

from datetime import date, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

from booking.models import Slot
from booking.slots import slots_block, slots_generate_from_rota, slots_unblock
from tests.factories import AppointmentFactory, RotaFactory, SlotFactory

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
UTC = ZoneInfo("UTC")


def london(slot: Slot):
    return slot.start.astimezone(LONDON)


class TestGeneration:
    def test_a_rota_makes_its_slots_on_its_days(self):
        # Monday 2 to Sunday 8 November 2026; Mon/Wed/Fri, 09:00-10:00, 20-minute slots.
        rota = RotaFactory(weekdays=[0, 2, 4], start_time=time(9), end_time=time(10), slot_minutes=20)
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 8))
        assert result.created == 9
        starts = [london(slot) for slot in Slot.objects.order_by("start")]
        assert {start.date() for start in starts} == {date(2026, 11, 2), date(2026, 11, 4), date(2026, 11, 6)}
        assert [start.time() for start in starts[:3]] == [time(9), time(9, 20), time(9, 40)]
        assert all(slot.end - slot.start == timedelta(minutes=20) for slot in Slot.objects.all())
        assert all(slot.status == Slot.Status.FREE for slot in Slot.objects.all())
        slot = Slot.objects.first()
        assert (slot.practitioner, slot.location, slot.appointment_type, slot.rota) == (
            rota.practitioner,
            rota.location,
            rota.appointment_type,
            rota,
        )

    def test_a_slot_that_would_overrun_the_end_time_is_not_made(self):
        rota = RotaFactory(weekdays=[0], start_time=time(9), end_time=time(9, 50), slot_minutes=20)
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 2))
        assert result.created == 2
        assert max(london(slot) for slot in Slot.objects.all()).time() == time(9, 20)

    def test_a_second_run_creates_nothing(self):
        rota = RotaFactory()
        first = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 29))
        second = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 29))
        assert first.created == 120  # 20 weekdays x 6 ten-minute slots
        assert second.created == 0
        assert second.already_there == 120
        assert Slot.objects.count() == 120

    def test_an_overlapping_range_creates_only_the_new_days(self):
        rota = RotaFactory()
        slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 6))
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 5), end_date=date(2026, 11, 10))
        assert result.created == 2 * 6  # Mon 9 and Tue 10 are new; Thu 5 and Fri 6 were there
        assert result.already_there == 2 * 6

    def test_blocked_and_booked_slots_are_left_as_they_are(self):
        rota = RotaFactory()
        slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 2))
        first, second = Slot.objects.order_by("start")[:2]
        slots_block(slots=Slot.objects.filter(pk=first.pk))
        Slot.objects.filter(pk=second.pk).update(status=Slot.Status.BOOKED)
        slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 2))
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.status, second.status) == (Slot.Status.BLOCKED, Slot.Status.BOOKED)
        assert Slot.objects.count() == 6

    def test_a_slot_the_practitioner_already_has_from_elsewhere_is_skipped(self):
        rota = RotaFactory()
        existing = SlotFactory(
            practitioner=rota.practitioner,
            start=date_at(date(2026, 11, 2), time(9, 5)),
            end=date_at(date(2026, 11, 2), time(9, 15)),
        )
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 2))
        assert result.created == 4  # 09:00 and 09:10 overlap the 09:05 slot
        assert Slot.objects.filter(practitioner=rota.practitioner).count() == 5
        assert Slot.objects.filter(pk=existing.pk).exists()

    def test_only_dates_within_the_rotas_validity_are_used(self):
        rota = RotaFactory(valid_from=date(2026, 11, 4), valid_until=date(2026, 11, 5))
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 8))
        assert result.created == 12
        assert {london(slot).date() for slot in Slot.objects.all()} == {date(2026, 11, 4), date(2026, 11, 5)}

    def test_an_inactive_rota_makes_nothing(self):
        rota = RotaFactory(is_active=False)
        assert (
            slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 8)).created == 0
        )


class TestBankHolidays:
    def test_england_and_wales_bank_holidays_are_skipped(self):
        # Christmas 2026: Friday 25 December, and Boxing Day's substitute on Monday 28 December.
        rota = RotaFactory(weekdays=[0, 1, 2, 3, 4])
        result = slots_generate_from_rota(rota=rota, start_date=date(2026, 12, 21), end_date=date(2026, 12, 31))
        days = {london(slot).date() for slot in Slot.objects.all()}
        assert date(2026, 12, 25) not in days
        assert date(2026, 12, 28) not in days
        assert date(2026, 12, 24) in days
        assert result.bank_holidays_skipped == [date(2026, 12, 25), date(2026, 12, 28)]

    def test_the_early_may_and_spring_bank_holidays_are_skipped(self):
        rota = RotaFactory(weekdays=[0])
        slots_generate_from_rota(rota=rota, start_date=date(2027, 5, 1), end_date=date(2027, 5, 31))
        mondays = {london(slot).date() for slot in Slot.objects.all()}
        assert mondays == {date(2027, 5, 10), date(2027, 5, 17), date(2027, 5, 24)}

    def test_scotland_only_holidays_are_working_days(self):
        # Friday 2 January 2026 is a bank holiday in Scotland, not in England and Wales.
        rota = RotaFactory(weekdays=[4])
        slots_generate_from_rota(rota=rota, start_date=date(2026, 1, 2), end_date=date(2026, 1, 2))
        assert Slot.objects.count() == 6

    def test_ranges_past_the_bundled_data_say_so(self):
        rota = RotaFactory()
        result = slots_generate_from_rota(rota=rota, start_date=date(2035, 1, 1), end_date=date(2035, 1, 2))
        assert result.beyond_bank_holiday_data
        assert result.created == 12


class TestClockChanges:
    """A 09:00 rota starts at 09:00 London time in the weeks before and after both changes."""

    @pytest.mark.parametrize(
        ("first_day", "last_day", "weekdays"),
        [
            # Clocks go forward Sunday 29 March 2026; Good Friday (3 April) is skipped.
            (date(2026, 3, 23), date(2026, 4, 3), 9),
            # Clocks go back Sunday 25 October 2026.
            (date(2026, 10, 19), date(2026, 10, 30), 10),
        ],
    )
    def test_a_nine_oclock_rota_starts_at_nine_london_time_on_both_sides(self, first_day, last_day, weekdays):
        rota = RotaFactory(weekdays=[0, 1, 2, 3, 4], start_time=time(9), end_time=time(9, 10))
        slots_generate_from_rota(rota=rota, start_date=first_day, end_date=last_day)
        slots = list(Slot.objects.order_by("start"))
        assert len(slots) == weekdays
        assert all(london(slot).time() == time(9) for slot in slots)
        utc_hours = [slot.start.astimezone(UTC).hour for slot in slots]
        # GMT (UTC 09:00) on one side, BST (UTC 08:00) on the other.
        assert set(utc_hours) == {8, 9}

    def test_the_hour_that_never_happens_in_spring_makes_no_slots(self):
        rota = RotaFactory(weekdays=[6], start_time=time(0, 30), end_time=time(3, 0), slot_minutes=30)
        slots_generate_from_rota(rota=rota, start_date=date(2026, 3, 29), end_date=date(2026, 3, 29))
        local_times = [london(slot).time() for slot in Slot.objects.order_by("start")]
        assert local_times == [time(0, 30), time(2, 0), time(2, 30)]

    def test_the_hour_that_happens_twice_in_autumn_makes_slots_once_and_of_the_right_length(self):
        rota = RotaFactory(weekdays=[6], start_time=time(0, 30), end_time=time(3, 0), slot_minutes=30)
        slots_generate_from_rota(rota=rota, start_date=date(2026, 10, 25), end_date=date(2026, 10, 25))
        slots = list(Slot.objects.order_by("start"))
        assert [london(slot).time() for slot in slots] == [time(0, 30), time(1), time(1, 30), time(2), time(2, 30)]
        assert all(slot.end - slot.start == timedelta(minutes=30) for slot in slots)


class TestBlocking:
    def test_blocking_changes_free_slots_only(self):
        free = SlotFactory()
        booked = AppointmentFactory().slot
        assert slots_block(slots=Slot.objects.filter(pk__in=[free.pk, booked.pk])) == 1
        free.refresh_from_db()
        booked.refresh_from_db()
        assert (free.status, booked.status) == (Slot.Status.BLOCKED, Slot.Status.BOOKED)

    def test_unblocking_frees_blocked_slots_only(self):
        blocked = SlotFactory(status=Slot.Status.BLOCKED)
        booked = AppointmentFactory().slot
        assert slots_unblock(slots=Slot.objects.filter(pk__in=[blocked.pk, booked.pk])) == 1
        blocked.refresh_from_db()
        assert blocked.status == Slot.Status.FREE


class TestCommand:
    def test_generate_slots_makes_slots_for_active_rotas_once(self):
        rota = RotaFactory()
        RotaFactory(is_active=False)
        out = StringIO()
        call_command("generate_slots", "--from", "2026-11-02", "--to", "2026-11-06", stdout=out)
        assert "Created 30 slots" in out.getvalue()
        assert Slot.objects.filter(rota=rota).count() == 30
        out = StringIO()
        call_command("generate_slots", "--from", "2026-11-02", "--to", "2026-11-06", stdout=out)
        assert "Created 0 slots" in out.getvalue()

    def test_generate_slots_can_take_one_rota(self):
        rota = RotaFactory()
        other = RotaFactory()
        call_command("generate_slots", "--from", "2026-11-02", "--days", "1", "--rota", str(rota.pk), stdout=StringIO())
        assert Slot.objects.filter(rota=rota).count() == 6
        assert not Slot.objects.filter(rota=other).exists()

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--from", "02/11/2026"], "is not a date"),
            (["--from", "2026-11-06", "--to", "2026-11-02"], "on or after"),
            (["--days", "0"], "at least 1"),
            (["--rota", "999999"], "No active rota"),
        ],
    )
    def test_generate_slots_explains_bad_arguments(self, args, message):
        with pytest.raises(CommandError, match=message):
            call_command("generate_slots", *args, stdout=StringIO())


def date_at(day: date, wall: time):
    from datetime import datetime

    return datetime.combine(day, wall, tzinfo=LONDON)
