"""Messaging's side of the shared rules: times in texts, modes, message rows, patients, phone numbers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
import time_machine
from django.http import QueryDict
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from booking.appointments import appointment_book
from booking.models import AppointmentType, BookingLink, Patient, StaffMembership
from booking.references import decode_reference
from messaging.models import Message
from messaging.views.messages import MessageRow, _messages_for, message_rows
from messaging.webhooks import twilio_inbound_record
from tests.factories import BookingLinkFactory, MessageFactory, SlotFactory, UserFactory
from tests.fakes.twilio import ACCOUNT_SID

pytestmark = pytest.mark.django_db


JUNE_3RD_1_15PM_UTC = datetime(2026, 6, 3, 13, 15, tzinfo=UTC)


def book_at(practice, start: datetime, capture):
    """Book the practice's patient into a new slot at `start`, through a link sent by text."""
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    MessageFactory(patient=practice.patient, booking_link=link, channel="sms", to_address=practice.patient.mobile)
    slot = SlotFactory(
        practitioner=practice.practitioner,
        location=practice.location,
        appointment_type=practice.appointment_type,
        start=start,
        end=start + timedelta(minutes=10),
    )
    with capture(execute=True):
        appointment = appointment_book(link_id=link.pk, slot_id=slot.pk, now=datetime(2026, 5, 20, 9, 0, tzinfo=UTC))
    return Message.objects.get(confirms=appointment)


class TestTheConfirmationText:
    def test_it_reads_the_time_as_the_pages_do(self, practice, django_capture_on_commit_callbacks):
        # 1:15pm UTC on 3 June is 2:15pm in London (BST); the booked page says "2:15pm", so must the text.
        with time_machine.travel(datetime(2026, 5, 20, 9, 0, tzinfo=UTC), tick=False):
            confirmation = book_at(
                practice, datetime(2026, 6, 3, 13, 15, tzinfo=UTC), django_capture_on_commit_callbacks
            )
        assert "is booked for Wednesday 3 June at 2:15pm" in confirmation.body
        assert "14:15" not in confirmation.body

    @pytest.mark.parametrize(
        ("mode", "says"),
        [
            (AppointmentType.Mode.VIDEO, "(video: the practice will send you how to join)"),
            (AppointmentType.Mode.TELEPHONE, "(telephone: the practice will phone you)"),
        ],
    )
    def test_a_remote_appointment_says_how_it_happens_not_where(
        self, practice, django_capture_on_commit_callbacks, mode, says
    ):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode=mode)
        practice.appointment_type.refresh_from_db()
        with time_machine.travel(datetime(2026, 5, 20, 9, 0, tzinfo=UTC), tick=False):
            confirmation = book_at(
                practice, datetime(2026, 6, 3, 13, 15, tzinfo=UTC), django_capture_on_commit_callbacks
            )
        assert says in confirmation.body
        assert practice.location.address_line_1 not in confirmation.body


def test_the_invite_dialog_hints_that_a_video_appointment_needs_no_visit(staff_client, practice):
    AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode=AppointmentType.Mode.VIDEO)
    response = staff_client.get(
        "/messages/new/link/",
        {"patient": practice.patient.reference, "appointment_type": practice.appointment_type.pk},
    )
    assert "A video appointment still needs a location" in response.content.decode()


class TestMessageRows:
    def rows(self, user) -> list[MessageRow]:
        return message_rows(_messages_for(user), user=user)

    def test_a_row_carries_the_message_and_its_link_state(self, practice):
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        message = MessageFactory(patient=practice.patient, booking_link=link)
        (row,) = self.rows(practice.user)
        assert row.message == message
        assert row.link_state.startswith("Active, expires in")

    def test_a_message_without_a_link_has_no_link_state(self, practice):
        MessageFactory(patient=practice.patient)
        (row,) = self.rows(practice.user)
        assert row.link_state == ""

    def test_only_a_manager_of_the_sender_can_unlock(self, practice):
        MessageFactory(patient=practice.patient)
        assert not self.rows(practice.user)[0].can_unlock
        StaffMembership.objects.filter(user=practice.user).update(role=StaffMembership.Role.MANAGER)
        fresh = type(practice.user).objects.get(pk=practice.user.pk)  # a new request's user
        assert self.rows(fresh)[0].can_unlock

    def test_rows_are_frozen(self, practice):
        MessageFactory(patient=practice.patient)
        (row,) = self.rows(practice.user)
        with pytest.raises(AttributeError):
            row.can_unlock = True  # type: ignore[misc]

    def test_building_rows_asks_the_database_nothing_more(self, practice, django_assert_num_queries):
        for _ in range(3):
            MessageFactory(patient=practice.patient)
        messages = list(_messages_for(practice.user))
        with django_assert_num_queries(0):
            message_rows(messages, user=practice.user)

    def test_the_list_page_shows_the_rows(self, staff_client, practice):
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        BookingLink.objects.filter(pk=link.pk).update(status=BookingLink.Status.REVOKED)
        MessageFactory(patient=practice.patient, booking_link=link)
        assert "Revoked" in staff_client.get("/messages/").content.decode()


class TestPatientReference:
    def test_a_patients_reference_leads_back_to_them(self, practice):
        assert decode_reference(practice.patient.reference, namespace="patient") == practice.patient.pk

    def test_an_unsaved_patient_has_none(self):
        assert Patient().reference == ""

    def test_the_search_results_link_to_the_builder_by_reference(self, staff_client, practice):
        content = staff_client.get("/messages/new/patients/", {"q": "smith"}).content.decode()
        assert f"?patient={practice.patient.reference}" in content


@pytest.mark.usefixtures("twilio_account")
class TestInboundSender:
    ACCOUNT = ACCOUNT_SID
    SERVICE = "MG" + "2" * 32

    @pytest.fixture(autouse=True)
    def the_practice_texts_through_the_default_service(self, settings):
        settings.TWILIO_MESSAGING_SERVICE_SID = self.SERVICE

    def stop_from(self, sender: str) -> int:
        params = QueryDict(mutable=True)
        params.update({"From": sender, "Body": "STOP", "AccountSid": self.ACCOUNT})
        # A text to the practice's Messaging Service, with its own id, as Twilio posts it.
        params.update({"MessagingServiceSid": self.SERVICE, "MessageSid": "SM" + uuid.uuid4().hex})
        return twilio_inbound_record(params=params)

    def test_the_sender_is_read_with_the_same_rule_as_every_number(self, practice):
        # Twilio sends E.164; the one rule also reads the number the way a person writes it.
        assert self.stop_from("+44 7400 123456") == 1
        assert Patient.objects.get(pk=practice.patient.pk).sms_opted_out

    @pytest.mark.parametrize("sender", ["", "NHSApp", "12345", "+1000"])
    def test_a_sender_that_is_not_a_phone_number_changes_nothing(self, practice, sender):
        assert self.stop_from(sender) == 0
        assert not Patient.objects.get(pk=practice.patient.pk).sms_opted_out


def test_the_signed_inbound_webhook_still_opts_out(client, practice, settings):
    token = "twilio-test-auth-token-0123456789"
    settings.TWILIO_ACCOUNT_SID = "AC" + "1" * 32
    settings.TWILIO_AUTH_TOKEN = token
    settings.PUBLIC_BASE_URL = "http://testserver"
    # The practice texts from the deployment's default number, the one the STOP reaches.
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_SENDER_ID = "+447700900001"
    path = reverse("webhooks:twilio_inbound")
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "AccountSid": settings.TWILIO_ACCOUNT_SID}
    params |= {"From": practice.patient.mobile, "To": "+447700900001", "Body": "STOP"}
    signature = RequestValidator(token).compute_signature("http://testserver" + path, params)
    response = Client().post(
        path,
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={"X-Twilio-Signature": signature},
    )
    assert response.status_code == 200
    assert Patient.objects.get(pk=practice.patient.pk).sms_opted_out


def test_a_user_with_no_memberships_sees_no_rows():
    user = UserFactory()
    assert message_rows(_messages_for(user), user=user) == []
