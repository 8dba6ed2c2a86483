"""The development outbox and the delivery history staff see."""

from __future__ import annotations

import uuid

import pytest
from django.test import TestCase, override_settings

from booking.links import LinkExpiry
from messaging.models import Message, MessageStatusEvent
from messaging.sending import LinkSettings, message_send
from tests.factories import MessageFactory
from tests.scenarios import text_as_sent

pytestmark = pytest.mark.django_db


def send(practice) -> Message:
    with TestCase.captureOnCommitCallbacks(execute=True):
        message, _ = message_send(
            sender=practice.user,
            patient=practice.patient,
            channel="sms",
            body="Book here: {{Appointment Link}}",
            link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14),
            idempotency_key=uuid.uuid4(),
        )
    message.refresh_from_db()
    return message


def test_the_outbox_is_not_there_in_production(client, practice):
    send(practice)
    assert client.get("/dev/outbox/").status_code == 404


def test_in_development_the_outbox_shows_the_text_with_its_link_to_open(client, practice):
    message = send(practice)
    assert message.provider_message_id == f"outbox-{message.reference}"
    with override_settings(DEBUG=True):
        response = client.get("/dev/outbox/")
    assert response.status_code == 200
    page = response.text
    assert f"Text to {practice.patient.mobile}" in page
    link = text_as_sent(message).split("Book here: ")[1]
    assert f'<a href="{link}"' in page


def test_the_outbox_leaves_out_messages_not_sent(client, practice):
    MessageFactory(patient=practice.patient, status="failed", body="never went")
    with override_settings(DEBUG=True):
        page = client.get("/dev/outbox/").text
    assert "never went" not in page
    assert "Nothing has been sent yet" in page


def test_the_message_page_shows_the_delivery_history(staff_client, practice):
    message = send(practice)
    MessageStatusEvent.objects.create(
        message=message, status="delivered", source="provider", provider_status="delivered"
    )
    page = staff_client.get(f"/messages/{message.reference}/").text
    assert "Delivery history" in page
    assert "Accepted by the provider (try 1)" in page
    assert "reported by the provider: delivered" in page
    assert "Open the outbox" not in page  # production


def test_in_development_the_message_page_points_to_the_outbox(staff_client, practice):
    message = send(practice)
    with override_settings(DEBUG=True):
        page = staff_client.get(f"/messages/{message.reference}/").text
    assert "/dev/outbox/" in page
