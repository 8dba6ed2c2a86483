"""The per-address date-of-birth limit under pressure (issue 16, finding 5; hostile test 4).

Only wrong dates a link evaluated and counted count towards the client's address: a burst on
one link adds at most five, so it never shuts out the next patient behind the same mobile
network's address. The counts are rows in the database, so hundreds of other addresses
writing failures don't push one address's count out (the database cache kept 300 entries).
IPv6 addresses count per /64.
"""

from __future__ import annotations

import ipaddress
from datetime import date

import pytest
from django.test import Client

from booking import throttle
from booking.links import DobCheck, booking_link_check_dob
from booking.models import AttemptCount, BookingLink
from tests.concurrency import race
from tests.factories import BookingLinkFactory, PatientFactory
from tests.scenarios import make_practice

RIGHT = date(1980, 5, 17)  # PatientFactory's date of birth
WRONG = date(1901, 1, 1)
RIGHT_FORM = {"day": "17", "month": "5", "year": "1980"}


def new_link(practice) -> BookingLink:
    return BookingLinkFactory(
        patient=PatientFactory(organisation=practice.organisation),
        appointment_type=practice.appointment_type,
        location=practice.location,
    )


def check(link: BookingLink, date_of_birth: date, ip_address: str) -> DobCheck:
    fresh = BookingLink.objects.select_related("patient").get(pk=link.pk)
    return booking_link_check_dob(link=fresh, date_of_birth=date_of_birth, ip_address=ip_address).check


def use_up_tries(practice, ip_address: str) -> None:
    # Five wrong dates on each of four links: every one evaluated and counted by its link.
    for _ in range(throttle.FAILED_TRIES_LIMIT // 5):
        link = new_link(practice)
        for _ in range(5):
            check(link, WRONG, ip_address)


@pytest.mark.django_db(transaction=True)
class TestABurstOnOneLink:
    @pytest.mark.parametrize("tries", [15, 50])
    def test_never_refuses_a_right_date_on_another_link_from_the_same_address(self, tries):
        practice = make_practice()
        burst, other = new_link(practice), new_link(practice)
        results = race(lambda i: check(burst, WRONG, "203.0.113.20"), threads=tries)
        assert not [r for r in results if isinstance(r, Exception)], results
        response = Client(REMOTE_ADDR="203.0.113.20").post(f"/b/{other.token}", RIGHT_FORM)
        assert response.status_code == 302
        burst.refresh_from_db()
        assert (burst.failed_attempts, burst.status) == (5, BookingLink.Status.LOCKED)
        assert throttle.dob_failures_counted(ip_address="203.0.113.20") == 5


@pytest.mark.django_db
class TestTheAddressLimit:
    def test_still_blocks_after_500_other_addresses_wrote_failures(self):
        practice = make_practice()
        use_up_tries(practice, "203.0.113.66")
        target = new_link(practice)
        assert check(target, RIGHT, "203.0.113.66") is DobCheck.TOO_MANY_TRIES
        first = ipaddress.ip_address("10.20.0.1")
        # Four wrong dates each, as patients behind 500 other addresses might make.
        for n in range(500):
            for _ in range(4):
                throttle.dob_failure_record(ip_address=str(first + n))
        assert check(target, RIGHT, "203.0.113.66") is DobCheck.TOO_MANY_TRIES
        assert check(target, RIGHT, "203.0.113.67") is DobCheck.MATCH

    def test_counts_only_wrong_dates_a_link_counted(self):
        practice = make_practice()
        link = new_link(practice)
        results = [check(link, WRONG, "203.0.113.21") for _ in range(12)]
        assert results == [DobCheck.MISMATCH] * 4 + [DobCheck.LOCKED] * 8
        assert check(link, RIGHT, "203.0.113.21") is DobCheck.LOCKED
        assert throttle.dob_failures_counted(ip_address="203.0.113.21") == 5

    def test_ipv6_addresses_in_one_slash_64_share_a_count_and_other_slash_64s_do_not(self):
        practice = make_practice()
        link = new_link(practice)
        for _ in range(throttle.FAILED_TRIES_LIMIT):
            throttle.dob_failure_record(ip_address="2001:db8:1:2::1")
        same = Client(REMOTE_ADDR="2001:db8:1:2:ffff:ffff:ffff:fffe").post(f"/b/{link.token}", RIGHT_FORM)
        assert same.status_code == 429
        other = Client(REMOTE_ADDR="2001:db8:1:3::1").post(f"/b/{link.token}", RIGHT_FORM)
        assert other.status_code == 302

    @pytest.mark.parametrize(
        ("address", "bucket"),
        [
            ("203.0.113.5", "203.0.113.5"),
            ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
            ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
            ("::ffff:203.0.113.5", "203.0.113.5"),
            (None, "unknown"),
            ("not an address", "unknown"),
        ],
    )
    def test_what_an_address_counts_as(self, address, bucket):
        assert throttle.address_bucket(address) == bucket


@pytest.mark.django_db
class TestAttemptCounts:
    def test_a_new_window_starts_from_zero_and_clears_ended_windows(self):
        start = 1_800_000_000.0
        start -= start % 600
        assert throttle.attempts_record(key="reset:someone", window_seconds=600, now=start) == 1
        assert throttle.attempts_record(key="reset:someone", window_seconds=600, now=start + 599) == 2
        assert throttle.attempts_exceeded(key="reset:someone", limit=2, window_seconds=600, now=start + 1)
        assert not throttle.attempts_exceeded(key="reset:someone", limit=3, window_seconds=600, now=start + 1)
        later = start + 600 + throttle.CLOCK_SKEW.total_seconds() * 2 + 600
        assert throttle.attempts_record(key="reset:other", window_seconds=600, now=later) == 1
        assert list(AttemptCount.objects.values_list("count", flat=True)) == [1]

    def test_keys_are_stored_only_as_digests(self):
        throttle.dob_failure_record(ip_address="203.0.113.5")
        row = AttemptCount.objects.get()
        assert "203.0.113" not in row.key_digest
        assert len(row.key_digest) == 64
