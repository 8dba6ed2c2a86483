"""Choosing a time when a clinic has many: the days first, then a day's times, each start once.

Up to 30 free times: one page of radios. More: "Next available", then the days with free times
a fortnight at a time (`?from=`), and a day's page (`?day=YYYY-MM-DD`) with its times grouped
Morning / Afternoon / Evening in London time. A link without a practitioner offers each start
time once, however many clinicians are free then; booking it claims any of them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.test import Client

from booking.models import Appointment, BookingLink, Slot
from booking.references import encode_reference
from booking.slots import london_datetime, rota_slot_times, slot_days_available, slot_starts_on_day
from tests.factories import RotaFactory
from tests.scenarios import Clinic, clinic_times, clinic_weekdays, make_clinic, make_clinic_link

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}  # PatientFactory's date of birth
HOURLY = clinic_times(time(8, 0), time(20, 0), minutes=60)  # 08:00 to 19:00: 12 a day


@pytest.fixture
def clinic(db) -> Clinic:
    """Three clinicians, free every hour from 8am to 7pm, Monday to Friday next week: 60 times."""
    return make_clinic(clinicians=3, times=HOURLY)


@pytest.fixture
def clinic_client(client: Client, clinic: Clinic) -> Client:
    """A browser that has opened the clinic's any-clinician link and given the date of birth."""
    link = make_clinic_link(clinic)
    assert client.post(link.get_absolute_url(), DOB).status_code == 302
    client.link = link  # type: ignore[attr-defined]
    return client


def times_url(link: BookingLink, query: str = "") -> str:
    return f"{link.get_absolute_url()}/times" + (f"?{query}" if query else "")


def text(response) -> str:
    html = response.content.decode()
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def radios(response) -> list[str]:
    return re.findall(r'type="radio" value="([^"]+)"', response.content.decode())


def day_links(response) -> list[str]:
    return re.findall(r'href="[^"]*/times\?day=([0-9-]+)"', response.content.decode())


def ref(slot_id: int) -> str:
    return encode_reference(slot_id, namespace="slot")


def slot_at(clinic: Clinic, day: date, wall: time, practitioner_index: int = 0) -> Slot:
    return Slot.objects.get(practitioner=clinic.practitioners[practitioner_index], start=london_datetime(day, wall))


class TestFewOrMany:
    def test_up_to_thirty_times_are_one_page_of_radios(self, client):
        clinic = make_clinic(clinicians=2, times=HOURLY[:6])  # 6 a day, 5 days: 30 times
        link = make_clinic_link(clinic)
        client.post(link.get_absolute_url(), DOB)
        response = client.get(times_url(link))
        assert len(radios(response)) == 30  # each start once, though two clinicians are free at each
        assert day_links(response) == []
        assert "Other times" in text(response)

    def test_thirty_one_times_show_next_available_then_the_days(self, client):
        clinic = make_clinic(clinicians=2, times=HOURLY[:6])
        first = clinic.days[0]
        Slot.objects.create(
            practitioner=clinic.practitioners[0],
            location=clinic.location,
            appointment_type=clinic.appointment_type,
            start=london_datetime(first, time(17, 0)),
            end=london_datetime(first, time(17, 10)),
        )
        link = make_clinic_link(clinic)
        client.post(link.get_absolute_url(), DOB)
        response = client.get(times_url(link))
        page = text(response)
        assert len(radios(response)) == 1
        assert page.index("Next available") < page.index("Or choose a day")
        assert f"{first:%A} {first.day} {first:%B} at 8am" in page
        assert day_links(response) == [day.isoformat() for day in clinic.days]
        assert f"{first:%A} {first.day} {first:%B}, 7 times" in page
        last = clinic.days[-1]
        assert f"{last:%A} {last.day} {last:%B}, 6 times" in page


class TestTheDays:
    def test_the_days_list_counts_each_start_once_and_links_to_each_day(self, clinic_client, clinic):
        response = clinic_client.get(times_url(clinic_client.link))
        assert response.status_code == 200
        assert day_links(response) == [day.isoformat() for day in clinic.days]
        assert text(response).count("12 times") == 5

    def test_a_week_at_a_time_with_previous_and_next(self, client):
        clinic = make_clinic(clinicians=1, times=HOURLY[:4], days=clinic_weekdays(weeks=3))
        link = make_clinic_link(clinic)
        client.post(link.get_absolute_url(), DOB)
        first = client.get(times_url(link))
        assert day_links(first) == [day.isoformat() for day in clinic.days[:5]]
        assert 'rel="prev"' not in first.content.decode()
        following = re.search(r'href="([^"]*\?from=[0-9-]+)" rel="next"', first.content.decode()).group(1)
        assert following == times_url(link, f"from={clinic.days[5].isoformat()}")
        second = client.get(following)
        assert day_links(second) == [day.isoformat() for day in clinic.days[5:10]]
        assert 'rel="prev"' in second.content.decode()
        assert 'rel="next"' in second.content.decode()
        # Any date in a week shows that week.
        third = client.get(times_url(link, f"from={clinic.days[12].isoformat()}"))
        assert day_links(third) == [day.isoformat() for day in clinic.days[10:15]]
        # The window is 200 days: Next goes on, to weeks without times that say so.
        empty = client.get(re.search(r'href="([^"]*)" rel="next"', third.content.decode()).group(1))
        assert "There are no free times this week" in text(empty)
        # A week before the first free time shows the first free time's week.
        assert day_links(client.get(times_url(link, "from=2000-01-03"))) == day_links(first)

    @pytest.mark.parametrize(
        "junk", ["", "abc", "2026-13-45", "9" * 30, "1999-01-01", "3000-01-01", "0001-01-01", "9999-12-31"]
    )
    def test_any_from_shows_a_fortnight_of_days(self, clinic_client, junk):
        response = clinic_client.get(times_url(clinic_client.link, f"from={junk}"))
        assert response.status_code == 200
        assert "Next available" in text(response)

    @pytest.mark.parametrize("junk", ["abc", "2026-13-45", "9" * 30, "2026-1-5"])
    def test_a_day_that_is_not_a_date_shows_the_days_with_a_clear_message_and_400(self, clinic_client, junk):
        response = clinic_client.get(times_url(clinic_client.link, f"day={junk}"))
        assert response.status_code == 400
        assert "Choose a day from the list" in text(response)
        assert "There is a problem" in text(response)


class TestADay:
    def test_each_start_once_grouped_morning_afternoon_evening(self, clinic_client, clinic):
        day = clinic.days[1]
        response = clinic_client.get(times_url(clinic_client.link, f"day={day.isoformat()}"))
        assert response.status_code == 200
        page = text(response)
        assert len(radios(response)) == 12  # three clinicians free at each of 12 starts
        assert page.index("Morning") < page.index("8am") < page.index("11am") < page.index("Afternoon")
        assert page.index("Afternoon") < page.index("midday") < page.index("5pm") < page.index("Evening")
        assert page.index("Evening") < page.index("6pm") < page.index("7pm")
        assert "with Dr" not in page  # several free at each: whoever is free first
        assert f'name="day" value="{day.isoformat()}"' in response.content.decode()
        assert "Choose another day" in page

    def test_a_time_only_one_clinician_is_free_at_names_them(self, clinic_client, clinic):
        day = clinic.days[0]
        Slot.objects.filter(start=london_datetime(day, time(9, 0)), practitioner__in=clinic.practitioners[1:]).update(
            status=Slot.Status.BOOKED
        )
        page = text(clinic_client.get(times_url(clinic_client.link, f"day={day.isoformat()}")))
        assert "9am with Dr Clinician 00" in page
        assert page.count("with Dr") == 1

    def test_a_link_with_a_practitioner_offers_only_their_times(self, client, clinic):
        Slot.objects.filter(
            practitioner=clinic.practitioners[1], start__lt=london_datetime(clinic.days[0], time(12, 0))
        ).update(status=Slot.Status.BLOCKED)
        link = make_clinic_link(clinic, practitioner=clinic.practitioners[1])
        client.post(link.get_absolute_url(), DOB)
        response = client.get(times_url(link, f"day={clinic.days[0].isoformat()}"))
        ids = set(
            Slot.objects.filter(
                practitioner=clinic.practitioners[1], status="free", start__date=clinic.days[0]
            ).values_list("pk", flat=True)
        )
        assert len(radios(response)) == 8  # 12pm to 7pm
        assert set(radios(response)) == {ref(pk) for pk in ids}
        assert text(response).count("with Dr Clinician 01") == 8

    def test_a_day_without_times_says_so_and_offers_the_other_days(self, clinic_client, clinic):
        Slot.objects.filter(start__gte=london_datetime(clinic.days[2], time(0))).filter(
            start__lt=london_datetime(clinic.days[3], time(0))
        ).update(status=Slot.Status.BOOKED)
        for day in (clinic.days[2], clinic.days[0] - timedelta(days=2), date(2099, 1, 1), date.min, date.max):
            response = clinic_client.get(times_url(clinic_client.link, f"day={day.isoformat()}"))
            assert response.status_code == 200
            assert "There are no free times on" in text(response)
            assert radios(response) == []
            assert "Choose another day" in text(response)

    def test_minimum_notice_and_maximum_days_ahead_hold_on_a_days_page(self, client):
        with time_machine.travel(datetime(2026, 12, 7, 9, 30, tzinfo=UTC), tick=False):
            today = date(2026, 12, 7)
            clinic = make_clinic(clinicians=2, times=HOURLY, days=[today, date(2026, 12, 17)], maximum_days_ahead=10)
            clinic.appointment_type.minimum_notice_hours = 3
            clinic.appointment_type.save()
            link = make_clinic_link(clinic)
            client.post(link.get_absolute_url(), DOB)
            page = text(client.get(times_url(link, "day=2026-12-07")))
            # 9:30am plus three hours' notice: 1pm is the first; ten days ahead ends at 9:30am on the 17th.
            assert "12pm" not in page
            assert "midday" not in page
            assert "1pm" in page
            last = client.get(times_url(link, "day=2026-12-17"))
            assert len(radios(last)) == 2
            assert "8am" in text(last)
            assert "9am" in text(last)
            assert "10am" not in text(last)

    def test_a_day_is_a_london_day_across_the_clocks_going_back(self, client):
        # Sunday 25 October 2026: the clocks go back at 2am; 00:30 and 23:30 London are that day.
        with time_machine.travel(datetime(2026, 10, 20, 9, 0, tzinfo=UTC), tick=False):
            clinic = make_clinic(
                clinicians=2,
                days=[date(2026, 10, 25)],
                times=[time(0, 30), time(11, 50), time(12, 0), time(17, 50), time(18, 0), time(23, 30)],
            )
            link = make_clinic_link(clinic)
            client.post(link.get_absolute_url(), DOB)
            response = client.get(times_url(link, "day=2026-10-25"))
            days = slot_days_available(link=link, first=date(2026, 10, 19), last=date(2026, 11, 2))
            starts = slot_starts_on_day(link=link, day=date(2026, 10, 25))
        page = text(response)
        assert [(free.day, free.times) for free in days] == [(date(2026, 10, 25), 6)]
        assert [start.clinicians for start in starts] == [2] * 6
        assert page.index("Morning") < page.index("12:30am") < page.index("11:50am") < page.index("Afternoon")
        assert page.index("Afternoon") < page.index("midday") < page.index("5:50pm") < page.index("Evening")
        assert page.index("Evening") < page.index("6pm") < page.index("11:30pm")

    def test_bank_holidays_have_no_times_so_no_day(self, client):
        # Christmas and Boxing Day (moved to Monday 28th in 2026) are skipped when slots are made.
        with time_machine.travel(datetime(2026, 12, 14, 9, 0, tzinfo=UTC), tick=False):
            clinic = make_clinic(clinicians=1, days=[])
            rota = RotaFactory(
                practitioner=clinic.practitioners[0],
                location=clinic.location,
                appointment_type=clinic.appointment_type,
                start_time=time(9, 0),
                end_time=time(13, 0),
            )
            starts, skipped = rota_slot_times(rota=rota, start_date=date(2026, 12, 21), end_date=date(2027, 1, 1))
            Slot.objects.bulk_create(
                Slot(
                    practitioner=rota.practitioner,
                    location=rota.location,
                    appointment_type=rota.appointment_type,
                    start=start,
                    end=end,
                )
                for start, end in starts
            )
            link = make_clinic_link(clinic)
            client.post(link.get_absolute_url(), DOB)
            response = client.get(times_url(link))
        assert {date(2026, 12, 25), date(2026, 12, 28)} <= set(skipped)
        shown = {date.fromisoformat(day) for day in day_links(response)}
        assert shown
        assert not shown & {date(2026, 12, 25), date(2026, 12, 28), date(2027, 1, 1)}


class TestChoosingAndBooking:
    def test_confirm_says_the_first_available_clinician_when_several_are_free(self, clinic_client, clinic):
        day = clinic.days[0]
        slot = slot_at(clinic, day, time(14, 0))
        response = clinic_client.get(
            f"{clinic_client.link.get_absolute_url()}/confirm?slot={ref(slot.pk)}&day={day.isoformat()}"
        )
        page = text(response)
        assert "With The first available clinician" in page
        assert "Dr Clinician" not in page
        content = response.content.decode()
        assert f'name="day" value="{day.isoformat()}"' in content
        assert f'/times?day={day.isoformat()}">Choose a different time' in content

    def test_confirm_names_the_clinician_when_only_they_are_free(self, clinic_client, clinic):
        day = clinic.days[0]
        Slot.objects.filter(start=london_datetime(day, time(14, 0)), practitioner__in=clinic.practitioners[:2]).update(
            status=Slot.Status.BOOKED
        )
        slot = slot_at(clinic, day, time(14, 0), practitioner_index=2)
        page = text(clinic_client.get(f"{clinic_client.link.get_absolute_url()}/confirm?slot={ref(slot.pk)}"))
        assert "With Dr Clinician 02" in page

    def test_the_booked_page_names_who_it_actually_is(self, clinic_client, clinic):
        day = clinic.days[0]
        chosen = slot_at(clinic, day, time(14, 0), practitioner_index=0)
        Slot.objects.filter(pk=chosen.pk).update(status=Slot.Status.BOOKED)  # taken since the page showed it
        response = clinic_client.post(
            f"{clinic_client.link.get_absolute_url()}/confirm",
            {"slot": ref(chosen.pk), "day": day.isoformat()},
            follow=True,
        )
        appointment = Appointment.objects.select_related("slot__practitioner").get()
        assert appointment.slot.start == chosen.start
        assert appointment.slot.practitioner != clinic.practitioners[0]
        assert "Appointment booked" in text(response)
        assert f"With {appointment.slot.practitioner.name}" in text(response)

    def test_a_lost_race_returns_to_the_same_day_with_sorry_and_the_times_refreshed(self, clinic_client, clinic):
        day = clinic.days[3]
        Slot.objects.filter(start=london_datetime(day, time(14, 0))).update(status=Slot.Status.BOOKED)
        chosen = slot_at(clinic, day, time(14, 0))
        response = clinic_client.post(
            f"{clinic_client.link.get_absolute_url()}/confirm", {"slot": ref(chosen.pk), "day": day.isoformat()}
        )
        assert response.status_code == 409
        page = text(response)
        assert "Sorry, that time has just been taken" in page
        assert f"{day:%A} {day.day} {day:%B}" in page
        assert len(radios(response)) == 11  # the day's other times; 2pm is gone
        assert "2pm" not in page
        assert not Appointment.objects.exists()

    def test_continuing_without_a_time_on_a_day_asks_for_one_on_that_day(self, clinic_client, clinic):
        day = clinic.days[4]
        response = clinic_client.get(f"{clinic_client.link.get_absolute_url()}/confirm?day={day.isoformat()}")
        assert "Choose a time" in text(response)
        assert "There is a problem" in text(response)
        assert len(radios(response)) == 12
        assert f'name="day" value="{day.isoformat()}"' in response.content.decode()
