"""Two admins generating slots from the same rota at once make each slot once, on the real database.

The threads start together on a barrier, each with its own connection, so the idempotent
INSERT ... ON CONFLICT really meets itself.
"""

from __future__ import annotations

from datetime import date

import pytest

from booking.models import Slot
from booking.slots import slots_generate_from_rota
from tests.concurrency import race
from tests.factories import RotaFactory

pytestmark = pytest.mark.django_db(transaction=True)


class TestSlotGenerationRaces:
    def test_two_admins_generating_the_same_rota_at_once_make_each_slot_once(self):
        rota = RotaFactory()
        results = race(
            lambda i: slots_generate_from_rota(rota=rota, start_date=date(2026, 11, 2), end_date=date(2026, 11, 6)),
            threads=4,
        )
        assert not [result for result in results if isinstance(result, Exception)]
        assert Slot.objects.filter(rota=rota).count() == 30
        assert sum(result.created for result in results) == 30
