"""Hostile test 1 (issue 16): no working link at rest or in output.

A link's token is all it takes to reach the date-of-birth page, and staff can read the date
of birth, so a token in clear anywhere but the patient's own copy is a way in. After messages
with links go out by SMS (through the fake Twilio) and email (locmem) and are delivered, and
after the patient's pages answer 400, 409 and 429, the token must be in no database text
column, no log record at INFO or above, no staff page and no admin page. Only the
development outbox (DEBUG) and the provider may see it.
"""

from __future__ import annotations

import logging
import uuid

import pytest
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import connection
from django.test import Client, TestCase, override_settings

from booking.links import LinkExpiry
from booking.models import BookingLink, Slot
from booking.references import encode_reference
from messaging.delivery import message_deliver
from messaging.models import Message
from messaging.sending import LinkSettings, message_send
from messaging.status_reports import StatusReport, message_status_report
from messaging.tasks import delivery_enqueue, messages_requeue
from messaging.tokens import LINK_PLACEHOLDER
from tests.factories import BookingLinkFactory
from tests.scenarios import text_as_sent

pytestmark = pytest.mark.django_db

DOB = {"day": "17", "month": "5", "year": "1980"}  # PatientFactory's date of birth
WRONG_DOB = {"day": "1", "month": "1", "year": "1990"}
TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb")


def send(practice, channel: str) -> Message:
    with TestCase.captureOnCommitCallbacks(execute=True):
        message, _ = message_send(
            sender=practice.user,
            patient=practice.patient,
            channel=channel,
            body="Hello {{Patient First Name}}, book here: {{Appointment Link}} Thank you.",
            link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14),
            idempotency_key=uuid.uuid4(),
        )
    return Message.objects.select_related("booking_link").get(pk=message.pk)


def deliver(message: Message) -> None:
    message_status_report(
        message=message, report=StatusReport(status=Message.Status.DELIVERED, provider_status="delivered")
    )


def token_of(message: Message) -> str:
    return text_as_sent(message).split("/b/")[1].split()[0]


def rows_holding(token: str) -> list[str]:
    """Every table.column of a text type (in the public schema) with a value containing `token`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type = ANY(%s)",
            [list(TEXT_TYPES)],
        )
        columns = cursor.fetchall()
        found = []
        for table, column in columns:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE position(%s in "{column}"::text) > 0',  # noqa: S608
                [token],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    assert len(columns) > 50, "the scan found the text columns"
    # Sessions are signed, not encrypted: read them decoded too.
    found += [f"session {session.pk}" for session in Session.objects.all() if token in str(session.get_decoded())]
    return found


def patient_answers_400_409_429(practice, token: str) -> list[int]:
    patient = Client()
    statuses = [patient.post(f"/b/{token}", DOB).status_code]
    statuses.append(patient.post(f"/b/{token}/confirm", {"slot": ""}).status_code)  # 400: no time chosen
    blocked = Slot.objects.filter(appointment_type=practice.appointment_type).first()
    Slot.objects.filter(pk=blocked.pk).update(status=Slot.Status.BLOCKED)
    slot = encode_reference(blocked.pk, namespace="slot")
    statuses.append(patient.get(f"/b/{token}/confirm", {"slot": slot}).status_code)  # 409: taken
    # 429: the address's wrong tries, spread over other links so none of them locks.
    for _ in range(5):
        other = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        for _ in range(4):
            statuses.append(Client().post(f"/b/{other.token}", WRONG_DOB).status_code)
    statuses.append(Client().post(f"/b/{token}", DOB).status_code)
    return statuses


@override_settings(DEBUG=False)
def test_no_token_is_at_rest_or_in_any_output_after_delivery(practice, fake_twilio, staff_client, admin_client, caplog):
    caplog.set_level(logging.INFO)
    by_sms = send(practice, "sms")
    by_email = send(practice, "email")
    tokens = [token_of(by_sms), token_of(by_email)]
    # The patient got their links: the provider's request and the email carry them.
    (request,) = fake_twilio.accepted()
    assert f"/b/{tokens[0]}" in request.form["Body"]
    (email,) = mail.outbox
    assert f"/b/{tokens[1]}" in email.body
    assert f"/b/{tokens[1]}" in email.alternatives[0].content
    for message in (by_sms, by_email):
        deliver(message)
        message.refresh_from_db()
        assert message.status == Message.Status.DELIVERED
        assert LINK_PLACEHOLDER in message.body

    statuses = patient_answers_400_409_429(practice, tokens[0])
    assert {400, 409, 429} <= set(statuses), statuses
    messages_requeue()

    pages = {
        "home": staff_client.get("/"),
        "message list": staff_client.get("/messages/"),
        "message page (sms)": staff_client.get(f"/messages/{by_sms.reference}/"),
        "message page (email)": staff_client.get(f"/messages/{by_email.reference}/"),
        "admin messages": admin_client.get("/admin/messaging/message/"),
        "admin message (sms)": admin_client.get(f"/admin/messaging/message/{by_sms.pk}/change/"),
        "admin message (email)": admin_client.get(f"/admin/messaging/message/{by_email.pk}/change/"),
        "admin links": admin_client.get("/admin/booking/bookinglink/"),
        "admin link (sms)": admin_client.get(f"/admin/booking/bookinglink/{by_sms.booking_link_id}/change/"),
        "admin link (email)": admin_client.get(f"/admin/booking/bookinglink/{by_email.booking_link_id}/change/"),
    }
    for name, response in pages.items():
        assert response.status_code == 200, name
    assert LINK_PLACEHOLDER in pages["message page (sms)"].text

    records = [record for record in caplog.records if record.levelno >= logging.INFO]
    assert any(record.name == "django.request" for record in records), "the 4xx answers were logged"
    for token in tokens:
        assert rows_holding(token) == []
        for record in records:
            assert token not in record.getMessage(), record.name
        assert token not in caplog.text
        for name, response in pages.items():
            assert token not in response.text, name


def test_booking_keeps_the_token_for_the_confirmation_but_an_invitation_retry_fails(practice):
    with override_settings(TASKS={"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}):
        message = send(practice, "sms")
    link = message.booking_link
    assert link.token_encrypted
    patient = Client()
    token = token_of(message)
    patient.post(f"/b/{token}", DOB)
    slot = Slot.objects.filter(appointment_type=practice.appointment_type).first()
    patient.post(f"/b/{token}/confirm", {"slot": encode_reference(slot.pk, namespace="slot")})
    link.refresh_from_db()
    assert link.status == BookingLink.Status.BOOKED
    # Held (encrypted) for the confirmation and reminders, which let the patient change or cancel.
    assert link.token_encrypted
    # The invitation can't carry it any more (it would ask them to book again): delivery fails
    # it rather than send a hidden link.
    assert message_deliver(message_id=message.pk, enqueue=delivery_enqueue) == "failed"
    message.refresh_from_db()
    assert "link can't be used any more" in message.failure_reason


def test_control_the_scan_finds_a_token_left_in_any_text_column_or_session(practice, client):
    """Without this, a scan that read no column would pass the test above by accident."""
    token = "ControlToken0123456789"
    message = send(practice, "sms")
    Message.objects.filter(pk=message.pk).update(failure_reason=f"see http://testserver/b/{token}")
    session = client.session
    session["seen"] = [token]
    session.save()
    assert rows_holding(token) == ["messaging_message.failure_reason", f"session {session.session_key}"]


@override_settings(SMS_BACKEND="console")
def test_the_console_sms_backend_prints_the_text_with_its_link_hidden(practice, caplog):
    caplog.set_level(logging.INFO)
    message = send(practice, "sms")
    assert message.status == Message.Status.SENT
    assert LINK_PLACEHOLDER in caplog.text
    assert token_of(message) not in caplog.text
