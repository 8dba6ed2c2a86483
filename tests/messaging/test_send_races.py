"""Two submits of one form at the same moment send one message, on the real database."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import connections

from booking.links import LinkExpiry
from booking.models import BookingLink
from messaging.models import Message
from messaging.sending import LinkSettings, message_send
from tests.messaging.conftest import make_practice

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_double_submits_send_once():
    practice = make_practice()
    key = uuid.uuid4()
    barrier = threading.Barrier(6)
    results: list = []

    def submit():
        try:
            barrier.wait()
            results.append(
                message_send(
                    sender=practice.user,
                    patient=practice.patient,
                    channel="sms",
                    body="Book: {{Appointment Link}}",
                    link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14),
                    idempotency_key=key,
                )
            )
        except Exception as error:  # the assertion below reports it
            results.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not [result for result in results if isinstance(result, Exception)], results
    assert Message.objects.count() == 1
    assert BookingLink.objects.count() == 1
    assert sum(created for _, created in results) == 1
    assert {message.pk for message, _ in results} == {Message.objects.get().pk}
