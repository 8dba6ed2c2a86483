"""Pacing at scale: the same queries a batch whatever its size; campaign messages queue behind hand-sent ones."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from django.db import transaction
from django_tasks_db.models import DBTaskResult

from booking.formats import LONDON
from messaging.campaigns.pacing import campaign_pace
from messaging.models import Message
from messaging.sending import message_send
from messaging.tasks import CAMPAIGN_PRIORITY
from tests.scenarios import make_paced_campaign

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("database_task_rows")]

NOW = datetime(2027, 1, 13, 10, 0, tzinfo=LONDON)


@pytest.mark.parametrize(("patients", "batches"), [(4, 1), (12, 3)])
def test_a_constant_number_of_queries_per_batch(practice, django_assert_num_queries, patients, batches):
    campaign = make_paced_campaign(practice, now=NOW, patients=patients, free_times=50)
    # A batch: savepoint, lock the campaign, its counts, its free times, claim the rows, check
    # the link settings once (the types offered to the practice: 2, the location: 1), insert
    # the links, the messages, the audit events, update the rows, insert the task rows, release
    # (14). Then the last look: savepoint, lock, counts, free times, FINISHED and its audit
    # event, release (7).
    with django_assert_num_queries(14 * batches + 7):
        pacing = campaign_pace(campaign_id=campaign.pk, now=NOW, batch_size=4)
    assert (pacing.invited, pacing.batches) == (patients, batches)


def test_every_invitation_has_its_delivery_task_at_campaign_priority(practice):
    campaign = make_paced_campaign(practice, now=NOW, patients=3)
    campaign_pace(campaign_id=campaign.pk, now=NOW)
    tasks = DBTaskResult.objects.filter(task_path="messaging.tasks.deliver_message")
    queued = {task.args_kwargs["kwargs"]["message_id"]: task.priority for task in tasks}
    assert queued == {entry.message_id: CAMPAIGN_PRIORITY for entry in campaign.entries.all()}


def test_a_message_sent_by_hand_after_500_campaign_messages_is_taken_first(practice):
    campaign = make_paced_campaign(practice, now=NOW, patients=500, free_times=300, per_day=1000)
    assert campaign_pace(campaign_id=campaign.pk, now=NOW).invited == 500
    by_hand, _ = message_send(
        sender=practice.user,
        patient=practice.patient,
        channel="sms",
        body="Your results are back, please call us.",
        link=None,
        idempotency_key=uuid.uuid4(),
    )
    assert DBTaskResult.objects.ready().count() == 501
    # What db_worker takes next: DBTaskResult.objects.ready().get_locked(), by its own ordering.
    with transaction.atomic():
        first = DBTaskResult.objects.ready().get_locked()
    assert first.args_kwargs["kwargs"]["message_id"] == by_hand.pk
    assert Message.objects.filter(pk=by_hand.pk, sent_by=practice.user).exists()
