"""Fifty wrong dates of birth for one link at once count exactly five, on the real database.

The count is an atomic `UPDATE ... WHERE failed_attempts < 5`; the threads start together on a
barrier, each with its own connection, so the updates really meet.
"""

from __future__ import annotations

from datetime import date

import pytest

from booking.links import DobCheck, booking_link_verify_dob
from booking.models import AuditEvent, BookingLink
from tests.concurrency import race
from tests.factories import BookingLinkFactory
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db(transaction=True)


class TestDateOfBirthCount:
    def test_fifty_parallel_wrong_dates_count_exactly_five(self):
        practice = make_practice()
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        results = race(
            lambda i: booking_link_verify_dob(
                link=BookingLink.objects.select_related("patient").get(pk=link.pk),
                date_of_birth=date(1901, 1, 1),
                ip_address="203.0.113.9",
            ),
            threads=50,
        )
        assert not [r for r in results if isinstance(r, Exception)], results
        link.refresh_from_db()
        assert (link.failed_attempts, link.status) == (5, "locked")
        assert AuditEvent.objects.filter(action=AuditEvent.Action.DOB_FAILED, booking_link=link).count() == 5
        assert AuditEvent.objects.filter(action=AuditEvent.Action.LOCKED, booking_link=link).count() == 1
        assert sum(1 for result, _ in results if result is DobCheck.MISMATCH) == 4
        assert sum(1 for result, _ in results if result is DobCheck.LOCKED) == 46
