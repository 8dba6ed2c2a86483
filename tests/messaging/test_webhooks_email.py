"""The email service's tracking webhook, through anymail's real views for Postmark (basic auth only)
and Mailgun (basic auth plus its HMAC signature): delivered, bounced, reported as spam."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
import uuid

import pytest
from django.urls import reverse

from booking.models import AuditEvent, Patient
from booking.references import encode_reference
from messaging.models import Message, MessageStatusEvent
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db

SECRET = "anymail-user:long-random-password-123"
MAILGUN_KEY = "mailgun-webhook-signing-key-0123456789"
POSTMARK = "/webhooks/anymail/postmark/tracking/"
MAILGUN = "/webhooks/anymail/mailgun/tracking/"
BOUNCED = "it bounced (the address doesn't exist, or its mail server refused our email)"


def sends_through(settings, esp: str, **anymail) -> None:
    settings.MAILERS = {"default": {"BACKEND": f"anymail.backends.{esp}.EmailBackend", "OPTIONS": {}}}
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET, **anymail}


@pytest.fixture(autouse=True)
def sends_through_postmark(settings):
    sends_through(settings, "postmark", POSTMARK_SERVER_TOKEN="server-token")


def basic_auth(credentials: str = SECRET) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}


@pytest.fixture
def email(practice) -> Message:
    return MessageFactory(
        patient=practice.patient,
        channel="email",
        to_address=practice.patient.email,
        subject="A message from Riverside Practice",
        status="sent",
        provider_message_id=str(uuid.uuid4()),
    )


def postmark_event(message: Message, record_type: str, **fields) -> dict:
    event = {
        "RecordType": record_type,
        "MessageID": message.provider_message_id,
        "Metadata": {"message": message.reference},
        "Tag": "message",
        "ServerID": 23,
        "MessageStream": "outbound",
    }
    if record_type == "Delivery":
        event |= {"Recipient": message.to_address, "DeliveredAt": "2026-11-24T10:00:00Z", "Details": "250 OK"}
    else:
        event |= {
            "ID": 4323372036854775807,
            "Email": message.to_address,
            "BouncedAt": "2026-11-24T10:00:00Z",
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
            "Inactive": True,
        }
    return event | fields


def post_postmark(client, event: dict, *, auth: dict | None = None):
    return client.post(
        POSTMARK, json.dumps(event), content_type="application/json", headers=basic_auth() if auth is None else auth
    )


def bounce(message: Message, **fields) -> dict:
    return postmark_event(message, "Bounce", Type="HardBounce", TypeCode=1, **fields)


def provider_events(message: Message) -> list[str]:
    return list(
        message.status_events.filter(source="provider").order_by("pk").values_list("provider_status", flat=True)
    )


def unchanged(message: Message) -> bool:
    fresh = Message.objects.get(pk=message.pk)
    patient = Patient.objects.get(pk=message.patient_id)
    return (
        (fresh.status, fresh.failure_reason) == (message.status, message.failure_reason)
        and not MessageStatusEvent.objects.filter(message=message).exists()
        and patient.email_undeliverable_reason == ""
        and not AuditEvent.objects.filter(action=AuditEvent.Action.EMAIL_UNDELIVERABLE).exists()
    )


class TestPostmark:
    def test_delivery_marks_the_message_delivered_and_keeps_the_history(self, client, email):
        response = post_postmark(client, postmark_event(email, "Delivery"))

        assert response.status_code == 200
        email.refresh_from_db()
        assert email.status == "delivered"
        event = MessageStatusEvent.objects.get(message=email)
        assert (event.source, event.status, event.provider_status) == ("provider", "delivered", "delivered")

    def test_a_hard_bounce_fails_the_message_and_flags_the_address(self, client, email, practice):
        response = post_postmark(client, bounce(email))

        assert response.status_code == 200
        email.refresh_from_db()
        assert email.status == "failed"
        assert email.failure_reason == BOUNCED[0].upper() + BOUNCED[1:] + "."
        event = email.status_events.get()
        assert (event.status, event.provider_status, event.error_code) == ("failed", "bounced", "bounced")
        assert "does not exist" in event.detail
        patient = Patient.objects.get(pk=practice.patient.pk)
        assert patient.email_undeliverable_reason == BOUNCED
        audit = AuditEvent.objects.get(action=AuditEvent.Action.EMAIL_UNDELIVERABLE)
        assert (audit.patient, audit.organisation, audit.actor) == (patient, practice.organisation, None)
        assert audit.detail["message"] == email.reference

    def test_a_repeated_bounce_is_one_event_and_one_audit(self, client, email):
        post_postmark(client, bounce(email))
        post_postmark(client, bounce(email))

        assert provider_events(email) == ["bounced"]
        assert AuditEvent.objects.filter(action=AuditEvent.Action.EMAIL_UNDELIVERABLE).count() == 1

    def test_a_spam_complaint_after_delivery_keeps_delivered_but_flags_the_address(self, client, email, practice):
        post_postmark(client, postmark_event(email, "Delivery"))
        post_postmark(client, postmark_event(email, "SpamComplaint", Type="SpamComplaint", TypeCode=512))

        assert Message.objects.get(pk=email.pk).status == "delivered"
        assert provider_events(email) == ["delivered", "complained"]
        assert (
            Patient.objects.get(pk=practice.patient.pk).email_undeliverable_reason
            == "the patient reported an email from us as spam"
        )

    def test_a_late_delivery_never_overwrites_a_bounce(self, client, email):
        post_postmark(client, bounce(email))
        post_postmark(client, postmark_event(email, "Delivery"))
        assert Message.objects.get(pk=email.pk).status == "failed"

    def test_a_deferral_is_history_only(self, client, email, practice):
        response = post_postmark(client, postmark_event(email, "Bounce", Type="Transient", TypeCode=2))

        assert response.status_code == 200
        assert Message.objects.get(pk=email.pk).status == "sent"
        assert provider_events(email) == ["deferred"]
        assert Patient.objects.get(pk=practice.patient.pk).email_undeliverable_reason == ""

    def test_a_bounce_for_an_address_the_patient_no_longer_has_leaves_their_record_alone(self, client, email, practice):
        Patient.objects.filter(pk=practice.patient.pk).update(email="new.address@example.com")

        post_postmark(client, bounce(email))

        assert Message.objects.get(pk=email.pk).status == "failed"
        assert Patient.objects.get(pk=practice.patient.pk).email_undeliverable_reason == ""
        assert not AuditEvent.objects.filter(action=AuditEvent.Action.EMAIL_UNDELIVERABLE).exists()

    def test_found_by_the_services_message_id_without_metadata(self, client, email):
        post_postmark(client, bounce(email, Metadata={}))
        assert Message.objects.get(pk=email.pk).status == "failed"

    def test_an_open_is_ignored(self, client, email):
        response = post_postmark(client, postmark_event(email, "Open", Recipient=email.to_address))
        assert response.status_code == 200
        assert unchanged(email)

    def test_the_view_makes_a_fixed_number_of_queries(self, client, email, django_assert_max_num_queries):
        # Find the message; then, in savepoints, the history row, the conditional update, the
        # patient's flag and its audit event.
        with django_assert_max_num_queries(9):
            assert post_postmark(client, bounce(email)).status_code == 200
        with django_assert_max_num_queries(9):
            assert post_postmark(client, bounce(email)).status_code == 200


class TestNotOurs:
    def test_an_unknown_reference_and_message_id(self, client, email):
        event = bounce(email, MessageID=str(uuid.uuid4()), Metadata={"message": "ZZZZZZZZ"})
        assert post_postmark(client, event).status_code == 200
        assert unchanged(email)

    def test_no_reference_and_an_unknown_message_id(self, client, email):
        assert post_postmark(client, bounce(email, MessageID=str(uuid.uuid4()), Metadata={})).status_code == 200
        assert unchanged(email)

    def test_a_reference_for_one_organisation_with_another_organisations_message_id(
        self, client, email, other_practice
    ):
        theirs = MessageFactory(
            patient=other_practice.patient,
            channel="email",
            to_address=other_practice.patient.email,
            provider_message_id=str(uuid.uuid4()),
        )
        event = bounce(email, MessageID=theirs.provider_message_id)

        assert post_postmark(client, event).status_code == 200
        assert unchanged(email)
        assert unchanged(theirs)

    def test_another_recipient(self, client, email):
        assert post_postmark(client, bounce(email, Email="someone.else@example.com")).status_code == 200
        assert unchanged(email)

    def test_a_text_message(self, client, practice):
        text = MessageFactory(patient=practice.patient, provider_message_id=str(uuid.uuid4()))
        assert post_postmark(client, bounce(text, Email=practice.patient.email)).status_code == 200
        assert unchanged(text)


class TestAuthentication:
    @pytest.mark.parametrize(
        "auth",
        [{}, basic_auth("anymail-user:wrong-password"), basic_auth("someone:" + SECRET), {"Authorization": "Bearer x"}],
        ids=["none", "wrong password", "wrong user", "not basic"],
    )
    def test_bad_basic_auth_is_refused_with_403(self, client, email, auth):
        response = post_postmark(client, bounce(email), auth=auth)
        assert response.status_code == 403
        assert unchanged(email)

    def test_without_a_webhook_secret_the_webhook_is_not_there(self, client, email, settings):
        settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "server-token"}
        response = post_postmark(client, bounce(email), auth={})
        assert response.status_code == 404
        assert unchanged(email)

    def test_an_empty_webhook_secret_is_no_secret(self, client, email, settings):
        settings.ANYMAIL = {"WEBHOOK_SECRET": ""}
        assert post_postmark(client, bounce(email), auth=basic_auth(":")).status_code == 404
        assert unchanged(email)

    def test_only_the_service_we_send_through_has_a_webhook(self, client, email):
        for service in ("mailgun", "sendgrid", "amazon_ses", "nonsense"):
            response = client.post(
                f"/webhooks/anymail/{service}/tracking/", "{}", content_type="application/json", headers=basic_auth()
            )
            assert response.status_code == 404, service
        assert unchanged(email)

    def test_inbound_email_webhooks_are_not_mounted(self, client):
        response = client.post("/webhooks/anymail/postmark/inbound/", "{}", content_type="application/json")
        assert response.status_code == 404

    def test_get_is_not_allowed(self, client):
        assert client.get(POSTMARK, headers=basic_auth()).status_code == 405

    def test_the_refusal_makes_no_queries(self, client, email, django_assert_num_queries):
        with django_assert_num_queries(0):
            assert post_postmark(client, bounce(email), auth={}).status_code == 403

    def test_the_url_has_a_name(self):
        assert reverse("webhooks:anymail_tracking", kwargs={"esp": "postmark"}) == POSTMARK


class TestMailgunSignature:
    """Mailgun signs each event (HMAC-SHA256 of timestamp + token with the webhook signing key)."""

    @pytest.fixture(autouse=True)
    def sends_through_mailgun(self, settings):
        sends_through(settings, "mailgun", MAILGUN_API_KEY="api-key", MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY)

    @pytest.fixture
    def mailgun_email(self, practice) -> Message:
        return MessageFactory(
            patient=practice.patient,
            channel="email",
            to_address=practice.patient.email,
            status="sent",
            provider_message_id="<20261124100000.1.ABCDEF@mg.example.org>",
        )

    def post(self, client, message: Message, *, key: str = MAILGUN_KEY, event: str = "failed"):
        timestamp, token = "1795600000", uuid.uuid4().hex
        signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
        payload = {
            "signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": {
                "event": event,
                "severity": "permanent",
                "reason": "bounce",
                "recipient": message.to_address,
                "timestamp": 1795600000.5,
                # Mailgun leaves off the angle brackets; anymail puts them back.
                "message": {"headers": {"message-id": message.provider_message_id.strip("<>")}},
                "user-variables": {"message": message.reference},
                "delivery-status": {"code": 550, "description": "No such mailbox", "message": "5.1.1 No such user"},
            },
        }
        return client.post(MAILGUN, json.dumps(payload), content_type="application/json", headers=basic_auth())

    def test_a_correctly_signed_bounce_is_applied(self, client, mailgun_email, practice):
        response = self.post(client, mailgun_email)

        assert response.status_code == 200
        assert Message.objects.get(pk=mailgun_email.pk).status == "failed"
        assert Patient.objects.get(pk=practice.patient.pk).email_undeliverable_reason == BOUNCED

    def test_a_wrongly_signed_bounce_is_refused_even_with_the_right_basic_auth(self, client, mailgun_email):
        response = self.post(client, mailgun_email, key="not-the-signing-key")
        assert response.status_code == 403
        assert unchanged(mailgun_email)


class TestStaffAfterABounce:
    def compose_url(self, patient: Patient) -> str:
        return f"/messages/new/?patient={encode_reference(patient.pk, namespace='patient')}"

    def test_the_compose_page_disables_email_with_the_reason(self, client, staff_client, email, practice):
        post_postmark(client, bounce(email))

        content = staff_client.get(self.compose_url(practice.patient)).content.decode()

        assert f"Emails to this address stopped: {BOUNCED}" in html.unescape(content)
        assert re.search(r'value="email"[^>]* disabled', content)
        assert not re.search(r'value="sms"[^>]* disabled', content)

    def test_sending_them_an_email_is_refused_with_the_reason(
        self, client, staff_client, email, practice, django_capture_on_commit_callbacks
    ):
        post_postmark(client, bounce(email))

        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                self.compose_url(practice.patient),
                {
                    "patient": encode_reference(practice.patient.pk, namespace="patient"),
                    "channel": "email",
                    "body": "Hello {{Patient First Name}}",
                    "link_expiry": "14d",
                    "idempotency_key": str(uuid.uuid4()),
                    "action": "send",
                },
            )

        assert response.status_code == 400
        assert f"Can't send by Email: Emails to this address stopped: {BOUNCED}." in html.unescape(
            response.content.decode()
        )
        assert Message.objects.count() == 1


class TestAddressChangedInAdmin:
    def change(self, admin_client, patient: Patient, **overrides):
        data = {
            "organisation": patient.organisation_id,
            "first_name": patient.first_name,
            "last_name": patient.last_name,
            "date_of_birth": patient.date_of_birth.strftime("%d/%m/%Y"),
            "nhs_number": patient.nhs_number,
            "mobile": patient.mobile,
            "email": patient.email,
            "contact_preference": patient.contact_preference,
            "email_undeliverable_reason": patient.email_undeliverable_reason,
        }
        return admin_client.post(reverse("admin:booking_patient_change", args=[patient.pk]), {**data, **overrides})

    @pytest.fixture
    def bounced(self, client, email, practice) -> Patient:
        post_postmark(client, bounce(email))
        return Patient.objects.get(pk=practice.patient.pk)

    def test_a_new_address_clears_the_flag(self, admin_client, bounced):
        response = self.change(admin_client, bounced, email="new.address@example.com")

        assert response.status_code == 302
        bounced.refresh_from_db()
        assert (bounced.email, bounced.email_undeliverable_reason) == ("new.address@example.com", "")
        changed = AuditEvent.objects.get(action=AuditEvent.Action.CHANGED, patient=bounced)
        assert changed.detail["fields"] == ["email", "email_undeliverable_reason"]

    def test_other_changes_keep_the_flag(self, admin_client, bounced):
        response = self.change(admin_client, bounced, first_name="Olly")

        assert response.status_code == 302
        assert Patient.objects.get(pk=bounced.pk).email_undeliverable_reason == BOUNCED

    def test_the_same_address_in_other_capitals_keeps_the_flag(self, admin_client, bounced):
        self.change(admin_client, bounced, email=bounced.email.upper())
        assert Patient.objects.get(pk=bounced.pk).email_undeliverable_reason == BOUNCED


class TestMalformedBodies:
    @pytest.mark.parametrize(
        "body", ["{not json", "", '{"RecordType": "Bounce"', b"\xff\xfe\x00"], ids=["broken", "empty", "cut", "bytes"]
    )
    def test_a_body_that_isnt_json_is_a_400_with_a_short_reason(self, client, email, caplog, body):
        response = client.post(POSTMARK, body, content_type="application/json", headers=basic_auth())
        assert response.status_code == 400
        assert response.content == b"The request body isn't valid JSON."
        assert "Traceback" not in caplog.text
        assert all(record.exc_info is None for record in caplog.records)
        assert unchanged(email)

    def test_a_mailgun_body_that_isnt_json_cant_be_signed_so_is_a_403(self, client, settings, email):
        # Mailgun's signature is inside the JSON: anymail refuses a body it can't check.
        sends_through(settings, "mailgun", MAILGUN_API_KEY="key", MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY)
        response = client.post(MAILGUN, "{not json", content_type="application/json", headers=basic_auth())
        assert response.status_code == 403
        assert unchanged(email)

    def test_without_the_credentials_it_is_still_a_403(self, client, email):
        response = client.post(POSTMARK, "{not json", content_type="application/json", headers=basic_auth("x:y"))
        assert response.status_code == 403
