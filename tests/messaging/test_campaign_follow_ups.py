"""Follow-ups to the patients a campaign invited who haven't booked or declined, with the clock moved.

The rules are in messaging/campaigns/follow_ups.py's docstring; two runs at once are in
test_campaign_follow_ups_races.py, and the call list in test_campaign_call_list.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from booking.formats import LONDON
from booking.models import AuditEvent, BookingLink
from messaging.campaigns.follow_ups import campaign_follow_up_due, campaign_follow_ups_send
from messaging.delivery import message_deliver
from messaging.models import Campaign, CampaignEntry, Message
from messaging.tasks import CAMPAIGN_PRIORITY, delivery_enqueue, messages_requeue
from messaging.texts import message_text
from messaging.tokens import LINK_PLACEHOLDER
from tests.factories import AppointmentFactory, MessageFactory, PatientFactory, SlotFactory
from tests.scenarios import CAMPAIGN_INVITED, make_campaign, make_invitation
from tests.workers import DATABASE_TASKS

pytestmark = pytest.mark.django_db


def london(*args: int) -> datetime:
    return datetime(*args, tzinfo=LONDON)


INVITED = CAMPAIGN_INVITED  # a Tuesday, GMT
DAY_5 = london(2026, 12, 6, 10, 0)
DAY_10 = london(2026, 12, 11, 10, 0)


def follow_ups(entry: CampaignEntry) -> list[Message]:
    return list(Message.objects.filter(link_carried=entry.link).order_by("pk"))


class TestWhen:
    def test_the_first_goes_on_day_5_at_the_invitations_time_and_not_a_minute_before(self, invited_entry):
        assert campaign_follow_ups_send(now=DAY_5 - timedelta(minutes=1)) == 0
        assert campaign_follow_ups_send(now=DAY_5) == 1
        invited_entry.refresh_from_db()
        assert (invited_entry.follow_ups_sent, invited_entry.last_follow_up_at) == (1, DAY_5)

    def test_each_goes_once_however_often_the_job_runs(self, invited_entry):
        assert campaign_follow_ups_send(now=DAY_5) == 1
        assert campaign_follow_ups_send(now=DAY_5 + timedelta(minutes=1)) == 0
        assert campaign_follow_ups_send(now=DAY_10 - timedelta(minutes=1)) == 0
        assert campaign_follow_ups_send(now=DAY_10) == 1
        assert campaign_follow_ups_send(now=DAY_10 + timedelta(days=3)) == 0
        invited_entry.refresh_from_db()
        assert invited_entry.follow_ups_sent == 2
        assert len(follow_ups(invited_entry)) == 2

    def test_the_campaigns_own_days(self, flu_campaign, invited_entry):
        Campaign.objects.filter(pk=flu_campaign.pk).update(follow_up_1_days=3, follow_up_2_days=7)
        assert campaign_follow_ups_send(now=INVITED + timedelta(days=3)) == 1
        assert campaign_follow_ups_send(now=INVITED + timedelta(days=7)) == 1

    def test_only_as_many_as_the_campaign_sets(self, practice):
        one = make_campaign(practice, follow_up_1_days=5, follow_up_2_days=None)
        none = make_campaign(practice, follow_up_1_days=None, follow_up_2_days=None)
        first = make_invitation(one, practice.patient, invited_at=INVITED)
        second = make_invitation(none, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        assert campaign_follow_ups_send(now=DAY_5) == 1
        assert campaign_follow_ups_send(now=DAY_10 + timedelta(days=5)) == 0
        first.refresh_from_db()
        second.refresh_from_db()
        assert (first.follow_ups_sent, second.follow_ups_sent) == (1, 0)

    def test_a_run_late_by_days_sends_the_first_and_keeps_the_gap_before_the_second(self, invited_entry):
        BookingLink.objects.filter(pk=invited_entry.link_id).update(expires_at=None)  # a link that never expires
        late = DAY_10 + timedelta(hours=1)
        assert campaign_follow_ups_send(now=late) == 1
        assert campaign_follow_ups_send(now=late + timedelta(minutes=1)) == 0
        assert campaign_follow_ups_send(now=late + timedelta(days=5)) == 1

    def test_nothing_goes_at_night_and_one_due_then_goes_at_8am(self, flu_campaign, practice):
        entry = make_invitation(flu_campaign, practice.patient, invited_at=london(2026, 12, 1, 20, 30))
        due = london(2026, 12, 6, 20, 30)
        assert campaign_follow_ups_send(now=due) == 0
        assert campaign_follow_ups_send(now=london(2026, 12, 7, 7, 59)) == 0
        assert campaign_follow_ups_send(now=london(2026, 12, 7, 8, 0)) == 1
        entry.refresh_from_db()
        assert entry.follow_ups_sent == 1

    def test_across_the_autumn_clock_change_it_keeps_the_london_time(self, flu_campaign, practice):
        # Friday 23 October 2026, 10am BST; the clocks go back on Sunday 25th.
        invited = london(2026, 10, 23, 10, 0)
        entry = make_invitation(flu_campaign, practice.patient, invited_at=invited)
        due = london(2026, 10, 28, 10, 0)  # 10am GMT: 121 hours later, not 120
        assert due.astimezone(UTC) - invited.astimezone(UTC) == timedelta(hours=121)
        assert campaign_follow_up_due(invited_at=invited, days=5) == due
        assert campaign_follow_ups_send(now=invited.astimezone(UTC) + timedelta(hours=120)) == 0
        assert campaign_follow_ups_send(now=due) == 1
        entry.refresh_from_db()
        assert entry.last_follow_up_at == due

    def test_across_the_spring_clock_change_too(self, flu_campaign, practice):
        # Friday 26 March 2027, 10am GMT; the clocks go forward on Sunday 28th.
        invited = london(2027, 3, 26, 10, 0)
        make_invitation(flu_campaign, practice.patient, invited_at=invited)
        due = london(2027, 3, 31, 10, 0)  # 10am BST: 119 hours later
        assert due.astimezone(UTC) - invited.astimezone(UTC) == timedelta(hours=119)
        assert campaign_follow_ups_send(now=due - timedelta(minutes=1)) == 0
        assert campaign_follow_ups_send(now=due) == 1


class TestWho:
    def test_a_patient_who_booked_gets_none(self, invited_entry, practice):
        slot = SlotFactory(
            practitioner=practice.practitioner, location=practice.location, appointment_type=practice.appointment_type
        )
        AppointmentFactory(slot=slot, patient=practice.patient, booking_link=invited_entry.link)
        BookingLink.objects.filter(pk=invited_entry.link_id).update(status=BookingLink.Status.BOOKED)
        assert campaign_follow_ups_send(now=DAY_5) == 0
        assert campaign_follow_ups_send(now=DAY_10) == 0

    @pytest.mark.parametrize("status", ["declined", "revoked", "locked"])
    def test_a_declined_revoked_or_locked_link_gets_none(self, invited_entry, status):
        BookingLink.objects.filter(pk=invited_entry.link_id).update(
            status=status, declined_at=INVITED if status == "declined" else None
        )
        assert campaign_follow_ups_send(now=DAY_5) == 0
        invited_entry.refresh_from_db()
        assert invited_entry.follow_ups_sent == 0

    def test_an_expired_link_gets_none(self, invited_entry):
        BookingLink.objects.filter(pk=invited_entry.link_id).update(expires_at=DAY_5 - timedelta(hours=1))
        assert campaign_follow_ups_send(now=DAY_5) == 0

    def test_a_row_with_a_call_outcome_gets_none(self, invited_entry):
        CampaignEntry.objects.filter(pk=invited_entry.pk).update(call_outcome="no_answer")
        assert campaign_follow_ups_send(now=DAY_5) == 0

    def test_a_stopped_campaign_sends_none(self, flu_campaign, invited_entry):
        Campaign.objects.filter(pk=flu_campaign.pk).update(status=Campaign.Status.STOPPED, stopped_at=INVITED)
        assert campaign_follow_ups_send(now=DAY_5) == 0
        assert campaign_follow_ups_send(now=DAY_10) == 0
        assert follow_ups(invited_entry) == []

    def test_a_paused_campaign_holds_them_until_it_resumes(self, flu_campaign, invited_entry):
        Campaign.objects.filter(pk=flu_campaign.pk).update(status=Campaign.Status.PAUSED)
        assert campaign_follow_ups_send(now=DAY_5) == 0
        Campaign.objects.filter(pk=flu_campaign.pk).update(status=Campaign.Status.SENDING)
        assert campaign_follow_ups_send(now=DAY_5 + timedelta(hours=1)) == 1

    @pytest.mark.parametrize("status", [Campaign.Status.WAITING, Campaign.Status.FINISHED])
    def test_a_campaign_waiting_for_times_or_finished_inviting_still_follows_up(
        self, flu_campaign, invited_entry, status
    ):
        Campaign.objects.filter(pk=flu_campaign.pk).update(status=status)
        assert campaign_follow_ups_send(now=DAY_5) == 1


class TestWhat:
    def test_the_text_is_the_campaigns_with_the_link_put_back_only_when_it_goes(
        self, flu_campaign, invited_entry, practice
    ):
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(invited_entry)
        assert message.channel == "sms"
        assert message.to_address == practice.patient.mobile
        assert message.template_body == flu_campaign.follow_up_body
        assert message.body.startswith(f"Oliver, {practice.organisation.name} invited you to book")
        assert LINK_PLACEHOLDER in message.body
        assert invited_entry.link.token not in message.body  # never at rest in clear
        assert message.booking_link_id is None  # not a second invitation: it carries the row's link
        assert message.link_carried_id == invited_entry.link_id
        assert message_text(message=message).endswith(f"/b/{invited_entry.link.token}")

    def test_by_email_when_the_invitation_went_by_email(self, flu_campaign, practice):
        entry = make_invitation(flu_campaign, practice.patient, invited_at=INVITED, channel="email")
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(entry)
        assert (message.channel, message.to_address) == ("email", practice.patient.email)
        assert practice.organisation.name in message.subject

    def test_by_the_other_channel_when_the_patient_opted_out_of_texts_since(self, invited_entry, practice):
        practice.patient.sms_opted_out = True
        practice.patient.save()
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(invited_entry)
        assert message.channel == "email"

    def test_with_no_way_to_reach_them_it_is_dealt_with_and_nothing_sent(self, invited_entry, practice):
        practice.patient.sms_opted_out = True
        practice.patient.email = ""
        practice.patient.save()
        assert campaign_follow_ups_send(now=DAY_5) == 0
        invited_entry.refresh_from_db()
        assert invited_entry.follow_ups_sent == 1
        assert follow_ups(invited_entry) == []

    def test_it_is_on_the_audit_trail_as_sent(self, flu_campaign, invited_entry):
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(invited_entry)
        (event,) = AuditEvent.objects.filter(action=AuditEvent.Action.SENT, booking_link=invited_entry.link)
        assert event.detail == {
            "message": message.reference,
            "channel": "sms",
            "campaign": flu_campaign.reference,
            "follow_up": 1,
        }

    @override_settings(TASKS=DATABASE_TASKS)
    def test_it_queues_behind_messages_sent_by_hand(self, invited_entry):
        campaign_follow_ups_send(now=DAY_5)
        (task,) = DBTaskResult.objects.all()
        assert task.priority == CAMPAIGN_PRIORITY
        assert task.args_kwargs["kwargs"] == {"message_id": follow_ups(invited_entry)[0].pk}

    @override_settings(TASKS=DATABASE_TASKS)
    @pytest.mark.parametrize("status", [BookingLink.Status.BOOKED, BookingLink.Status.DECLINED])
    def test_one_queued_before_the_patient_answered_is_not_sent_after(self, invited_entry, status):
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(invited_entry)
        # Booked or declined while the follow-up waited in the queue (a booked link keeps its token).
        BookingLink.objects.filter(pk=invited_entry.link_id).update(status=status, declined_at=DAY_5)
        assert message_deliver(message_id=message.pk, enqueue=delivery_enqueue) == "failed"
        message.refresh_from_db()
        assert message.failure_reason.startswith("Not sent: the patient has answered the invitation since")

    @override_settings(TASKS=DATABASE_TASKS)
    def test_while_the_invitation_is_unanswered_it_goes(self, invited_entry):
        campaign_follow_ups_send(now=DAY_5)
        (message,) = follow_ups(invited_entry)
        assert message_deliver(message_id=message.pk, enqueue=delivery_enqueue) == "sent"

    @override_settings(TASKS=DATABASE_TASKS)
    def test_requeued_after_a_stall_it_still_queues_behind_messages_sent_by_hand(self, invited_entry, practice):
        campaign_follow_ups_send(now=DAY_5)
        (follow_up,) = follow_ups(invited_entry)
        by_hand = MessageFactory(patient=practice.patient, status="queued")
        DBTaskResult.objects.all().delete()  # their tasks lost: a worker died, say
        stalled = timezone.now() - timedelta(minutes=10)
        Message.objects.filter(pk__in=[follow_up.pk, by_hand.pk]).update(status="queued", next_attempt_at=stalled)
        assert messages_requeue() == 2
        priorities = {task.args_kwargs["kwargs"]["message_id"]: task.priority for task in DBTaskResult.objects.all()}
        assert priorities == {follow_up.pk: CAMPAIGN_PRIORITY, by_hand.pk: 0}


class TestAtScale:
    @override_settings(TASKS=DATABASE_TASKS)
    @pytest.mark.parametrize(("due", "full_batches"), [(3, 1), (25, 3)])
    def test_a_constant_number_of_queries_per_batch(
        self, flu_campaign, practice, django_assert_num_queries, due, full_batches
    ):
        for _ in range(due):
            make_invitation(flu_campaign, PatientFactory(organisation=practice.organisation), invited_at=INVITED)
        # A batch with due rows: savepoint, select them (with all the text needs), claim them,
        # insert the messages, the audit events and the task rows, release (7). Follow-up 2 finds
        # none: savepoint, select, release (3).
        with django_assert_num_queries(7 * full_batches + 3):
            assert campaign_follow_ups_send(now=DAY_5, batch_size=10) == due


class TestTheCommand:
    def test_it_queues_the_due_follow_ups_once(self, invited_entry):
        out = StringIO()
        call_command("send_campaign_follow_ups", now=DAY_5.isoformat(), stdout=out)
        assert out.getvalue().strip() == "Queued 1 follow-up."
        out = StringIO()
        call_command("send_campaign_follow_ups", now=DAY_5.isoformat(), stdout=out)
        assert out.getvalue().strip() == "Queued 0 follow-ups."

    def test_at_night_it_says_why_nothing_went(self, invited_entry):
        out = StringIO()
        call_command("send_campaign_follow_ups", now=london(2026, 12, 6, 22, 0).isoformat(), stdout=out)
        assert "none go outside 08:00-20:00 London time" in out.getvalue()

    def test_a_moment_without_its_offset_is_refused(self):
        with pytest.raises(CommandError, match="offset"):
            call_command("send_campaign_follow_ups", now="2026-12-06T10:00")
