"""Fixtures the booking tests share; those every folder uses are in tests/conftest.py."""

from __future__ import annotations

import pytest

from booking.models import BookingLink
from tests.scenarios import Practice, make_invitation_link, make_link, make_practice


@pytest.fixture
def link(practice: Practice) -> BookingLink:
    return make_link(practice)


@pytest.fixture
def host(db) -> Practice:
    """A second practice, Northgate, to share its appointment types with `practice`."""
    return make_practice("Northgate")


@pytest.fixture
def declinable_link(practice: Practice) -> BookingLink:
    """A campaign's invitation to the practice's patient: a link that offers "I don't want this appointment"."""
    return make_invitation_link(practice)
