"""Reminders before an appointment: when they go, what they say, by which channel, and only once.

Time moves through the `now=` the sweep takes; the dates include both clock changes (Sunday 25
October 2026, back to GMT; Sunday 28 March 2027, forward to BST).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from booking.models import Appointment, AppointmentType, CancellationReason, CancellationSource, Patient, Slot
from messaging.delivery import message_deliver
from messaging.forms import ReminderTemplateForm
from messaging.models import Message, Reminder, ReminderTemplate
from messaging.reminders import (
    reminder_due,
    reminder_sending_time,
    reminder_useful_until,
    reminders_queue,
)
from messaging.tasks import deliveries_enqueue, delivery_enqueue, reminders_send
from messaging.tokens import LINK_PLACEHOLDER
from tests.scenarios import make_booked_appointment, text_as_sent

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


def sent_reminders(appointment: Appointment) -> dict[str, Message | None]:
    return {reminder.kind: reminder.message for reminder in Reminder.objects.filter(appointment=appointment)}


class TestWhenARemindersIsDue:
    def test_one_day_before_at_the_same_london_time_across_the_october_change(self):
        # Sunday 25 October 2026 10am is GMT; Saturday 10am is still BST: 25 hours apart.
        start = london(2026, 10, 25, 10, 0)
        assert reminder_due(start=start, days=1) == london(2026, 10, 24, 10, 0)
        assert start - reminder_due(start=start, days=1) == timedelta(hours=25)

    def test_one_day_before_at_the_same_london_time_across_the_march_change(self):
        start = london(2027, 3, 28, 10, 0)
        assert reminder_due(start=start, days=1) == london(2027, 3, 27, 10, 0)
        assert start - reminder_due(start=start, days=1) == timedelta(hours=23)

    def test_one_due_at_night_goes_at_eight_in_the_morning(self):
        assert reminder_sending_time(due=london(2026, 12, 7, 20, 30)) == london(2026, 12, 8, 8, 0)
        assert reminder_sending_time(due=london(2026, 12, 7, 7, 30)) == london(2026, 12, 7, 8, 0)
        assert reminder_sending_time(due=london(2026, 12, 7, 19, 59)) == london(2026, 12, 7, 19, 59)

    def test_useful_until_the_next_nearer_reminder_or_an_hour_before_the_start(self):
        start = london(2026, 12, 10, 9, 0)
        assert reminder_useful_until(start=start, kind="1d") == london(2026, 12, 10, 8, 0)
        assert reminder_useful_until(start=start, kind="3d") == london(2026, 12, 9, 9, 0)
        assert reminder_useful_until(start=start, kind="7d") == london(2026, 12, 7, 9, 0)


class TestTheSweep:
    @pytest.mark.parametrize(
        "start",
        [london(2026, 10, 25, 10, 0), london(2027, 3, 28, 10, 0), london(2026, 10, 26, 9, 15)],
        ids=["october-change", "march-change", "monday-after-october-change"],
    )
    def test_a_one_day_reminder_goes_at_the_right_london_time_across_the_clock_changes(self, practice, start):
        appointment = make_booked_appointment(practice, start=start, booked_at=start - timedelta(days=10))
        due = start.astimezone(LONDON) - timedelta(days=1)  # wall-clock arithmetic
        assert reminders_send(now=due - timedelta(minutes=1)).queued == 0
        assert reminders_send(now=due).queued == 1
        reminder = Reminder.objects.get(appointment=appointment)
        assert (reminder.kind, reminder.due_at) == ("1d", due)
        assert reminder.message.channel == "sms"

    def test_nothing_goes_at_night_and_one_due_then_goes_at_eight(self, practice):
        start = london(2026, 12, 8, 20, 30)
        appointment = make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        assert reminders_send(now=london(2026, 12, 7, 20, 30)).queued == 0
        assert reminders_send(now=london(2026, 12, 8, 7, 59)).queued == 0
        assert reminders_send(now=london(2026, 12, 8, 8, 0)).queued == 1
        assert Reminder.objects.get(appointment=appointment).due_at == london(2026, 12, 8, 8, 0)

    def test_a_booking_made_after_the_reminder_was_due_gets_none(self, practice):
        start = london(2026, 12, 8, 15, 0)
        # Booked 20 hours ahead: its confirmation did the reminder's job.
        make_booked_appointment(practice, start=start, booked_at=start - timedelta(hours=20))
        for now in (start - timedelta(hours=19), start - timedelta(hours=5), start - timedelta(hours=2)):
            assert reminders_send(now=now).queued == 0
        assert not Reminder.objects.exists()

    def test_a_booking_made_just_before_the_reminder_was_due_gets_it(self, practice):
        start = london(2026, 12, 8, 15, 0)
        appointment = make_booked_appointment(practice, start=start, booked_at=start - timedelta(hours=24, minutes=1))
        assert reminders_send(now=start - timedelta(hours=24)).queued == 1
        assert set(sent_reminders(appointment)) == {"1d"}

    def test_a_late_reminder_goes_while_it_is_still_useful(self, practice):
        # The scheduler was down from the morning until 3pm: the 10am reminder goes then.
        start = london(2026, 12, 8, 10, 0)
        make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        assert reminders_send(now=london(2026, 12, 7, 15, 0)).queued == 1

    def test_a_one_day_reminder_is_not_sent_in_the_last_hour_before_the_start(self, practice):
        # Down all day: the 8:30am appointment's reminder, waiting for 8am, is then half an hour away.
        start = london(2026, 12, 8, 8, 30)
        make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        assert reminders_send(now=london(2026, 12, 8, 8, 0)).queued == 0
        assert not Reminder.objects.exists()

    def test_an_appointment_at_9am_late_reminded_at_7_59am_is_not_sent_at_night_nor_after(self, practice):
        start = london(2026, 12, 8, 9, 0)
        make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        assert reminders_send(now=london(2026, 12, 8, 7, 59)).queued == 0  # at night
        assert reminders_send(now=london(2026, 12, 8, 8, 0)).queued == 0  # useful until 8am

    def test_a_late_seven_day_reminder_is_not_sent_once_the_three_day_one_is_due(self, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(remind_3_days=True, remind_7_days=True)
        start = london(2026, 12, 20, 11, 0)
        appointment = make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        # Down from 7 days before until 3 days before: only the 3-day reminder goes.
        assert reminders_send(now=london(2026, 12, 17, 11, 0)).queued == 1
        assert set(sent_reminders(appointment)) == {"3d"}
        assert reminders_send(now=london(2026, 12, 19, 11, 0)).queued == 1
        assert set(sent_reminders(appointment)) == {"3d", "1d"}

    def test_each_kind_the_type_turned_on_goes_once_at_its_time(self, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(remind_3_days=True, remind_7_days=True)
        start = london(2026, 12, 20, 11, 0)
        appointment = make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        for day, kind in ((13, "7d"), (17, "3d"), (19, "1d")):
            assert reminders_send(now=london(2026, 12, day, 11, 0)).queued == 1
            assert reminders_send(now=london(2026, 12, day, 11, 1)).queued == 0
            assert kind in sent_reminders(appointment)
        assert Message.objects.filter(reminder__appointment=appointment).count() == 3

    def test_a_type_without_reminders_gets_none(self, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(remind_1_day=False)
        start = london(2026, 12, 8, 10, 0)
        make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        assert reminders_send(now=london(2026, 12, 7, 10, 0)).queued == 0

    def test_a_cancelled_appointment_gets_none(self, practice):
        start = london(2026, 12, 8, 10, 0)
        appointment = make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        cancel(appointment, source=CancellationSource.PATIENT)
        assert reminders_send(now=london(2026, 12, 7, 10, 0)).queued == 0

    def test_a_changed_appointment_gets_none_and_its_replacement_gets_its_own_from_its_own_booking(self, practice):
        old = make_booked_appointment(practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0))
        cancel(old, source=CancellationSource.CHANGED)
        # Moved at 6pm on the 9th to 11am on the 10th: booked 17 hours ahead, so no 1-day reminder.
        late = make_booked_appointment(
            practice, start=london(2026, 12, 10, 11, 0), booked_at=london(2026, 12, 9, 18, 0)
        )
        # Moved on the 1st to the 15th: it gets its reminder on the 14th.
        early = make_booked_appointment(practice, start=london(2026, 12, 15, 11, 0), booked_at=london(2026, 12, 2, 9))
        for day in (7, 9, 10, 14):
            reminders_send(now=london(2026, 12, day, 11, 0))
        assert sent_reminders(old) == {}
        assert sent_reminders(late) == {}
        assert set(sent_reminders(early)) == {"1d"}


def cancel(appointment: Appointment, *, source: str) -> None:
    Appointment.objects.filter(pk=appointment.pk).update(
        status=Appointment.Status.CANCELLED,
        cancelled_at=timezone.now(),
        cancellation_source=source,
        cancellation_reason=CancellationReason.OTHER
        if source != CancellationSource.CHANGED
        else CancellationReason.CHANGED,
    )
    Slot.objects.filter(pk=appointment.slot_id).update(status=Slot.Status.FREE)


class TestWhatItSaysAndHowItGoes:
    def test_it_goes_by_the_links_channel_with_date_time_place_and_the_link(self, practice):
        start = london(2026, 12, 8, 14, 15)
        appointment = make_booked_appointment(practice, start=start, booked_at=london(2026, 12, 1, 9, 0))
        reminders_send(now=london(2026, 12, 7, 14, 15))
        message = Message.objects.get(reminder__appointment=appointment)
        assert (message.channel, message.to_address) == ("sms", practice.patient.mobile)
        assert "Tuesday 8 December 2026" in message.body
        assert "2:15pm" in message.body
        assert practice.location.name in message.body
        assert LINK_PLACEHOLDER in message.body  # stored without the working link
        assert message.link_carried_id == appointment.booking_link_id
        assert f"/b/{appointment.booking_link.token}" not in message.body
        sent = text_as_sent(Message.objects.select_related("link_carried").get(pk=message.pk))
        assert "/b/" in sent
        assert LINK_PLACEHOLDER not in sent

    def test_an_email_link_gets_an_email_reminder(self, practice):
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0), channel="email"
        )
        reminders_send(now=london(2026, 12, 7, 10, 0))
        message = Message.objects.get(reminder__appointment=appointment)
        assert (message.channel, message.to_address) == ("email", practice.patient.email)
        assert message.subject == "Reminder: your appointment on Tuesday 8 December"

    def test_a_patient_who_has_since_opted_out_of_texts_gets_it_by_email(self, practice):
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
        reminders_send(now=london(2026, 12, 7, 10, 0))
        assert Message.objects.get(reminder__appointment=appointment).channel == "email"

    def test_a_patient_nothing_reaches_gets_none_and_it_is_not_tried_again(self, practice):
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        Patient.objects.filter(pk=practice.patient.pk).update(mobile="", email="")
        run = reminders_send(now=london(2026, 12, 7, 10, 0))
        assert (run.queued, run.not_sent) == (0, 1)
        assert sent_reminders(appointment) == {"1d": None}
        assert reminders_send(now=london(2026, 12, 7, 10, 1)).not_sent == 0

    def test_a_telephone_appointment_says_we_will_phone(self, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode="telephone")
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        reminders_send(now=london(2026, 12, 7, 10, 0))
        body = Message.objects.get(reminder__appointment=appointment).body
        assert "we will phone you" in body
        assert practice.location.name not in body

    def test_a_video_appointment_says_how_it_works(self, practice):
        AppointmentType.objects.filter(pk=practice.appointment_type.pk).update(mode="video")
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        reminders_send(now=london(2026, 12, 7, 10, 0))
        assert "video appointment: we will send you a link to join" in (
            Message.objects.get(reminder__appointment=appointment).body
        )

    def test_the_organisations_own_template_is_used(self, practice):
        ReminderTemplate.objects.create(
            organisation=practice.organisation,
            body="Hi {{patient first name}}, see you {{Appointment Date}} {{Appointment Time}}. {{Appointment Link}}",
        )
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        reminders_send(now=london(2026, 12, 7, 10, 0))
        assert Message.objects.get(reminder__appointment=appointment).body == (
            f"Hi Oliver, see you Tuesday 8 December 2026 10am. {LINK_PLACEHOLDER}"
        )

    def test_a_text_is_stripped_of_characters_that_would_make_it_cost_more(self, practice):
        ReminderTemplate.objects.create(
            organisation=practice.organisation, body="It’s on {{Appointment Date}}\u00a0— {{Appointment Link}}"
        )
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        reminders_send(now=london(2026, 12, 7, 10, 0))
        assert Message.objects.get(reminder__appointment=appointment).body.startswith(
            "It's on Tuesday 8 December 2026 - "
        )


class TestExactlyOnce:
    def test_the_database_refuses_a_second_reminder_of_a_kind(self, practice):
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        Reminder.objects.create(appointment=appointment, kind="1d", due_at=london(2026, 12, 7, 10, 0))
        with pytest.raises(IntegrityError), transaction.atomic():
            Reminder.objects.create(appointment=appointment, kind="1d", due_at=london(2026, 12, 7, 10, 0))

    def test_a_second_sweep_sends_nothing_again(self, practice):
        appointment = make_booked_appointment(
            practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0)
        )
        assert reminders_send(now=london(2026, 12, 7, 10, 0)).queued == 1
        assert reminders_send(now=london(2026, 12, 7, 10, 0)).queued == 0
        assert reminders_send(now=london(2026, 12, 7, 18, 0)).queued == 0
        assert Message.objects.filter(reminder__appointment=appointment).count() == 1

    @override_settings(TASKS=DATABASE_TASKS)
    @pytest.mark.parametrize(
        ("source", "reason"),
        [
            (CancellationSource.PATIENT, "Not sent: the appointment was cancelled before this reminder went."),
            (
                CancellationSource.CHANGED,
                "Not sent: the appointment was changed to another time before this reminder went.",
            ),
        ],
    )
    def test_a_reminder_queued_before_a_cancellation_or_change_is_stopped_when_the_worker_sends(
        self, practice, source, reason
    ):
        # Delivery checks against the real clock, so this appointment is really to come.
        day = timezone.localdate(timezone.now(), LONDON) + timedelta(days=2)
        start = london(day.year, day.month, day.day, 12, 0)
        appointment = make_booked_appointment(practice, start=start, booked_at=timezone.now() - timedelta(days=1))
        sweep_at = start.astimezone(LONDON) - timedelta(days=1)
        assert reminders_send(now=sweep_at).queued == 1
        message = Message.objects.get(reminder__appointment=appointment)
        assert message.status == Message.Status.QUEUED  # its task waits for a worker
        cancel(appointment, source=source)
        assert message_deliver(message_id=message.pk, enqueue=delivery_enqueue) == "failed"
        message.refresh_from_db()
        assert (message.status, message.failure_reason) == (Message.Status.FAILED, reason)


class TestTheSweepAtScale:
    """Due appointments are read in batches by index: the same queries for each batch, however many."""

    @override_settings(TASKS=DATABASE_TASKS)
    @pytest.mark.parametrize(("due", "full_batches"), [(3, 1), (25, 3)])
    def test_a_constant_number_of_queries_per_batch(self, practice, django_assert_num_queries, due, full_batches):
        start = london(2026, 12, 8, 10, 0)
        for i in range(due):
            make_booked_appointment(practice, start=start + timedelta(minutes=10 * i), booked_at=london(2026, 12, 1, 9))
        # A batch with due reminders: savepoint, select the due (with all the text needs),
        # claim them, insert the messages, link them to their reminders, insert the task rows,
        # release (7). The 3-day and 7-day kinds find none: savepoint, select, release (3 each).
        with django_assert_num_queries(7 * full_batches + 3 + 3):
            run = reminders_queue(enqueue=deliveries_enqueue, now=london(2026, 12, 7, 18, 0), batch_size=10)
        assert (run.queued, run.batches) == (due, full_batches + 2)


class TestTheTemplateInAdmin:
    def test_an_unknown_token_is_refused_with_a_message(self, practice):
        form = ReminderTemplateForm(
            data={"organisation": practice.organisation.pk, "body": "See you {{Appointment Day}}"}
        )
        assert not form.is_valid()
        assert form.errors["body"] == [
            "{{Appointment Day}} is not a token a reminder knows. Use {{Patient First Name}}, {{Practice Name}}, "
            "{{Appointment Link}}, {{Appointment Date}}, {{Appointment Time}}, {{Location}}."
        ]

    def test_one_too_long_for_a_text_is_refused(self, practice):
        form = ReminderTemplateForm(data={"organisation": practice.organisation.pk, "body": "{{Location}} " * 60})
        assert not form.is_valid()
        assert "SMS messages; the most is 10" in form.errors["body"][0]

    def test_a_good_one_is_saved_with_its_tokens_tidied(self, practice):
        form = ReminderTemplateForm(
            data={"organisation": practice.organisation.pk, "body": "On <<appointment date>>: {{Appointment Link}}"}
        )
        assert form.is_valid(), form.errors
        assert form.save().body == "On {{Appointment Date}}: {{Appointment Link}}"

    def test_admin_offers_it_with_the_default_text(self, admin_client):
        page = admin_client.get("/admin/messaging/remindertemplate/add/").content.decode()
        assert "Reminder from {{Practice Name}}" in page


class TestTheCommand:
    def test_it_sends_what_is_due_at_the_moment_given_once(self, practice):
        make_booked_appointment(practice, start=london(2026, 12, 8, 10, 0), booked_at=london(2026, 12, 1, 9, 0))
        first, second = StringIO(), StringIO()
        call_command("send_reminders", "--now", "2026-12-07T10:00+00:00", stdout=first)
        call_command("send_reminders", "--now", "2026-12-07T10:00+00:00", stdout=second)
        assert first.getvalue().strip() == "Queued 1 reminder."
        assert second.getvalue().strip() == "Queued 0 reminders."

    def test_at_night_it_says_why_nothing_goes(self, practice):
        out = StringIO()
        call_command("send_reminders", "--now", "2026-12-07T21:00+00:00", stdout=out)
        assert "none go outside 08:00-20:00 London time" in out.getvalue()

    @pytest.mark.parametrize(
        ("moment", "message"),
        [("tomorrow", "'tomorrow' is not a moment"), ("2026-12-07T10:00", "Give --now with its offset")],
    )
    def test_a_bad_moment_is_a_clear_error(self, moment, message):
        with pytest.raises(CommandError, match=message):
            call_command("send_reminders", "--now", moment)
