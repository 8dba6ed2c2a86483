"""A patient texts STOP: no more texts, and staff are told why; START undoes it."""

from __future__ import annotations

import html
import re
import uuid
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from twilio.request_validator import RequestValidator

from booking.models import AuditEvent, Patient
from booking.references import encode_reference
from messaging.models import Message, SenderProfile
from tests.factories import PatientFactory
from tests.fakes.twilio import ACCOUNT_SID as ACCOUNT
from tests.fakes.twilio import AUTH_TOKEN as TOKEN

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("twilio_account")]

PUBLIC = "http://testserver"
SERVICE = "MG" + "2" * 32  # the deployment's Messaging Service, which inbound() texts reach
MOBILE = "+447400123456"  # the practice patient's (tests/factories.py)
OPTED_OUT = "The patient has opted out of texts (replied STOP)"


@pytest.fixture(autouse=True)
def texts_reach_the_deployments_messaging_service(settings):
    # Organisations without a sender of their own text through it, so a STOP to it covers them.
    settings.TWILIO_MESSAGING_SERVICE_SID = SERVICE


def inbound_path() -> str:
    return reverse("webhooks:twilio_inbound")


def inbound(client, body: str, *, sender: str = MOBILE, token: str | None = TOKEN, signed_url=None, **extra):
    """A text to our number, as Twilio posts it: form-encoded and signed over the public URL."""
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "AccountSid": ACCOUNT,
        "MessagingServiceSid": SERVICE,
        "From": sender,
        "To": "+447700900001",
        "Body": body,
        "NumMedia": "0",
        **extra,
    }
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = RequestValidator(token).compute_signature(
            signed_url or PUBLIC + inbound_path(), params
        )
    return client.post(
        inbound_path(), urlencode(params), content_type="application/x-www-form-urlencoded", headers=headers
    )


def opted_out(patient: Patient) -> bool:
    return Patient.objects.get(pk=patient.pk).sms_opted_out


def audit_actions(patient: Patient) -> list[str]:
    return list(
        AuditEvent.objects.filter(patient=patient).order_by("created_at", "pk").values_list("action", flat=True)
    )


class TestStop:
    def test_stop_opts_the_patient_out_and_is_audited(self, client, practice):
        response = inbound(client, "STOP")

        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/xml")
        assert re.fullmatch(r'<\?xml version="1.0" encoding="UTF-8"\?>\s*<Response\s*/>', response.content.decode())
        assert opted_out(practice.patient)
        assert audit_actions(practice.patient) == [AuditEvent.Action.OPTED_OUT]
        event = AuditEvent.objects.get(patient=practice.patient)
        assert event.actor is None
        assert event.organisation == practice.organisation
        assert "STOP" in event.detail["why"]

    @pytest.mark.parametrize("body", ["stop ", "  Stop\n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"])
    def test_twilios_standard_keywords_in_any_case_opt_out(self, client, practice, body):
        assert inbound(client, body).status_code == 200
        assert opted_out(practice.patient)

    def test_advanced_opt_out_type_counts_whatever_the_keyword(self, client, practice):
        # A Messaging Service can add its own keywords; Twilio then says what it took the text to be.
        inbound(client, "ARRET", OptOutType="STOP")
        assert opted_out(practice.patient)

    @pytest.mark.parametrize("body", ["Thanks, see you Tuesday", "stop texting me please", "", "STOP STOP"])
    def test_any_other_text_is_ignored(self, client, practice, body):
        response = inbound(client, body)
        assert response.status_code == 200
        assert not opted_out(practice.patient)
        assert audit_actions(practice.patient) == []

    def test_every_record_with_that_number_is_opted_out(self, client, practice, other_practice):
        same_person_elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=MOBILE)
        someone_else = PatientFactory(organisation=practice.organisation, mobile="+447400999888")

        inbound(client, "STOP")

        assert opted_out(practice.patient)
        assert opted_out(same_person_elsewhere)
        assert not opted_out(someone_else)
        assert AuditEvent.objects.get(patient=same_person_elsewhere).organisation == other_practice.organisation

    def test_stop_twice_is_audited_once(self, client, practice):
        inbound(client, "STOP")
        inbound(client, "STOP")
        assert audit_actions(practice.patient) == [AuditEvent.Action.OPTED_OUT]

    def test_stop_from_an_unknown_number_is_answered_and_changes_nothing(self, client, practice):
        response = inbound(client, "STOP", sender="+447400000001")
        assert response.status_code == 200
        assert not opted_out(practice.patient)
        assert not AuditEvent.objects.exists()

    def test_stop_from_another_twilio_account_changes_nothing(self, client, practice):
        response = inbound(client, "STOP", AccountSid="AC" + "9" * 32)
        assert response.status_code == 200
        assert not opted_out(practice.patient)

    def test_the_view_makes_a_fixed_number_of_queries(self, client, practice, django_assert_max_num_queries):
        PatientFactory(organisation=practice.organisation, mobile=MOBILE)
        # Lock the records, update them, write the audit events (one INSERT), in a savepoint.
        with django_assert_max_num_queries(5):
            inbound(client, "STOP")
        with django_assert_max_num_queries(5):
            inbound(client, "START")


class TestScopedToTheSender:
    """A STOP answers the sender it reached: only the organisations texting through it change."""

    OWN_SERVICE = "MG" + "a" * 32
    OTHER_SERVICE = "MG" + "b" * 32

    def test_a_stop_to_one_practices_service_leaves_the_same_number_at_another_practice_alone(
        self, client, practice, other_practice
    ):
        SenderProfile.objects.create(organisation=practice.organisation, twilio_messaging_service_sid=self.OWN_SERVICE)
        SenderProfile.objects.create(
            organisation=other_practice.organisation, twilio_messaging_service_sid=self.OTHER_SERVICE
        )
        elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=MOBILE)

        inbound(client, "STOP", MessagingServiceSid=self.OWN_SERVICE)

        assert opted_out(practice.patient)
        assert not opted_out(elsewhere)
        assert audit_actions(elsewhere) == []

    def test_a_stop_to_the_default_service_covers_only_organisations_without_their_own(
        self, client, practice, other_practice
    ):
        SenderProfile.objects.create(
            organisation=other_practice.organisation, twilio_messaging_service_sid=self.OTHER_SERVICE
        )
        elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=MOBILE)

        inbound(client, "STOP")  # to SERVICE, the deployment's default

        assert opted_out(practice.patient)
        assert not opted_out(elsewhere)

    def test_a_stop_to_a_service_or_number_no_organisation_texts_through_changes_nothing(self, client, practice):
        response = inbound(client, "STOP", MessagingServiceSid=self.OTHER_SERVICE, To="+447700900999")
        assert response.status_code == 200
        assert not opted_out(practice.patient)
        assert not AuditEvent.objects.exists()

    def test_a_stop_to_the_default_number_covers_organisations_texting_from_it(
        self, client, settings, practice, other_practice
    ):
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        settings.TWILIO_SENDER_ID = "+447700900001"
        # A sender ID is a name: patients can't reply to it, so no reply is the other practice's.
        SenderProfile.objects.create(organisation=other_practice.organisation, sms_sender_id="OTHERPLACE")
        elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=MOBILE)

        inbound(client, "STOP", MessagingServiceSid="", To="+447700900001")

        assert opted_out(practice.patient)
        assert not opted_out(elsewhere)

    def test_no_reply_reaches_a_default_sender_id(self, client, settings, practice):
        settings.TWILIO_MESSAGING_SERVICE_SID = ""
        settings.TWILIO_SENDER_ID = "RIVERSIDE"
        inbound(client, "STOP", MessagingServiceSid="", To="RIVERSIDE")
        assert not opted_out(practice.patient)


class TestReplayed:
    def test_a_stop_posted_again_after_start_changes_nothing(self, client, practice):
        inbound(client, "STOP", MessageSid="SM" + "1" * 32)
        inbound(client, "START", MessageSid="SM" + "2" * 32)

        response = inbound(client, "STOP", MessageSid="SM" + "1" * 32)  # replayed, or Twilio retrying

        assert response.status_code == 200
        assert not opted_out(practice.patient)
        assert audit_actions(practice.patient) == [AuditEvent.Action.OPTED_OUT, AuditEvent.Action.OPTED_IN]

    def test_a_text_that_changed_nothing_still_cant_be_replayed_later(self, client, practice):
        inbound(client, "START", MessageSid="SM" + "3" * 32)  # never opted out: nothing to change
        inbound(client, "STOP", MessageSid="SM" + "4" * 32)
        inbound(client, "START", MessageSid="SM" + "3" * 32)
        assert opted_out(practice.patient)


class TestStart:
    @pytest.mark.parametrize("body", ["START", "start", " Yes ", "UNSTOP"])
    def test_start_opts_the_patient_back_in(self, client, practice, body):
        inbound(client, "STOP")
        response = inbound(client, body)

        assert response.status_code == 200
        assert not opted_out(practice.patient)
        assert audit_actions(practice.patient) == [AuditEvent.Action.OPTED_OUT, AuditEvent.Action.OPTED_IN]

    def test_start_from_a_patient_who_never_opted_out_changes_nothing(self, client, practice):
        inbound(client, "START")
        assert not opted_out(practice.patient)
        assert audit_actions(practice.patient) == []


class TestForged:
    def test_unsigned_stop_is_refused(self, client, practice):
        assert inbound(client, "STOP", token=None).status_code == 403
        assert not opted_out(practice.patient)
        assert not AuditEvent.objects.exists()

    def test_stop_signed_with_another_token_is_refused(self, client, practice):
        assert inbound(client, "STOP", token="guessed-token").status_code == 403
        assert not opted_out(practice.patient)

    def test_stop_signed_for_another_url_is_refused(self, client, practice):
        response = inbound(client, "STOP", signed_url=PUBLIC + "/webhooks/twilio/inbound/other/")
        assert response.status_code == 403
        assert not opted_out(practice.patient)

    def test_a_signed_start_replayed_with_another_number_is_refused(self, client, practice):
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
        params = {"AccountSid": ACCOUNT, "From": "+447400000001", "Body": "START"}
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC + inbound_path(), params)
        response = client.post(
            inbound_path(),
            urlencode({**params, "From": MOBILE}),
            content_type="application/x-www-form-urlencoded",
            headers={"X-Twilio-Signature": signature},
        )
        assert response.status_code == 403
        assert opted_out(practice.patient)

    def test_get_is_not_allowed(self, client):
        assert client.get(inbound_path()).status_code == 405


class TestStaffAfterStop:
    """After a STOP, staff see why they can't text the patient, and a text is refused with that reason."""

    def compose_url(self, patient: Patient) -> str:
        return f"/messages/new/?patient={encode_reference(patient.pk, namespace='patient')}"

    def test_the_compose_page_disables_sms_with_the_reason(self, client, staff_client, practice):
        inbound(client, "STOP")

        content = staff_client.get(self.compose_url(practice.patient)).content.decode()

        assert OPTED_OUT in html.unescape(content)
        assert re.search(r'value="sms"[^>]* disabled', content)
        assert not re.search(r'value="email"[^>]* disabled', content)

    def test_sending_them_a_text_is_refused_with_that_reason(
        self, client, staff_client, practice, django_capture_on_commit_callbacks
    ):
        inbound(client, "STOP")

        with django_capture_on_commit_callbacks(execute=True):
            response = staff_client.post(
                self.compose_url(practice.patient),
                {
                    "patient": encode_reference(practice.patient.pk, namespace="patient"),
                    "channel": "sms",
                    "body": "Hello {{Patient First Name}}",
                    "link_expiry": "14d",
                    "idempotency_key": str(uuid.uuid4()),
                    "action": "send",
                },
            )

        assert response.status_code == 400
        assert f"Can't send by SMS: {OPTED_OUT}." in html.unescape(response.content.decode())
        assert not Message.objects.exists()

    def test_after_start_sms_is_offered_again(self, client, staff_client, practice):
        inbound(client, "STOP")
        inbound(client, "START")

        content = staff_client.get(self.compose_url(practice.patient)).content.decode()

        assert OPTED_OUT not in html.unescape(content)
        assert not re.search(r'value="sms"[^>]* disabled', content)
