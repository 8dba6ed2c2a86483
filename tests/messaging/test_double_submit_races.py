"""Two submits of one form at the same moment send one message, on the real database."""

from __future__ import annotations

import uuid

import pytest

from booking.links import LinkExpiry
from booking.models import BookingLink
from messaging.models import Message
from messaging.sending import LinkSettings, message_send
from tests.concurrency import race
from tests.scenarios import make_practice

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_double_submits_send_once():
    practice = make_practice()
    key = uuid.uuid4()
    results = race(
        lambda i: message_send(
            sender=practice.user,
            patient=practice.patient,
            channel="sms",
            body="Book: {{Appointment Link}}",
            link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14),
            idempotency_key=key,
        ),
        threads=6,
    )

    assert not [result for result in results if isinstance(result, Exception)], results
    assert Message.objects.count() == 1
    assert BookingLink.objects.count() == 1
    assert sum(created for _, created in results) == 1
    assert {message.pk for message, _ in results} == {Message.objects.get().pk}
