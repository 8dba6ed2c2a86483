"""Twilio's status callback: signed, idempotent, order-tolerant, and blind to messages not ours.

Signatures are computed by Twilio's own SDK (RequestValidator), as Twilio computes them.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from django.urls import reverse
from twilio.request_validator import RequestValidator

from messaging.delivery import _record_sent, message_claim
from messaging.models import Message, MessageStatusEvent
from messaging.transports import SendResult
from tests.factories import MessageFactory, PatientFactory
from tests.fakes.twilio import ACCOUNT_SID as ACCOUNT
from tests.fakes.twilio import AUTH_TOKEN as TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("twilio_account")]

PUBLIC = "http://testserver"


def status_path(message: Message) -> str:
    return reverse("webhooks:twilio_status", kwargs={"reference": message.reference})


def signature(url: str, params: dict, *, token: str = TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def callback(client, path: str, params: dict, *, signed_url: str | None = None, signed_params=None, token=TOKEN):
    """POST as Twilio does: form-encoded, signed over the public URL and the fields."""
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = signature(
            signed_url or PUBLIC + path, params if signed_params is None else signed_params, token=token
        )
    return client.post(path, urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers)


def report(message: Message, status: str, *, sid: str | None = None, **extra) -> dict:
    params = {
        "MessageSid": sid if sid is not None else message.provider_message_id,
        "SmsSid": sid if sid is not None else message.provider_message_id,
        "MessageStatus": status,
        "AccountSid": ACCOUNT,
        "From": "+447700900001",
        "To": message.to_address,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def send_status(client, message: Message, status: str, **extra):
    return callback(client, status_path(message), report(message, status, **extra))


def provider_events(message: Message) -> list[str]:
    return list(
        MessageStatusEvent.objects.filter(message=message, source="provider")
        .order_by("pk")
        .values_list("provider_status", flat=True)
    )


@pytest.fixture
def sent(practice) -> Message:
    return MessageFactory(patient=practice.patient, status="sent", provider_message_id="SM" + "a" * 32)


def unchanged(message: Message) -> bool:
    fresh = Message.objects.get(pk=message.pk)
    return (fresh.status, fresh.failure_reason, fresh.provider_message_id) == (
        message.status,
        message.failure_reason,
        message.provider_message_id,
    ) and not MessageStatusEvent.objects.filter(message=message).exists()


class TestSignedReports:
    def test_delivered_marks_the_message_delivered_and_keeps_the_history(self, client, sent):
        response = send_status(client, sent, "delivered")

        assert response.status_code == 200
        sent.refresh_from_db()
        assert sent.status == "delivered"
        event = MessageStatusEvent.objects.get(message=sent)
        assert (event.source, event.status, event.provider_status) == ("provider", "delivered", "delivered")

    def test_each_report_is_kept_in_order(self, client, sent):
        for status in ("queued", "sent", "delivered"):
            assert send_status(client, sent, status).status_code == 200
        assert provider_events(sent) == ["queued", "sent", "delivered"]
        assert Message.objects.get(pk=sent.pk).status == "delivered"

    def test_a_repeated_callback_is_one_event(self, client, sent):
        first = send_status(client, sent, "delivered")
        second = send_status(client, sent, "delivered")

        assert (first.status_code, second.status_code) == (200, 200)
        assert provider_events(sent) == ["delivered"]
        assert Message.objects.get(pk=sent.pk).status == "delivered"

    def test_a_late_sent_never_overwrites_delivered(self, client, sent):
        send_status(client, sent, "delivered")
        response = send_status(client, sent, "sent")

        assert response.status_code == 200
        assert Message.objects.get(pk=sent.pk).status == "delivered"
        assert provider_events(sent) == ["delivered", "sent"]

    def test_failed_after_delivered_stays_delivered(self, client, sent):
        send_status(client, sent, "delivered")
        send_status(client, sent, "undelivered", ErrorCode="30003")

        sent.refresh_from_db()
        assert (sent.status, sent.failure_reason) == ("delivered", "")

    def test_delivered_after_failed_stays_failed(self, client, sent):
        send_status(client, sent, "failed", ErrorCode="30005")
        send_status(client, sent, "delivered")

        assert Message.objects.get(pk=sent.pk).status == "failed"

    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            ("30003", "switched off or out of signal"),
            ("30004", "blocked the text"),
            ("30005", "doesn't exist any more"),
            ("30006", "landline"),
            ("30007", "filtered the text as spam"),
            ("30008", "couldn't deliver the text"),
            ("30999", "error 30999"),
            ("", "no reason given"),
        ],
    )
    def test_undelivered_says_why_in_plain_english(self, client, sent, code, reason):
        send_status(client, sent, "undelivered", ErrorCode=code)

        sent.refresh_from_db()
        assert sent.status == "failed"
        assert reason in sent.failure_reason
        event = MessageStatusEvent.objects.get(message=sent)
        assert (event.status, event.provider_status, event.error_code) == ("failed", "undelivered", code)

    def test_canceled_is_failed(self, client, sent):
        send_status(client, sent, "canceled")

        sent.refresh_from_db()
        assert (sent.status, sent.failure_reason) == ("failed", "The text was cancelled at Twilio before it went.")

    def test_read_counts_as_delivered(self, client, sent):
        send_status(client, sent, "read")
        assert Message.objects.get(pk=sent.pk).status == "delivered"

    def test_an_opted_out_error_marks_the_patient_opted_out(self, client, sent, practice):
        send_status(client, sent, "failed", ErrorCode="21610")

        practice.patient.refresh_from_db()
        assert practice.patient.sms_opted_out
        assert "opted out" in Message.objects.get(pk=sent.pk).failure_reason

    def test_an_opted_out_error_leaves_the_same_number_at_another_practice_alone(
        self, client, sent, practice, other_practice
    ):
        elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=practice.patient.mobile)
        send_status(client, sent, "failed", ErrorCode="21610")

        elsewhere.refresh_from_db()
        assert not elsewhere.sms_opted_out

    def test_a_status_we_dont_know_changes_nothing(self, client, sent):
        response = send_status(client, sent, "receiving")
        assert response.status_code == 200
        assert unchanged(sent)

    def test_the_view_makes_a_fixed_number_of_queries(self, client, sent, django_assert_max_num_queries):
        # Find the message, then (savepoint) the history row and the conditional update.
        with django_assert_max_num_queries(5):
            assert send_status(client, sent, "delivered").status_code == 200
        with django_assert_max_num_queries(5):
            assert send_status(client, sent, "delivered").status_code == 200


class TestCallbackBeforeTheWorker:
    """Twilio can call back before our worker has committed the SID Twilio gave it."""

    @pytest.fixture
    def sending(self, practice) -> Message:
        queued = MessageFactory(patient=practice.patient, status="queued")
        claimed = message_claim(queued.pk)
        assert claimed is not None
        return claimed

    def test_delivered_moves_a_sending_message_on_and_the_worker_keeps_it(self, client, sending):
        sid = "SM" + "b" * 32
        response = send_status(client, sending, "delivered", sid=sid)

        assert response.status_code == 200
        fresh = Message.objects.get(pk=sending.pk)
        assert (fresh.status, fresh.provider_message_id) == ("delivered", sid)
        assert fresh.sent_at is not None

        _record_sent(sending, SendResult(provider_message_id=sid, provider_status="queued"))

        fresh = Message.objects.get(pk=sending.pk)
        assert (fresh.status, fresh.provider_message_id) == ("delivered", sid)
        assert list(fresh.status_events.values_list("source", "provider_status")) == [
            ("provider", "delivered"),
            ("worker", "queued"),
        ]

    def test_sent_moves_a_sending_message_to_sent(self, client, sending):
        send_status(client, sending, "sent", sid="SM" + "c" * 32)
        assert Message.objects.get(pk=sending.pk).status == "sent"
        # The claim can't take it again when its lease lapses: it is no longer "sending".
        assert message_claim(sending.pk) is None


class TestNotOurs:
    """Genuine, signed reports that don't name one of our messages: 200, so Twilio stops, and nothing changes."""

    def test_an_unknown_reference(self, client, sent):
        response = callback(client, "/webhooks/twilio/status/ZZZZZZZZ/", report(sent, "failed", ErrorCode="30003"))
        assert response.status_code == 200
        assert unchanged(sent)

    def test_a_reference_to_a_message_that_doesnt_exist(self, client, sent):
        missing = MessageFactory(patient=sent.patient)
        path = status_path(missing)
        params = report(sent, "failed", ErrorCode="30003")
        missing.delete()

        response = callback(client, path, params)

        assert response.status_code == 200
        assert unchanged(sent)

    def test_a_sid_other_than_the_one_we_stored(self, client, sent):
        response = send_status(client, sent, "failed", sid="SM" + "f" * 32, ErrorCode="30003")
        assert response.status_code == 200
        assert unchanged(sent)

    def test_a_reference_for_one_organisation_with_another_organisations_sid(
        self, client, practice, other_practice, sent
    ):
        theirs = MessageFactory(patient=other_practice.patient, status="sent", provider_message_id="SM" + "d" * 32)
        # Ours has no SID yet (its worker hasn't recorded it): the SID is still someone else's.
        ours = MessageFactory(patient=practice.patient, status="sending")

        for target in (ours, sent):
            response = send_status(client, target, "failed", sid=theirs.provider_message_id, ErrorCode="30003")
            assert response.status_code == 200
            assert unchanged(target)
        assert unchanged(theirs)

    def test_another_twilio_account(self, client, sent):
        response = send_status(client, sent, "failed", AccountSid="AC" + "9" * 32, ErrorCode="30003")
        assert response.status_code == 200
        assert unchanged(sent)

    def test_an_email_message(self, client, practice):
        email = MessageFactory(
            patient=practice.patient, channel="email", to_address=practice.patient.email, provider_message_id="e-1"
        )
        response = send_status(client, email, "failed", ErrorCode="30003")
        assert response.status_code == 200
        assert unchanged(email)


class TestForged:
    """Anything not signed by Twilio for exactly this URL and these fields: 403, and nothing changes."""

    def test_unsigned(self, client, sent):
        response = callback(client, status_path(sent), report(sent, "failed"), token=None)
        assert response.status_code == 403
        assert unchanged(sent)

    def test_signed_with_another_token(self, client, sent):
        response = callback(client, status_path(sent), report(sent, "failed"), token="not-our-token")
        assert response.status_code == 403
        assert unchanged(sent)

    def test_a_signature_that_isnt_base64_of_anything(self, client, sent):
        response = client.post(
            status_path(sent),
            urlencode(report(sent, "failed")),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": "nonsense"},
        )
        assert response.status_code == 403
        assert unchanged(sent)

    def test_a_signature_for_another_messages_url(self, client, practice, sent):
        other = MessageFactory(patient=practice.patient, status="sent", provider_message_id="SM" + "e" * 32)
        params = report(sent, "failed")
        response = callback(client, status_path(sent), params, signed_url=PUBLIC + status_path(other))
        assert response.status_code == 403
        assert unchanged(sent)

    def test_a_signature_for_another_host(self, client, sent):
        params = report(sent, "failed")
        response = callback(client, status_path(sent), params, signed_url="https://evil.example" + status_path(sent))
        assert response.status_code == 403
        assert unchanged(sent)

    def test_a_signature_for_other_fields(self, client, sent):
        signed = report(sent, "delivered")
        response = callback(client, status_path(sent), report(sent, "failed", ErrorCode="30003"), signed_params=signed)
        assert response.status_code == 403
        assert unchanged(sent)

    def test_an_extra_field_added_after_signing(self, client, sent):
        signed = report(sent, "undelivered")
        response = callback(client, status_path(sent), {**signed, "ErrorCode": "30007"}, signed_params=signed)
        assert response.status_code == 403
        assert unchanged(sent)

    def test_without_an_auth_token_configured_nothing_is_accepted(self, client, sent, settings):
        # An HMAC keyed with an empty token is one anyone can compute.
        settings.TWILIO_AUTH_TOKEN = ""
        response = callback(client, status_path(sent), report(sent, "failed"), token="")
        assert response.status_code == 403
        assert unchanged(sent)

    def test_get_is_not_allowed(self, client, sent):
        assert client.get(status_path(sent)).status_code == 405
        assert unchanged(sent)

    def test_the_refusal_makes_no_queries(self, client, sent, django_assert_num_queries):
        with django_assert_num_queries(0):
            assert callback(client, status_path(sent), report(sent, "failed"), token=None).status_code == 403


class TestBehindAProxy:
    """The signature covers the URL Twilio called: PUBLIC_BASE_URL, not the host Django sees."""

    def test_the_public_url_is_the_one_checked(self, client, sent, settings):
        settings.PUBLIC_BASE_URL = "https://booking.example.org"
        params = report(sent, "delivered")

        as_seen_by_django = callback(client, status_path(sent), params, signed_url=PUBLIC + status_path(sent))
        assert as_seen_by_django.status_code == 403

        as_called_by_twilio = callback(
            client, status_path(sent), params, signed_url="https://booking.example.org" + status_path(sent)
        )
        assert as_called_by_twilio.status_code == 200
        assert Message.objects.get(pk=sent.pk).status == "delivered"

    def test_the_status_callback_url_we_give_twilio_is_one_the_view_accepts(self, client, sent, settings):
        # The backend sends PUBLIC_BASE_URL + reverse(...) (messaging/transports/sms.py); Twilio signs that.
        settings.PUBLIC_BASE_URL = "https://booking.example.org"
        given_to_twilio = settings.PUBLIC_BASE_URL + reverse(
            "webhooks:twilio_status", kwargs={"reference": sent.reference}
        )
        response = callback(client, status_path(sent), report(sent, "delivered"), signed_url=given_to_twilio)
        assert response.status_code == 200
