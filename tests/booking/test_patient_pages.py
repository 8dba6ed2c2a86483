"""The patient's pages: the link, date of birth, times, confirm, booked, the calendar file.

The domain's own rules (counting, locking, one booking per slot and per link) are tested in
test_booking_through_a_link.py, their races in the *_races.py files beside it; these tests are
about what each page shows and does with each answer the domain gives.
"""

from __future__ import annotations

import gzip
import re
import threading
from datetime import UTC, date, datetime, timedelta
from urllib.parse import quote

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from booking import throttle
from booking.exceptions import BookingBusy, LinkNotBookable
from booking.formats import london_time
from booking.links import booking_link_revoke
from booking.models import Appointment, AppointmentType, AttemptCount, AuditEvent, BookingLink, Slot
from booking.references import encode_reference
from tests.factories import (
    AppointmentTypeFactory,
    BookingLinkFactory,
    LocationFactory,
    PractitionerFactory,
    SlotFactory,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("empty_cache")]

DOB = {"day": "17", "month": "5", "year": "1980"}  # PatientFactory's date of birth
WRONG_DOB = {"day": "1", "month": "1", "year": "1990"}


def url(link_or_token, name: str = "") -> str:
    token = link_or_token if isinstance(link_or_token, str) else link_or_token.token
    return f"/b/{token}" + (f"/{name}" if name else "")


def verify(client: Client, link: BookingLink) -> None:
    response = client.post(url(link), DOB)
    assert response.status_code == 302, response.content.decode()[:500]


def free_slots(practice) -> list[Slot]:
    return list(Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start"))


def ref(slot: Slot) -> str:
    return encode_reference(slot.pk, namespace="slot")


def text(response) -> str:
    """The page's text without tags, with whitespace squeezed, for reading like a person does."""
    html = response.content.decode()
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def says(response, phrase: str) -> bool:
    return phrase in text(response)


def expire(link: BookingLink) -> None:
    # The database insists a link expires after it was made, so both move into the past.
    now = timezone.now()
    BookingLink.objects.filter(pk=link.pk).update(
        created_at=now - timedelta(days=2), expires_at=now - timedelta(seconds=1)
    )


def failed_attempts(link: BookingLink) -> int:
    return BookingLink.objects.get(pk=link.pk).failed_attempts


def assert_nothing_about_the_patient(response, link: BookingLink) -> None:
    content = response.content.decode()
    patient = link.patient
    for detail in (patient.first_name, patient.last_name, patient.nhs_number, "1980", patient.mobile, patient.email):
        assert detail not in content


# --- Unknown links ----------------------------------------------------------------------------


class TestLinkNotFound:
    @pytest.mark.parametrize(
        "path",
        [
            "/b/nonsense",
            "/b/" + "a" * 22,
            "/b/" + "a" * 500,
            "/b/%00",
            "/b/%FF%FE",
            "/b/..",
            "/b/",
            "/b/abc/def/ghi",
            "/b/nonsense/times",
            "/b/nonsense/confirm?slot=ABCDEF",
            "/b/nonsense/booked",
            "/b/nonsense/appointment.ics",
            "/b/nonsense/extra",
        ],
    )
    def test_unknown_malformed_and_oversized_links_get_link_not_found(self, client, path):
        response = client.get(path)
        assert response.status_code == 404
        assert says(response, "Link not found")
        assert "no-store" in response["Cache-Control"]

    def test_a_truncated_or_extended_token_is_link_not_found(self, client, link):
        assert client.get(url(link.token[:-1])).status_code == 404
        assert client.get(url(link.token + "A")).status_code == 404

    def test_posting_to_an_unknown_link_is_link_not_found(self, client):
        response = client.post("/b/nonsense", DOB)
        assert response.status_code == 404
        assert not AuditEvent.objects.exists()

    def test_a_slash_added_to_the_end_of_a_link_still_opens_it(self, client, link):
        response = client.get(url(link) + "/")
        assert response.status_code == 302
        assert response["Location"] == url(link)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(token=st.text(max_size=300))
    def test_any_string_as_a_token_is_link_not_found_never_an_error(self, client, token):
        response = client.get("/b/" + quote(token, safe=""), follow=True)
        assert response.status_code == 404
        assert says(response, "Link not found")

    @settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        token=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=100),
        page=st.sampled_from(["", "/times", "/confirm", "/booked", "/appointment.ics"]),
    )
    def test_any_url_safe_token_is_link_not_found(self, client, token, page):
        response = client.get(f"/b/{token}{page}", follow=True)
        assert response.status_code == 404
        assert says(response, "Link not found")


# --- Opening a link ---------------------------------------------------------------------------


class TestOpening:
    def test_the_date_of_birth_page_shows_the_practice_and_nothing_about_the_patient(self, client, link):
        response = client.get(url(link))
        assert response.status_code == 200
        content = response.content.decode()
        assert link.organisation.name in content
        assert "What is your date of birth?" in content
        for label in ("Day", "Month", "Year"):
            assert f">{label}</label>" in content
        assert ">Continue</button>" in content
        assert_nothing_about_the_patient(response, link)
        # Not even the appointment: its type can say something about the patient's health.
        assert link.appointment_type.name not in content

    def test_opening_records_it_opened_and_changes_nothing_else(self, client, link):
        before = BookingLink.objects.filter(pk=link.pk).values().get()
        client.get(url(link))
        client.head(url(link))
        after = BookingLink.objects.filter(pk=link.pk).values().get()
        assert after.pop("first_opened_at") is not None
        assert after.pop("last_opened_at") is not None
        assert after.pop("open_count") == 2
        for opened in ("first_opened_at", "last_opened_at", "open_count"):
            before.pop(opened)
        assert after == before
        # Both opens count; the browser session's first is the one audited.
        assert list(AuditEvent.objects.values_list("action", flat=True)) == ["opened"]
        assert not Appointment.objects.exists()

    def test_a_verified_browser_goes_straight_to_the_times(self, client, link):
        verify(client, link)
        response = client.get(url(link))
        assert response.status_code == 302
        assert response["Location"] == url(link, "times")

    def test_the_pages_behind_the_date_of_birth_send_an_unverified_browser_to_it(self, client, link, practice):
        slot = free_slots(practice)[0]
        for path in (url(link, "times"), url(link, "confirm") + f"?slot={ref(slot)}", url(link, "booked")):
            response = client.get(path)
            assert response.status_code == 302
            assert response["Location"] == url(link)
        response = client.post(url(link, "confirm"), {"slot": ref(slot)})
        assert response["Location"] == url(link)
        assert not Appointment.objects.exists()


# --- Date of birth ----------------------------------------------------------------------------


def _written(number: int, width: int) -> st.SearchStrategy[str]:
    """How people type a number: plain, zero-padded, with spaces around it."""
    return st.sampled_from([str(number), str(number).zfill(width), f" {number} ", f"{number} "])


@st.composite
def _typed_dates(draw) -> tuple[str, str, str]:
    """Real dates (past, future, the patient's own), as people type them."""
    value = draw(
        st.one_of(
            st.dates(min_value=date(1860, 1, 1), max_value=date(2060, 12, 31)),
            st.just(date(1980, 5, 17)),
            st.dates(min_value=date(1980, 5, 10), max_value=date(1980, 5, 24)),
        )
    )
    return draw(_written(value.day, 2)), draw(_written(value.month, 2)), draw(_written(value.year, 4))


def _any_text_parts() -> st.SearchStrategy[tuple[str, str, str]]:
    part = st.one_of(
        st.text(max_size=8),
        st.integers(-5, 40).map(str),
        st.sampled_from(["", " ", "1e1", "0x1", "٣", "²", "1.0", "+1", "-1", "1\x00", "01/", "١٩٨٠"]),
    )
    year = st.one_of(part, st.integers(0, 99999).map(str))
    return st.tuples(part, part, year)


class TestDateOfBirth:
    def test_the_right_date_shows_the_times(self, client, link):
        response = client.post(url(link), DOB, follow=True)
        assert response.redirect_chain == [(url(link, "times"), 302)]
        assert says(response, "Choose a time")

    def test_leading_zeros_and_spaces_are_fine(self, client, link):
        response = client.post(url(link), {"day": " 17 ", "month": "05", "year": "1980 "})
        assert response.status_code == 302

    def test_a_match_rotates_the_session_key(self, client, link):
        client.get(url(link))
        client.session.save()
        before = client.session.session_key
        client.cookies["sessionid"] = before
        verify(client, link)
        assert client.cookies["sessionid"].value != before

    def test_verifying_one_link_does_not_verify_another(self, client, link, practice):
        other = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        verify(client, link)
        assert client.get(url(link, "times")).status_code == 200
        response = client.get(url(other, "times"))
        assert response.status_code == 302
        assert response["Location"] == url(other)

    def test_a_wrong_date_says_how_many_tries_are_left(self, client, link):
        response = client.post(url(link), WRONG_DOB)
        assert response.status_code == 200
        assert says(response, "The date of birth does not match. You have 4 tries left.")
        assert says(response, "There is a problem")
        assert failed_attempts(link) == 1
        assert_nothing_about_the_patient(response, link)

    def test_the_last_try_is_singular(self, client, link):
        for _ in range(3):
            client.post(url(link), WRONG_DOB)
        response = client.post(url(link), WRONG_DOB)
        assert says(response, "You have 1 try left.")

    def test_the_fifth_wrong_date_locks_the_link_and_then_even_the_right_one_is_refused(self, client, link):
        for _ in range(4):
            client.post(url(link), WRONG_DOB)
        response = client.post(url(link), WRONG_DOB)
        assert response.status_code == 403
        assert says(response, "This link is locked")
        assert says(response, link.organisation.phone_for_display)
        assert BookingLink.objects.get(pk=link.pk).status == BookingLink.Status.LOCKED

        response = client.post(url(link), DOB)
        assert response.status_code == 403
        assert says(response, "This link is locked")
        assert client.get(url(link)).status_code == 403
        assert client.get(url(link, "times")).status_code == 403

    @pytest.mark.parametrize(
        ("day", "month", "year", "message"),
        [
            ("", "", "", "Enter your date of birth"),
            ("", "5", "1980", "Date of birth must include a day"),
            ("17", "", "", "Date of birth must include a month and year"),
            ("31", "2", "1980", "Date of birth must be a real date"),
            ("1", "13", "1980", "Date of birth must be a real date"),
            ("0", "1", "1980", "Date of birth must be a real date"),
            ("a", "b", "cdef", "Date of birth must be a real date"),
            ("17", "May", "1980", "Date of birth must be a real date"),
            ("١٧", "5", "1980", "Date of birth must be a real date"),
            ("17", "5", "80", "Year must include 4 numbers"),
            ("17", "5", "3000", "Date of birth must be in the past"),
            ("17", "5", "1492", "Date of birth must be in 1880 or later"),
            ("17\x00", "5", "1980", "Date of birth must be a real date"),
        ],
    )
    def test_impossible_future_blank_or_non_numeric_dates_are_form_errors_that_do_not_count(
        self, client, link, day, month, year, message
    ):
        response = client.post(url(link), {"day": day, "month": month, "year": year})
        assert response.status_code == 200
        assert says(response, "There is a problem")
        assert says(response, message)
        assert failed_attempts(link) == 0
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.DOB_FAILED).exists()
        assert 'class="nhsuk-error-summary"' in response.content.decode()

    def test_tomorrow_is_in_the_future(self, client, link):
        tomorrow = timezone.localdate() + timedelta(days=1)
        response = client.post(url(link), {"day": tomorrow.day, "month": tomorrow.month, "year": tomorrow.year})
        assert says(response, "Date of birth must be in the past")
        assert failed_attempts(link) == 0

    def test_a_form_with_missing_fields_is_a_form_error(self, client, link):
        response = client.post(url(link), {})
        assert response.status_code == 200
        assert says(response, "Enter your date of birth")
        assert failed_attempts(link) == 0

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(parts=st.one_of(_typed_dates(), _any_text_parts()))
    def test_any_text_in_the_date_never_errors_and_counts_only_a_real_past_date(self, link, parts):
        day, month, year = parts
        BookingLink.objects.filter(pk=link.pk).update(failed_attempts=0, status=BookingLink.Status.ACTIVE)
        AttemptCount.objects.all().delete()
        response = Client().post(url(link), {"day": day, "month": month, "year": year})
        assert response.status_code in (200, 302)
        real_past_date = _real_past_date(day, month, year)
        expected = 1 if real_past_date is not None and real_past_date != link.patient.date_of_birth else 0
        event("matched" if response.status_code == 302 else "counted" if expected else "form error")
        assert failed_attempts(link) == expected
        assert (response.status_code == 302) == (real_past_date == link.patient.date_of_birth)
        if expected:
            assert says(response, "You have 4 tries left.")
        elif response.status_code == 200:
            assert says(response, "There is a problem")


def _real_past_date(day: str, month: str, year: str) -> date | None:
    """The rule, written out independently of the form: ASCII digits, 1-2/1-2/4, real, 1880 to today."""
    day, month, year = day.strip(), month.strip(), year.strip()
    if not (
        re.fullmatch(r"[0-9]{1,2}", day) and re.fullmatch(r"[0-9]{1,2}", month) and re.fullmatch(r"[0-9]{4}", year)
    ):
        return None
    try:
        value = date(int(year), int(month), int(day))
    except ValueError:
        return None
    return value if date(1880, 1, 1) <= value <= timezone.localdate() else None


class TestTriesPerAddress:
    def _links(self, practice, count):
        return [
            BookingLinkFactory(
                patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
            )
            for _ in range(count)
        ]

    def test_twenty_wrong_dates_from_one_address_across_links_get_a_friendly_429(self, client, practice):
        links = self._links(practice, 6)
        for link in links[:5]:
            for _ in range(4):
                assert client.post(url(link), WRONG_DOB).status_code == 200
        response = client.post(url(links[5]), WRONG_DOB)
        assert response.status_code == 429
        assert says(response, "Too many tries")
        assert says(response, practice.organisation.phone_for_display)
        # Refused before the check: the sixth link's count is untouched, and the right date waits too.
        assert failed_attempts(links[5]) == 0
        assert client.post(url(links[5]), DOB).status_code == 429

    def test_another_address_is_not_held_up(self, client, practice):
        links = self._links(practice, 6)
        for link in links[:5]:
            for _ in range(4):
                client.post(url(link), WRONG_DOB)
        other = Client(REMOTE_ADDR="198.51.100.7")
        assert other.post(url(links[5]), DOB).status_code == 302

    def test_form_errors_do_not_count_towards_the_limit(self, client, link):
        for _ in range(25):
            client.post(url(link), {"day": "31", "month": "2", "year": "1980"})
        assert client.post(url(link), DOB).status_code == 302

    def test_the_limit_lifts_after_ten_minutes(self):
        start = 1_800_000_000.0
        start -= start % throttle.WINDOW_SECONDS
        for _ in range(throttle.FAILED_TRIES_LIMIT):
            throttle.dob_failure_record(ip_address="203.0.113.5", now=start)
        assert throttle.dob_failures_exceeded(ip_address="203.0.113.5", now=start + 1)
        assert not throttle.dob_failures_exceeded(ip_address="203.0.113.6", now=start + 1)
        assert not throttle.dob_failures_exceeded(ip_address="203.0.113.5", now=start + throttle.WINDOW_SECONDS)


@pytest.mark.django_db(transaction=True)
def test_failures_recorded_at_once_by_many_processes_are_all_counted():
    # A read then a write (cache.incr on the database cache) would lose parallel failures;
    # each failure bumps the count with one atomic upsert instead.
    cache.clear()
    barrier = threading.Barrier(12)
    counted = []

    def fail():
        try:
            barrier.wait()
            counted.append(throttle.dob_failure_record(ip_address="203.0.113.9"))
        finally:
            connection.close()

    threads = [threading.Thread(target=fail) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert throttle.dob_failures_counted(ip_address="203.0.113.9") == 12
    assert sorted(counted) == list(range(1, 13))
    cache.clear()


class TestIdleTimeout:
    def test_verification_lapses_after_thirty_minutes_idle_and_each_visit_restarts_the_clock(self, client, link):
        start = timezone.now()
        with time_machine.travel(start, tick=False) as clock:
            verify(client, link)
            clock.shift(timedelta(minutes=29))
            assert client.get(url(link, "times")).status_code == 200
            clock.shift(timedelta(minutes=29))
            assert client.get(url(link, "times")).status_code == 200
            clock.shift(timedelta(minutes=31))
            response = client.get(url(link, "times"))
            assert response.status_code == 302
            assert response["Location"] == url(link)
            # And it stays lapsed: the date of birth is needed again.
            assert client.get(url(link, "times")).status_code == 302


# --- Times ------------------------------------------------------------------------------------


@pytest.fixture
def verified(client, link):
    verify(client, link)
    return client


class TestTimes:
    def test_guidance_then_next_available_then_the_times_by_day(self, verified, link, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(
            guidance="Wear a short-sleeved top.\n\nBring your red book."
        )
        response = verified.get(url(link, "times"))
        assert response.status_code == 200
        page = text(response)
        slots = free_slots(practice)
        first = timezone.localtime(slots[0].start)
        day = f"{first:%A} {first.day} {first:%B}"
        assert page.index("Before you book") < page.index("Wear a short-sleeved top.") < page.index("Next available")
        assert page.index("Next available") < page.index(f"Other times {day}")
        content = response.content.decode()
        assert content.count('type="radio"') == 3
        for slot in slots:
            assert f'value="{ref(slot)}"' in content
        assert f"with {practice.practitioner.name}" in page
        assert practice.location.address_line_1 in page
        assert practice.location.postcode in page

    def test_times_read_in_uk_time_by_uk_day(self, client, practice):
        # 23:30 UTC on a summer evening is 00:30 the next morning in London.
        with time_machine.travel(datetime(2026, 6, 1, 9, 0, tzinfo=UTC), tick=False):
            Slot.objects.all().delete()
            for start in (datetime(2026, 6, 10, 23, 30, tzinfo=UTC), datetime(2026, 6, 11, 11, 0, tzinfo=UTC)):
                SlotFactory(
                    practitioner=practice.practitioner,
                    location=practice.location,
                    appointment_type=practice.appointment_type,
                    start=start,
                    end=start + timedelta(minutes=10),
                )
            link = BookingLinkFactory(
                patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
            )
            verify(client, link)
            page = text(client.get(url(link, "times")))
        assert "Thursday 11 June at 12:30am" in page
        assert "Thursday 11 June 12pm" in page or "Thursday 11 June midday" in page

    def test_only_the_links_type_location_and_practitioner_are_offered(self, client, practice):
        other_type = AppointmentTypeFactory(organisation=practice.organisation, minimum_notice_hours=1)
        other_location = LocationFactory(organisation=practice.organisation)
        other_practitioner = PractitionerFactory(organisation=practice.organisation)
        start = timezone.now() + timedelta(days=3)
        strangers = [
            SlotFactory(
                practitioner=practice.practitioner, location=practice.location, appointment_type=other_type, start=start
            ),
            SlotFactory(
                practitioner=practice.practitioner,
                location=other_location,
                appointment_type=practice.appointment_type,
                start=start + timedelta(hours=1),
            ),
            SlotFactory(
                practitioner=other_practitioner,
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=start,
            ),
        ]
        link = BookingLinkFactory(
            patient=practice.patient,
            appointment_type=practice.appointment_type,
            location=practice.location,
            practitioner=practice.practitioner,
        )
        verify(client, link)
        content = client.get(url(link, "times")).content.decode()
        assert content.count('type="radio"') == 3
        for slot in strangers:
            assert ref(slot) not in content

    def test_with_no_times_the_page_says_what_to_do(self, verified, link, practice):
        Slot.objects.update(status=Slot.Status.BLOCKED)
        response = verified.get(url(link, "times"))
        assert response.status_code == 200
        assert says(response, "There are no times available to book online")
        assert says(response, practice.organisation.phone_for_display)
        assert 'type="radio"' not in response.content.decode()

    def test_many_times_show_the_days_first_then_a_days_times(self, verified, link, practice):
        Slot.objects.all().delete()
        monday = timezone.localdate() + timedelta(days=7 - timezone.localdate().weekday())
        for week in range(3):
            for day in range(5):
                for hour in (9, 10, 11):
                    start = timezone.make_aware(
                        datetime.combine(monday + timedelta(weeks=week, days=day), datetime.min.time())
                    ) + timedelta(hours=hour)
                    SlotFactory(
                        practitioner=practice.practitioner,
                        location=practice.location,
                        appointment_type=practice.appointment_type,
                        start=start,
                        end=start + timedelta(minutes=10),
                    )
        first = verified.get(url(link, "times"))
        page = text(first)
        # The earliest time on its own, then the days of its week to choose from.
        assert first.content.decode().count('type="radio"') == 1
        assert page.index("Next available") < page.index("Or choose a day")
        assert page.count(", 3 times") == 5
        assert 'rel="next"' in first.content.decode()
        assert 'rel="prev"' not in first.content.decode()
        second = verified.get(url(link, "times") + f"?from={(monday + timedelta(weeks=1)).isoformat()}")
        assert text(second).count(", 3 times") == 5
        assert 'rel="prev"' in second.content.decode()
        last = verified.get(url(link, "times") + f"?from={(monday + timedelta(weeks=2)).isoformat()}")
        assert text(last).count(", 3 times") == 5
        day = verified.get(url(link, "times") + f"?day={(monday + timedelta(days=1)).isoformat()}")
        assert day.content.decode().count('type="radio"') == 3
        assert "Morning" in text(day)
        for junk in ("-1", "abc", "9" * 30, ""):
            assert verified.get(url(link, "times") + f"?from={junk}").status_code == 200

    @pytest.mark.parametrize("count", [5, 120])
    def test_the_number_of_queries_does_not_grow_with_the_number_of_times(
        self, verified, link, practice, count, django_assert_max_num_queries
    ):
        Slot.objects.all().delete()
        practitioners = [PractitionerFactory(organisation=practice.organisation) for _ in range(3)]
        start = timezone.now().replace(second=0, microsecond=0) + timedelta(days=1)
        for i in range(count):
            SlotFactory(
                practitioner=practitioners[i % 3],
                location=practice.location,
                appointment_type=practice.appointment_type,
                start=start + timedelta(minutes=10 * i),
                end=start + timedelta(minutes=10 * (i + 1)),
            )
        # The link, the session, the times, and (at most once a minute) the session saved with
        # its new last-seen time (an UPDATE inside a savepoint: three statements).
        with django_assert_max_num_queries(6):
            response = verified.get(url(link, "times"))
        assert response.status_code == 200

    def test_expired_revoked_and_locked_links_show_their_pages_even_when_verified(self, verified, link, practice):
        expire(link)
        assert verified.get(url(link, "times")).status_code == 410
        BookingLink.objects.filter(pk=link.pk).update(expires_at=None)
        booking_link_revoke(link=link, actor=None)
        response = verified.get(url(link, "times"))
        assert response.status_code == 410
        assert says(response, "This link has been cancelled")


# --- Confirm and book -------------------------------------------------------------------------


class TestConfirm:
    def test_the_chosen_time_is_shown_with_book_appointment(self, verified, link, practice):
        slot = free_slots(practice)[1]
        response = verified.get(url(link, "confirm") + f"?slot={ref(slot)}")
        assert response.status_code == 200
        page = text(response)
        start = timezone.localtime(slot.start)
        assert f"{start:%A} {start.day} {start:%B}" in page
        assert practice.practitioner.name in page
        assert practice.location.name in page
        assert practice.location.address_line_1 in page
        content = response.content.decode()
        assert ">Book appointment</button>" in content
        assert f'name="slot" value="{ref(slot)}"' in content
        assert not Appointment.objects.exists()

    def test_continuing_without_a_time_asks_for_one(self, verified, link):
        for query in ("", "?slot=", "?slot=not-a-ref", "?slot=" + "A" * 200):
            response = verified.get(url(link, "confirm") + query)
            assert response.status_code == 200
            assert says(response, "Choose a time")
            assert says(response, "There is a problem")

    def test_a_time_no_longer_free_shows_the_times_again(self, verified, link, practice):
        slot = free_slots(practice)[0]
        Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.BOOKED)
        response = verified.get(url(link, "confirm") + f"?slot={ref(slot)}")
        assert response.status_code == 409
        assert says(response, "Sorry, that time is no longer available")
        assert response.content.decode().count('type="radio"') == 2

    def test_booking_makes_the_appointment_and_shows_it(self, verified, link, practice):
        slot = free_slots(practice)[0]
        response = verified.post(url(link, "confirm"), {"slot": ref(slot)}, follow=True)
        assert response.redirect_chain == [(url(link, "booked"), 302)]
        appointment = Appointment.objects.get()
        assert appointment.slot == slot
        assert appointment.booking_link_id == link.pk
        assert says(response, "Appointment booked")
        # The domain writes the audit; the page doesn't add a second one.
        assert AuditEvent.objects.filter(action=AuditEvent.Action.BOOKED).count() == 1

    def test_a_lost_race_shows_the_times_again_with_sorry(self, verified, link, practice):
        slot, *others = free_slots(practice)
        Slot.objects.filter(pk=slot.pk).update(status=Slot.Status.BOOKED)  # someone else got there first
        response = verified.post(url(link, "confirm"), {"slot": ref(slot)})
        assert response.status_code == 409
        assert says(response, "Sorry, that time has just been taken")
        content = response.content.decode()
        for other in others:
            assert f'value="{ref(other)}"' in content
        assert not Appointment.objects.exists()

    def test_a_slot_of_another_type_location_or_practitioner_is_refused_and_books_nothing(
        self, verified, link, practice
    ):
        other_type = AppointmentTypeFactory(organisation=practice.organisation, minimum_notice_hours=1)
        other_location = LocationFactory(organisation=practice.organisation)
        start = timezone.now() + timedelta(days=4)
        for slot in (
            SlotFactory(
                practitioner=practice.practitioner, location=practice.location, appointment_type=other_type, start=start
            ),
            SlotFactory(
                practitioner=practice.practitioner,
                location=other_location,
                appointment_type=practice.appointment_type,
                start=start + timedelta(hours=1),
            ),
        ):
            response = verified.post(url(link, "confirm"), {"slot": ref(slot)})
            assert response.status_code == 400
            assert says(response, "That time cannot be booked")
        for junk in ("", "nonsense", encode_reference(10**9, namespace="slot"), encode_reference(1, namespace="x")):
            assert verified.post(url(link, "confirm"), {"slot": junk}).status_code == 400
        assert not Appointment.objects.exists()
        assert BookingLink.objects.get(pk=link.pk).status == BookingLink.Status.ACTIVE

    def test_a_double_submit_books_once_and_shows_the_booking(self, verified, link, practice):
        slot = free_slots(practice)[0]
        verified.post(url(link, "confirm"), {"slot": ref(slot)})
        response = verified.post(url(link, "confirm"), {"slot": ref(slot)})
        assert response.status_code == 302
        assert response["Location"] == url(link, "booked")
        assert Appointment.objects.count() == 1

    def test_two_tabs_choosing_different_times_book_once(self, verified, link, practice):
        first, second, _ = free_slots(practice)
        verified.post(url(link, "confirm"), {"slot": ref(first)})
        response = verified.post(url(link, "confirm"), {"slot": ref(second)}, follow=True)
        assert says(response, "Appointment booked")
        assert Appointment.objects.get().slot == first
        assert Slot.objects.get(pk=second.pk).status == Slot.Status.FREE

    def test_a_link_booked_meanwhile_goes_to_the_booked_page(self, verified, link, practice, monkeypatch):
        def booked_in_another_tab(**kwargs):
            raise LinkNotBookable("booked")

        monkeypatch.setattr("booking.views.patient.appointment_book", booked_in_another_tab)
        response = verified.post(url(link, "confirm"), {"slot": ref(free_slots(practice)[0])})
        assert response.status_code == 302
        assert response["Location"] == url(link, "booked")

    @pytest.mark.parametrize(
        ("state", "status", "heading"),
        [
            ("expired", 410, "This link has expired"),
            ("revoked", 410, "This link has been cancelled"),
            ("locked", 403, "This link is locked"),
        ],
    )
    def test_a_link_that_stopped_working_meanwhile_shows_why(
        self, verified, link, practice, monkeypatch, state, status, heading
    ):
        def stopped(**kwargs):
            raise LinkNotBookable(state)

        monkeypatch.setattr("booking.views.patient.appointment_book", stopped)
        response = verified.post(url(link, "confirm"), {"slot": ref(free_slots(practice)[0])})
        assert response.status_code == status
        assert says(response, heading)

    def test_a_busy_database_asks_to_try_again_with_503(self, verified, link, practice, monkeypatch):
        def busy(**kwargs):
            raise BookingBusy()

        monkeypatch.setattr("booking.views.patient.appointment_book", busy)
        slot = free_slots(practice)[0]
        response = verified.post(url(link, "confirm"), {"slot": ref(slot)})
        assert response.status_code == 503
        assert says(response, "Sorry, we are very busy")
        assert says(response, "Try again")
        assert f"?slot={ref(slot)}" in response.content.decode()

    def test_try_again_keeps_the_day_the_patient_chose_the_time_on(self, verified, link, practice, monkeypatch):
        def busy(**kwargs):
            raise BookingBusy()

        monkeypatch.setattr("booking.views.patient.appointment_book", busy)
        slot = free_slots(practice)[0]
        day = london_time(slot.start).date().isoformat()
        response = verified.post(url(link, "confirm"), {"slot": ref(slot), "day": day})
        assert response.status_code == 503
        assert f"?slot={ref(slot)}&amp;day={day}" in response.content.decode()
        again = verified.get(f"{url(link, 'confirm')}?slot={ref(slot)}&day={day}")
        assert f'name="day" value="{day}"' in again.content.decode()

    def test_the_booking_form_needs_its_csrf_token(self, link, practice):
        client = Client(enforce_csrf_checks=True)
        client.post(url(link), DOB)  # refused too: no token
        assert not Appointment.objects.exists()
        response = client.post(url(link, "confirm"), {"slot": ref(free_slots(practice)[0])})
        assert response.status_code == 403
        assert not Appointment.objects.exists()


# --- After booking ----------------------------------------------------------------------------


@pytest.fixture
def booked_client(verified, link, practice):
    slot = free_slots(practice)[0]
    verified.post(url(link, "confirm"), {"slot": ref(slot)})
    return verified


class TestBooked:
    def test_the_booked_page_shows_everything_needed_to_turn_up(self, booked_client, link, practice):
        appointment = Appointment.objects.select_related("slot").get()
        response = booked_client.get(url(link, "booked"))
        assert response.status_code == 200
        page = text(response)
        start = timezone.localtime(appointment.slot.start)
        assert "Appointment booked" in page
        assert f"{start:%A} {start.day} {start:%B} {start.year}" in page
        assert practice.practitioner.name in page
        assert practice.location.name in page
        assert practice.location.address_line_1 in page
        assert appointment.reference in page
        assert practice.organisation.phone_for_display in page
        assert f'href="{url(link, "appointment.ics")}"' in response.content.decode()
        assert "Add to calendar" in page

    def test_a_video_appointment_says_the_practice_will_send_how_to_join(self, booked_client, link, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode=AppointmentType.Mode.VIDEO)
        page = text(booked_client.get(url(link, "booked")))
        assert "will send you how to join" in page
        assert practice.location.address_line_1 not in page

    def test_reopening_the_link_shows_the_booking_after_the_date_of_birth_never_a_second_booking(
        self, booked_client, link
    ):
        assert booked_client.get(url(link, "times"))["Location"] == url(link, "booked")
        assert booked_client.get(url(link))["Location"] == url(link, "booked")
        fresh = Client()
        response = fresh.get(url(link))
        assert response.status_code == 200
        assert says(response, "What is your date of birth?")
        assert_nothing_about_the_patient(response, link)
        response = fresh.post(url(link), DOB, follow=True)
        assert response.redirect_chain == [(url(link, "booked"), 302)]
        assert says(response, "Appointment booked")
        assert Appointment.objects.count() == 1

    def test_the_booked_page_before_booking_goes_to_the_times(self, verified, link):
        assert verified.get(url(link, "booked"))["Location"] == url(link, "times")
        assert verified.get(url(link, "appointment.ics"))["Location"] == url(link, "times")

    def test_a_cancelled_booking_says_the_link_was_used(self, booked_client, link, practice):
        from booking.appointments import appointment_cancel

        appointment_cancel(appointment=Appointment.objects.get(), actor=practice.user)
        response = booked_client.get(url(link, "booked"))
        assert response.status_code == 410
        assert says(response, "This link has already been used")
        assert says(response, practice.organisation.phone_for_display)
        assert booked_client.get(url(link, "appointment.ics"))["Location"] == url(link, "booked")

    def test_the_calendar_file_has_the_event_in_utc_and_nothing_about_the_patient(self, booked_client, link, practice):
        appointment = Appointment.objects.select_related("slot").get()
        response = booked_client.get(url(link, "appointment.ics"))
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/calendar")
        assert "attachment" in response["Content-Disposition"]
        body = response.content.decode()
        assert body.startswith("BEGIN:VCALENDAR\r\n")
        assert body.endswith("END:VCALENDAR\r\n")
        assert all(len(line.encode()) <= 75 for line in body.split("\r\n"))
        unfolded = body.replace("\r\n ", "")
        fields = dict(line.split(":", 1) for line in unfolded.split("\r\n") if ":" in line)
        assert fields["UID"] == f"{appointment.reference}@testserver"
        assert fields["DTSTART"] == appointment.slot.start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        assert fields["DTEND"] == appointment.slot.end.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        assert practice.appointment_type.name in fields["SUMMARY"]
        assert practice.location.address_line_1 in fields["LOCATION"]
        assert "BEGIN:VEVENT" in body
        patient = practice.patient
        for detail in (patient.first_name, patient.last_name, patient.nhs_number, "1980"):
            assert detail not in body

    def test_the_calendar_file_needs_the_date_of_birth(self, booked_client, link):
        assert Client().get(url(link, "appointment.ics"))["Location"] == url(link)


# --- Links that can't be used ---------------------------------------------------------------


class TestStatePages:
    def test_an_expired_link_says_so_with_410_and_the_practice_phone(self, client, link):
        expire(link)
        for response in (client.get(url(link)), client.post(url(link), DOB)):
            assert response.status_code == 410
            assert says(response, "This link has expired")
            assert says(response, link.organisation.phone_for_display)
            assert_nothing_about_the_patient(response, link)
        assert failed_attempts(link) == 0

    def test_a_revoked_link_says_so_with_410_and_the_practice_phone(self, client, link):
        booking_link_revoke(link=link, actor=None)
        response = client.get(url(link))
        assert response.status_code == 410
        assert says(response, "This link has been cancelled")
        assert says(response, link.organisation.phone_for_display)
        assert_nothing_about_the_patient(response, link)

    def test_a_locked_link_says_to_contact_the_practice_with_403(self, client, link):
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
        response = client.get(url(link))
        assert response.status_code == 403
        assert says(response, "This link is locked")
        assert says(response, link.organisation.phone_for_display)
        assert_nothing_about_the_patient(response, link)

    def test_a_practice_without_a_phone_number_is_still_named(self, client, link):
        link.organisation.phone = ""
        link.organisation.save()
        expire(link)
        assert says(client.get(url(link)), f"Contact {link.organisation.name} to book your appointment")


# --- Every patient page -----------------------------------------------------------------------


def _every_page(client: Client, practice) -> dict[str, object]:
    """One response for each page a patient can meet, keyed by a name for messages."""
    pages = {"not found": client.get("/b/nonsense")}
    make = lambda: BookingLinkFactory(  # noqa: E731
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    link = make()
    pages["date of birth"] = client.get(url(link))
    pages["date of birth error"] = client.post(url(link), {"day": "31", "month": "2", "year": "1980"})
    pages["date of birth mismatch"] = client.post(url(link), WRONG_DOB)
    verify(client, link)
    pages["times"] = client.get(url(link, "times"))
    slot = free_slots(practice)[0]
    pages["confirm"] = client.get(url(link, "confirm") + f"?slot={ref(slot)}")
    client.post(url(link, "confirm"), {"slot": ref(slot)})
    pages["booked"] = client.get(url(link, "booked"))
    pages["calendar"] = client.get(url(link, "appointment.ics"))
    expired = make()
    expire(expired)
    pages["expired"] = client.get(url(expired))
    revoked = make()
    booking_link_revoke(link=revoked, actor=None)
    pages["revoked"] = client.get(url(revoked))
    locked = make()
    BookingLink.objects.filter(pk=locked.pk).update(status=BookingLink.Status.LOCKED, failed_attempts=5)
    pages["locked"] = client.get(url(locked))
    return pages


class TestEveryPatientPage:
    def test_security_headers_and_never_cached(self, client, practice):
        for name, response in _every_page(client, practice).items():
            assert "no-store" in response["Cache-Control"], name
            assert response["Referrer-Policy"] == "same-origin", name
            assert response["X-Content-Type-Options"] == "nosniff", name
            csp = response["Content-Security-Policy"]
            assert "default-src 'self'" in csp, name
            assert "frame-ancestors 'none'" in csp, name

    def test_no_script_no_third_party_and_small(self, client, practice):
        for name, response in _every_page(client, practice).items():
            if name == "calendar":
                continue
            html = response.content.decode()
            assert "<script" not in html, name
            assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", html), name
            assert len(gzip.compress(response.content)) < 100_000, name
            assert len(response.content) < 100_000, name


def test_behind_a_proxy_each_patient_has_their_own_count(settings, practice):
    # Behind a proxy every request comes from the proxy's address; the limit must still be per patient.
    settings.TRUSTED_PROXY_COUNT = 1
    links = [
        BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        for _ in range(6)
    ]
    behind_proxy = {"REMOTE_ADDR": "10.0.0.2"}
    guesser = Client(HTTP_X_FORWARDED_FOR="203.0.113.50", **behind_proxy)
    for link in links[:5]:
        for _ in range(4):
            guesser.post(url(link), WRONG_DOB)
    assert guesser.post(url(links[5]), WRONG_DOB).status_code == 429
    patient = Client(HTTP_X_FORWARDED_FOR="198.51.100.7", **behind_proxy)
    assert patient.post(url(links[5]), DOB).status_code == 302
