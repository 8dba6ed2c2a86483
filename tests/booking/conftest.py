"""Fixtures the booking tests share; those every folder uses are in tests/conftest.py."""

from __future__ import annotations

import pytest

from booking.models import BookingLink
from tests.factories import BookingLinkFactory
from tests.scenarios import Practice


@pytest.fixture
def link(practice: Practice) -> BookingLink:
    """An active link for the practice's patient, to its flu vaccinations at its surgery."""
    return BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
