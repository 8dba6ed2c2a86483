"""Email: plain text and HTML, tracking off, through anymail's real Postmark backend against a fake Postmark."""

from __future__ import annotations

import uuid

import pytest
from django.core import mail
from django.test import TestCase, override_settings

from booking.appointments import appointment_book
from booking.models import Slot
from messaging.models import Message, SenderProfile
from messaging.sending import message_send
from messaging.tasks import deliver_message
from tests.factories import BookingLinkFactory, MessageFactory
from tests.fakes.email_service import FakePostmark

pytestmark = pytest.mark.django_db
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
BODY = "Hello {{Patient First Name}}, see https://example.org/info?a=1&b=<2>\nThanks"


@pytest.fixture
def fake_postmark():
    fake = FakePostmark().start()
    with override_settings(MAILERS=fake.mailers()):
        yield fake
    fake.stop()


def send_email(practice, body=BODY) -> Message:
    with TestCase.captureOnCommitCallbacks(execute=True):
        message, _ = message_send(
            sender=practice.user,
            patient=practice.patient,
            channel="email",
            body=body,
            link=None,
            idempotency_key=uuid.uuid4(),
        )
    message.refresh_from_db()
    return message


class TestTheEmail:
    def test_it_has_the_text_and_an_html_version_from_the_practice(self, practice):
        message = send_email(practice)
        assert message.status == "sent"
        (email,) = mail.outbox
        assert email.to == [practice.patient.email]
        assert email.subject == "A message from Riverside Practice"
        assert email.from_email == '"Riverside Practice" <appointments@localhost>' or email.from_email.startswith(
            "Riverside Practice <"
        )
        assert email.body.startswith("Hello Oliver, see https://example.org/info?a=1&b=<2>\nThanks")
        html, mimetype = email.alternatives[0]
        assert mimetype == "text/html"
        assert "<2>" not in html  # escaped
        assert 'href="https://example.org/info?a=1&amp;b=' in html
        assert email.extra_headers["Message-ID"] == message.provider_message_id

    def test_tracking_is_off_and_the_message_is_tagged_with_its_reference(self, practice):
        message = send_email(practice)
        (email,) = mail.outbox
        assert email.track_clicks is False
        assert email.track_opens is False
        assert email.metadata == {"message": message.reference}

    def test_replies_go_to_the_practices_reply_to_address(self, practice):
        SenderProfile.objects.create(organisation=practice.organisation, email_reply_to="reception@riverside.example")
        send_email(practice)
        assert mail.outbox[0].reply_to == ["reception@riverside.example"]


class TestThroughPostmark:
    def test_postmark_is_told_not_to_track_links_or_opens(self, practice, fake_postmark):
        message = send_email(practice)
        (sent,) = fake_postmark.sent
        assert sent["TrackLinks"] == "None"
        assert sent["TrackOpens"] is False
        assert sent["To"] == practice.patient.email
        assert "Hello Oliver" in sent["TextBody"]
        assert "Hello Oliver" in sent["HtmlBody"]
        assert sent["Metadata"] == {"message": message.reference}
        assert message.status == "sent"
        assert message.provider_message_id == sent["MessageID"]

    def test_a_server_error_is_tried_again(self, practice, fake_postmark):
        fake_postmark.then("error")
        with override_settings(TASKS=DATABASE_TASKS):
            message = send_email(practice)
            deliver_message.call(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == "queued"
        assert "The email service answered 500" in message.failure_reason

    def test_an_inactive_recipient_fails_at_once_with_the_reason(self, practice, fake_postmark):
        fake_postmark.then("inactive")
        message = send_email(practice)
        assert message.status == "failed"
        assert "refused the address" in message.failure_reason
        assert message.attempts == 1


class TestConfirmationByEmail:
    def test_the_confirmation_email_carries_the_appointment_as_an_ics_file(
        self, practice, django_capture_on_commit_callbacks
    ):
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        MessageFactory(patient=practice.patient, booking_link=link, channel="email", to_address=practice.patient.email)
        slot = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()
        with django_capture_on_commit_callbacks(execute=True):
            appointment = appointment_book(link_id=link.pk, slot_id=slot.pk)
        confirmation = Message.objects.get(confirms=appointment)
        assert (confirmation.channel, confirmation.status) == ("email", "sent")
        (email,) = mail.outbox
        assert email.subject == "Your appointment is booked"
        ((filename, content, mimetype),) = email.attachments
        assert (filename, mimetype) == ("appointment.ics", "text/calendar")
        assert "BEGIN:VEVENT" in content
        assert f"UID:{appointment.reference}@" in content
        assert appointment.reference in email.body
