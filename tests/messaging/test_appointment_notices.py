"""What a patient is told after booking through a link: the confirmation carries the link to
change or cancel; a change is confirmed with old and new times; a cancellation is told once, on
the link's channel, with no link; each email carries the calendar file for the same event."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.core import mail
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from icalendar import Calendar

from booking.appointments import appointment_book, appointment_cancel
from booking.formats import LONDON, day_label, london_time, time_of_day
from booking.models import (
    Appointment,
    AppointmentType,
    BookingLink,
    CancellationReason,
    CancellationSource,
    Location,
    Patient,
    Slot,
    hash_token,
)
from messaging.confirmations import cancellation_send, confirmation_send
from messaging.delivery import message_deliver
from messaging.models import Message
from messaging.segments import MAX_SMS_SEGMENTS, sms_length
from messaging.tasks import delivery_enqueue, messages_requeue, send_cancellation
from messaging.tokens import LINK_PLACEHOLDER
from tests.factories import BookingLinkFactory, MessageFactory, SlotFactory
from tests.scenarios import Practice, make_change, text_as_sent

pytestmark = pytest.mark.django_db

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
NO_TASKS = {"default": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"}}


def no_enqueue(**kwargs: object) -> None:
    """Delivery is not the point here: the message is only written."""


def invited(practice: Practice, channel: str = "sms") -> BookingLink:
    link = BookingLinkFactory(
        patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
    )
    address = practice.patient.mobile if channel == "sms" else practice.patient.email
    MessageFactory(patient=practice.patient, booking_link=link, channel=channel, to_address=address)
    return link


def free_slots(practice: Practice) -> list[Slot]:
    return list(Slot.objects.filter(appointment_type=practice.appointment_type, status="free").order_by("start"))


def at_ten_to_eleven(practice: Practice) -> None:
    """Put the practice's free times at 10:50am London time, and on, on the day they are on."""
    slots = Slot.objects.filter(appointment_type=practice.appointment_type).order_by("start")
    day = london_time(slots[0].start).date()
    count = slots.count()
    slots.delete()  # not moved one by one: a moved time could overlap one not yet moved
    start = datetime.combine(day, time(10, 50), tzinfo=LONDON)
    for n in range(count):
        SlotFactory(
            practitioner=practice.practitioner,
            location=practice.location,
            appointment_type=practice.appointment_type,
            start=start + timedelta(minutes=10 * n),
            end=start + timedelta(minutes=10 * (n + 1)),
        )


def book(practice: Practice, capture, channel: str = "sms") -> Appointment:
    link = invited(practice, channel)
    with capture(execute=True):
        return appointment_book(link_id=link.pk, slot_id=free_slots(practice)[0].pk)


def cancel(appointment: Appointment, capture, **how: object) -> None:
    with capture(execute=True):
        assert appointment_cancel(appointment=appointment, actor=None, **how)


def loaded(appointment: Appointment) -> Appointment:
    return Appointment.objects.select_related("slot", "replaces__slot").get(pk=appointment.pk)


def calendar_event(email) -> tuple[str, object]:
    ((filename, content, mimetype),) = email.attachments
    assert (filename, mimetype) == ("appointment.ics", "text/calendar")
    calendar = Calendar.from_ical(content)
    (event,) = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


# --- The booking confirmation ------------------------------------------------------------------


class TestTheBookingConfirmation:
    def test_it_carries_the_link_hidden_at_rest_and_working_when_sent(
        self, practice, django_capture_on_commit_callbacks
    ):
        appointment = book(practice, django_capture_on_commit_callbacks)
        confirmation = Message.objects.get(confirms=appointment)
        link = appointment.booking_link
        assert confirmation.link_carried_id == link.pk
        assert LINK_PLACEHOLDER in confirmation.body
        assert "/b/" not in confirmation.body
        sent = text_as_sent(confirmation)
        assert "To change or cancel, go to http://testserver/b/" in sent
        token = sent.split("/b/")[1].split(" ")[0]
        assert BookingLink.objects.get(token_digest=hash_token(token)) == link

    def test_its_text_says_what_when_where_and_how_to_change(self, practice, django_capture_on_commit_callbacks):
        appointment = loaded(book(practice, django_capture_on_commit_callbacks))
        start = appointment.slot.start
        organisation = practice.organisation
        assert Message.objects.get(confirms=appointment).body == (
            f"Your Flu vaccination is booked for {day_label(start)} at {time_of_day(start)} at "
            f"{practice.location.name}, {practice.location.address}. Booking reference {appointment.reference}. "
            f"To change or cancel, go to {LINK_PLACEHOLDER} or call {organisation.name} on "
            f"{organisation.phone_for_display}."
        )

    def test_a_type_not_changed_online_says_to_call_and_still_links_the_appointment(
        self, practice, django_capture_on_commit_callbacks
    ):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(online_changes_until_hours=None)
        appointment = book(practice, django_capture_on_commit_callbacks)
        body = Message.objects.get(confirms=appointment).body
        assert body.endswith(
            f"To change or cancel, call {practice.organisation.name} on "
            f"{practice.organisation.phone_for_display}. Your appointment: {LINK_PLACEHOLDER}"
        )

    def test_the_email_has_the_link_and_the_calendar_event(self, practice, django_capture_on_commit_callbacks):
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
        appointment = book(practice, django_capture_on_commit_callbacks)
        (email,) = mail.outbox
        assert email.subject == "Your appointment is booked"
        assert "To change or cancel, go to http://testserver/b/" in email.body
        assert 'href="http://testserver/b/' in email.alternatives[0][0]
        method, event = calendar_event(email)
        assert method == "PUBLISH"
        assert (str(event["UID"]), event["SEQUENCE"]) == (f"{appointment.reference}@testserver", 0)
        assert "/b/" not in email.attachments[0][1]  # the calendar keeps no link

    def test_a_retry_after_the_appointment_was_cancelled_is_not_sent(
        self, practice, django_capture_on_commit_callbacks
    ):
        with override_settings(TASKS=NO_TASKS):
            appointment = book(practice, django_capture_on_commit_callbacks)
            confirmation = confirmation_send(appointment_id=appointment.pk, enqueue=no_enqueue)
            cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        assert message_deliver(message_id=confirmation.pk, enqueue=delivery_enqueue) == "failed"
        confirmation.refresh_from_db()
        assert confirmation.failure_reason == "Not sent: the appointment was cancelled before this confirmation went."
        assert not mail.outbox

    def test_a_retry_after_a_change_is_not_sent_the_change_confirmation_is(
        self, practice, django_capture_on_commit_callbacks
    ):
        with override_settings(TASKS=NO_TASKS):
            appointment = book(practice, django_capture_on_commit_callbacks)
            old = confirmation_send(appointment_id=appointment.pk, enqueue=no_enqueue)
            with django_capture_on_commit_callbacks(execute=True):
                changed = make_change(appointment, free_slots(practice)[0])
            new = confirmation_send(appointment_id=changed.pk, enqueue=no_enqueue)
        assert message_deliver(message_id=old.pk, enqueue=delivery_enqueue) == "failed"
        old.refresh_from_db()
        assert old.failure_reason == (
            "Not sent: the appointment was changed to another time before this confirmation went."
        )
        assert message_deliver(message_id=new.pk, enqueue=delivery_enqueue) == "sent"


class TestSmsLength:
    def test_a_confirmation_with_its_link_is_two_texts(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        length = sms_length(text_as_sent(Message.objects.get(confirms=appointment)))
        assert (length.encoding, length.segments) == ("GSM-7", 2)

    def test_a_change_confirmation_with_its_link_is_two_texts(self, practice, django_capture_on_commit_callbacks):
        # The longest times of day (two-digit hours) on the scenario's day: the text's length
        # must not depend on the hour the test runs at.
        at_ten_to_eleven(practice)
        appointment = book(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slots(practice)[0])
        length = sms_length(text_as_sent(Message.objects.get(confirms=changed)))
        assert (length.encoding, length.segments) == ("GSM-7", 2)

    def test_a_cancellation_is_two_texts(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        length = sms_length(Message.objects.get(cancellation_of=appointment).body)
        assert (length.encoding, length.segments) == ("GSM-7", 2)

    def test_names_too_long_for_ten_texts_drop_the_address_keeping_the_link_and_reference(
        self, practice, django_capture_on_commit_callbacks
    ):
        # Welsh ŵ makes the text UCS-2 (67 a part): in full it would be more than ten texts.
        Location.objects.filter(pk=practice.location.pk).update(
            name="Canolfan Iechyd Gŵyr " + "ŵ" * 170, address_line_1="ŵ" * 200, address_line_2="ŵ" * 200
        )
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(name="Brechiad ffliw " + "ŵ" * 150)
        appointment = book(practice, django_capture_on_commit_callbacks)
        confirmation = Message.objects.get(confirms=appointment)
        sent = text_as_sent(confirmation)
        length = sms_length(sent)
        assert length.encoding == "UCS-2"
        assert length.segments <= MAX_SMS_SEGMENTS
        assert appointment.reference in sent
        assert "http://testserver/b/" in sent
        assert "ŵ" * 200 not in sent  # the address went first


# --- The change confirmation -------------------------------------------------------------------


class TestTheChangeConfirmation:
    def test_it_says_from_when_to_when_with_the_new_reference_and_the_link(
        self, practice, django_capture_on_commit_callbacks
    ):
        appointment = book(practice, django_capture_on_commit_callbacks)
        other_day = free_slots(practice)[0]
        Slot.objects.filter(pk=other_day.pk).update(
            start=other_day.start + timedelta(days=1), end=other_day.end + timedelta(days=1)
        )
        other_day.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            changed = loaded(make_change(appointment, other_day))
        old, new = changed.replaces.slot.start, changed.slot.start
        confirmation = Message.objects.get(confirms=changed)
        assert confirmation.body.startswith(
            f"Your Flu vaccination has been changed from {day_label(old)} at {time_of_day(old)} to "
            f"{day_label(new)} at {time_of_day(new)} at {practice.location.name}, "
        )
        assert f"New booking reference {changed.reference}. To change or cancel, go to {LINK_PLACEHOLDER}" in (
            confirmation.body
        )
        assert confirmation.link_carried_id == appointment.booking_link_id
        assert confirmation.status == Message.Status.SENT
        # One confirmation each: the first booking's and the change's.
        assert Message.objects.filter(confirms__isnull=False).count() == 2
        assert not Message.objects.filter(cancellation_of__isnull=False).exists()  # a change isn't a cancellation

    def test_a_change_on_the_same_day_names_the_day_once(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = loaded(make_change(appointment, free_slots(practice)[0]))
        old, new = changed.replaces.slot.start, changed.slot.start
        assert day_label(old) == day_label(new)
        assert Message.objects.get(confirms=changed).body.startswith(
            f"Your Flu vaccination on {day_label(new)} has been changed from {time_of_day(old)} to "
            f"{time_of_day(new)} at {practice.location.name}, "
        )

    def test_the_email_moves_the_same_calendar_event(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks, channel="email")
        with django_capture_on_commit_callbacks(execute=True):
            changed = loaded(make_change(appointment, free_slots(practice)[0]))
        first, second = mail.outbox
        assert second.subject == "Your appointment has been changed"
        assert "go to http://testserver/b/" in second.body
        assert calendar_event(first)[1]["UID"] == calendar_event(second)[1]["UID"]
        method, event = calendar_event(second)
        assert (method, event["SEQUENCE"], str(event["STATUS"])) == ("PUBLISH", 1, "CONFIRMED")
        assert event.decoded("DTSTART") == changed.slot.start

    def test_it_is_written_once(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slots(practice)[0])
        assert confirmation_send(appointment_id=changed.pk, enqueue=delivery_enqueue) is None
        assert Message.objects.filter(confirms=changed).count() == 1

    def test_the_sweep_writes_one_a_dead_process_never_queued(self, practice, django_capture_on_commit_callbacks):
        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, django_capture_on_commit_callbacks)
            with django_capture_on_commit_callbacks(execute=True):
                changed = make_change(appointment, free_slots(practice)[0])
            DBTaskResult.objects.all().delete()  # as if the process died before queuing them
            later = timezone.now() + timedelta(minutes=5)
            # The change's; not the first booking's: that appointment is no longer booked.
            assert messages_requeue(now=later) == 1
            (task,) = DBTaskResult.objects.all()
            assert task.args_kwargs["kwargs"] == {"appointment_id": changed.pk}
            assert confirmation_send(appointment_id=appointment.pk, enqueue=no_enqueue) is None


# --- The cancellation notice -------------------------------------------------------------------


class TestTheCancellationNotice:
    def test_a_patients_cancellation_says_so_with_no_link(self, practice, django_capture_on_commit_callbacks):
        appointment = loaded(book(practice, django_capture_on_commit_callbacks))
        cancel(
            appointment,
            django_capture_on_commit_callbacks,
            source=CancellationSource.PATIENT,
            reason=CancellationReason.CANNOT_MAKE_TIME,
        )
        notice = Message.objects.get(cancellation_of=appointment)
        start = appointment.slot.start
        organisation = practice.organisation
        assert notice.body == (
            f"Your Flu vaccination on {day_label(start)} at {time_of_day(start)} is cancelled. "
            f"Booking reference {appointment.reference}. If you need another appointment, call "
            f"{organisation.name} on {organisation.phone_for_display}."
        )
        assert (notice.channel, notice.status, notice.link_carried_id, notice.confirms_id) == (
            "sms",
            "sent",
            None,
            None,
        )
        assert LINK_PLACEHOLDER not in notice.body

    @pytest.mark.parametrize(
        ("reason", "said"),
        [
            (CancellationReason.CLINICIAN_UNAVAILABLE, " Reason: The clinician is not available."),
            (CancellationReason.BOOKED_IN_ERROR, " Reason: Booked in error."),
            (CancellationReason.OTHER, ""),
        ],
    )
    def test_a_practices_cancellation_says_who_why_and_to_call(
        self, practice, reason, said, django_capture_on_commit_callbacks
    ):
        appointment = loaded(book(practice, django_capture_on_commit_callbacks))
        cancel(
            appointment,
            django_capture_on_commit_callbacks,
            source=CancellationSource.PRACTICE,
            reason=reason,
            detail="Dr away: internal note",
        )
        start = appointment.slot.start
        organisation = practice.organisation
        assert Message.objects.get(cancellation_of=appointment).body == (
            f"{organisation.name} has cancelled your Flu vaccination on {day_label(start)} at "
            f"{time_of_day(start)}.{said} Booking reference {appointment.reference}. Please call "
            f"{organisation.name} on {organisation.phone_for_display} to book another time."
        )

    def test_a_practice_without_a_phone_asks_them_to_get_in_touch(self, practice, django_capture_on_commit_callbacks):
        type(practice.organisation).objects.filter(pk=practice.organisation.pk).update(phone="")
        appointment = book(practice, django_capture_on_commit_callbacks)
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PRACTICE)
        body = Message.objects.get(cancellation_of=appointment).body
        assert body.endswith(f"Please contact {practice.organisation.name} to book another time.")

    def test_the_email_cancels_the_same_calendar_event(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks, channel="email")
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slots(practice)[0])
        cancel(changed, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        booked, moved, cancelled = mail.outbox
        assert cancelled.subject == "Your appointment is cancelled"
        assert "/b/" not in cancelled.body
        method, event = calendar_event(cancelled)
        assert method == "CANCEL"
        assert str(event["UID"]) == str(calendar_event(booked)[1]["UID"]) == f"{appointment.reference}@testserver"
        assert event["SEQUENCE"] == calendar_event(moved)[1]["SEQUENCE"] + 1 == 2
        assert str(event["STATUS"]) == "CANCELLED"

    def test_by_email_when_the_patient_has_opted_out_of_texts(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        notice = Message.objects.get(cancellation_of=appointment)
        assert (notice.channel, notice.to_address) == ("email", practice.patient.email)

    def test_by_text_when_emails_to_them_stopped(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks, channel="email")
        Patient.objects.filter(pk=practice.patient.pk).update(email_undeliverable_reason="It bounced.")
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        assert Message.objects.get(cancellation_of=appointment).channel == "sms"

    def test_nothing_when_neither_channel_reaches_them(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True, email="")
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        assert not Message.objects.filter(cancellation_of=appointment).exists()

    def test_once_only(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
        assert cancellation_send(appointment_id=appointment.pk, enqueue=delivery_enqueue) is None
        assert Message.objects.filter(cancellation_of=appointment).count() == 1

    def test_none_for_a_change_a_booked_or_a_past_appointment(self, practice, django_capture_on_commit_callbacks):
        appointment = book(practice, django_capture_on_commit_callbacks)
        assert cancellation_send(appointment_id=appointment.pk, enqueue=no_enqueue) is None  # still booked
        with django_capture_on_commit_callbacks(execute=True):
            changed = make_change(appointment, free_slots(practice)[0])
        assert cancellation_send(appointment_id=appointment.pk, enqueue=no_enqueue) is None  # changed
        with override_settings(TASKS=NO_TASKS):
            cancel(changed, django_capture_on_commit_callbacks, source=CancellationSource.PRACTICE)
        later = Appointment.objects.select_related("slot").get(pk=changed.pk).slot.start + timedelta(minutes=1)
        assert cancellation_send(appointment_id=changed.pk, enqueue=no_enqueue, now=later) is None  # gone by
        assert not Message.objects.filter(cancellation_of__isnull=False).exists()

    def test_none_for_an_appointment_not_booked_through_a_links_message(self, practice):
        link = BookingLinkFactory(
            patient=practice.patient, appointment_type=practice.appointment_type, location=practice.location
        )
        appointment = appointment_book(link_id=link.pk, slot_id=free_slots(practice)[0].pk)
        appointment_cancel(appointment=appointment, actor=None, source=CancellationSource.PRACTICE)
        assert cancellation_send(appointment_id=appointment.pk, enqueue=no_enqueue) is None

    def test_the_cancelling_request_only_queues_it_and_the_worker_writes_it(
        self, practice, django_capture_on_commit_callbacks
    ):
        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, django_capture_on_commit_callbacks)
            DBTaskResult.objects.all().delete()
            cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
            (task,) = DBTaskResult.objects.all()
            assert task.task_path == "messaging.tasks.send_cancellation"
            assert not Message.objects.filter(cancellation_of=appointment).exists()
            assert send_cancellation.call(appointment_id=appointment.pk) == "queued"
            assert send_cancellation.call(appointment_id=appointment.pk) == "none"
        notice = Message.objects.get(cancellation_of=appointment)
        assert notice.status == Message.Status.QUEUED  # its delivery is the next task
        assert DBTaskResult.objects.filter(task_path="messaging.tasks.deliver_message").count() == 1

    def test_the_sweep_queues_one_a_dead_process_never_queued(self, practice, django_capture_on_commit_callbacks):
        with override_settings(TASKS=DATABASE_TASKS):
            appointment = book(practice, django_capture_on_commit_callbacks)
            cancel(appointment, django_capture_on_commit_callbacks, source=CancellationSource.PATIENT)
            DBTaskResult.objects.all().delete()  # as if the process died before queuing it
            assert messages_requeue() == 0  # too recent: its task may still be on the way
            assert messages_requeue(now=timezone.now() + timedelta(minutes=5)) == 1
            (task,) = DBTaskResult.objects.all()
            assert task.task_path == "messaging.tasks.send_cancellation"
            assert task.args_kwargs["kwargs"] == {"appointment_id": appointment.pk}
            assert messages_requeue(now=timezone.now() + timedelta(days=2)) == 0  # a day on, it's too late
