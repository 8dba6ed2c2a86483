"""Delivery through the real twilio SDK against the fake Twilio API: once, retried, or failed with a reason."""

from __future__ import annotations

import random
import threading
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.test import TestCase, override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from booking.links import LinkExpiry
from booking.models import AuditEvent
from messaging.delivery import message_claim, message_deliver, retry_delay
from messaging.models import Message, MessageStatusEvent, SenderProfile
from messaging.sending import LinkSettings, message_send
from messaging.tasks import deliver_message, delivery_enqueue, messages_requeue
from tests.factories import PatientFactory
from tests.fakes.twilio import Answer, Hang, Refuse, Slow

DATABASE_TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}


def send_sms(practice, body="Hello {{Patient First Name}}, book here: {{Appointment Link}}", link=True) -> Message:
    """Send as the staff page does; with the immediate task backend it is delivered on commit."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        message, created = message_send(
            sender=practice.user,
            patient=practice.patient,
            channel="sms",
            body=body,
            link=LinkSettings(practice.appointment_type, practice.location, None, LinkExpiry.DAYS_14) if link else None,
            idempotency_key=uuid.uuid4(),
        )
    assert created
    message.refresh_from_db()
    return message


def queued_message(practice) -> Message:
    """A message saved with its task on the database queue, not yet sent."""
    with override_settings(TASKS=DATABASE_TASKS):
        return send_sms(practice)


class TestTwilioSends:
    def test_the_text_goes_through_the_sdk_and_the_message_records_twilios_id(self, practice, fake_twilio):
        message = send_sms(practice)

        assert message.status == Message.Status.SENT
        (request,) = fake_twilio.accepted()
        assert request.form["To"] == practice.patient.mobile
        assert request.form["Body"] == message.body
        assert "/b/" in request.form["Body"]
        assert request.form["From"] == "RIVERSIDE"
        assert request.form["StatusCallback"] == f"http://testserver/webhooks/twilio/status/{message.reference}/"
        assert message.provider_message_id == request.sid
        assert message.attempts == 1
        assert message.sent_at is not None
        assert message.lease_expires_at is None
        (event,) = message.status_events.all()
        assert (event.status, event.source, event.provider_status) == ("sent", "worker", "queued")

    def test_an_organisations_messaging_service_is_used_before_the_default_sender(self, practice, fake_twilio):
        service = "MG" + "ab" * 16
        SenderProfile.objects.create(organisation=practice.organisation, twilio_messaging_service_sid=service)
        send_sms(practice)
        (request,) = fake_twilio.accepted()
        assert request.form["MessagingServiceSid"] == service
        assert "From" not in request.form

    def test_an_organisations_sender_id_is_used_when_it_has_no_service(self, practice, fake_twilio):
        SenderProfile.objects.create(organisation=practice.organisation, sms_sender_id="Riverside")
        send_sms(practice)
        assert fake_twilio.accepted()[0].form["From"] == "Riverside"

    def test_without_any_sender_the_message_fails_with_a_reason_an_admin_can_act_on(self, practice, fake_twilio):
        with override_settings(TWILIO_SENDER_ID=""):
            message = send_sms(practice)
        assert message.status == Message.Status.FAILED
        assert "No SMS sender is set up for Riverside Practice" in message.failure_reason
        assert fake_twilio.requests == []


class TestPermanentFailures:
    @pytest.mark.parametrize(
        ("code", "reason"),
        [
            (21211, "isn't a valid phone number"),
            (21614, "isn't a mobile"),
            (21610, "opted out of texts"),
            (21612, "can't send texts to this number"),
            (21408, "can't send texts to that country"),
            (21999, "Twilio refused the text (error 21999)"),
        ],
    )
    def test_each_permanent_error_fails_at_once_with_words_staff_understand(self, practice, fake_twilio, code, reason):
        fake_twilio.always(Refuse(code))
        with override_settings(TASKS=DATABASE_TASKS):
            message = send_sms(practice)
            deliver_message.call(message_id=message.pk)
        message.refresh_from_db()

        assert message.status == Message.Status.FAILED
        assert reason in message.failure_reason
        assert message.attempts == 1
        assert len(fake_twilio.requests) == 1
        # No retry was queued: the one task row is the first one.
        assert DBTaskResult.objects.count() == 1
        assert message.status_events.get().error_code == str(code)

    def test_a_number_twilio_says_opted_out_is_marked_opted_out_on_the_patient_record(self, practice, fake_twilio):
        fake_twilio.always(Refuse(21610))
        send_sms(practice)
        practice.patient.refresh_from_db()
        assert practice.patient.sms_opted_out
        assert AuditEvent.objects.filter(action=AuditEvent.Action.OPTED_OUT, patient=practice.patient).exists()

    def test_twilios_opted_out_error_changes_only_the_sending_organisations_record(
        self, practice, other_practice, fake_twilio
    ):
        elsewhere = PatientFactory(organisation=other_practice.organisation, mobile=practice.patient.mobile)
        fake_twilio.always(Refuse(21610))
        send_sms(practice)
        practice.patient.refresh_from_db()
        elsewhere.refresh_from_db()
        assert practice.patient.sms_opted_out
        assert not elsewhere.sms_opted_out

    def test_staff_see_the_reason_on_the_message_page(self, practice, fake_twilio, client):
        fake_twilio.always(Refuse(21614))
        message = send_sms(practice)
        client.force_login(practice.user)
        response = client.get(f"/messages/{message.reference}/")
        assert "Failed" in response.text
        assert "isn&#x27;t a mobile" in response.text or "isn't a mobile" in response.text


class TestTransientFailures:
    @pytest.mark.parametrize(
        ("behaviour", "why"),
        [
            (Answer(500), "Twilio answered 500"),
            (Answer(503), "Twilio answered 503"),
            (Answer(429), "Twilio answered 429"),
            (Hang(), "Twilio didn't answer in time"),
        ],
    )
    def test_a_transient_failure_is_tried_again_later_on_a_deferred_task(self, practice, fake_twilio, behaviour, why):
        fake_twilio.always(behaviour)
        message = queued_message(practice)
        before = timezone.now()
        with override_settings(TASKS=DATABASE_TASKS):
            assert deliver_message.call(message_id=message.pk) == "retrying"
        message.refresh_from_db()

        assert message.status == Message.Status.QUEUED
        assert message.attempts == 1
        assert why in message.failure_reason
        assert "Trying again at" in message.failure_reason
        # First retry: 30 s doubled 0 times, with equal jitter: between 15 and 30 seconds.
        assert before + timedelta(seconds=15) <= message.next_attempt_at <= timezone.now() + timedelta(seconds=30)
        retry = DBTaskResult.objects.order_by("-enqueued_at").first()
        assert retry.run_after == message.next_attempt_at
        assert retry.args_kwargs == {"args": [], "kwargs": {"message_id": message.pk}}
        fake_twilio.release()

    def test_a_retry_before_its_time_does_nothing(self, practice, fake_twilio):
        fake_twilio.then(Answer(503))
        message = queued_message(practice)
        with override_settings(TASKS=DATABASE_TASKS):
            deliver_message.call(message_id=message.pk)
            assert deliver_message.call(message_id=message.pk) == "not due"
        assert len(fake_twilio.requests) == 1

    def test_the_retry_sends_it_when_twilio_is_back(self, practice, fake_twilio):
        fake_twilio.then(Answer(503))
        message = queued_message(practice)
        with override_settings(TASKS=DATABASE_TASKS):
            deliver_message.call(message_id=message.pk)
            Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
            assert deliver_message.call(message_id=message.pk) == "sent"
        message.refresh_from_db()
        assert message.status == Message.Status.SENT
        assert message.failure_reason == ""
        assert message.attempts == 2
        assert len(fake_twilio.accepted()) == 1
        assert [event.provider_status for event in message.status_events.all()] == ["retrying", "queued"]

    def test_after_the_last_try_the_message_fails_with_the_last_reason(self, practice, fake_twilio):
        fake_twilio.always(Answer(500))
        message = queued_message(practice)
        with override_settings(TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=3):
            for _ in range(3):
                Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
                deliver_message.call(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == Message.Status.FAILED
        assert message.failure_reason == "Not sent after 3 tries. Last: Twilio answered 500."
        assert len(fake_twilio.requests) == 3

    def test_a_retry_the_immediate_backend_cant_defer_is_left_for_the_requeue_sweep(self, practice, fake_twilio):
        fake_twilio.then(Answer(503))
        message = send_sms(practice)  # immediate backend: tried inside the request
        assert message.status == Message.Status.QUEUED
        Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert messages_requeue() == 1  # the immediate backend runs it now
        message.refresh_from_db()
        assert message.status == Message.Status.SENT
        assert len(fake_twilio.accepted()) == 1


class TestBackoff:
    @pytest.mark.parametrize("attempt", range(1, 12))
    def test_each_wait_is_between_half_and_all_of_a_doubling_step_capped_at_the_maximum(self, attempt):
        step = min(3600, 30 * 2 ** (attempt - 1))
        rng = random.Random(attempt)
        waits = [retry_delay(attempt, rng=rng).total_seconds() for _ in range(200)]
        assert all(step / 2 <= wait <= step for wait in waits)
        assert max(waits) - min(waits) > step / 4  # jittered, not all the same

    def test_the_settings_change_the_schedule(self):
        with override_settings(DELIVERY_RETRY_BASE_SECONDS=2, DELIVERY_RETRY_MAX_SECONDS=10):
            assert 1 <= retry_delay(1).total_seconds() <= 2
            assert 5 <= retry_delay(8).total_seconds() <= 10


class TestOnce:
    def test_a_rolled_back_transaction_sends_nothing_and_queues_nothing(self, practice, fake_twilio):
        def send_then_fail():
            with transaction.atomic():
                send_sms(practice)
                raise RuntimeError("the request failed after saving")

        with override_settings(TASKS=DATABASE_TASKS), pytest.raises(RuntimeError):
            send_then_fail()
        assert not Message.objects.exists()
        assert not DBTaskResult.objects.exists()
        assert fake_twilio.requests == []

    def test_a_rolled_back_transaction_sends_nothing_with_the_immediate_backend(self, practice, fake_twilio):
        def send_then_fail():
            with transaction.atomic():
                message_send(
                    sender=practice.user,
                    patient=practice.patient,
                    channel="sms",
                    body="Hello",
                    link=None,
                    idempotency_key=uuid.uuid4(),
                )
                raise RuntimeError("the request failed after saving")

        with TestCase.captureOnCommitCallbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
            send_then_fail()
        assert callbacks == []
        assert fake_twilio.requests == []

    def test_the_task_row_is_written_in_the_messages_own_transaction_not_after_it(self, practice, fake_twilio):
        with override_settings(TASKS=DATABASE_TASKS), TestCase.captureOnCommitCallbacks() as callbacks:
            message, _ = message_send(
                sender=practice.user,
                patient=practice.patient,
                channel="sms",
                body="Hello",
                link=None,
                idempotency_key=uuid.uuid4(),
            )
            assert DBTaskResult.objects.get().args_kwargs["kwargs"] == {"message_id": message.pk}
        assert callbacks == []

    def test_a_retrys_task_row_commits_with_the_message_queued_again_or_not_at_all(self, practice, fake_twilio):
        fake_twilio.then(Answer(503))
        message = queued_message(practice)

        def enqueue_then_fail(*, message, run_after=None):
            delivery_enqueue(message=message, run_after=run_after)
            raise DatabaseError("the task table is unavailable")

        with override_settings(TASKS=DATABASE_TASKS), pytest.raises(DatabaseError):
            message_deliver(message_id=message.pk, enqueue=enqueue_then_fail)
        message.refresh_from_db()
        # Not "queued" with no task to send it: still held, so the sweep takes it once the lease lapses.
        assert (message.status, message.failure_reason) == (Message.Status.SENDING, "")
        assert DBTaskResult.objects.count() == 1  # the first send's task, no retry
        assert not message.status_events.exists()
        with override_settings(TASKS=DATABASE_TASKS):
            assert messages_requeue(now=message.lease_expires_at + timedelta(seconds=1)) == 1

    def test_the_message_and_its_task_are_saved_together(self, practice, fake_twilio):
        message = queued_message(practice)
        assert message.status == Message.Status.QUEUED
        task = DBTaskResult.objects.get()
        assert task.task_path == "messaging.tasks.deliver_message"
        assert task.args_kwargs["kwargs"] == {"message_id": message.pk}

    def test_the_task_run_twice_sends_once(self, practice, fake_twilio):
        message = queued_message(practice)
        assert deliver_message.call(message_id=message.pk) == "sent"
        assert deliver_message.call(message_id=message.pk) == "not due"
        assert len(fake_twilio.requests) == 1

    @pytest.mark.django_db(transaction=True)
    def test_two_workers_running_the_task_at_once_send_once(self, fake_twilio):
        from tests.scenarios import make_practice

        practice = make_practice()
        message = queued_message(practice)
        fake_twilio.always(Slow(0.3))
        barrier = threading.Barrier(4)
        results = []

        def worker():
            barrier.wait()
            try:
                results.append(deliver_message.call(message_id=message.pk))
            finally:
                from django.db import connection

                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["not due", "not due", "not due", "sent"]
        assert len(fake_twilio.requests) == 1


class TestLease:
    def test_a_message_held_by_a_live_worker_is_not_claimed_again(self, practice, fake_twilio):
        message = queued_message(practice)
        assert message_claim(message.pk) is not None
        assert message_claim(message.pk) is None

    def test_a_message_whose_worker_died_is_claimed_again_after_the_lease(self, practice, fake_twilio):
        message = queued_message(practice)
        assert message_claim(message.pk) is not None  # ...and the worker dies here
        later = timezone.now() + timedelta(seconds=121)
        assert message_claim(message.pk, now=later) is not None
        message.refresh_from_db()
        assert message.attempts == 2

    def test_the_sweep_requeues_lapsed_leases_and_overdue_messages_only(self, practice, fake_twilio):
        lapsed, overdue, _fresh, held = (queued_message(practice) for _ in range(4))
        now = timezone.now()
        Message.objects.filter(pk=lapsed.pk).update(status="sending", lease_expires_at=now - timedelta(seconds=1))
        Message.objects.filter(pk=overdue.pk).update(next_attempt_at=now - timedelta(minutes=10))
        Message.objects.filter(pk=held.pk).update(status="sending", lease_expires_at=now + timedelta(seconds=60))
        with override_settings(TASKS=DATABASE_TASKS):
            DBTaskResult.objects.all().delete()
            assert messages_requeue() == 2
        requeued = {task.args_kwargs["kwargs"]["message_id"] for task in DBTaskResult.objects.all()}
        assert requeued == {lapsed.pk, overdue.pk}

    def test_a_worker_whose_lease_lapsed_does_not_overwrite_the_worker_that_took_over(self, practice, fake_twilio):
        message = queued_message(practice)
        first = message_claim(message.pk)
        second = message_claim(message.pk, now=timezone.now() + timedelta(seconds=121))
        from messaging.delivery import _record_failure, _record_sent
        from messaging.transports import SendResult, TransportError

        _record_sent(second, SendResult("SM-second", "queued"))
        failure = TransportError("Twilio answered 500.", permanent=False)
        assert _record_failure(first, failure, enqueue=delivery_enqueue) == "superseded"
        message.refresh_from_db()
        assert (message.status, message.provider_message_id) == ("sent", "SM-second")
        assert [event.provider_status for event in message.status_events.all()] == ["queued"]


class TestHistory:
    def test_each_try_is_in_the_history_in_order(self, practice, fake_twilio):
        fake_twilio.then(Answer(500), Answer(429))
        message = queued_message(practice)
        with override_settings(TASKS=DATABASE_TASKS):
            for _ in range(3):
                Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
                deliver_message.call(message_id=message.pk)
        events = list(MessageStatusEvent.objects.filter(message=message))
        assert [(event.status, event.provider_status) for event in events] == [
            ("queued", "retrying"),
            ("queued", "retrying"),
            ("sent", "queued"),
        ]


class TestOtherBackends:
    def test_twilio_unreachable_is_a_passing_failure(self, practice, fake_twilio):
        closed_port_url = fake_twilio.url
        fake_twilio.stop()
        with override_settings(TWILIO_API_BASE_URL=closed_port_url, TASKS=DATABASE_TASKS):
            message = send_sms(practice)
            deliver_message.call(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == Message.Status.QUEUED
        assert "Couldn't reach Twilio" in message.failure_reason

    def test_the_console_backend_prints_the_text_to_the_log(self, practice, caplog):
        with override_settings(SMS_BACKEND="console"), caplog.at_level("INFO", logger="messaging.transports.sms"):
            message = send_sms(practice)
        assert message.status == Message.Status.SENT
        assert message.provider_message_id == f"console-{message.reference}"
        assert message.body in caplog.text


class TestCheckedAgainBeforeEachTry:
    def test_a_patient_who_opts_out_before_the_retry_is_not_texted(self, practice, fake_twilio):
        from booking.models import Patient

        fake_twilio.then(Answer(503))
        message = queued_message(practice)
        with override_settings(TASKS=DATABASE_TASKS):
            deliver_message.call(message_id=message.pk)
            Patient.objects.filter(pk=practice.patient.pk).update(sms_opted_out=True)
            Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
            assert deliver_message.call(message_id=message.pk) == "failed"
        message.refresh_from_db()
        assert message.status == Message.Status.FAILED
        assert message.failure_reason == "Not sent: the patient has opted out of texts (replied STOP)."
        assert len(fake_twilio.requests) == 1

    def test_a_number_changed_since_the_message_was_written_is_not_texted(self, practice, fake_twilio):
        from booking.models import Patient

        message = queued_message(practice)
        Patient.objects.filter(pk=practice.patient.pk).update(mobile="+447400999888")
        assert deliver_message.call(message_id=message.pk) == "failed"
        message.refresh_from_db()
        assert "mobile number changed after the message was written" in message.failure_reason
        assert fake_twilio.requests == []


UNRELIABLE = "tests.fakes.sms.UnreliableSmsBackend"


class TestNeverStranded:
    """Any error a transport raises, and any claim that never finished, ends with a reason."""

    def test_an_unexpected_error_is_logged_with_its_traceback_and_tried_again(self, practice, settings, caplog):
        settings.SMS_BACKEND = UNRELIABLE
        message = send_sms(practice, body="Hello {{Patient First Name}}, case valueerror", link=False)

        assert message.status == Message.Status.QUEUED
        assert message.attempts == 1
        assert message.failure_reason.startswith(
            "Not sent yet: an unexpected error (ValueError) — the details are in the server log. Trying again at "
        )
        (record,) = [record for record in caplog.records if record.exc_info]
        assert record.levelname == "ERROR"
        assert record.exc_info[0] is ValueError

    def test_after_the_last_try_an_unexpected_error_fails_the_message_with_a_plain_reason(self, practice, settings):
        settings.SMS_BACKEND = UNRELIABLE
        with override_settings(TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=3):
            message = send_sms(practice, body="Hello {{Patient First Name}}, case keyerror", link=False)
            for _ in range(4):
                Message.objects.filter(pk=message.pk).update(next_attempt_at=timezone.now())
                deliver_message.call(message_id=message.pk)
        message.refresh_from_db()
        assert message.status == Message.Status.FAILED
        assert message.attempts == 3
        assert message.failure_reason == (
            "Not sent after 3 tries. Last: an unexpected error (KeyError) — the details are in the server log."
        )

    def test_the_claim_refuses_a_message_that_had_all_its_tries(self, practice, fake_twilio):
        message = queued_message(practice)
        later = timezone.now() + timedelta(seconds=121)
        with override_settings(DELIVERY_MAX_ATTEMPTS=2):
            assert message_claim(message.pk) is not None  # ...and the worker dies, twice
            assert message_claim(message.pk, now=later) is not None
            assert message_claim(message.pk, now=later + timedelta(seconds=121)) is None
        message.refresh_from_db()
        assert message.attempts == 2

    def test_the_sweep_fails_a_message_whose_last_try_never_finished_with_a_reason(self, practice, fake_twilio):
        message = queued_message(practice)
        Message.objects.filter(pk=message.pk).update(
            status="sending", attempts=8, lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        with override_settings(TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=8):
            DBTaskResult.objects.all().delete()
            assert messages_requeue() == 0
            assert messages_requeue() == 0
        assert not DBTaskResult.objects.exists()
        message.refresh_from_db()
        assert message.status == Message.Status.FAILED
        assert message.attempts == 8
        assert message.failure_reason.startswith("Not sent after 8 tries. Last: the try didn't finish")
        assert [(event.status, event.detail) for event in message.status_events.all()] == [
            ("failed", message.failure_reason)
        ]
        assert len(fake_twilio.requests) == 0

    def test_the_sweep_still_requeues_a_lapsed_message_with_tries_to_spare(self, practice, fake_twilio):
        message = queued_message(practice)
        Message.objects.filter(pk=message.pk).update(
            status="sending", attempts=7, lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        with override_settings(TASKS=DATABASE_TASKS, DELIVERY_MAX_ATTEMPTS=8):
            DBTaskResult.objects.all().delete()
            assert messages_requeue() == 1
