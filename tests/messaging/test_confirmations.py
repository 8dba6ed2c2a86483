"""When a patient books through a link, they get a confirmation on the channel the link came by."""

from __future__ import annotations

import pytest

from booking.appointments import appointment_book
from booking.models import Patient, Slot
from messaging.confirmations import confirmation_send
from messaging.models import Message
from messaging.tasks import delivery_enqueue
from tests.factories import BookingLinkFactory, MessageFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitation(practice):
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    return MessageFactory(
        patient=practice.patient, booking_link=link, channel="sms", to_address=practice.patient.mobile
    )


def book(practice, invitation, capture):
    slot = Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start").first()
    with capture(execute=True):
        return appointment_book(link_id=invitation.booking_link_id, slot_id=slot.pk)


def test_booking_sends_a_confirmation_by_the_links_channel(practice, invitation, django_capture_on_commit_callbacks):
    appointment = book(practice, invitation, django_capture_on_commit_callbacks)
    confirmation = Message.objects.get(confirms=appointment)
    assert (confirmation.channel, confirmation.to_address, confirmation.status) == (
        "sms",
        practice.patient.mobile,
        "sent",
    )
    assert appointment.reference in confirmation.body
    assert practice.location.name in confirmation.body
    assert practice.organisation.phone_for_display in confirmation.body


def test_it_shows_in_the_message_history(staff_client, practice, invitation, django_capture_on_commit_callbacks):
    appointment = book(practice, invitation, django_capture_on_commit_callbacks)
    confirmation = Message.objects.get(confirms=appointment)
    page = staff_client.get("/messages/").content.decode()
    assert f"/messages/{confirmation.reference}/" in page
    assert "Booking confirmation" in page


def test_a_patient_who_has_since_opted_out_of_texts_gets_it_by_email(
    practice, invitation, django_capture_on_commit_callbacks
):
    Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
    appointment = book(practice, invitation, django_capture_on_commit_callbacks)
    confirmation = Message.objects.get(confirms=appointment)
    assert (confirmation.channel, confirmation.to_address) == ("email", practice.patient.email)
    assert confirmation.subject == "Your appointment is booked"


def test_it_is_sent_once(practice, invitation, django_capture_on_commit_callbacks):
    appointment = book(practice, invitation, django_capture_on_commit_callbacks)
    assert confirmation_send(appointment_id=appointment.pk, enqueue=delivery_enqueue) is None
    assert Message.objects.filter(confirms=appointment).count() == 1


def test_no_confirmation_when_the_patient_can_receive_nothing(practice, invitation, django_capture_on_commit_callbacks):
    Patient.objects.filter(pk=practice.patient.pk).update(mobile="", email="")
    appointment = book(practice, invitation, django_capture_on_commit_callbacks)
    assert not Message.objects.filter(confirms=appointment).exists()


DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


class TestWrittenByTheWorker:
    def test_the_booking_request_only_queues_the_confirmation(
        self, practice, invitation, django_capture_on_commit_callbacks
    ):
        from django.test import override_settings
        from django_tasks_db.models import DBTaskResult

        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, invitation, django_capture_on_commit_callbacks)
            assert not Message.objects.filter(confirms=appointment).exists()
            (task,) = DBTaskResult.objects.all()
            assert task.task_path == "messaging.tasks.send_confirmation"

            from messaging.tasks import send_confirmation

            assert send_confirmation.call(appointment_id=appointment.pk) == "queued"
            assert send_confirmation.call(appointment_id=appointment.pk) == "none"
        confirmation = Message.objects.get(confirms=appointment)
        assert confirmation.status == "queued"  # its delivery is the next task
        assert DBTaskResult.objects.filter(task_path="messaging.tasks.deliver_message").count() == 1

    def test_a_cancelled_appointment_is_not_confirmed(self, practice, invitation, django_capture_on_commit_callbacks):
        from django.test import override_settings

        from booking.appointments import appointment_cancel
        from messaging.tasks import send_confirmation

        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, invitation, django_capture_on_commit_callbacks)
            appointment_cancel(appointment=appointment, actor=practice.user)
            assert send_confirmation.call(appointment_id=appointment.pk) == "none"
        assert not Message.objects.filter(confirms=appointment).exists()

    def test_the_sweep_queues_a_confirmation_a_dead_process_never_queued(
        self, practice, invitation, django_capture_on_commit_callbacks
    ):
        from datetime import timedelta

        from django.test import override_settings
        from django.utils import timezone
        from django_tasks_db.models import DBTaskResult

        from messaging.tasks import messages_requeue

        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, invitation, django_capture_on_commit_callbacks)
            DBTaskResult.objects.all().delete()  # as if the process died before queuing it
            assert messages_requeue() == 0  # too recent: its task may still be on the way
            later = timezone.now() + timedelta(minutes=5)
            assert messages_requeue(now=later) == 1
            (task,) = DBTaskResult.objects.all()
            assert task.args_kwargs["kwargs"] == {"appointment_id": appointment.pk}
            assert messages_requeue(now=timezone.now() + timedelta(days=2)) == 0  # a day on, it's too late
