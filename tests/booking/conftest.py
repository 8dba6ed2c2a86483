"""Fixtures the booking tests share; those every folder uses are in tests/conftest.py."""

from __future__ import annotations

import pytest

from booking.models import BookingLink
from tests.scenarios import Practice, make_link


@pytest.fixture
def link(practice: Practice) -> BookingLink:
    return make_link(practice)
